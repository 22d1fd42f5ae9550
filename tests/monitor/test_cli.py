"""The console script as a user runs it: replay, check-config, schema, simulate."""

from __future__ import annotations

import gzip
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from support_monitor.monitor.replay import parse_until
from tests.interrupts import default_sigint
from tests.support import CONFIG, T0, Stream, samples

EXE = [sys.executable, "-m", "support_monitor"]


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


def test_check_config_says_what_a_valid_config_switches_off(tmp_path: Path) -> None:
    """A valid config exits 0; a default rule whose detector is switched off, and a config
    that routes to no one, each get a ``note:`` line (the CsatLow rule is the eighth default)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "detectors:\n  thresholds:\n    - {name: csat_low, enabled: false}\n", encoding="utf-8"
    )
    result = cli("check-config", str(cfg))
    assert result.returncode == 0
    assert result.stdout.splitlines()[1:] == [
        (
            "note: alerts.rules[7] (CsatLow, warning) never fires: its detector 'csat_low' is "
            "disabled"
        ),
        (  # an empty or truncated file ran the simulator's made-up traffic without a word
            "note: sources: no kafka or mqtt source: `run` feeds the built-in simulator's "
            "made-up traffic (sources.simulator)"
        ),
        (
            "note: notifiers: no route and no alertmanager.urls: alerts are evaluated and "
            "exported (/metrics, ALERTS), but nobody is paged"
        ),
    ]
    routed = tmp_path / "routed.yaml"
    routes = (
        "notifiers:\n  receivers:\n    hook: {type: webhook, url: 'http://127.0.0.1:9/x'}\n"
        "  routes:\n    - {receiver: hook}\n"
        "sources:\n  mqtt: {host: 127.0.0.1, topics: [support/events]}\n"
    )
    routed.write_text(routes, encoding="utf-8")
    assert cli("check-config", str(routed)).stdout.splitlines()[1:] == []
    routed.write_text(routes + "  simulator: {enabled: true}\n", encoding="utf-8")
    assert cli("check-config", str(routed)).stdout.splitlines()[1:] == [
        (
            "note: sources.simulator.enabled: the simulator's made-up traffic is mixed with the "
            "real sources"
        )
    ]


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


def test_the_last_tick_judges_what_the_exposition_shows(tmp_path: Path) -> None:
    """A ticket created at 600 s (first response 3600 s, lead 600 s) is at risk from 3600 s;
    ``--until`` exactly then. The deadlines of the last ``allowed_lateness`` (5 s) are decided
    at the end, before the last tick's detectors and rules run: the gauge, the detector and
    the alert agree (before, the gauge said 1 and the detector 0, no alert)."""
    data = json.loads(json.dumps(CONFIG))
    data["detectors"] = {"tickets_at_risk": {"min_count": 1}}
    data["channels"]["email"]["first_response_warning_seconds"] = 600
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    s = Stream()
    s.add("ticket.created", 600, "email", ticket_id="t1")
    events = tmp_path / "e.jsonl"
    events.write_text(s.text(), encoding="utf-8")
    until = datetime.fromtimestamp(T0 + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    got = samples(cli("replay", str(events), "--config", str(config), "--until", until).stdout)
    email = (("channel", "email"),)
    assert (
        got["support_tickets_at_risk", (*email, ("queue", "default"), ("sla", "first_response"))]
        == 1
    )
    assert got["support_detector_score", (*email, ("detector", "tickets_at_risk"))] == 1
    alerts = {labels for name, labels in got if name == "support_alerts"}
    assert any(("alertname", "TicketsAtRisk") in labels for labels in alerts), alerts


def test_replay_bad_until_is_a_clear_error(config: Path, tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text("", encoding="utf-8")
    result = cli("replay", str(events), "--config", str(config), "--until", "noon", check=False)
    assert result.returncode == 2
    assert "--until 'noon'" in result.stderr


@pytest.mark.parametrize("until", ["inf", "-inf", "nan", "1e18", "9999-12-31T23:59:59Z", "-1"])
def test_replay_refuses_an_until_outside_the_years_of_event_times(
    config: Path, tmp_path: Path, until: str
) -> None:
    # ``inf`` skipped the final flush (held outcomes were neither applied nor rejected); a
    # year past 8999 broke every hour-of-week slot
    events = tmp_path / "e.jsonl"
    events.write_text("", encoding="utf-8")
    result = cli("replay", str(events), "--config", str(config), "--until", until, check=False)
    assert result.returncode == 2
    assert f"--until {until!r} is not between 1970 and 8999 (UTC)" in result.stderr


@pytest.mark.parametrize(("after", "code"), [(3600, 0), (3601, 2)])
def test_replay_bounds_until_after_the_last_event_like_an_event_gap(
    tmp_path: Path, after: int, code: int
) -> None:
    # Every hour up to --until is judged as a tick would (the hourly baselines learn it): a
    # --until years after the last event took hours. It is held to ingest.max_replay_gap.
    data = json.loads(json.dumps(CONFIG))
    data["ingest"] = {"max_replay_gap": "1h"}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="a")
    events = tmp_path / "e.jsonl"
    events.write_text(s.text(), encoding="utf-8")
    until = datetime.fromtimestamp(T0 + after, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = cli("replay", str(events), "--config", str(config), "--until", until, check=False)
    assert result.returncode == code
    if code:
        assert result.stdout == ""
        assert result.stderr.startswith(  # the option's problem, not "config error: --until"
            f"--until {until} is 3601 s after the file's last event time (2026-03-02T09:00:00Z): "
            "more than ingest.max_replay_gap (1h)"
        )
    else:
        vb = (("channel", "voice"), ("queue", "billing"))
        assert samples(result.stdout)["support_queue_oldest_wait_seconds", vb] == 3600


def test_replay_never_writes_to_the_file_it_reads(config: Path, tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    original = b"not an event\n"
    events.write_bytes(original)
    # --alerts-out on the input truncated it before it was read
    result = cli(
        "replay", str(events), "--config", str(config), "--alerts-out", str(events), check=False
    )
    assert result.returncode == 2
    assert f"--alerts-out {events} is the replayed file" in result.stderr
    # dead letters appended to the input were read again, rejected again: the file grew forever
    result = cli(
        "replay", str(events), "--config", str(config), "--dead-letters", str(events), check=False
    )
    assert result.returncode == 2
    assert f"--dead-letters {events} is the replayed file" in result.stderr
    assert events.read_bytes() == original
    # elsewhere it holds them, and the exposition counts them (it said 0 before)
    letters = tmp_path / "letters.jsonl"
    got = samples(
        cli("replay", str(events), "--config", str(config), "--dead-letters", str(letters)).stdout
    )
    assert got["support_monitor_dead_letters_total", (("sink", "file"), ("source", "file"))] == 1
    assert [json.loads(line)["raw"] for line in letters.read_text().splitlines()] == [
        "not an event"
    ]


def test_replay_never_writes_to_its_config_or_both_outputs_to_one_file(
    config: Path, tmp_path: Path
) -> None:
    """The alert records once overwrote the config (and the letters were appended to it, so
    the next start failed on its YAML), and both options on one file lost the letters."""
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"not an event\n")
    original = config.read_bytes()
    for option in ("--alerts-out", "--dead-letters"):
        result = cli(
            "replay", str(events), "--config", str(config), option, str(config), check=False
        )
        assert (result.returncode, result.stdout) == (2, "")
        assert f"error: {option} {config} is the config file" in result.stderr
    assert config.read_bytes() == original
    same = tmp_path / "out.jsonl"  # not there yet: the same path all the same
    result = cli(
        "replay",
        str(events),
        "--config",
        str(config),
        "--alerts-out",
        str(same),
        "--dead-letters",
        str(tmp_path / "." / "out.jsonl"),
        check=False,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert "error: --alerts-out and --dead-letters name the same file" in result.stderr
    assert not same.exists()


def test_replay_says_how_many_lines_it_rejected_whatever_the_log_level(tmp_path: Path) -> None:
    """At logging.level error the event_rejected warnings are not logged; the summary line on
    stderr still says what was rejected (before, nothing did)."""
    quiet = tmp_path / "quiet.yaml"
    quiet.write_text(yaml.safe_dump({**CONFIG, "logging": {"level": "error"}}), encoding="utf-8")
    events = tmp_path / "e.jsonl"
    events.write_bytes(b'not an event\n{"half": \n\xff\xfe\n')  # 3 bad lines
    result = cli("replay", str(events), "--config", str(quiet))
    assert result.stderr.splitlines() == ["replay: 3 lines rejected (invalid_json 3); not fatal"]


def test_a_closed_standard_error_is_no_failure(config: Path, tmp_path: Path) -> None:
    """``2>&-``: replay ran to its end and printed its exposition (it exited 1 with nothing on
    standard output before: the log set-up read ``sys.stderr``, which was None)."""
    events = tmp_path / "e.jsonl"
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="a")
    events.write_text(s.text() + "not an event\n", encoding="utf-8")
    result = subprocess.run(
        [*EXE, "replay", str(events), "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        check=False,
        timeout=60,
        preexec_fn=lambda: os.close(2),
    )
    assert result.returncode == 0
    assert (
        samples(result.stdout)[
            "support_queue_waiting", (("channel", "voice"), ("queue", "billing"))
        ]
        == 1
    )


def test_replay_leaves_the_daemons_dead_letter_file_alone(config: Path, tmp_path: Path) -> None:
    # a replay with the production config appended its rejects to the production file
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"not an event\n")
    production = tmp_path / "prod" / "dead-letters.jsonl"
    prod_config = tmp_path / "prod.yaml"
    prod_config.write_text(
        yaml.safe_dump({**CONFIG, "dead_letter": {"path": str(production)}}), encoding="utf-8"
    )
    result = cli("replay", str(events), "--config", str(prod_config))
    got = samples(result.stdout)
    assert (
        got[
            "support_monitor_events_rejected_total",
            (("reason", "invalid_json"), ("source", "file")),
        ]
        == 1
    )
    assert not production.parent.exists()


def test_replay_says_when_an_output_cannot_be_written(config: Path, tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"")
    missing = tmp_path / "no" / "such" / "dir" / "a.jsonl"
    result = cli(
        "replay", str(events), "--config", str(config), "--alerts-out", str(missing), check=False
    )
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"error: --alerts-out {missing}: No such file or directory",
    )
    result = cli("simulate", "--out", str(missing), "--duration", "1m", check=False)
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"error: --out {missing}: No such file or directory",
    )


def test_an_event_stamped_past_8999_or_before_1970_is_out_of_range(
    config: Path, tmp_path: Path
) -> None:
    # 9999-12-31T23:59:59-23:59 is in year 10000 in UTC: every hour-of-week slot then failed
    stream = Stream()
    stream.add("contact.queued", 0, "voice", queue="billing", contact_id="c0")
    lines = [*stream.lines]
    for n, ts in enumerate(
        ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+10:00", "1969-12-31T23:59:59Z")
    ):
        event = {
            "event_id": f"x{n}",
            "type": "contact.queued",
            "ts": ts,
            "channel": "voice",
            "queue": "billing",
            "contact_id": f"x{n}",
        }
        lines.append(json.dumps(event).encode())
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    result = cli("replay", str(events), "--config", str(config))
    got = samples(result.stdout)
    rejected = (("reason", "timestamp_out_of_range"), ("source", "file"))
    assert got["support_monitor_events_rejected_total", rejected] == 3
    assert "tick_handler_failed" not in result.stderr
    assert result.stderr.count("ts is before 1970 or after 8999 (UTC)") == 3


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


def test_check_config_lists_every_problem_with_one_path_style(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        """
windows: [5m, 1h30m]
channels:
  voice: {answer_seconds: 20, short_abandon_seconds: 30}
