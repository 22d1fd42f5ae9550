"""Config reload: applied on file change and SIGHUP; refused reloads keep the running config."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import structlog
import structlog.testing
import yaml

from support_monitor.alerts.runtime import Alerting
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import decode
from support_monitor.monitor.reload import Reloader, single_engine
from support_monitor.monitor.stats import DaemonStats
from tests.processes import free_port
from tests.support import CONFIG, T0, iso


def _reloader(tmp_path: Path) -> tuple[Reloader, Engine, Alerting]:
    settings = parse_settings(CONFIG)
    engine = Engine(settings)
    stats = DaemonStats()
    alerting = Alerting(settings.detectors, settings.alerts, settings.notifiers, engine, stats)
    return (
        Reloader(tmp_path / "c.yaml", settings, single_engine(engine, alerting)),
        engine,
        alerting,
    )


def test_a_reload_that_fails_unexpectedly_is_refused_and_shows_no_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, only ConfigError was caught: an unexpected error ended the supervisor's task group.
    reloader, _, alerting = _reloader(tmp_path)
    rules = alerting.rules

    def broken(path: Path | None) -> None:
        raise ValueError(f"invalid literal for int() with base 10: 'SECRETreload1' in {path}")

    monkeypatch.setattr("support_monitor.monitor.reload.load_settings", broken)
    with structlog.testing.capture_logs() as logs:
        asyncio.run(reloader._attempt("test"))
    assert [(e["event"], e["error"]) for e in logs] == [
        ("config_reload_refused", "the config could not be read (ValueError)")
    ]
    assert "SECRET" not in repr(logs)
    assert alerting.rules is rules  # the running config stays


def test_a_reload_whose_rules_fail_to_build_rolls_the_engine_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, only RestartNeeded was caught around applying: a defect in building the new rules
    # ended the task group (the daemon), with the engine already on the new thresholds.
    reloader, engine, _ = _reloader(tmp_path)
    real = Alerting.reconfigure
    calls: list[object] = []

    def broken(self: Alerting, detectors: object, alerts: object) -> None:
        calls.append(detectors)
        if len(calls) == 1:
            raise KeyError("SECRETreload2")
        real(self, detectors, alerts)  # type: ignore[arg-type]

    monkeypatch.setattr(Alerting, "reconfigure", broken)
    data = json.loads(json.dumps(CONFIG))
    data["channels"]["voice"]["answer_seconds"] = 30
    before = reloader.settings
    with structlog.testing.capture_logs() as logs:
        why = reloader.reload(parse_settings(data))
    assert why == "applying it failed (KeyError); the running config is kept"
    assert [e["event"] for e in logs] == ["config_reload_failed"]
    assert logs[0]["where"] == f"{__file__}:{broken.__code__.co_firstlineno + 3}"  # its raise
    assert "SECRET" not in repr(logs)
    assert reloader.settings is before
    assert engine.channels["voice"].settings.answer_seconds == 20  # rolled back
    assert len(calls) == 2  # the running config applied again


def test_a_reload_of_channel_settings_alone_reaches_the_detectors(tmp_path: Path) -> None:
    """A new T with the detectors block unchanged: the engine judges breaches by it and so do
    the detectors (each takes its channels' T, target and concurrency when the suite is
    built), and what they learnt is kept. Before, the suite kept the old T: the backlog
    detector went on projecting breaches against 20 s."""
    reloader, engine, alerting = _reloader(tmp_path)
    queued = {"type": "contact.queued", "channel": "voice", "queue": "billing", "ts": iso(T0)}
    event = decode(json.dumps({**queued, "event_id": "e1", "contact_id": "c1"}), 4096)
    assert engine.apply(event, T0) is None
    data = json.loads(json.dumps(CONFIG))
    data["channels"]["voice"]["answer_seconds"] = 40
    learnt = alerting.suite.export_state()
    with structlog.testing.capture_logs() as logs:
        assert reloader.reload(parse_settings(data)) is None
    assert "detector_state_dropped" not in [e["event"] for e in logs]
    assert engine.channels["voice"].settings.answer_seconds == 40
    assert alerting.suite.export_state() == learnt  # nothing learnt was dropped
    engine.advance(T0 + 1)
    (backlog,) = [
        s
        for s in alerting.suite.evaluate(engine, T0 + 1)
        if s.detector == "backlog_growth" and s.channel == "voice"
    ]
    assert backlog.threshold == 20  # the breach horizon, T / 2
    assert backlog.summary.endswith("(answer target 40s)")


def test_an_empty_file_is_not_reloaded(tmp_path: Path) -> None:
    # Before, a file caught between truncate and write reloaded every default for a moment.
    reloader, _, alerting = _reloader(tmp_path)
    rules = alerting.rules
    (tmp_path / "c.yaml").write_text("")
    with structlog.testing.capture_logs() as logs:
        asyncio.run(reloader._attempt("test"))
    assert [(e["event"], e["error"]) for e in logs] == [
        (
            "config_reload_refused",
            "the file is empty (still being written?): the running config is kept",
        )
    ]
    assert alerting.rules is rules


def test_a_fifo_or_device_in_place_of_the_file_is_refused_as_not_a_regular_file(
    tmp_path: Path,
) -> None:
    # Before, its size of 0 read as "the file is empty (still being written?)".
    reloader, _, alerting = _reloader(tmp_path)
    rules = alerting.rules
    os.mkfifo(tmp_path / "c.yaml")
    with structlog.testing.capture_logs() as logs:
        asyncio.run(reloader._attempt("test"))
    (tmp_path / "c.yaml").unlink()
    (tmp_path / "c.yaml").symlink_to("/dev/zero")
    with structlog.testing.capture_logs() as more:
        asyncio.run(reloader._attempt("test"))
    for entry in (*logs, *more):
        assert entry["event"] == "config_reload_refused"
        assert "not a regular file" in entry["error"], entry
    assert len(logs) == len(more) == 1
    assert alerting.rules is rules


def test_threshold_and_rule_changes_apply_and_rules_keep_their_state(tmp_path: Path) -> None:
    reloader, engine, alerting = _reloader(tmp_path)
    kept = alerting.rules[0].state.active
    data = json.loads(json.dumps(CONFIG))
    data["channels"]["voice"]["answer_seconds"] = 30
    assert reloader.reload(parse_settings(data)) is None
    assert engine.channels["voice"].settings.answer_seconds == 30
    assert alerting.rules[0].state.active is kept


def test_restart_only_changes_are_refused(tmp_path: Path) -> None:
    reloader, engine, _ = _reloader(tmp_path)
    before = reloader.settings
    why = reloader.reload(parse_settings({**CONFIG, "exporter": {"listen": "0.0.0.0:1"}}))
    assert why == "exporter changed: restart the daemon to apply it"
    why = reloader.reload(parse_settings({**CONFIG, "windows": ["1m"]}))
    assert why == "windows changed: restart the daemon to apply it"
    assert reloader.settings is before
    assert engine.settings is before


class _Lines:
    """Collects a process's stderr lines in a thread (no blocking reads in the test body)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stderr is not None
        stream = proc.stderr
        self._thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._thread.start()

    def wait_for(self, needle: str, count: int = 1, timeout: float = 15) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in list(self.lines) if needle in line]
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} x{count} not logged; got: {self.lines[-5:]}")


