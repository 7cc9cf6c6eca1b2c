"""``mes dashboard --web`` in headless Chromium: the login, the plant screen in the
page, and a key press that queues a request under the name the operator logged in as."""

from __future__ import annotations

import asyncio
import os
from functools import partial

import aiohttp
import pytest

from mes.dashboard.web import Sessions, app_command, is_loopback
from mes.store import Store
from tests.conftest import REPO, free_ports
from tests.dashboard.cdp import browser, chromium, poll
from tests.dashboard.conftest import register, requests
from tests.e2e.conftest import mes_command


def test_sessions_are_signed_and_expire() -> None:
    sessions = Sessions(b"k" * 32)
    cookie = sessions.make("bob", now=1000.0)
    assert sessions.operator(cookie, now=1001.0) == "bob"
    assert sessions.operator(cookie.replace("bob", "eve"), now=1001.0) is None
    assert sessions.operator(cookie, now=1000.0 + 13 * 3600) is None
    assert sessions.operator("garbage", now=1001.0) is None
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("plant-floor.local")
    command = app_command("o'brien; rm -rf /", None, ["--speed", "2"], python="py")
    assert command == "py -m mes.cli dashboard --operator 'o'\"'\"'brien; rm -rf /' --speed 2"


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed")
async def test_a_browser_logs_in_sees_the_plant_and_a_key_acts(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'mes.db'}"
    store = Store.open(url)
    register(store, ["press-1"])
    (port,) = free_ports(1)
    env = {**os.environ, "MES_DASHBOARD_PASSWORD": "s3cret", "TERM": "xterm-256color"}
    server = await asyncio.create_subprocess_exec(
        *mes_command("dashboard", "--web", "--db", url, "--port", str(port)),
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(30), aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(f"{base}/", allow_redirects=False) as response:
                        assert response.status == 302  # to the login
                        assert response.headers["Location"] == "/login"
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.2)  # the server is starting
            async with http.get(f"{base}/ws") as response:
                assert response.status == 401
        async with asyncio.timeout(90), browser() as page:
            await page.call("Page.navigate", url=f"{base}/")
            await poll(partial(page.evaluate, "!!document.querySelector('input[name=operator]')"))
            await page.evaluate(
                "document.querySelector('input[name=operator]').value = 'bob';"
                "document.querySelector('input[name=password]').value = 's3cret';"
                "document.querySelector('form').submit()"
            )
            text = str(await poll(partial(shows, page, "press-1", "Plant", "Hold cell")))
            assert "OFFLINE" in text
            await page.evaluate("document.querySelector('.xterm-helper-textarea').focus()")
            await page.key("h", "KeyH", 72)
            await poll(partial(shows, page, "Hold cell press-1?"))
            await page.key("\r", "Enter", 13)
            await poll(partial(asyncio.to_thread, requests, store))
        (row,) = requests(store)
        assert (row["action"], row["target"], row["actor"], row["source"]) == (
            "cell.hold",
            "press-1",
            "bob",
            "dashboard",
        )
    finally:
        server.terminate()
        await server.wait()
        store.close()


async def shows(page, *words: str) -> str:
    """The terminal's text if it shows every word, else ""."""
    text = await page.terminal_text()
    return text if all(w in text for w in words) else ""
