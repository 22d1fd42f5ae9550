"""The fast paths of the scrape and the event road give exactly what the plain ones give.

- ``monitor.exporter.render`` writes the very bytes prometheus_client's own encoders write for
  the same registry (text 0.0.4 and OpenMetrics), before and after the state moves (a histogram
  series is re-rendered only when it observed), and each exported engine value is the value
  ``readout.series`` computes for detectors and rules.
- ``Agg.add`` (written out field by field) adds every counted field and the waits sketch.
- ``SlidingWindows.add_agent_ms`` (agent time, its buckets slid out as three counts) leaves the
  windows exactly as adding the same counts to each of ``targets`` does, through one-second steps,
  jumps, late outcomes and a today window.
- ``sketch.quantiles`` equals ``sketch.quantile`` per q.
"""

from __future__ import annotations

import math
import random

import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from support_monitor.alerts.runtime import Alerting
from support_monitor.monitor import exporter
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.engine.sketch import bucket_of, quantile, quantiles
from support_monitor.monitor.engine.windows import Agg, SlidingWindows
from support_monitor.monitor.exporter import (
    EngineCollector,
    LabelCache,
    RowFamily,
    possible,
    render,
)
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.registry import build_registry
from tests.support import Stream, run, samples, settings


def _stream() -> Stream:
    """Contacts on both live channels (answered, abandoned, still waiting), tickets on email
    (responded, solved, one still open), ratings and complaints."""
    s = Stream()
    for i in range(6):
        s.add("contact.queued", i, "voice", queue="billing", contact_id=f"v{i}")
    for i in range(4):
        s.add("contact.answered", 10 + 3 * i, "voice", contact_id=f"v{i}")
    s.add("contact.abandoned", 30, "voice", contact_id="v4")
    s.add("contact.ended", 200, "voice", contact_id="v0")
    s.add("contact.queued", 5, "chat", queue="sales", contact_id="c1")
    s.add("contact.answered", 95, "chat", contact_id="c1")
    for i in range(3):
        s.add("ticket.created", 40 + i, "email", ticket_id=f"t{i}", tags=["complaint"])
    s.add("ticket.responded", 600, "email", ticket_id="t0")
    s.add("ticket.solved", 900, "email", ticket_id="t1")
    s.add("ticket.rated", 950, "email", rating=5)
    s.add("ticket.rated", 951, "email", rating=2)
    s.add("complaint.received", 960, "voice", category="billing")
    return s


def _registry() -> tuple[CollectorRegistry, Alerting]:
    cfg = settings()
    engine, stats = run(_stream().lines, cfg)
    alerting = Alerting(cfg.detectors, cfg.alerts, cfg.notifiers, engine, stats)
    alerting.evaluate(engine.now)
    return build_registry(engine, stats, alerting), alerting


def test_render_is_byte_for_byte_what_prometheus_client_writes() -> None:
    registry, _ = _registry()
    for encoder in (generate_latest, generate_openmetrics):
        assert render(registry, encoder) == encoder(registry)
        assert render(registry, encoder) == encoder(registry)  # second scrape: kept texts


def test_a_histogram_that_observes_again_is_rendered_again() -> None:
    cfg = settings()
    engine, stats = run(_stream().lines, cfg)
    registry = build_registry(
        engine, stats, Alerting(cfg.detectors, cfg.alerts, cfg.notifiers, engine, stats)
    )
    before = render(registry)
    hist = engine.channels["voice"].queues["billing"].wait_hist
    count = hist.count
    hist.observe(7.5)
    after = render(registry)
    assert after != before
    assert after == generate_latest(registry)
    line = 'support_wait_seconds_count{channel="voice",queue="billing"} '
    assert f"{line}{count}.0\n".encode() in before
    assert f"{line}{count + 1}.0\n".encode() in after