alerts:
  rules:
    - {alert: A, detector: longest_wait, for: -5s, keep_firing_for: 1h30m}
    - {alert: B, detector: longest_wait, for: 1.5h}
""",
        encoding="utf-8",
    )
    result = cli("check-config", str(bad), check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        (
            f"config error: {bad}: channels.voice.short_abandon_seconds: 30 s is above "
            "answer_seconds 20 s: the short-abandon class would swallow every in-SLA abandon and "
            "some breached ones, and take them out of the service level"
        ),
        "  alerts.rules[0].for: a duration must not be negative (got -5s)",
        (
            "  alerts.rules[1].for: '1.5h' is not a duration; use seconds (e.g. 90) or "
            "Prometheus' duration syntax (e.g. '30s', '5m', '1h30m', '1d2h3m4s5ms'; units y, w, "
            "d, h, m, s, ms, largest first, each once)"
        ),
    ]


def test_check_config_refuses_an_unreadable_secret_file_without_its_content(
    tmp_path: Path,
) -> None:
    secret = "xoxb-Hq83-not-to-be-shown"
    token = tmp_path / "token"
    token.write_bytes(secret.encode() + b"\xff\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"""
notifiers:
  receivers:
    pager: {{type: slack, webhook_url_file: {tmp_path / "missing"}}}
  alertmanager: {{urls: ["http://127.0.0.1:9093"], bearer_token_file: {token}}}
