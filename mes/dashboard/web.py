"""``mes dashboard --web``: the same app for browsers (textual-serve), one app process
per browser tab, bound to loopback unless a host is given, with a login when it is not
(or whenever the password variable is set).

The login asks an operator's name and the password from an environment variable
(``MES_DASHBOARD_PASSWORD`` unless ``--password-env`` names another); the name is the
operator every request of that browser's dashboard is journaled under. A session is a
signed cookie (a secret drawn at start: restarting the server logs everyone out).
The page loads no outside resources (textual-serve's template asks a web font; the
shop floor is often offline), and the browser connects back to the address it used.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import os
import re
import secrets
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mes.errors import MesError

if TYPE_CHECKING:
    from aiohttp import web

COOKIE = "mes_session"
SESSION_S = 12 * 3600
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@-]{0,39}")
_FONTS = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*/>\s*", re.S)

LOGIN_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}: log in</title>
<style>
body {{ background: #0c181f; color: #eee; font-family: monospace; display: flex;
       align-items: center; justify-content: center; height: 100vh; margin: 0; }}
form {{ background: #12232d; padding: 2em 3em; }}
input {{ display: block; margin: .5em 0 1em; font: inherit; padding: .3em; width: 20em; }}
p.error {{ color: #f77; }}
</style></head>
<body><form method="post" action="/login">
<h2>{title}</h2>
<p class="error">{error}</p>
<label>operator<input name="operator" autofocus required maxlength="40"></label>
<label>password<input name="password" type="password" required></label>
<button type="submit">log in</button>
</form></body></html>
"""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Sessions:
    """Signed session cookies: ``operator|expiry|mac``."""

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = secret or secrets.token_bytes(32)

    def make(self, operator: str, now: float | None = None) -> str:
        expiry = int((now or time.time()) + SESSION_S)
        payload = f"{operator}|{expiry}"
        return f"{payload}|{self._mac(payload)}"

    def operator(self, cookie: str | None, now: float | None = None) -> str | None:
        """The operator of a valid, unexpired session cookie, else None."""
        if not cookie or cookie.count("|") != 2:
            return None
        operator, expiry, mac = cookie.split("|")
        if not hmac.compare_digest(mac, self._mac(f"{operator}|{expiry}")):
            return None
        if not expiry.isdigit() or int(expiry) < (now or time.time()):
            return None
        return operator

    def _mac(self, payload: str) -> str:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()


def app_command(
    operator: str, plant: Path | None, extra: Sequence[str], python: str = sys.executable
) -> str:
    """The shell command that runs one browser's dashboard (the store comes from MES_DB,
    so a database password never shows in a process list)."""
    args = [python, "-m", "mes.cli", "dashboard", "--operator", operator]
    if plant is not None:
        args += ["--plant", str(plant)]
    return shlex.join([*args, *extra])


def serve(
    *,
    db: str,
    plant: Path | None,
    host: str,
    port: int,
    password_env: str,
    extra: Sequence[str],
    operator: str,
) -> None:
    """Serve until Ctrl-C.

    Raises:
        MesError: a host that is not loopback without a password to log in with.
    """
    password = os.environ.get(password_env, "")
    login = bool(password) or not is_loopback(host)
    if login and not password:
        raise MesError(
            f"--host {host} is not loopback: set {password_env} to the password operators "
            "log in with (or serve on 127.0.0.1)"
        )
    os.environ["MES_DB"] = db
    server = make_server(
        host=host,
        port=port,
        plant=plant,
        extra=extra,
        operator=operator,
        password=password if login else None,
    )
    server.serve()


def make_server(
    *,
    host: str,
    port: int,
    plant: Path | None,
    extra: Sequence[str],
    operator: str,
    password: str | None,
) -> Any:
    """A textual-serve server for the dashboard; ``password`` None: no login."""
    import aiohttp_jinja2
    from aiohttp import web
    from textual_serve.app_service import AppService
    from textual_serve.server import Server

    sessions = Sessions()
    title = "mes dashboard"

    class DashboardServer(Server):
        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            if password is not None:
                app.middlewares.append(require_login)
                app.router.add_get("/login", login_page)
                app.router.add_post("/login", login_post)
            return app

        async def handle_index(self, request: web.Request) -> web.Response:
            base = f"{request.scheme}://{request.host}"
            scheme = "wss" if request.scheme == "https" else "ws"
            context = {
                "font_size": 16,
                "app_websocket_url": f"{scheme}://{request.host}/ws",
                "config": {"static": {"url": f"{base}/static/"}},
                "application": {"name": title},
            }
            text = aiohttp_jinja2.render_string("app_index.html", request, context)
            return web.Response(text=_FONTS.sub("", text), content_type="text/html")

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            who = sessions.operator(request.cookies.get(COOKIE)) if password else operator
            websocket = web.WebSocketResponse(heartbeat=15)
            width = _int(request.query.get("width"), 80)
            height = _int(request.query.get("height"), 24)
            await websocket.prepare(request)

            async def close() -> None:
                await websocket.close()

            service = AppService(
                app_command(who or operator, plant, extra),
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            try:
                await service.start(width, height)
                await self._process_messages(websocket, service)
            finally:
                await service.stop()
            return websocket

    @web.middleware
    async def require_login(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/login" or request.path.startswith("/static/"):
            return await handler(request)
        if sessions.operator(request.cookies.get(COOKIE)) is None:
            if request.path == "/":
                raise web.HTTPFound("/login")
            raise web.HTTPUnauthorized(text="log in first")
        return await handler(request)

    async def login_page(request: web.Request) -> web.Response:
        return _page(title, "")

    async def login_post(request: web.Request) -> web.Response:
        form = await request.post()
        name = str(form.get("operator", "")).strip()
        given = str(form.get("password", ""))
        if not _NAME.fullmatch(name):
            return _page(title, "an operator name: letters, digits, space . _ @ -", 400)
        if password is None or not hmac.compare_digest(given.encode(), password.encode()):
            return _page(title, "wrong password", 401)
        response = web.HTTPFound("/")
        response.set_cookie(COOKIE, sessions.make(name), httponly=True, samesite="Strict")
        raise response

    return DashboardServer(
        "mes dashboard", host=host, port=port, title=title, public_url=f"http://{host}:{port}"
    )


def _page(title: str, error: str, status: int = 200) -> web.Response:
    from aiohttp import web

    text = LOGIN_PAGE.format(title=html.escape(title), error=html.escape(error))
    return web.Response(text=text, content_type="text/html", status=status)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default
