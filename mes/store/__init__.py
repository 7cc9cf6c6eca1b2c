"""Persistence: the only package that knows SQL (SQLModel over SQLAlchemy)."""

from mes.store.repository import DEFAULT_DB, Changes, Message, Store, resolve_url

__all__ = ["DEFAULT_DB", "Changes", "Message", "Store", "resolve_url"]
