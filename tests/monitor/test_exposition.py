"""The /metrics exposition against the ecosystem's own checkers.

- OpenMetrics: prometheus_client's OpenMetrics parser reads the body (it rejects bad grouping,
  wrong suffixes and bad types), and counter-typed samples never go down between scrapes.
- Text format 0.0.4: ``promtool check metrics`` reports nothing.
- Only series that can occur under each channel's settings are exported.
"""

from __future__ import annotations

import math
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import httpx
import yaml
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.registry import CollectorRegistry

from support_monitor.monitor.exporter import DaemonCollector, EngineCollector
from tests.processes import free_port, start_daemon
from tests.support import T0, Stream, run, settings

if TYPE_CHECKING:
    from pathlib import Path

    from support_monitor.monitor.engine.engine import Engine
    from support_monitor.monitor.stats import DaemonStats

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
Key = tuple[str, tuple[tuple[str, str], ...]]


def _registry(engine: Engine, stats: DaemonStats) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine))
    registry.register(DaemonCollector(stats))
    return registry


def _monotonic_samples(body: str) -> dict[Key, float]:
    """Samples OpenMetrics defines as counters: counter totals, histogram and summary
    buckets/_count/_sum."""
    out: dict[Key, float] = {}
    for family in parse_om(body):
        if family.type not in {"counter", "histogram", "summary"}:
            continue
        for sample in family.samples:
            if sample.name.endswith(("_total", "_bucket", "_count", "_sum")):
                out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _stream() -> Stream:
    """voice: 5 contacts queued at 0..4 s, answered after waits of 10, 11, 12, 13, 14 s (all
    within T = 20 s); email: one ticket created at 1 s."""
    stream = Stream()
    for i in range(5):
        stream.add("contact.queued", i, "voice", contact_id=f"c{i}", queue="billing")
        stream.add("contact.answered", 2 * i + 10, "voice", contact_id=f"c{i}")
    stream.add("ticket.created", 1, "email", ticket_id="t1")
    return stream


def test_openmetrics_parses_and_counters_never_go_down() -> None:
    engine, stats = run(_stream().lines, until=60)
    registry = _registry(engine, stats)
    first = generate_openmetrics(registry).decode()
    families = {family.name: family for family in parse_om(first)}
    quantiles = families["support_wait_quantile_seconds"]
    assert quantiles.type == "summary"
    # quantile samples only: the window's count and sum go down as it slides, and OpenMetrics
    # treats a summary's _count/_sum as counters
    assert {sample.name for sample in quantiles.samples} == {"support_wait_quantile_seconds"}
    voice = {
        (s.labels["window"], s.labels["quantile"]): s.value
        for s in quantiles.samples
        if s.labels["channel"] == "voice"
    }
    # waits 10..14 s; h = q*(n-1), linear between ranks: 2 -> 12 s, 3.6 -> 13.6 s (p90),
    # 3.96 -> 13.96 s (p99); <= 1% error
    for window in ("5m", "1h"):
        for quantile, wait in (("0.5", 12), ("0.9", 13.6), ("0.99", 13.96)):
            assert math.isclose(voice[window, quantile], wait, rel_tol=0.01)
    # the line order is what the parser checks: every (channel, window) group is contiguous
    groups = [(s.labels["channel"], s.labels["window"]) for s in quantiles.samples]
    runs = [key for i, key in enumerate(groups) if i == 0 or groups[i - 1] != key]
    # voice and chat x 5m and 1h (email is ticket-only: no quantiles), 3 quantiles each
    assert len(runs) == len(set(runs)) == 4
    assert len(groups) == 12

    before = _monotonic_samples(first)
    assert (
        before["support_contacts_answered_total", (("channel", "voice"), ("queue", "billing"))] == 5
    )
    engine.flush(T0 + 2 * 3600)  # both windows slid past every outcome
    second = generate_openmetrics(registry).decode()
    after = _monotonic_samples(second)
    assert set(after) == set(before)
    went_down = {key: (before[key], after[key]) for key in before if after[key] < before[key]}
    assert not went_down
    sl = {
        s.labels["window"]: s.value
        for f in parse_om(second)
        if f.name == "support_service_level_ratio"
        for s in f.samples
        if s.labels["channel"] == "voice"
    }
    assert all(math.isnan(value) for value in sl.values())  # empty windows: NaN


def _combinations(body: str) -> dict[str, set[tuple[str, str]]]:
    """Family sample name -> {(channel, sla or '')} present."""
    out: dict[str, set[tuple[str, str]]] = {}
    for family in parse_om(body):
        for sample in family.samples:
            channel = sample.labels.get("channel")
            if channel is not None:
                out.setdefault(sample.name, set()).add((channel, sample.labels.get("sla", "")))
    return out


