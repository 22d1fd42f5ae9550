"""``support-monitor backtest``: what would have paged, counted by hand on hand-made files.

The expected numbers below are worked out from the rule semantics (Prometheus' ``for``), the
1 s aligned tick and the event times, not read back from the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from support_monitor.monitor.backtest import Backtest, Row, main, run_backtest
from support_monitor.monitor.config import parse_settings
from tests.interrupts import (
    CTRL_C_WHILE_THE_COMMAND_LINE_LOADS,
    ctrl_c_at_loop_construction,
    default_sigint,
)
from tests.support import T0, Stream, iso

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / ".venv" / "bin" / "support-monitor")


def config(value: float, **extra: Any) -> dict[str, Any]:
    """Voice (T = 20 s) and chat (T = 60 s); one threshold on the oldest wait (> ``value`` s)
    and two rules on it: critical with ``for: 1m``, warning with ``for: 2m``."""
    data: dict[str, Any] = {
        "windows": ["5m", "1h"],
        "channels": {
            "voice": {
                "answer_seconds": 20,
                "short_abandon_seconds": 5,
                "service_level_target": 0.8,
                "queues": ["billing", "tech"],
            },
            "chat": {
                "answer_seconds": 60,
                "short_abandon_seconds": 5,
                "service_level_target": 0.8,
                "queues": ["sales"],
            },
        },
        "detectors": {
            "thresholds": [
                {
                    "name": "wait_high",
                    "metric": "support_queue_oldest_wait_seconds",
                    "op": ">",
                    "value": value,
                }
            ]
        },
        "alerts": {
            "rules": [
                {
                    "alert": "WaitTooLong",
                    "detector": "wait_high",
                    "for": "1m",
                    "severity": "critical",
                },
                {
                    "alert": "WaitTooLong",
                    "detector": "wait_high",
                    "for": "2m",
                    "severity": "warning",
                },
            ]
        },
    }
    data.update(extra)
    return data


def events_file(path: Path) -> Path:
    """Voice: ``a`` waits 0..150 s (billing), ``b`` from 200 s (tech) and is still waiting when
    the file ends at 400 s; chat: ``s`` waits 0..50 s. One line is not JSON."""
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="a")
    s.add("contact.queued", 0, "chat", queue="sales", contact_id="s")
    s.add("contact.answered", 50, "chat", contact_id="s", agent_id="x")
    s.add("contact.answered", 150, "voice", contact_id="a", agent_id="y")
    s.add("contact.queued", 200, "voice", queue="tech", contact_id="b")
    s.add("contact.queued", 400, "voice", queue="billing", contact_id="c")
    path.write_text(s.text() + "this is not json\n", encoding="utf-8")
    return path


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console script, as a user runs it."""
    return subprocess.run(
        [SCRIPT, "backtest", *args], capture_output=True, text=True, check=False, timeout=120
    )


def backtest(path: Path, data: dict[str, Any]) -> Backtest:
    return asyncio.run(run_backtest(path, parse_settings(data), "cfg"))


# With threshold 30 s (ticks every second, a wait is "> 30" from 31 s after queueing):
# voice episode 1: active 31..149 s, cleared at the tick of 150 s (a is answered at 150 s).
#   critical (for 1m): pending 31, firing 91, resolved 150 -> 59 s firing;
#   warning (for 2m): pending 31, dropped at 150 (never fires).
# voice episode 2: b queued at 200 s, active from 231 s until the file ends at 400 s.
#   critical: pending 231, firing 291, still firing at 400 -> 109 s;
#   warning: pending 231, firing 351, still firing at 400 -> 49 s.
# chat: s waits 0..50 s: active 31..49 s, pending for 19 s and dropped: no row.
# Span 0..400 s is under an hour, so pages per day divide by 1/24 day.
CRITICAL_SECONDS = (150 - 91) + (400 - 291)
WARNING_SECONDS = 400 - 351


