"""A headless Chromium driven over the DevTools protocol (aiohttp's websocket client):
just enough to load a page, type keys and read what a textual-serve terminal got."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

#: As this machine's notes say: no sandbox (root), and nothing that reaches out (the
#: network is closed: Chromium's own lookups and updates would be refused, many at once).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: Records every binary frame the page's websockets receive (the terminal's bytes).
CAPTURE = """
(() => {
  const Original = window.WebSocket;
  window.__term = [];
  const decoder = new TextDecoder();
  function Capturing(url, protocols) {
    const ws = protocols === undefined ? new Original(url) : new Original(url, protocols);
    ws.addEventListener("message", (e) => {
      if (typeof e.data !== "string") window.__term.push(decoder.decode(e.data));
    });
    return ws;
  }
  Capturing.prototype = Original.prototype;
  for (const k of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) Capturing[k] = Original[k];
  window.WebSocket = Capturing;
})();
"""

_ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>PX^_\\]")


async def poll(check: Callable[[], Awaitable[object]], every_s: float = 0.1) -> object:
    """The first true answer of ``check``, asked every ``every_s`` (another process
    changes what it reads, so there is no event to wait on); the caller bounds the time."""
    while True:
        answer = await check()
        if answer:
            return answer
        await asyncio.sleep(every_s)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def terminal_text(self) -> str:
        raw = await self.evaluate("(window.__term || []).join('')") or ""
        return _ANSI.sub("", str(raw))

    async def key(self, text: str, code: str, key_code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            params: dict[str, Any] = {
                "type": kind,
                "key": text if len(text) == 1 else code,
                "code": code,
                "windowsVirtualKeyCode": key_code,
            }
            if kind == "keyDown" and len(text) == 1:
                params["text"] = text
            await self.call("Input.dispatchKeyEvent", **params)

    async def screenshot(self) -> bytes:
        """The page as PNG."""
        shot = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])


@contextlib.asynccontextmanager
async def browser(width: int = 1280, height: int = 800) -> AsyncIterator[Page]:
    """A headless Chromium with one blank page, closed afterwards."""
    binary = chromium()
    assert binary is not None
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={width},{height}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stderr is not None
            async with asyncio.timeout(30):
                line = b""
                while b"DevTools listening on" not in line:
                    line = await process.stderr.readline()
                    if not line:
                        raise RuntimeError("chromium exited before it listened")
            port = int(re.search(rb"127\.0\.0\.1:(\d+)/", line).group(1))  # type: ignore[union-attr]
            drain = asyncio.create_task(process.stderr.read())
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = json.loads(await response.text())
                target = next(t for t in targets if t.get("type") == "page")
                async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    page = Page(ws)
                    await page.call("Page.enable")
                    await page.call("Runtime.enable")
                    await page.call("Page.addScriptToEvaluateOnNewDocument", source=CAPTURE)
                    yield page
            drain.cancel()
        finally:
            if process.returncode is None:
                process.terminate()
                await process.wait()