def test_every_scrape_shows_what_moved_since_the_last_one() -> None:
    """Kept heads and histogram texts do not keep old values: after surveys, bot sessions,
    sentiment scores, a priority change and answered contacts between two scrapes, the second
    scrape is prometheus_client's own encoding of the state and has the new counts."""
    cfg = settings()
    stream = _stream()
    engine, stats = run(stream.lines, cfg)
    registry = build_registry(
        engine, stats, Alerting(cfg.detectors, cfg.alerts, cfg.notifiers, engine, stats)
    )
    first = render(registry).decode()
    more = Stream()
    more.add("survey.answered", 1000, "voice", event_id="m1", survey="nps", score=3)
    more.add("survey.answered", 1001, "voice", event_id="m2", survey="nps", score=3)
    more.add("bot.session_ended", 1002, "chat", event_id="m3", session_id="b1", outcome="escalated")
    more.add("sentiment.scored", 1003, "email", event_id="m4", score=-0.9)
    more.add(
        "ticket.priority_changed", 1004, "email", event_id="m5", ticket_id="t2", priority="urgent"
    )
    more.add("contact.answered", 1005, "voice", event_id="m6", contact_id="v5")
    pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)
    for i, line in enumerate(more.lines):
        pipeline.process("test", Delivery(line, f"line:{i + 1}"))
    engine.flush()  # the priority change applies once the watermark passes it
    second = render(registry)
    assert second == generate_latest(registry)
    before, after = samples(first), samples(second.decode())
    nps3 = (
        "support_survey_responses_total",
        (("channel", "voice"), ("score", "3"), ("survey", "nps")),
    )
    escalated = ("support_bot_sessions_total", (("channel", "chat"), ("outcome", "escalated")))
    negative = ("support_sentiment_total", (("channel", "email"), ("polarity", "negative")))
    urgent = ("support_tickets_open_by_priority", (("channel", "email"), ("priority", "urgent")))
    normal = ("support_tickets_open_by_priority", (("channel", "email"), ("priority", "normal")))
    waits = ("support_wait_seconds_count", (("channel", "voice"), ("queue", "billing")))
    assert (before[nps3], after[nps3]) == (0, 2)
    assert (before[escalated], after[escalated]) == (0, 1)
    assert (before[negative], after[negative]) == (0, 1)
    # t0 (responded) and t2 were open at normal priority; t1 was solved
    assert (before[normal], after[normal]) == (2, 1)
    assert (before[urgent], after[urgent]) == (0, 1)
    assert (before[waits], after[waits]) == (4, 5)