def test_counts_first_firing_and_minutes_match_the_hand_count(tmp_path: Path) -> None:
    run = backtest(events_file(tmp_path / "e.jsonl"), config(30))
    rows = {r.key: r for r in run.rows}
    assert set(rows) == {("WaitTooLong", "critical", "voice"), ("WaitTooLong", "warning", "voice")}
    critical = rows["WaitTooLong", "critical", "voice"]
    assert critical.firings == 2
    assert critical.first_firing == T0 + 91
    assert critical.seconds_firing == pytest.approx(CRITICAL_SECONDS)  # 168 s
    assert run.pages_per_day(critical) == pytest.approx(2 * 24)
    warning = rows["WaitTooLong", "warning", "voice"]
    assert warning.firings == 1
    assert warning.first_firing == T0 + 351
    assert warning.seconds_firing == pytest.approx(WARNING_SECONDS)
    assert run.pages_per_day(warning) == pytest.approx(24)
    assert (run.first_event, run.last_event) == (T0, T0 + 400)
    assert run.events_applied == 6
    assert run.rejected == {"invalid_json": 1}
    # pending 31, firing 91, resolved 150, pending 231, firing 291 (critical); pending 31,
    # inactive 150, pending 231, firing 351 (warning); pending 31, inactive 50 (chat, twice)
    assert run.transitions == 5 + 4 + 4


NO_WAIT = {"group_wait": "0s", "group_interval": "0s"}


def hook(**route: Any) -> dict[str, Any]:
    """A configured webhook receiver (never contacted by a backtest) and its one route."""
    return {
        "receivers": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/never"}},
        "routes": [{"receiver": "hook", **route}],
    }


def test_messages_follow_the_configured_grouping(tmp_path: Path) -> None:
    """With ``group_wait`` and ``group_interval`` 0, every change of the voice group is a
    message of its own: critical fires (91 s), resolves (150 s), fires again (291 s); the
    warning fires (351 s) and goes out with the critical as context."""
    run = backtest(events_file(tmp_path / "e.jsonl"), config(30, notifiers=hook(**NO_WAIT)))
    assert run.messages == {"new": 3, "repeat": 0, "resolved": 1}
    assert run.receivers == {"hook": 4}
    assert not run.stand_in
    rows = {r.key: r for r in run.rows}
    assert rows["WaitTooLong", "critical", "voice"].paged == 2
    assert rows["WaitTooLong", "warning", "voice"].paged == 1
    # the same file with the default grouping (route without timings): one message, at 121 s
    grouped = backtest(events_file(tmp_path / "e.jsonl"), config(30, notifiers=hook()))
    assert grouped.messages == {"new": 1, "repeat": 0, "resolved": 0}
    assert [r.paged for r in grouped.rows] == [1, 0]


def test_repeats_go_on_across_a_quiet_gap(tmp_path: Path) -> None:
    """Voice ``a`` waits from 0 s and is never answered; the next line comes 3 hours later.
    The critical rule fires at 91 s (a wait > 30 s from 31 s, ``for: 1m``): a new message,
    then a repeat every 10 minutes, at 691, 1291, ..., 10291 s: 17 repeats up to the last line
    at 10,800 s. Before, the replay jumped over the quiet gap once every alert had settled, so
    the repeats inside it were never planned (8 here)."""
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="a")
    s.add("contact.queued", 10_800, "chat", queue="sales", contact_id="s")
    path = tmp_path / "e.jsonl"
    path.write_text(s.text(), encoding="utf-8")
    data = config(30, notifiers=hook(**NO_WAIT))
    data["alerts"]["rules"] = data["alerts"]["rules"][:1]  # the critical one
    data["notifiers"]["receivers"]["hook"]["repeat_interval"] = "10m"
    run = backtest(path, data)
    assert run.messages == {"new": 1, "repeat": 17, "resolved": 0}


def test_an_inhibited_firing_is_counted_and_not_paged(tmp_path: Path) -> None:
    """The warning fires at 351 s while the critical twin fires: inhibited, never in a
    message; the critical's three changes still are."""
    inhibit = {
        "source_matchers": ["severity=critical"],
        "target_matchers": ["severity=warning"],
        "equal": ["alertname", "channel"],
    }
    data = config(30, notifiers=hook(**NO_WAIT))
    data["alerts"]["inhibit_rules"] = [inhibit]
    run = backtest(events_file(tmp_path / "e.jsonl"), data)
    assert run.messages == {"new": 2, "repeat": 0, "resolved": 1}
    warning = {r.key: r for r in run.rows}["WaitTooLong", "warning", "voice"]
    assert (warning.firings, warning.inhibited, warning.paged) == (1, 1, 0)