def test_running_daemon_reloads_on_change_and_sighup_and_survives_a_bad_file(
    tmp_path: Path,
) -> None:
    port = free_port()
    path = tmp_path / "c.yaml"
    data = {**json.loads(json.dumps(CONFIG)), "sources": {"simulator": {"speed": 10}}}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "run",
            "--config",
            str(path),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = _Lines(proc)
    try:
        log.wait_for('"daemon_started"')
        assert '"reason": "start"' in log.wait_for('"gc_frozen"')[0]  # before daemon_started
        data["channels"]["voice"]["answer_seconds"] = 25
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        assert '"trigger": "file_changed"' in log.wait_for('"config_reloaded"')[0]
        # the heap is frozen again once the new rules are in (a refused reload does not)
        assert '"reason": "config_reload"' in log.wait_for('"gc_frozen"', count=2)[1]
        path.write_text("channels: {voice: {answer_seconds: -3}}\n", encoding="utf-8")
        refused = log.wait_for('"config_reload_refused"')[0]
        assert "channels.voice.answer_seconds" in refused
        proc.send_signal(signal.SIGHUP)
        assert len(log.wait_for('"config_reload_refused"', count=2)) == 2
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        log.wait_for('"config_reloaded"', count=2)
        assert len(log.wait_for('"gc_frozen"', count=3)) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert proc.returncode == 0


