"""The console script as a user runs it: replay, check-config, schema, simulate."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import CONFIG, Stream, samples

EXE = [sys.executable, "-m", "monitor"]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, check=check, timeout=60)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    return path


def test_check_config_ok_and_errors(config: Path, tmp_path: Path) -> None:
    assert "ok" in cli("check-config", str(config)).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels:\n  voice: {answer_seconds: -1, colour: red}\n", encoding="utf-8")
    result = cli("check-config", str(bad), check=False)
    assert result.returncode == 2
    assert "channels.voice.answer_seconds" in result.stderr
    assert "channels.voice.colour: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_replay_prints_exposition_with_hand_computed_values(config: Path, tmp_path: Path) -> None:
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="a")
    s.add("contact.queued", 1, "voice", queue="billing", contact_id="b")
    s.add("contact.answered", 15, "voice", contact_id="a")
    s.add("contact.abandoned", 3, "voice", contact_id="b")  # 2 s wait: short, within lateness
    s.add("contact.queued", 30, "voice", queue="tech", contact_id="c")
    s.add("ticket.rated", 31, "chat", rating=2)
    events = tmp_path / "events.jsonl"
    events.write_text(s.text() + "garbage line\n", encoding="utf-8")
    out_path = tmp_path / "alerts.jsonl"
    result = cli(
        "replay",
        str(events),
        "--config",
        str(config),
        "--until",
        "2026-03-02T09:01:00Z",
        "--alerts-out",
        str(out_path),
    )
    got = samples(result.stdout)
    vb = (("channel", "voice"), ("queue", "billing"))
    vt = (("channel", "voice"), ("queue", "tech"))
    assert got["support_contacts_answered_in_sla_total", vb] == 1
    assert got["support_contacts_abandoned_short_total", vb] == 1
    assert got["support_sla_breaches_total", (*vt, ("sla", "answer"))] == 1  # 30 s at 09:01:00
    assert got["support_queue_oldest_wait_seconds", vt] == 30
    assert got["support_service_level_ratio", (("channel", "voice"), ("window", "5m"))] == 1.0
    assert math.isnan(got["support_service_level_ratio", (("channel", "chat"), ("window", "5m"))])
    assert got["support_csat_ratio", (("channel", "chat"), ("window", "1h"))] == 0.0
    reason = (("reason", "invalid_json"), ("source", "file"))
    assert got["support_monitor_events_rejected_total", reason] == 1
    assert "events.jsonl:7" in result.stderr  # the bad line, reported with its position
    assert out_path.exists()


def test_replay_without_until_uses_the_last_event_time(config: Path, tmp_path: Path) -> None:
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="a")
    s.add("contact.queued", 25, "voice", queue="tech", contact_id="b")
    events = tmp_path / "e.jsonl"
    events.write_text(s.text(), encoding="utf-8")
    got = samples(cli("replay", str(events), "--config", str(config)).stdout)
    vb = (("channel", "voice"), ("queue", "billing"))
    assert got["support_sla_breaches_total", (*vb, ("sla", "answer"))] == 1
    assert got["support_queue_oldest_wait_seconds", vb] == 25


def test_replay_bad_until_is_a_clear_error(config: Path, tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text("", encoding="utf-8")
    result = cli("replay", str(events), "--config", str(config), "--until", "noon", check=False)
    assert result.returncode == 2
    assert "--until 'noon'" in result.stderr


def test_replay_output_passes_promtool(config: Path, tmp_path: Path, promtool: str) -> None:
    events = tmp_path / "sim.jsonl"
    cli(
        "simulate",
        "--out",
        str(events),
        "--duration",
        "20m",
        "--seed",
        "3",
        "--start",
        "1772442000",
        "--config",
        str(config),
    )
    text = cli("replay", str(events), "--config", str(config)).stdout
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout + check.stderr == ""


def test_schema_is_json() -> None:
    schema = json.loads(cli("schema").stdout)
    assert "$defs" in schema


def test_dashboards_build_writes_the_committed_files(tmp_path: Path) -> None:
    result = cli("dashboards", "build", "--out", str(tmp_path))
    written = sorted(Path(line).name for line in result.stdout.split())
    committed = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
    assert written == sorted(p.name for p in committed.glob("*.json"))
    for name in written:
        assert (tmp_path / name).read_bytes() == (committed / name).read_bytes()