def test_only_series_that_can_occur_are_exported() -> None:
    cfg = settings(
        channels={
            "voice": {"answer_seconds": 20, "service_level_target": 0.9, "queues": ["billing"]},
            "email": {"first_response_seconds": 3600, "resolution_seconds": 86400},
            "chat": {"answer_seconds": 60, "first_response_seconds": 600, "queues": ["sales"]},
        }
    )
    engine, stats = run([], cfg=cfg, until=0)
    body = generate_openmetrics(_registry(engine, stats)).decode()
    got = _combinations(body)
    live = {("voice", ""), ("chat", "")}
    every = live | {("email", "")}
    for name in (
        "support_contacts_queued_total",
        "support_contacts_answered_total",
        "support_contacts_answered_in_sla_total",
        "support_contacts_abandoned_total",
        "support_contacts_abandoned_short_total",
        "support_contacts_abandoned_in_sla_total",
        "support_queue_waiting",
        "support_queue_oldest_wait_seconds",
        "support_queue_breached_waiting",
        "support_service_level_ratio",
        "support_abandon_ratio",
        "support_wait_quantile_seconds",
        "support_wait_seconds_count",
        "support_wait_seconds_bucket",
        "support_handle_seconds_sum",
    ):
        assert got[name] == live, name
    for name in (
        "support_tickets_created_total",
        "support_tickets_solved_total",
        "support_tickets_open",
        "support_first_response_seconds_count",
        "support_resolution_seconds_count",
        "support_csat_ratio",
        "support_complaints_window",
        "support_csat_ratings_total",
    ):
        assert got[name] == every, name
    assert got["support_sla_breaches_total"] == {
        ("voice", "answer"),
        ("chat", "answer"),
        ("chat", "first_response"),
        ("email", "first_response"),
        ("email", "resolution"),
    }
    assert got["support_tickets_at_risk"] == {
        ("chat", "first_response"),
        ("email", "first_response"),
        ("email", "resolution"),
    }
    settings_gauges = {
        (s.name, s.labels["channel"]): s.value
        for f in parse_om(body)
        if f.name.startswith("support_channel_")
        for s in f.samples
    }
    assert settings_gauges == {
        ("support_channel_answer_seconds", "voice"): 20,
        ("support_channel_answer_seconds", "chat"): 60,
        ("support_channel_service_level_target", "voice"): 0.9,
    }
    # the windowed summary's count and sum are not exposed at all
    assert not {n for n in got if n.startswith("support_wait_quantile_seconds_")}


def test_a_reload_that_changes_a_channels_clocks_changes_its_series() -> None:
    """The collector keeps each channel's per-queue plan between scrapes; a reload that gives
    a channel other clocks (new settings) must change the series it exports at the next
    scrape, through the same registry."""
    channels = {
        "email": {"first_response_seconds": 3600, "resolution_seconds": 86400},
        "voice": {"answer_seconds": 20, "queues": ["billing"]},
    }
    engine, stats = run([], cfg=settings(channels=channels), until=0)
    registry = _registry(engine, stats)
    before = _combinations(generate_openmetrics(registry).decode())
    assert before["support_sla_breaches_total"] == {
        ("voice", "answer"),
        ("email", "first_response"),
        ("email", "resolution"),
    }
    engine.reconfigure(settings(channels={**channels, "email": {"first_response_seconds": 3600}}))
    after = _combinations(generate_openmetrics(registry).decode())
    assert after["support_sla_breaches_total"] == {("voice", "answer"), ("email", "first_response")}
    assert after["support_tickets_at_risk"] == {("email", "first_response")}


def test_daemon_openmetrics_and_text_pass_the_ecosystem_checkers(
    tmp_path: Path, promtool: str
) -> None:
    port = free_port()
    config = tmp_path / "c.yaml"
    # speed 30: a simulated half minute per second, so the 5m window slides within the test
    config.write_text(yaml.safe_dump({"sources": {"simulator": {"speed": 30}}}), encoding="utf-8")
    proc = start_daemon(config, f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        scrapes: list[str] = []
        deadline = time.monotonic() + 60
        while len(scrapes) < 2:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the daemon served no answered contacts in time"
            time.sleep(1)
            try:
                reply = httpx.get(url, headers={"Accept": OPENMETRICS}, timeout=5)
            except httpx.HTTPError:
                continue
            answered = _monotonic_samples(reply.text)
            if scrapes or sum(
                v for (n, _), v in answered.items() if n == "support_contacts_answered_total"
            ):
                scrapes.append(reply.text)
                time.sleep(5 if len(scrapes) == 1 else 0)
        first, second = scrapes
        assert first.endswith("# EOF\n")
        before, after = _monotonic_samples(first), _monotonic_samples(second)
        assert len(before) > 100
        went_down = {
            k: (before[k], after[k]) for k in before if k in after and after[k] < before[k]
        }
        assert not went_down
        quantiles = next(f for f in parse_om(second) if f.name == "support_wait_quantile_seconds")
        assert {s.name for s in quantiles.samples} == {"support_wait_quantile_seconds"}
        # the default config: email is ticket-only, voice and chat live-only
        combos = _combinations(second)
        assert ("email", "") not in combos["support_contacts_queued_total"]
        assert ("voice", "first_response") not in combos["support_sla_breaches_total"]
        assert ("email", "resolution") in combos["support_sla_breaches_total"]

        text = httpx.get(url, timeout=5).text
        check = subprocess.run(
            [promtool, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout + check.stderr == ""
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_text_body_of_a_replay_passes_promtool(promtool: str) -> None:
    engine, stats = run(_stream().lines, until=60)
    text = generate_latest(_registry(engine, stats)).decode()
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout + check.stderr == ""