def test_pages_per_day_divide_by_the_span_or_one_hour() -> None:
    row = Row("A", "warning", "voice", firings=3)
    two_days = Backtest("c", T0, T0 + 2 * 86400, 0, {}, 0, 0, [row])
    assert two_days.pages_per_day(row) == pytest.approx(1.5)
    ten_minutes = Backtest("c", T0, T0 + 600, 0, {}, 0, 0, [row])
    assert ten_minutes.pages_per_day(row) == pytest.approx(72.0)  # 3 / (1/24 day)
    empty = Backtest("c", None, None, 0, {}, 0, 0, [])
    assert empty.span_seconds == 0.0
    assert empty.days == pytest.approx(1 / 24)


def test_console_script_table_against_a_config_that_never_fires(tmp_path: Path) -> None:
    events = events_file(tmp_path / "e.jsonl")
    a = write_config(tmp_path / "a.yaml", config(30))
    b = write_config(tmp_path / "b.yaml", config(300))  # nobody waits 300 s: nothing fires
    result = cli(str(events), "--config", str(a), "--against", str(b))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    table = lines[lines.index("") + 1 :]
    assert table[0].split() == [
        "ALERT", "SEVERITY", "CHANNEL", "FIRINGS", "A", "B", "B-A", "PAGED", "A", "B", "B-A",
        "PAGES/DAY", "A", "B", "B-A", "MIN", "FIRING", "A", "B", "B-A", "FIRST", "FIRING", "A",
        "FIRST", "FIRING", "B",
    ]  # fmt: skip
    # paged (stand-in receiver, group_wait 30 s, group_interval 5 min): the first critical
    # firing (91 s) goes out at 121 s; the resolve (150 s), the second firing (291 s) and the
    # warning (351 s) wait for 121 + 300 = 421 s, after the file ends at 400 s
    assert [line.split() for line in table[1:]] == [
        ["WaitTooLong", "critical", "voice", "2", "0", "-2", "1", "0", "-1", "48.00", "0.00",
         "-48.00", "2.8", "0.0", "-2.8", "2026-03-02T09:01:31.000Z", "-"],
        ["WaitTooLong", "warning", "voice", "1", "0", "-1", "0", "0", "0", "24.00", "0.00",
         "-24.00", "0.8", "0.0", "-0.8", "2026-03-02T09:05:51.000Z", "-"],
    ]  # fmt: skip
    # the columns line up: every row is as wide as the header up to its last cell
    starts = [line.index("2026-03-02T") for line in table[1:]]
    assert starts == [table[0].index("FIRST FIRING A")] * 2
    assert "1 rejected (invalid_json 1)" in lines[1]
    assert lines[2].split() == [
        "1", "messages", "(new", "1,", "repeat", "0,", "resolved", "0;", "24.00/day)", "to",
        "pager", "1;", "the", "config", "has", "no", "route:", "'pager'", "stands", "in",
    ]  # fmt: skip
    assert lines[4].split()[:3] == ["0", "messages", "(new"]
    assert "e.jsonl:7" in result.stderr  # the bad line, reported with its position
    assert "a.yaml: 1 line rejected (invalid_json 1); not fatal" in result.stderr
    assert "Traceback" not in result.stderr


def test_against_on_a_pipe_runs_both_configs_on_the_same_lines(tmp_path: Path) -> None:
    # Before, the first config read the whole pipe and the second got nothing: "0 events
    # applied", "-48 pages/day", exit 0 (the CLI audit of 2026-12-01).
    events = events_file(tmp_path / "e.jsonl")
    a = write_config(tmp_path / "a.yaml", config(30))
    b = write_config(tmp_path / "b.yaml", config(30))
    command = [SCRIPT, "backtest", "/dev/stdin", "-c", str(a), "--against", str(b)]
    result = subprocess.run(  # a pipe: /dev/stdin of a redirected file could be reopened
        [*command, "--format", "json"],
        input=events.read_bytes(),
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    first, second = json.loads(result.stdout)["runs"]
    assert (first["events_applied"], second["events_applied"]) == (6, 6)
    assert first["alerts"] == second["alerts"]
    assert first["alerts"][0]["firings"] == 2
    assert b"stdin:7" in result.stderr  # the bad line, named after the stream it came from


_DIES = (
    "import multiprocessing.context, os, sys\n"
    "multiprocessing.context.ForkProcess.run = lambda self: os._exit(3)\n"
    "from support_monitor.monitor.cli import main\n"
    "sys.argv[0] = 'support-monitor'\n"
    "main()\n"
)
"""The console script, with a worker process that exits at once without an answer (as an
out-of-memory kill would)."""


def _against(tmp_path: Path, *, cpus: int, dies: bool = False) -> subprocess.CompletedProcess[str]:
    """``backtest --against`` (threshold 30 s against 60 s, JSON) as a fresh process limited
    to ``cpus`` CPUs: the worker is forked from a process with no other threads."""
    events = events_file(tmp_path / "e.jsonl")
    a = write_config(tmp_path / "a.yaml", config(30))
    b = write_config(tmp_path / "b.yaml", config(60))
    args = ["backtest", str(events), "-c", str(a), "--against", str(b), "--format", "json"]
    command = [sys.executable, "-c", _DIES, *args] if dies else [SCRIPT, *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        preexec_fn=lambda: os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cpus])),
    )