""",
        encoding="utf-8",
    )
    result = cli("check-config", str(config), check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        (
            f"config error: {config}: notifiers.receivers.pager.webhook_url_file: cannot read "
            f"{tmp_path / 'missing'}: No such file or directory"
        ),
        f"  notifiers.alertmanager.bearer_token_file: {token} is not UTF-8 text (byte 25)",
    ]
    assert secret not in result.stdout + result.stderr
    token.write_text(secret + "\n", encoding="utf-8")
    (tmp_path / "missing").write_text("https://hooks.slack.example/T0/B0/x\n", encoding="utf-8")
    assert cli("check-config", str(config)).stdout.startswith(f"{config}: ok")


def test_check_config_names_the_file_of_a_yaml_error(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users: [admin\n", encoding="utf-8")
    config = tmp_path / "c.yaml"
    config.write_text(f"exporter: {{web_config_file: {web}}}\n", encoding="utf-8")
    result = cli("check-config", str(config), check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"config error: {config}: exporter.web_config_file: {web}: not valid YAML at line 2, "
        "column 1"
    )
    assert "<unicode string>" not in result.stderr
    assert "admin" not in result.stderr  # the text of the line is not shown


def test_replay_labels_a_compound_window_by_its_name(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "windows": ["5m", "1h30m"]}), encoding="utf-8")
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="a")
    s.add("contact.answered", 100, "voice", contact_id="a")  # 100 s wait: not in SLA (T = 20 s)
    s.add("contact.queued", 4395, "voice", queue="billing", contact_id="b")
    s.add("contact.answered", 4400, "voice", contact_id="b")  # 5 s wait: in SLA
    events = tmp_path / "e.jsonl"
    events.write_text(s.text(), encoding="utf-8")
    got = samples(
        cli("replay", str(events), "--config", str(config), "--until", str(T0 + 4600)).stdout
    )
    voice = ("channel", "voice")
    # At 4600 s the 5m window holds b only; 1h30m (5400 s) reaches back to -800 s and holds both.
    # Read as 1h (3600 s) it would hold b only and show 1.0.
    assert got["support_service_level_ratio", (voice, ("window", "5m"))] == 1.0
    assert got["support_service_level_ratio", (voice, ("window", "1h30m"))] == 0.5
    assert not [key for key in got if ("window", "1h") in key[1]]


def test_simulate_takes_prometheus_durations_and_refuses_others(tmp_path: Path) -> None:
    out = tmp_path / "sim.jsonl"
    cli("simulate", "--out", str(out), "--duration", "1m30s", "--start", str(T0))
    times = [json.loads(line)["ts"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert times
    assert max(times) < "2026-03-02T09:01:30"  # [09:00:00, 09:01:30)
    assert max(times) >= "2026-03-02T09:01:00"  # a 60 s span would have ended here
    result = cli("simulate", "--out", str(out), "--duration", "1.5h", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --duration: '1.5h' is not a duration; ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "text", ["2026-03-02T10:00:00Z", "2026-03-02t10:00:00z", "2026-03-02T12:00:00+02:00"]
)
def test_until_takes_rfc3339_in_either_case(text: str) -> None:
    # RFC 3339 allows a lowercase "z"; it was refused as "neither RFC 3339 nor epoch seconds"
    assert parse_until(text) == 1772445600.0


@pytest.mark.parametrize(
    ("rfc3339", "epoch", "expected"),
    [
        # 2026-03-29T01:30:00Z: rounded to the nearest microsecond, half up, as an event's ts
        ("2026-03-29T01:29:59.9999999Z", "1774747799.9999999", 1774747800.0),
        ("2026-03-29T01:29:59.9999995Z", "1774747799.9999995", 1774747800.0),
        ("2026-03-29T01:29:59.9999994Z", "1774747799.9999994", 1774747799.999999),
        ("2026-03-29T03:30:00.0000005+02:00", "1774747800.0000005", 1774747800.000001),
    ],
)
def test_until_is_read_to_the_microsecond_in_either_form(
    rfc3339: str, epoch: str, expected: float
) -> None:
    # the epoch form went through float() and the RFC 3339 one cut after 6 digits: the same
    # instant gave two clocks (and a `today` window on either side of its reset)
    assert parse_until(rfc3339) == expected
    assert parse_until(epoch) == expected


def test_an_until_before_the_last_event_is_logged(config: Path, tmp_path: Path) -> None:
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="a")
    s.add("contact.queued", 100, "voice", queue="billing", contact_id="b")
    events = tmp_path / "e.jsonl"
    events.write_text(s.text(), encoding="utf-8")
    until = datetime.fromtimestamp(T0 + 50, UTC).isoformat()
    result = cli("replay", str(events), "--config", str(config), "--until", until)
    warned = [json.loads(line) for line in result.stderr.splitlines() if "replay_until" in line]
    assert [(w["event"], w["until"], w["clock"]) for w in warned] == [
        ("replay_until_passed", T0 + 50, T0 + 100)
    ]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_an_alerts_file_that_cannot_be_written_still_prints_the_numbers(
    config: Path, tmp_path: Path
) -> None:
    # a full disk ended the replay in a traceback (exit 1, nothing on stdout)
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="a")  # never answered
    s.add("contact.queued", 1, "voice", queue="billing", contact_id="b")
    s.add("contact.queued", 2, "voice", queue="billing", contact_id="c")  # three page, two not
    events = tmp_path / "e.jsonl"
    events.write_text(s.text(), encoding="utf-8")
    until = datetime.fromtimestamp(T0 + 900, UTC).isoformat()
    args = ("replay", str(events), "--config", str(config), "--until", until, "--alerts-out")
    kept = tmp_path / "alerts.jsonl"
    assert cli(*args, str(kept)).returncode == 0
    assert kept.read_text(encoding="utf-8").count('"firing"') >= 1  # something to write
    result = cli(*args, "/dev/full", check=False)
    assert result.returncode == 1
    assert "error: --alerts-out /dev/full: No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    billing = (("channel", "voice"), ("queue", "billing"))
    waited = samples(result.stdout)["support_queue_oldest_wait_seconds", billing]
    assert waited == 900


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_dead_letters_that_cannot_be_written_end_the_replay_with_exit_1(
    config: Path, tmp_path: Path
) -> None:
    # over 1 MiB of rejects to an unwritable --dead-letters file retried the store forever
    events = tmp_path / "e.jsonl"
    events.write_text("".join(f"{'x' * 900}\n" for _ in range(1500)), encoding="utf-8")
    result = cli(
        "replay", str(events), "--config", str(config), "--dead-letters", "/dev/full", check=False
    )
    assert result.returncode == 1
    assert "error: --dead-letters: 1500 rejected lines could not be written to /dev/full" in (
        result.stderr
    )
    reason = (("reason", "invalid_json"), ("source", "file"))
    assert samples(result.stdout)["support_monitor_events_rejected_total", reason] == 1500


@pytest.mark.parametrize("args", [("--version",), ("schema",)])
def test_a_full_or_closed_standard_output_is_one_line_and_exit_1(args: tuple[str, ...]) -> None:
    """Standard output on a full disk gave a traceback (exit 1 through it); closed, a replay
    died with an AttributeError traceback (the audit of 2026-12-01)."""
    with open("/dev/full", "w", encoding="utf-8") as full:  # noqa: PTH123 - a device
        run = subprocess.run(
            [*EXE, *args], stdout=full, stderr=subprocess.PIPE, text=True, check=False, timeout=60
        )
    assert run.returncode == 1
    assert run.stderr == "support-monitor: cannot write the output: No space left on device\n"
    closed = subprocess.run(
        [*EXE, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        timeout=60,
        preexec_fn=lambda: os.close(1),
    )
    assert (closed.returncode, closed.stderr) == (1, "support-monitor: standard output is closed\n")


def test_simulate_to_a_bad_or_absent_broker_is_one_line() -> None:
    """A bad address is exit 2 naming the option; a broker that is not there (nothing listens
    on a free port) exit 1 with one line: both were tracebacks (the audit of 2026-12-01)."""
    bad = cli("simulate", "--mqtt", "127.0.0.1:99999", "--duration", "10s", check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "error: --mqtt: '127.0.0.1:99999': the port 99999 is out of range (0-65535)"
    )
    kafka = cli("simulate", "--kafka", "k:0", "--duration", "10s", check=False)
    assert kafka.returncode == 2
    assert "error: --kafka: 'k:0': port 0 is no broker's port" in kafka.stderr
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    absent = cli("simulate", "--mqtt", f"127.0.0.1:{port}", "--duration", "10s", check=False)
    assert absent.returncode == 1
    assert "Traceback" not in absent.stderr
    assert absent.stderr.strip().splitlines()[-1].startswith("error: cannot publish: ")


def test_check_config_of_a_key_that_is_not_a_name_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("1: 2\n", encoding="utf-8")
    result = cli("check-config", str(path), check=False)
    assert result.returncode == 2
    assert result.stderr == (
        f"config error: {path}: a top-level key is a number, not a name; the keys are setting "
        "names such as windows or channels\n"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--start", "1e20"],
            "error: --start: 1e+20: the events must fall between 1970 and 8999 (UTC)",
        ),
        (
            ["--start", "nan"],
            "error: --start: nan: the events must fall between 1970 and 8999 (UTC)",
        ),
        (["--start", "-5"], "error: --start: -5: the events must fall between 1970 and 8999 (UTC)"),
        (
            ["--start", "221845348800", "--duration", "1d"],  # noon, 8999-12-31: a day is past
            "error: --start: 2.21845e+11: the events must fall between 1970 and 8999 (UTC)",
        ),
        (["--speed", "0"], "error: --speed: input should be greater than 0"),
        (["--speed", "1e308"], "error: --speed: input should be less than or equal to 3600"),
    ],
)
def test_simulate_options_out_of_range_are_one_line(
    tmp_path: Path, args: list[str], line: str
) -> None:
    """Before, --start 1e20 and --start nan were tracebacks (an OverflowError, a ValueError),
    --start -5 wrote events from 1969 that every replay rejects, and --speed skipped the
    bounds of sources.simulator.speed (the CLI audit of 2026-12-01)."""
    out = tmp_path / "e.jsonl"
    result = cli("simulate", "--out", str(out), *args, check=False)
    assert result.returncode == 2
    assert result.stderr == line + "\n"
    assert not out.exists()


def test_ctrl_c_ends_a_replay_of_a_pipe_nobody_writes(tmp_path: Path) -> None:
    # Before, the read blocked in asyncio's default executor, whose thread the process waited
    # for at exit (and closing the file waited for the read): Ctrl-C did nothing until input.
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    writer = os.open(fifo, os.O_RDWR)  # a writer that never writes (RDWR: does not block)
    try:
        with default_sigint():  # an ignored SIGINT would stay ignored across exec
            proc = subprocess.Popen(
                [*EXE, "replay", str(fifo), "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        time.sleep(2.0)  # reading (or opening) the pipe
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        os.close(writer)
    assert proc.returncode == 130
    assert "Traceback" not in err


def test_a_config_path_that_is_a_directory_is_worded_as_every_command_words_it(
    tmp_path: Path,
) -> None:
    """check-config and run printed the argument parser's usage box ("is a directory"), where
    replay and backtest said ``config error: ...: cannot read: Is a directory`` (audit of
    2026-12-04). Every command now words it the same, exit 2."""
    expected = f"config error: {tmp_path}: cannot read: Is a directory"
    for args in (("check-config", str(tmp_path)), ("run", "--config", str(tmp_path))):
        result = cli(*args, check=False)
        assert (result.returncode, result.stderr.strip()) == (2, expected), args


def test_replay_says_what_is_wrong_with_its_input_and_its_letters_path(
    config: Path, tmp_path: Path
) -> None:
    # a read error of the events was "cannot write the output"
    result = cli("replay", "/proc/self/mem", "--config", str(config), check=False)
    assert result.returncode == 1
    assert "error: cannot read /proc/self/mem: Input/output error" in result.stderr
    # a gzip file: 1 line, rejected (not fatal), and a line that says why
    packed = tmp_path / "e.jsonl.gz"
    packed.write_bytes(gzip.compress(b'{"event_id": "x"}\n'))
    result = cli("replay", str(packed), "--config", str(config))
    assert f"replay: {packed} looks gzip-compressed: its lines are not JSON" in result.stderr
    # --dead-letters in a directory that is not there: refused as --alerts-out is (it was
    # created, parents and all)
    events = tmp_path / "ok.jsonl"
    events.write_text("", encoding="utf-8")
    missing = tmp_path / "nowhere" / "letters.jsonl"
    result = cli(
        "replay", str(events), "--config", str(config), "--dead-letters", str(missing), check=False
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert f"error: --dead-letters {missing}: No such directory" in result.stderr
    assert not missing.parent.exists()


@pytest.mark.parametrize("name", ["missing.jsonl", "."])
def test_an_events_file_replay_cannot_open_is_exit_1_and_truncates_nothing(
    config: Path, tmp_path: Path, name: str
) -> None:
    """A missing file was the parser's usage box (exit 2) where backtest and an unreadable file
    say ``error: cannot read`` (exit 1); a directory was read after --alerts-out was emptied."""
    events = tmp_path / name
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text("earlier run\n", encoding="utf-8")
    args = ("replay", str(events), "--config", str(config), "--alerts-out", str(alerts))
    result = cli(*args, check=False)
    reason = "No such file or directory" if name != "." else "Is a directory"
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"error: cannot read {events}: {reason}\n"
    assert alerts.read_text(encoding="utf-8") == "earlier run\n"
    backtest = cli("backtest", str(events), "--config", str(config), check=False)
    assert (backtest.returncode, backtest.stderr) == (1, result.stderr)


def test_replay_and_backtest_do_not_need_the_files_only_the_daemon_reads(tmp_path: Path) -> None:
    """A production config copied to a laptop names secret and certificate files that are not
    there: replay and backtest refused it, though they connect to nothing and send nothing
    (audit of 2026-12-05); check-config and run still refuse it."""
    missing = tmp_path / "absent"
    config = tmp_path / "prod.yaml"
    settings = {
        **CONFIG,
        "notifiers": {"receivers": {"pager": {"type": "slack", "webhook_url_file": str(missing)}}},
        "sources": {"kafka": {"bootstrap_servers": "127.0.0.1:1", "ssl_cafile": str(missing)}},
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text("", encoding="utf-8")
    checked = cli("check-config", str(config), check=False)
    assert checked.returncode == 2
    assert f"webhook_url_file: cannot read {missing}: No such file or directory" in checked.stderr
    assert cli("replay", str(events), "--config", str(config), check=False).returncode == 0
    assert cli("backtest", str(events), "--config", str(config), check=False).returncode == 0


def test_check_config_says_which_receiver_run_would_find_unusable(tmp_path: Path) -> None:
    """A webhook file that holds no URL passed check-config, the gate before a deploy, and then
    every page to it failed (audit of 2026-12-05): a note now, naming the key, never the value."""
    bad = tmp_path / "slack-url"
    bad.write_text("hooks.slack.com/services/T0/B0/s3cr3tpart\n", encoding="utf-8")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "notifiers:\n  receivers:\n"
        f"    pager: {{type: slack, webhook_url_file: '{bad}'}}\n"
        "    hook: {type: webhook, url_env: TEST_UNSET_RECEIVER_URL}\n"
        "    fine: {type: webhook, url: 'http://127.0.0.1:9/x'}\n"
        "  routes:\n    - {receiver: pager}\n"
        "sources:\n  mqtt: {host: 127.0.0.1, topics: [support/events]}\n",
        encoding="utf-8",
    )
    result = cli("check-config", str(cfg))
    assert result.returncode == 0
    assert result.stdout.splitlines()[1:] == [
        (
            f"note: notifiers.receivers.pager: webhook_url_file {bad}: must be an http:// or "
            "https:// URL: `run` starts, but every page to 'pager' fails (receiver_unavailable) "
            "until this is fixed and the daemon restarted"
        ),
        (
            "note: notifiers.receivers.hook: url_env: environment variable "
            "TEST_UNSET_RECEIVER_URL is not set: `run` starts, but every page to 'hook' "
            "fails (receiver_unavailable) until this is fixed and the daemon restarted"
        ),
    ]
    assert "s3cr3tpart" not in result.stdout + result.stderr