def test_exported_engine_values_are_the_readout_values() -> None:
    """Every engine row ``readout.series`` gives (and the exporter exports) has the same value
    in the exposition; every exposed per-queue/per-window sample comes from such a row."""
    cfg = settings()
    engine, stats = run(_stream().lines, cfg, until=1000)
    registry = build_registry(
        engine, stats, Alerting(cfg.detectors, cfg.alerts, cfg.notifiers, engine, stats)
    )
    exposed: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(render(registry).decode()):
        for sample in family.samples:
            exposed[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    channels = {name: ch.settings for name, ch in engine.channels.items()}
    checked = 0
    for row in series(engine):
        if row.name.startswith("support_wait_quantile_seconds_") or not possible(row, channels):
            continue
        value = exposed.pop((row.name, tuple(sorted(row.labels))))
        assert value == row.value or (math.isnan(value) and math.isnan(row.value)), row
        checked += 1
    assert checked > 100
    left = {
        name
        for name, labels in exposed
        if ("queue" in dict(labels) or "window" in dict(labels))
        and not name.endswith(("_bucket", "_count", "_sum"))
    }
    assert left == set()


def test_label_values_are_escaped_as_prometheus_client_does() -> None:
    value = 'a"b\\c\nd'
    gauge = GaugeMetricFamily("x", "h", labels=["channel"])
    gauge.add_metric([value], 1.5)
    rows = RowFamily("x", "h", "gauge", cache := LabelCache())
    rows.add(cache.head("x", ("channel", value)), 1.5)

    class One(Collector):
        def __init__(self, metric: GaugeMetricFamily | RowFamily) -> None:
            self.metric = metric

        def collect(self) -> list[GaugeMetricFamily | RowFamily]:
            return [self.metric]

    for encoder in (generate_latest, generate_openmetrics):
        assert render(One(rows), encoder) == encoder(One(gauge))
    assert rows.samples == gauge.samples


def test_agg_add_adds_every_field_and_the_waits() -> None:
    a, b = Agg(), Agg()
    for i, name in enumerate(Agg.INTS):
        setattr(a, name, 1000 + i)
        setattr(b, name, 1 + i)
    a.waits = {5: 2, 7: 1}
    b.waits = {5: 2, 9: 4}
    a.add(b, -1)
    for name in Agg.INTS:
        assert getattr(a, name) == 999, name
    assert a.waits == {7: 1, 9: -4}
    a.add(b, 1)
    assert [getattr(a, name) for name in Agg.INTS] == [1000 + i for i in range(len(Agg.INTS))]
    assert a.waits == {5: 2, 7: 1}


@pytest.mark.parametrize("today", [False, True])
def test_agent_time_slides_as_through_second_targets(today: bool) -> None:
    spans = {"30s": 30.0, "2m": 120.0, **({"today": 86400.0} if today else {})}

    def day_start(t: float) -> float:
        return float(math.floor(t / 500) * 500)  # a "day" of 500 s: several resets

    fast = SlidingWindows(spans, day_start if today else None)
    plain = SlidingWindows(spans, day_start if today else None)
    rng = random.Random(7)
    now = 1_000_000
    for _ in range(3000):
        now += rng.choice((1, 1, 1, 1, 1, 2, 7, 200))  # mostly one second, sometimes a jump
        fast.advance(now)
        plain.advance(now)
        for _ in range(rng.choice((0, 0, 0, 1, 3))):  # outcomes, some late or slid out
            ts = now - rng.choice((0.5, 0.0, 3.2, 40.0, 119.5, 300.0))
            index = rng.randrange(3)
            for windows in (fast, plain):
                for agg in windows.targets(ts):
                    agg.queued += 1
                    agg.waits[index] = agg.waits.get(index, 0) + 1
        if rng.random() < 0.9:
            ms = (rng.randrange(3) * 1000, rng.randrange(2) * 1000, rng.randrange(2) * 500)
            fast.add_agent_ms(now + 1, *ms)
            for agg in plain.second_targets(now + 1):
                agg.agent_available_ms += ms[0]
                agg.agent_busy_ms += ms[1]
                agg.agent_acw_ms += ms[2]
        assert fast.export() == plain.export()
    assert fast.export().buckets  # the windows held something at the end


def test_quantiles_in_one_pass_equal_quantile_per_q() -> None:
    rng = random.Random(4)
    qs = (0.0, 0.5, 0.9, 0.99, 1.0)
    for size in (1, 2, 3, 10, 1000):
        counts: dict[int, int] = {}
        for _ in range(size):
            index = bucket_of(rng.expovariate(1 / 30))
            counts[index] = counts.get(index, 0) + 1
        assert quantiles(counts, size, qs) == [quantile(counts, size, q) for q in qs]
    assert all(math.isnan(v) for v in quantiles({}, 0, qs))
    # a total larger than the counts (a window mid-slide) ends at the top bucket, as quantile
    assert quantiles({3: 1}, 5, qs) == [quantile({3: 1}, 5, q) for q in qs]


def test_past_the_bound_the_kept_texts_start_over(monkeypatch: pytest.MonkeyPatch) -> None:
    registry, _ = _registry()
    collector = next(c for c in registry._collector_to_names if isinstance(c, EngineCollector))
    render(registry)
    kept = len(collector._labels.heads)
    assert kept > 50
    monkeypatch.setattr(exporter, "MAX_LABEL_TEXTS", 10)
    first = collector._labels
    assert render(registry) == generate_latest(registry)
    assert collector._labels is not first
    assert len(collector._labels.heads) == kept