needs_two_cpus = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="the worker process runs with two CPUs or more",
)


@needs_two_cpus
def test_against_in_a_worker_process_gives_what_one_process_gives(tmp_path: Path) -> None:
    alone = _against(tmp_path, cpus=1)
    parallel = _against(tmp_path, cpus=2)
    assert (alone.returncode, parallel.returncode) == (0, 0), parallel.stderr
    assert parallel.stdout == alone.stdout
    first, second = json.loads(parallel.stdout)["runs"]
    # threshold 60 s: "> 60" from 61 s after queueing. a (0..150 s): critical pending 61,
    # firing 121, resolved 150; warning dropped at 150. b (200 s..): critical firing 321,
    # warning 381, both still firing at 400 s.
    rows = {(r["alertname"], r["severity"]): r for r in second["alerts"]}
    assert rows["WaitTooLong", "critical"]["firings"] == 2
    assert rows["WaitTooLong", "critical"]["minutes_firing"] == pytest.approx(
        ((150 - 121) + (400 - 321)) / 60, abs=0.05
    )
    assert rows["WaitTooLong", "warning"]["firings"] == 1
    assert rows["WaitTooLong", "warning"]["minutes_firing"] == pytest.approx(19 / 60, abs=0.05)
    assert {(r["alertname"], r["severity"]): r["firings"] for r in first["alerts"]} == {
        ("WaitTooLong", "critical"): 2,
        ("WaitTooLong", "warning"): 1,
    }


@needs_two_cpus
def test_a_worker_that_dies_is_logged_and_its_config_runs_here(tmp_path: Path) -> None:
    alone = _against(tmp_path, cpus=1, dies=True)  # one CPU: no worker, nothing lost
    lost = _against(tmp_path, cpus=2, dies=True)
    assert (alone.returncode, lost.returncode) == (0, 0), lost.stderr
    assert lost.stdout == alone.stdout
    assert "backtest_worker_lost" not in alone.stderr
    lines = [json.loads(x) for x in lost.stderr.splitlines() if "backtest_worker_lost" in x]
    assert [(x["level"], x["exitcode"]) for x in lines] == [("warning", 3)]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(child) for child in path.read_text().split()]
    return []