def _blocks_sighup(pid: int) -> bool:
    """Whether the process blocks SIGHUP now (``SigBlk`` of /proc/PID/status, bit 0)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            return bool(int(line.split()[1], 16) & 1 << (signal.SIGHUP - 1))
    return False


def test_sighup_without_a_config_or_during_start_up_leaves_the_daemon_running(
    tmp_path: Path,
) -> None:
    """Before, SIGHUP killed `run` (exit 129) when it had no --config (no handler at all) and
    during start-up even with one (the handler came with the reload task): audit of
    2026-12-04. Now `run` blocks it from the start, like SIGTERM, and a daemon without a
    config says it has nothing to reload."""
    port = free_port()
    env = {**os.environ, "SUPPORT_MONITOR_LOGGING__FORMAT": "json"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    log = _Lines(proc)
    try:
        deadline = time.monotonic() + 30
        while not _blocks_sighup(proc.pid):
            assert time.monotonic() < deadline, "run never blocked SIGHUP"
            time.sleep(0.005)
        proc.send_signal(signal.SIGHUP)  # start-up: blocked until the handlers are in
        log.wait_for('"daemon_started"')
        log.wait_for('"config_reload_unavailable"')
        proc.send_signal(signal.SIGHUP)
        (_, second) = log.wait_for('"config_reload_unavailable"', count=2)
        assert '"level": "warning"' in second
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert proc.returncode == 0


SIGMASK_AT_LOAD = """
import builtins, signal, sys
from support_monitor.monitor import script

real_import = builtins.__import__

def watch(name, *args, **kwargs):
    if name == "support_monitor.monitor.cli":  # the command line's load: report the mask, stop
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        print(sorted(s.name for s in blocked))
        sys.exit(0)
    return real_import(name, *args, **kwargs)

builtins.__import__ = watch
sys.argv = ["support-monitor", *sys.argv[1:]]
script.main()
"""


@pytest.mark.parametrize(
    ("argv", "blocked"),
    [
        (["run", "--config", "c.yaml"], ["SIGHUP", "SIGINT", "SIGTERM"]),
        (["--version", "run"], ["SIGHUP", "SIGINT", "SIGTERM"]),
        (["replay", "events.jsonl", "--config", "run"], []),
        (["check-config", "run"], []),
        ([], []),
    ],
)
def test_run_blocks_its_signals_before_the_command_line_loads(
    argv: list[str], blocked: list[str]
) -> None:
    """Audit of 2026-12-05: a SIGHUP in `run`'s first 0.2-0.5 s (while the command line's
    modules loaded) ended the daemon with exit code 129, as the default action of SIGHUP does;
    `run` blocked its signals only once its own code began. The console script now blocks them
    for `run` before that load; other commands keep the default actions."""
    proc = subprocess.run(
        [sys.executable, "-c", SIGMASK_AT_LOAD, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.strip() == str(blocked)


def test_a_secret_file_that_holds_another_secret_is_a_restart_not_a_reload(
    tmp_path: Path,
) -> None:
    """A rotated webhook file and SIGHUP logged config_reloaded while the notifiers kept the
    old URL they read at start-up (audit of 2026-12-05): now refused, naming the key, with
    nothing applied; the same file with the same secret reloads."""
    secret = tmp_path / "slack-url"
    secret.write_text("https://hooks.slack.com/services/T0/B0/old\n", encoding="utf-8")
    config = {
        **CONFIG,
        "notifiers": {"receivers": {"pager": {"type": "slack", "webhook_url_file": str(secret)}}},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    settings = parse_settings(config)
    applied: list[object] = []
    reloader = Reloader(path, settings, applied.append)
    asyncio.run(reloader.start())
    changed = {**config, "windows": list(CONFIG["windows"])}  # the same config, written again
    path.write_text(yaml.safe_dump(changed), encoding="utf-8")
    secret.write_text("https://hooks.slack.com/services/T0/B0/old", encoding="utf-8")  # same
    with structlog.testing.capture_logs() as logs:
        asyncio.run(reloader._attempt("sighup"))
    assert [e["event"] for e in logs] == ["config_reloaded"]
    assert len(applied) == 1
    secret.write_text("https://hooks.slack.com/services/T0/B0/new\n", encoding="utf-8")
    with structlog.testing.capture_logs() as logs:
        asyncio.run(reloader._attempt("sighup"))
    assert [(e["event"], e["error"]) for e in logs] == [
        (
            "config_reload_refused",
            (
                "notifiers.receivers.pager.webhook_url_file: the file holds another secret now: "
                "restart the daemon to apply it (the running daemon keeps the one read at "
                "start-up)"
            ),
        )
    ]
    assert len(applied) == 1
    assert "hooks.slack.com" not in repr(logs)
