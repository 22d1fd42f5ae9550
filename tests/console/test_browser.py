"""The status page in a real headless Chromium (Debian's package), driven over the DevTools
protocol: it loads, shows the replayed scenario's numbers (worked out in ``test_api.py``),
updates by itself when events arrive and when an alert fires, and passes basic accessibility
checks (labels, text for colour, WCAG AA contrast). Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest_services import unavailable
from tests.console.helpers import TOKEN, running_console
from tests.support import T0, Stream

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TIMEOUT = 60.0
"""Seconds for Chromium to start and for the page to show a value (a loaded 2-core machine)."""
ACK_TIME = "2026-03-02T09:01:40Z"
"""The alerts' clock when the page acknowledges: the engine's, T0 + 100 s."""
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)

CONTRAST = """(() => {
  function rgb(s) { const m = s.match(/[\\d.]+/g).map(Number); return m; }
  function lum(c) {
    const [r, g, b] = c.slice(0, 3).map((v) => { v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  function background(el) {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  }
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.data.trim());
    if (!el.offsetParent || !text) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push(el.textContent.trim().slice(0, 30) + " " + ratio.toFixed(2));
  }
  return bad;
})()"""


class Tab:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        await self._ws.send_json({"id": ident, "method": method, "params": params})
        async for message in self._ws:
            data = json.loads(message.data)
            if data.get("id") == ident:
                if "error" in data:
                    raise AssertionError(f"{method}: {data['error']}")
                result: dict[str, Any] = data["result"]
                return result
        raise AssertionError("DevTools connection closed")

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, expected: object) -> None:
        deadline = time.monotonic() + TIMEOUT
        last = None
        while time.monotonic() < deadline:
            last = await self.evaluate(expression)
            if last == expected:
                return
            await asyncio.sleep(0.25)
        raise AssertionError(f"{expression} is {last!r}, not {expected!r} after {TIMEOUT} s")

    async def screenshot(self, name: str) -> Path:
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Tab]:
    binary = shutil.which("chromium")
    if binary is None:
        unavailable("chromium is not installed (deploy/local/install.sh installs it)")
    process = await asyncio.create_subprocess_exec(
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not port_file.exists() or not port_file.read_text().strip():
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            assert process.returncode is None, f"chromium exited with {process.returncode}"
            await asyncio.sleep(0.2)
        port = port_file.read_text().split()[0]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            (page,) = [t for t in targets if t["type"] == "page"]
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Tab(ws)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def _tile(channel: str, tile: str) -> str:
    return (
        f'document.querySelector(\'[data-channel="{channel}"] [data-tile="{tile}"] .value\')'
        "?.textContent ?? null"
    )


async def test_status_page_in_chromium(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    async with running_console(state, refresh_seconds=1) as run, chromium(tmp_path / "p") as tab:
        await tab.call("Page.enable")
        await tab.call(
            "Emulation.setDeviceMetricsOverride",
            width=1920,
            height=1080,
            deviceScaleFactor=1,
            mobile=False,
        )
        await tab.call("Page.navigate", url=run.base + "/")
        # the scenario's numbers (see test_api.py)
        await tab.wait_for(_tile("voice", "waiting"), "1")
        await tab.wait_for(_tile("voice", "oldest"), "80 s")
        await tab.wait_for(_tile("voice", "sl-5m"), "50.0%")
        await tab.wait_for(_tile("voice", "abandoned-5m"), "1")
        await tab.wait_for(_tile("voice", "csat-5m"), "50.0%")
        await tab.wait_for(_tile("voice", "complaints-5m"), "1")
        await tab.wait_for(_tile("email", "tickets-open"), "1")
        # colour always has text: below the 80% target says so
        note = (
            'document.querySelector(\'[data-channel="voice"] [data-tile="sl-5m"] .note\')'
            ".textContent"
        )
        assert await tab.evaluate(note) == "target 80.0%: BELOW"
        ratings = (
            'document.querySelector(\'[data-channel="voice"] [data-tile="csat-5m"] .note\')'
            ".textContent"
        )
        assert await tab.evaluate(ratings) == "2 ratings"
        updated = await tab.evaluate("document.getElementById('updated').textContent")
        assert re.fullmatch(r"Updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(every 1 s\)", updated), (
            updated
        )
        assert await tab.evaluate("document.querySelector('[data-empty=\"alerts\"]') !== null")
        await tab.screenshot("console-wall.png")

        # it updates by itself: a new contact queues, an alert fires
        stream = Stream()
        stream.add("contact.queued", 100, "voice", contact_id="c4", queue="tech", event_id="q4")
        run.feed(*stream.lines)
        await tab.wait_for(_tile("voice", "waiting"), "2")
        fp = run.fire(100)
        await tab.wait_for(
            f"document.querySelector('[data-alert=\"{fp}\"] strong')?.textContent ?? null",
            "LongWait",
        )
        await tab.wait_for(
            "document.querySelector('#timeline li')?.textContent ?? null",
            "2026-03-02T09:01:40Z LongWait voice: inactive → firing",
        )

        # acknowledge from the page: name and token in the form, then the button
        await tab.evaluate(
            "document.getElementById('who').value = 'Ana';"
            f"document.getElementById('token').value = '{TOKEN}';"
            "document.querySelector('#access-form button').click();"
            f"document.querySelector('[data-ack=\"{fp}\"]').click(); true"
        )
        await tab.wait_for(
            f"document.querySelector('[data-alert=\"{fp}\"] td:last-child')?.textContent",
            f"acknowledged by Ana at {ACK_TIME}",
        )
        acks = [(a.by, a.via) for a in run.console_store.acks.values()]
        assert acks == [("Ana", "page")]

        # accessibility basics: a language, every control labelled, enough contrast
        assert await tab.evaluate("document.documentElement.lang") == "en"
        unlabelled = await tab.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden]), textarea')]"
            ".filter((e) => !e.closest('label')).length"
        )
        assert unlabelled == 0
        assert await tab.evaluate(CONTRAST) == []
        await tab.screenshot("console-alert.png")

        # a phone: one column, nothing wider than the screen
        await tab.call(
            "Emulation.setDeviceMetricsOverride",
            width=390,
            height=844,
            deviceScaleFactor=2,
            mobile=True,
        )
        await tab.wait_for("document.documentElement.scrollWidth <= 390 ? 'fits' : 'wider'", "fits")
        await tab.screenshot("console-phone.png")
    assert (ARTIFACTS / "console-phone.png").stat().st_size > 1000


async def test_tickets_at_risk_tile_counts_next_reply(tmp_path: Path) -> None:
    # the page added first response and resolution only; next reply counts too (as on the
    # wall board and in the TicketsAtRisk alert)
    state = tmp_path / "state"
    state.mkdir()
    email = {
        "first_response_seconds": 3600,
        "next_reply_seconds": 90,
        "next_reply_warning_seconds": 60,
        "resolution_seconds": 86400,
        "queues": ["default"],
    }
    channels = {"voice": {"answer_seconds": 20, "queues": ["billing", "tech"]}, "email": email}
    stream = Stream()
    stream.add("ticket.responded", 100, "email", ticket_id="t1", event_id="r1")
    stream.add("ticket.customer_replied", 101, "email", ticket_id="t1", event_id="c1")
    async with (
        running_console(state, refresh_seconds=1, config={"channels": channels}) as run,
        chromium(tmp_path / "p") as tab,
    ):
        run.feed(*stream.lines)
        run.engine.flush(T0 + 140)  # t1's next reply is due at 191, at risk from 131
        assert run.engine.channels["email"].queues["default"].at_risk[1] == 1
        await tab.call("Page.enable")
        await tab.call("Page.navigate", url=run.base + "/")
        await tab.wait_for(_tile("email", "tickets-at-risk"), "1")
        note = (
            'document.querySelector(\'[data-channel="email"] [data-tile="tickets-at-risk"]'
            " .note').textContent"
        )
        assert await tab.evaluate(note) == "first response 0, next reply 1, resolution 0"


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
