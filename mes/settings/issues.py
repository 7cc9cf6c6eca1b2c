"""Pydantic's validation errors, retold as short reasons at TOML key paths.

A pydantic ``loc`` is close to a key path but not quite one: it carries the tag of a
discriminated union (``('cells', 0, 'driver', 'sim', 'fault_rate')``) and a ``'[key]'``
marker for errors in dict keys. :func:`from_validation_error` walks the model's own
type hints along the ``loc`` to drop those, and to know which keys a table allows
when it reports an unknown one. Reasons are reworded where pydantic's wording speaks
Python ("Input should be a valid list") rather than TOML ("must be an array").
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from mes.settings.toml_lines import KeyPath, Segment


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem inside one document, before it is given a file and a line."""

    path: KeyPath
    reason: str


_TYPE_REASONS = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be an array",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
}


def describe(value: object) -> str:
    """Name a TOML value for a reason: ``a string 'print.fdm'``, ``an array``."""
    if isinstance(value, bool):
        return f"a boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"a string {value!r}"
    if isinstance(value, int):
        return f"an integer {value}"
    if isinstance(value, float):
        return f"a float {value}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return f"a date/time {value.isoformat()}"
    return type(value).__name__


def from_validation_error(model: type[BaseModel], exc: ValidationError) -> list[Issue]:
    """Translate every error of ``exc``, raised validating ``model``, into an Issue.

    Args:
        model: the root model that was validated.
        exc: its validation error.

    Returns:
        One issue per pydantic error, in pydantic's order.
    """
    return [_issue(model, error) for error in exc.errors()]


def _issue(model: type[BaseModel], error: ErrorDetails) -> Issue:
    path, owner, hint = _walk(model, error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return Issue(path, "is required")
    if kind == "extra_forbidden":
        allowed = ", ".join(owner.model_fields) if owner is not None else ""
        return Issue(path, f"unknown key (allowed: {allowed})" if allowed else "unknown key")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        # A discriminated union such as the cell driver: name the field and the tags.
        label = next((s for s in reversed(path) if isinstance(s, str)), "table")
        field = str(ctx.get("discriminator", "kind")).strip("'")
        known = ", ".join(_tags(hint, field))
        if kind == "union_tag_not_found":
            return Issue(path, f"{label} {field} is required (known: {known})")
        return Issue(
            (*path, field),
            f"unknown {label} {field} {ctx.get('tag')!r} (known: {known})",
        )
    if kind in _TYPE_REASONS:
        return Issue(path, f"{_TYPE_REASONS[kind]} (got {describe(value)})")
    if kind == "literal_error":
        return Issue(path, f"must be {ctx.get('expected')} (got {describe(value)})")
    if kind == "too_short" and ctx.get("min_length") == 1:
        return Issue(path, "must not be empty")
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        message = f"{message} (got {value!r})"
    return Issue(path, message)


def _walk(
    model: type[BaseModel], loc: Sequence[Segment]
) -> tuple[KeyPath, type[BaseModel] | None, Any]:
    """Clean a ``loc`` into a key path.

    Returns:
        The path, the model owning its last key, and the type hint of its value.
    """
    path: list[Segment] = []
    hint: Any = model
    owner: type[BaseModel] | None = None
    tagged = False
    for segment in loc:
        if segment == "[key]":  # the error is about the dict key, already in the path
            continue
        if tagged:
            # This segment is a union tag, not a key: pick the member it names.
            hint = _member(hint, segment)
            tagged = False
            continue
        path.append(segment)
        owner = hint if _is_model(hint) else None
        hint, tagged = _child(hint, segment)
    return tuple(path), owner, hint


def _child(hint: Any, segment: Segment) -> tuple[Any, bool]:
    """The type hint one step down, and whether it is a discriminated union."""
    hint, tagged = _unwrap(hint)
    if _is_model(hint):
        field = hint.model_fields.get(segment) if isinstance(segment, str) else None
        if field is None:
            return None, False
        inner, tagged = _unwrap(field.annotation)
        return inner, tagged or field.discriminator is not None
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (list, tuple) and args:
        return _unwrap(args[0])
    if origin is dict and len(args) == 2:
        return _unwrap(args[1])
    return None, False


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """Strip ``Annotated`` and ``| None``; report a ``discriminator`` found on the way."""
    tagged = False
    while True:
        origin = get_origin(hint)
        if origin is Annotated:
            hint, *extras = get_args(hint)
            tagged = tagged or any(
                isinstance(x, FieldInfo) and x.discriminator is not None for x in extras
            )
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(hint) if a is not type(None)]
            if len(members) != 1 or tagged:
                return hint, tagged
            hint = members[0]
        else:
            return hint, tagged


def _member(hint: Any, tag: Segment) -> Any:
    """The member of a discriminated union whose literal tag is ``tag``."""
    for member in _members(hint):
        if not _is_model(member):
            continue
        for field in member.model_fields.values():
            if get_origin(field.annotation) is not None and tag in get_args(field.annotation):
                return member
    return None


def _members(hint: Any) -> tuple[Any, ...]:
    return get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)


def _tags(hint: Any, discriminator: str) -> list[str]:
    """The tags a discriminated union accepts, read from its members' Literal fields."""
    tags: list[str] = []
    for member in _members(hint):
        field = member.model_fields.get(discriminator) if _is_model(member) else None
        if field is not None:
            tags += [str(tag) for tag in get_args(field.annotation)]
    return tags


def _is_model(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, BaseModel)
