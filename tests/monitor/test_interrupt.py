"""Ctrl-C ends ``replay`` and ``backtest`` with ``KeyboardInterrupt`` where they can clean up,
whenever it comes (``monitor/interrupt.py``)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from pathlib import Path

import pytest

from support_monitor.monitor.interrupt import run_interruptible
from tests.interrupts import ctrl_c_at_loop_construction, default_sigint
from tests.support import CONFIG, Stream

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / ".venv" / "bin" / "support-monitor")


def test_a_ctrl_c_cancels_the_run_and_is_raised_once_the_loop_is_closed() -> None:
    seen: list[str] = []
    loops: list[asyncio.AbstractEventLoop] = []

    async def work() -> int:
        loops.append(asyncio.get_running_loop())
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs at once, in this thread
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return 1

    with default_sigint(), pytest.raises(KeyboardInterrupt):
        run_interruptible(work)
    assert seen == ["cancelled"]
    assert loops[0].is_closed()


def test_a_ctrl_c_while_the_loop_is_built_ends_the_run_before_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build = asyncio.base_events.BaseEventLoop.__init__
    started: list[bool] = []
    loops: list[asyncio.AbstractEventLoop] = []

    def ctrl_c_then_build(self: asyncio.base_events.BaseEventLoop) -> None:
        loops.append(self)
        os.kill(os.getpid(), signal.SIGINT)
        build(self)

    async def work() -> None:
        started.append(True)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "__init__", ctrl_c_then_build)
    with default_sigint(), pytest.raises(KeyboardInterrupt):
        run_interruptible(work)
    assert started == []
    assert loops[0].is_closed()  # built whole, then closed (half built, it has no _closed)


def test_nothing_is_held_outside_the_main_thread() -> None:
    results: list[object] = []

    async def work() -> int:
        return 7

    thread = threading.Thread(target=lambda: results.append(run_interruptible(work)))
    thread.start()
    thread.join(timeout=30)
    assert results == [7]


def test_replay_ends_quietly_on_a_ctrl_c_while_its_event_loop_is_built(tmp_path: Path) -> None:
    s = Stream()
    for i in range(100):
        s.add("contact.queued", 10 * i, "voice", queue="billing", contact_id=f"c{i}")
    events = tmp_path / "e.jsonl"
    events.write_text(s.text(), encoding="utf-8")
    config = tmp_path / "c.json"  # JSON is YAML
    config.write_text(json.dumps(CONFIG), encoding="utf-8")
    proc = ctrl_c_at_loop_construction(
        [SCRIPT, "replay", str(events), "--config", str(config)], tmp_path / "site"
    )
    assert (proc.returncode, proc.stdout) == (130, "")
    assert "Traceback" not in proc.stderr, proc.stderr