def waiting_voice(path: Path, contacts: int, wait: float = 25) -> Path:
    """A voice customer queued every 10 s, each answered ``wait`` seconds later."""
    s = Stream()
    for i in range(contacts):
        s.add("contact.queued", 10 * i, "voice", queue="billing", contact_id=f"c{i}")
        s.add("contact.answered", 10 * i + wait, "voice", contact_id=f"c{i}", agent_id="x")
    path.write_text(s.text(), encoding="utf-8")
    return path


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_ctrl_c_ends_an_against_run_and_its_worker(tmp_path: Path) -> None:
    events = waiting_voice(tmp_path / "e.jsonl", 2160)  # 6 hours: a run of some seconds
    a = write_config(tmp_path / "a.yaml", config(30))
    b = write_config(tmp_path / "b.yaml", config(60))
    with default_sigint():
        proc = subprocess.Popen(
            [SCRIPT, "backtest", str(events), "-c", str(a), "--against", str(b)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    try:
        deadline = time.monotonic() + 60
        while not (workers := _children(proc.pid)) and time.monotonic() < deadline:
            assert proc.poll() is None, "the backtest ended before its worker was seen"
            time.sleep(0.02)
        assert workers, "no worker process"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


@needs_two_cpus
def test_ctrl_c_while_the_event_loop_is_built_ends_the_run_quietly(tmp_path: Path) -> None:
    """The moment at which a Ctrl-C once left the event loop half built (a traceback from
    its ``__del__``): the Ctrl-C is sent from inside the loop's construction."""
    events = waiting_voice(tmp_path / "e.jsonl", 100)
    a = write_config(tmp_path / "a.yaml", config(30))
    b = write_config(tmp_path / "b.yaml", config(60))
    proc = ctrl_c_at_loop_construction(
        [SCRIPT, "backtest", str(events), "-c", str(a), "--against", str(b)], tmp_path / "site"
    )
    assert (proc.returncode, proc.stdout) == (130, "")
    assert "Traceback" not in proc.stderr, proc.stderr


def test_ctrl_c_while_the_command_line_loads_ends_the_run_quietly(tmp_path: Path) -> None:
    """A Ctrl-C in the first quarter second, while the console script imports its modules,
    once ended the process with a ``KeyboardInterrupt`` traceback."""
    events = waiting_voice(tmp_path / "e.jsonl", 100)
    a = write_config(tmp_path / "a.yaml", config(30))
    proc = ctrl_c_at_loop_construction(
        [SCRIPT, "backtest", str(events), "-c", str(a), "--against", str(a)],
        tmp_path / "site",
        CTRL_C_WHILE_THE_COMMAND_LINE_LOADS,
    )
    assert (proc.returncode, proc.stdout) == (130, "")
    assert "Traceback" not in proc.stderr, proc.stderr


def test_against_runs_from_a_thread_other_than_the_main_one(tmp_path: Path) -> None:
    """Only the main thread may set a SIGINT handler: elsewhere the run holds none."""
    events = waiting_voice(tmp_path / "e.jsonl", 20, wait=45)
    settings = parse_settings(config(30))
    out, err = io.StringIO(), io.StringIO()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(
            main(events, [("a", settings), ("b", settings)], "json", out, err)
        )
    )
    thread.start()
    thread.join(timeout=120)
    assert codes == [0], err.getvalue()
    runs = json.loads(out.getvalue())["runs"]
    assert [(run["config"], run["events_applied"]) for run in runs] == [("a", 40), ("b", 40)]


def test_a_copy_that_cannot_be_written_is_said_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")

    @contextlib.contextmanager
    def unusable(prefix: str) -> Iterator[str]:
        yield str(blocker)  # the copy goes "into" a file: ENOTDIR, as a full disk fails a write

    monkeypatch.setattr(tempfile, "TemporaryDirectory", unusable)
    settings = parse_settings(config(30))
    read, write = os.pipe()
    os.close(write)  # an empty pipe: not a regular file, so it is copied first
    out, err = io.StringIO(), io.StringIO()
    try:
        code = main(Path(f"/dev/fd/{read}"), [("a", settings), ("b", settings)], "table", out, err)
    finally:
        os.close(read)
    assert code == 1
    assert err.getvalue() == (
        f"error: cannot keep a copy of /dev/fd/{read} for --against: {blocker}/{read}: "
        "Not a directory\n"
    )
    assert out.getvalue() == ""


def test_json_shape_and_diff_with_rows_on_one_side_only(tmp_path: Path) -> None:
    events = events_file(tmp_path / "e.jsonl")
    a = write_config(tmp_path / "a.yaml", config(30))
    # threshold 100 s: voice active from 301 s (b); critical fires at 361 s, firing 39 s to the
    # end; warning would fire at 421 s, after the file ends: it is a row of A only.
    b = write_config(tmp_path / "b.yaml", config(100))
    result = cli(str(events), "-c", str(a), "--against", str(b), "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"events_file", "runs", "diff"}
    assert doc["events_file"] == str(events)
    run_keys = {
        "config", "first_event", "last_event", "span_seconds", "days", "events_applied",
        "events_rejected", "rejected", "duplicates", "transitions", "messages", "receivers",
        "stand_in_receiver", "alerts",
    }  # fmt: skip
    assert [set(run) for run in doc["runs"]] == [run_keys, run_keys]
    first, second = doc["runs"]
    assert first["config"] == str(a)
    assert first["first_event"] == "2026-03-02T09:00:00.000Z"
    assert first["last_event"] == "2026-03-02T09:06:40.000Z"
    assert first["span_seconds"] == 400.0
    assert first["days"] == pytest.approx(1 / 24)
    assert (first["events_applied"], first["events_rejected"]) == (6, 1)
    assert first["rejected"] == {"invalid_json": 1}
    # one message in 400 s (see the table test): 24 a day over the one-hour floor
    assert first["messages"] == {
        "new": 1, "repeat": 0, "resolved": 0, "total": 1, "per_day": pytest.approx(24.0)
    }  # fmt: skip
    assert (first["receivers"], first["stand_in_receiver"]) == ({"pager": 1}, True)
    assert first["alerts"][0] == {
        "alertname": "WaitTooLong",
        "severity": "critical",
        "channel": "voice",
        "firings": 2,
        "paged": 1,
        "inhibited": 0,
        "pages_per_day": pytest.approx(48.0),
        "minutes_firing": pytest.approx(CRITICAL_SECONDS / 60),
        "first_firing": "2026-03-02T09:01:31.000Z",
    }
    assert second["alerts"] == [
        {
            "alertname": "WaitTooLong",
            "severity": "critical",
            "channel": "voice",
            "firings": 1,
            "paged": 1,  # fired at 361 s, sent at 391 s
            "inhibited": 0,
            "pages_per_day": pytest.approx(24.0),
            "minutes_firing": pytest.approx(39 / 60),
            "first_firing": "2026-03-02T09:06:01.000Z",
        }
    ]
    critical, warning = doc["diff"]
    assert critical["firings"] == {"config": 2, "against": 1, "change": -1}
    assert critical["paged"] == {"config": 1, "against": 1, "change": 0}
    assert critical["inhibited"] == {"config": 0, "against": 0, "change": 0}
    assert critical["minutes_firing"]["change"] == pytest.approx((39 - CRITICAL_SECONDS) / 60)
    assert critical["first_firing"] == {
        "config": "2026-03-02T09:01:31.000Z",
        "against": "2026-03-02T09:06:01.000Z",
    }
    assert (warning["alertname"], warning["severity"]) == ("WaitTooLong", "warning")
    assert warning["firings"] == {"config": 1, "against": 0, "change": -1}
    assert warning["pages_per_day"] == {"config": 24.0, "against": 0.0, "change": -24.0}
    assert warning["first_firing"] == {"config": "2026-03-02T09:05:51.000Z", "against": None}
    single = json.loads(cli(str(events), "-c", str(a), "--format", "json").stdout)
    assert single["diff"] is None
    assert single["runs"] == [first]


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP endpoint standing in for a webhook receiver and Alertmanager; it records
    the path of every request."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:
            self.do_POST()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


SECRET = "s3cret-token-backtest-4711"


def test_writes_nothing_where_a_daemon_keeps_state_and_sends_nothing(
    tmp_path: Path, receiver: tuple[str, list[str]]
) -> None:
    url, requests = receiver
    daemon = tmp_path / "daemon"
    daemon.mkdir()
    data = config(
        30,
        dead_letter={"path": str(daemon / "dead" / "letters.jsonl")},
        state={"dir": str(daemon / "snapshot")},
        notifiers={
            "state_dir": str(daemon / "notifiers"),
            "receivers": {"hook": {"type": "webhook", "url": f"{url}/hook?token={SECRET}"}},
            "routes": [{"receiver": "hook"}],
            "alertmanager": {"urls": [url.replace("//", f"//am:{SECRET}@")]},
        },
    )
    cfg = write_config(tmp_path / "prod.yaml", data)
    events = events_file(tmp_path / "e.jsonl")
    result = cli(str(events), "--config", str(cfg), "--against", str(cfg))
    assert result.returncode == 0, result.stderr
    assert "WaitTooLong  critical  voice" in result.stdout  # it did fire (and bad lines came)
    assert sorted(daemon.rglob("*")) == []
    assert requests == []
    assert SECRET not in result.stdout + result.stderr
    # the check can fail: a replay asked to keep its dead letters there writes them (in a
    # directory that is there: replay creates none)
    (daemon / "dead").mkdir(parents=True)
    subprocess.run(
        [
            SCRIPT,
            "replay",
            str(events),
            "--config",
            str(cfg),
            "--dead-letters",
            str(daemon / "dead" / "letters.jsonl"),
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert (daemon / "dead" / "letters.jsonl").exists()


def test_exit_codes(tmp_path: Path) -> None:
    events = events_file(tmp_path / "e.jsonl")
    good = write_config(tmp_path / "good.yaml", config(30))
    bad = write_config(tmp_path / "bad.yaml", config(30, alerts={"rules": [{"alert": "X"}]}))
    result = cli(str(events), "--config", str(good), "--against", str(bad))
    assert result.returncode == 2
    assert "alerts.rules[0].detector" in result.stderr
    assert result.stdout == ""
    missing = cli(str(tmp_path / "missing.jsonl"), "--config", str(good))
    assert missing.returncode == 1
    assert "cannot read" in missing.stderr
    assert "missing.jsonl" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert cli(str(tmp_path), "--config", str(good)).returncode == 1  # a directory
    # both configs bad: the errors of each (only the first config's, before)
    other = write_config(tmp_path / "other.yaml", config(30, windows="5m"))
    both = cli(str(events), "--config", str(bad), "--against", str(other))
    assert both.returncode == 2
    firsts = [line for line in both.stderr.splitlines() if line.startswith("config error: ")]
    assert [line.split(": ")[1] for line in firsts] == [str(bad), str(other)]
    bad_format = cli(str(events), "--config", str(good), "--format", "xml")
    assert bad_format.returncode == 2
    assert "--format 'xml'" in bad_format.stderr


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run as another user (root reads any file)",
)
def test_an_events_file_without_read_permission_exits_1() -> None:
    """docs/backtest.md: exit 1, ``error: cannot read FILE: <reason>``; the argument parser's
    own readability check made it a usage error, exit 2 (audit of 2026-12-04). Run as user
    nobody, in a directory of its own that nobody may enter (pytest's are private)."""
    with tempfile.TemporaryDirectory(prefix="sm-unreadable-") as name:
        folder = Path(name)
        folder.chmod(0o755)
        events = events_file(folder / "e.jsonl")
        events.chmod(0o000)
        good = write_config(folder / "good.yaml", config(30))
        good.chmod(0o644)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        result = subprocess.run(
            [*nobody, SCRIPT, "backtest", str(events), "--config", str(good)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == f"error: cannot read {events}: Permission denied"


def test_agrees_with_replay_alerts_out_on_the_simulator(tmp_path: Path) -> None:
    """The same road: the firings and firing time per row equal what ``replay --alerts-out``
    records on a simulated 30 minutes (queue surge at 5 min) with the default rules."""
    events = tmp_path / "sim.jsonl"
    cfg = tmp_path / "default.yaml"
    cfg.write_text("{}\n", encoding="utf-8")
    subprocess.run(
        [SCRIPT, "simulate", "--out", str(events), "--duration", "30m", "--start", str(T0)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    alerts = tmp_path / "alerts.jsonl"
    subprocess.run(
        [SCRIPT, "replay", str(events), "-c", str(cfg), "--alerts-out", str(alerts)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    firings: Counter[tuple[str, str, str]] = Counter()
    firing_since: dict[str, float] = {}
    seconds: defaultdict[tuple[str, str, str], float] = defaultdict(float)
    first: dict[tuple[str, str, str], str] = {}
    end = max(
        datetime.fromisoformat(json.loads(line)["ts"]).timestamp()
        for line in events.read_text(encoding="utf-8").splitlines()
    )
    records = [json.loads(line) for line in alerts.read_text(encoding="utf-8").splitlines()]
    keys = {}
    for r in records:
        key = (r["alertname"], r["labels"]["severity"], r["labels"]["channel"])
        keys[r["fingerprint"]] = key
        if r["state"] == "firing":
            firings[key] += 1
            first.setdefault(key, r["time"])
            firing_since[r["fingerprint"]] = r["ts"]
        elif r["previous"] == "firing":
            seconds[key] += r["ts"] - firing_since.pop(r["fingerprint"])
    for fp, since in firing_since.items():
        seconds[keys[fp]] += end - since
    assert firings, "the simulated surge fires at least one alert"
    result = cli(str(events), "--config", str(cfg), "--format", "json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)["runs"][0]
    assert got["transitions"] == len(records)
    assert {(r["alertname"], r["severity"], r["channel"]): r["firings"] for r in got["alerts"]} == (
        dict(firings)
    )
    for row in got["alerts"]:
        key = (row["alertname"], row["severity"], row["channel"])
        assert row["first_firing"] == first[key]
        assert row["minutes_firing"] == pytest.approx(seconds[key] / 60)


def test_the_span_is_that_of_the_events_applied(tmp_path: Path) -> None:
    settings = parse_settings(config(30, ingest={"max_event_bytes": 1024}))
    s = Stream()
    s.add("contact.queued", 3, "voice", queue="billing", contact_id="a")
    # over max_event_bytes, so the pipeline rejects it whole (too_large): its tail is an
    # event, but not one the span starts at
    too_large = b" " * 2000 + s.lines.pop() + b"\n"
    s.add("contact.queued", 7, "voice", queue="billing", contact_id="b")
    s.add("contact.answered", 9, "voice", contact_id="b")
    # Go's zero time: year 1, out of range (before, it started the span: pages/day 0)
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="z")
    zero = s.lines.pop().replace(iso(T0).encode(), b"0001-01-01T00:00:00Z")
    # an undeclared channel 3 days later is not applied and does not move the replay clock
    # (before, it ended the span: pages/day 72 times too low)
    s.add("contact.queued", 3 * 86400, "fax", contact_id="x")
    path = tmp_path / "e.jsonl"
    path.write_bytes(zero + b"\n" + too_large + b"\n   \n{not json\n" + s.text().encode())
    run = asyncio.run(run_backtest(path, settings, "cfg"))
    assert (run.first_event, run.last_event) == (T0 + 7, T0 + 9)
    assert run.rejected == {
        "invalid_json": 1,
        "timestamp_out_of_range": 1,
        "too_large": 1,
        "unknown_channel": 1,
    }
    (tmp_path / "bad.jsonl").write_bytes(too_large + b"{not json\n")
    nothing = asyncio.run(run_backtest(tmp_path / "bad.jsonl", settings, "cfg"))
    assert (nothing.first_event, nothing.last_event) == (None, None)


def test_the_span_counts_events_held_before_they_applied(tmp_path: Path) -> None:
    """Ticket events after ``ticket.created`` wait for the watermark, and an outcome that comes
    before its contact's ``queued`` waits for it: each counts in the span once it applies.
    (Before, a file ending in such events reported a span ending before them.)"""
    s = Stream()
    s.add("ticket.created", 0, "chat", ticket_id="t1")
    s.add("contact.queued", 60, "voice", queue="billing", contact_id="a")
    s.add("contact.answered", 200, "voice", contact_id="a", agent_id="x")
    s.add("ticket.responded", 3600, "chat", ticket_id="t1", agent_id="x")
    s.add("ticket.solved", 7000, "chat", ticket_id="t1")
    s.add("contact.answered", 7200, "voice", contact_id="b", agent_id="x")  # before its queued
    s.add("contact.queued", 7190, "voice", queue="billing", contact_id="b")
    path = tmp_path / "e.jsonl"
    path.write_text(s.text(), encoding="utf-8")
    run = backtest(path, config(30))
    assert (run.first_event, run.last_event) == (T0, T0 + 7200)
    assert (run.events_applied, run.events_rejected) == (7, 0)
    assert run.days == pytest.approx(1 / 12)  # two hours
    # a waits 60..200 s: "> 30" from 91 s, critical (for 1m) fires at 151 s, once
    rows = {r.key: r for r in run.rows}
    critical = rows["WaitTooLong", "critical", "voice"]
    assert critical.firings == 1
    assert run.pages_per_day(critical) == pytest.approx(12.0)


def test_alerts_firing_at_the_end_count_until_the_replay_clock_stops(tmp_path: Path) -> None:
    """An answer for a contact never queued is refused by the state it meets, yet moves the
    replay clock (events.md): alerts fire and resolve up to there, and one still firing when
    the file ends counts until there too, not only until the last applied event."""
    path = events_file(tmp_path / "e.jsonl")
    s = Stream()
    s.add("contact.answered", 500, "voice", event_id="late", contact_id="never-queued")
    with path.open("a", encoding="utf-8") as out:
        out.write(s.text())
    run = backtest(path, config(30))
    rows = {r.key: r for r in run.rows}
    assert run.last_event == T0 + 400  # the span: the events applied
    # as in the hand count above, with the clock stopping at 500 s instead of 400 s
    critical = rows["WaitTooLong", "critical", "voice"]
    assert critical.seconds_firing == pytest.approx((150 - 91) + (500 - 291))
    warning = rows["WaitTooLong", "warning", "voice"]
    assert warning.seconds_firing == pytest.approx(500 - 351)
