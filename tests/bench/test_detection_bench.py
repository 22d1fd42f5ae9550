"""The detection benchmark's generator, scorer and CUSUM against hand-computed numbers.

Not a test of detector quality (that is the benchmark itself, docs/benchmarks.md): this checks
that the traffic is what it claims to be and that the scoring counts right.
"""

from __future__ import annotations

import json
import math
import statistics
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

from bench.detection import cusum, run, score, streams, traffic
from bench.detection.traffic import HOUR, Incident, LiveSpec

START = traffic.MONDAY


def _events(tmp_path: Path, name: str, seed: int, hours: float, **kwargs: object) -> Path:
    path = tmp_path / name
    generator = traffic.Generator(seed, START, START + hours * HOUR, **kwargs)  # type: ignore[arg-type]
    path.write_bytes(b"".join(line + b"\n" for _, line in generator.run()))
    return path


def test_generator_is_deterministic_per_seed(tmp_path: Path) -> None:
    kwargs = {
        "live": traffic.default_live(),
        "desks": traffic.default_desks(),
        "incidents": [Incident("sl_collapse", "voice", START + 3600, START + 5400, 0.4)],
    }
    a = _events(tmp_path, "a.jsonl", 5, 10, **kwargs)
    b = _events(tmp_path, "b.jsonl", 5, 10, **kwargs)
    c = _events(tmp_path, "c.jsonl", 6, 10, **kwargs)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    lines = a.read_bytes().splitlines()
    assert len(lines) > 1000
    kinds = {json.loads(line)["type"] for line in lines}
    assert kinds == {
        "contact.queued", "contact.answered", "contact.abandoned", "contact.ended",
        "ticket.created", "ticket.responded", "ticket.solved", "ticket.rated",
        "complaint.received",
    }  # fmt: skip
    stamps = [json.loads(line)["ts"] for line in lines]
    assert stamps == sorted(stamps)  # time order (same-length RFC 3339 UTC strings)


# ---------------------------------------------------------------------- queueing, by hand


def test_erlang_c_matches_a_hand_computed_value() -> None:
    # c = 2, a = 1 Erlang: (a^2/2! * 2/(2-1)) / (1 + 1 + 1) = 1/3.
    assert traffic.erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)


def _erlang_c_by_sum(c: int, a: float) -> float:
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def _abandon_by_chain(c: int, rate: float, handle: float, patience: float) -> float:
    """Erlang A: the stationary birth-death chain; abandons per arrival = theta E[queue] / rate."""
    probs = [1.0]
    for n in range(1, 400):
        death = min(n, c) / handle + max(n - c, 0) / patience
        probs.append(probs[-1] * rate / death)
    total = sum(probs)
    queue = sum(max(n - c, 0) * p for n, p in enumerate(probs)) / total
    return queue / patience / rate


def _batches(values: list[tuple[float, float]], start: float, size: float, n: int) -> list[float]:
    """Mean of the values in each of ``n`` consecutive batches of ``size`` seconds."""
    out = []
    for i in range(n):
        xs = [v for t, v in values if start + i * size <= t < start + (i + 1) * size]
        out.append(statistics.fmean(xs))
    return out


FLAT_RATE, HANDLE, ANSWER = 0.8, 10.0, 3.0
"""8 Erlangs with 10 s handle times: the queue forgets its past in minutes (its relaxation time
is about HANDLE / (1 - sqrt(rho))^2 = 15 min with 10 slots), so 30 simulated hours give a tight
estimate in about 2 s."""


def test_service_level_matches_erlang_c(tmp_path: Path) -> None:
    """No abandons, 10 slots, constant rate: SL = 1 - C(10, 8) exp(-(c mu - lambda) T)."""
    spec = LiveSpec("voice", FLAT_RATE * 60, HANDLE, ANSWER, math.inf, ("billing",),
                    fixed_slots=10, complaints_peak_per_hour=0.0, survey_share=0.0)  # fmt: skip
    path = _events(tmp_path, "flat.jsonl", 3, 31, live=[spec], profile=lambda _t: 1.0)
    s = streams.read(path, {"voice": ANSWER})["voice"]
    assert s.abandoned == 0
    model = 1 - _erlang_c_by_sum(10, 8.0) * math.exp(-(10 / HANDLE - FLAT_RATE) * ANSWER)
    assert model == pytest.approx(0.7754, abs=1e-4)  # far from 0 and 1: a wrong queue shows
    good = [(t, 1.0 - bad) for t, bad in s.sl]
    means = _batches(good, START + HOUR, 2.5 * HOUR, 12)  # first hour: the empty start
    tolerance = 4 * statistics.stdev(means) / math.sqrt(len(means))
    assert tolerance < 0.03
    assert statistics.fmean(means) == pytest.approx(model, abs=tolerance)


def test_abandons_match_erlang_a(tmp_path: Path) -> None:
    """Exponential patience (mean 5 s), 9 slots at 8 Erlangs: abandons per arrival as the
    Erlang A chain says (0.1085)."""
    spec = LiveSpec("voice", FLAT_RATE * 60, HANDLE, ANSWER, 5.0, ("billing",),
                    fixed_slots=9, complaints_peak_per_hour=0.0, survey_share=0.0)  # fmt: skip
    path = _events(tmp_path, "flat.jsonl", 4, 16, live=[spec], profile=lambda _t: 1.0)
    model = _abandon_by_chain(9, FLAT_RATE, HANDLE, 5.0)
    assert model == pytest.approx(0.1085, abs=1e-4)
    assert model == pytest.approx(traffic.erlang_a_abandon(9, FLAT_RATE, HANDLE, 5.0))
    queued: dict[str, float] = {}
    pairs: list[tuple[float, float]] = []  # (queued at, 1.0 if abandoned)
    for line in path.read_bytes().splitlines():
        event = msgspec.json.decode(line)
        if event["type"] == "contact.queued":
            queued[event["contact_id"]] = datetime.fromisoformat(event["ts"]).timestamp()
        elif event["type"] in ("contact.answered", "contact.abandoned"):
            abandoned = float(event["type"] == "contact.abandoned")
            pairs.append((queued.pop(event["contact_id"]), abandoned))
    means = _batches(pairs, START + HOUR, 1.25 * HOUR, 12)
    tolerance = 4 * statistics.stdev(means) / math.sqrt(len(means))
    assert tolerance < 0.03
    assert statistics.fmean(means) == pytest.approx(model, abs=tolerance)


def test_default_healthy_week_has_the_intended_service_level_and_abandons(
    tmp_path: Path,
) -> None:
    """Seed 1, one week: SL 85-90% and abandons (long, as the metric counts them) 5-8%."""
    path = _events(
        tmp_path, "week.jsonl", 1, 7 * 24,
        live=traffic.default_live(), desks=traffic.default_desks(),
    )  # fmt: skip
    per = streams.read(path, {"voice": 20.0, "chat": 60.0})
    for channel in ("voice", "chat"):
        sl, abandons, offered = streams.service_level(per[channel], START, START + 7 * 24 * HOUR)
        assert offered > 10_000
        assert 0.85 <= sl <= 0.90, (channel, sl)
        assert 0.05 <= abandons <= 0.08, (channel, abandons)


# ---------------------------------------------------------------------- scoring


def _record(t: float, alert: str, channel: str, severity: str, change: str) -> str:
    """One ``--alerts-out`` record; ``change`` is ``previous>state``."""
    previous, state = change.split(">")
    labels = {"alertname": alert, "channel": channel, "severity": severity}
    return json.dumps(
        {"ts": t, "alertname": alert, "state": state, "previous": previous, "labels": labels}
    )


def test_scorer_counts_a_hand_made_alerts_file(tmp_path: Path) -> None:
    lines = [
        _record(100, "LongestWaitHigh", "voice", "critical", "pending>firing"),  # false
        _record(120, "AbandonRateHigh", "voice", "warning", "inactive>pending"),  # not a page
        _record(200, "AbandonRateHigh", "chat", "warning", "pending>firing"),  # false
        _record(300, "LongestWaitHigh", "voice", "critical", "firing>resolved"),  # not a page
        _record(1050, "CsatLow", "voice", "warning", "firing>firing"),  # not a new page
        _record(1100, "ServiceLevelBurn", "voice", "critical", "pending>firing"),  # detects, 100 s
        _record(1200, "LongestWaitHigh", "chat", "critical", "pending>firing"),  # other channel
        _record(2250, "AbandonRateHigh", "voice", "warning", "pending>firing"),  # in grace
        _record(2400, "CsatLow", "voice", "warning", "pending>firing"),  # after grace
    ]
    path = tmp_path / "alerts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    incident = Incident("sl_collapse", "voice", 1000.0, 2000.0, 0.4)
    result = score.score(score.read_pages(path), [incident], (0.0, 500.0), grace=300.0)
    assert dict(result.false_pages) == {
        ("LongestWaitHigh", "voice", "critical"): 1,
        ("AbandonRateHigh", "chat", "warning"): 1,
    }
    (det,) = result.detections
    assert det.delay == 100.0
    assert det.first is not None
    assert det.first.alert == "ServiceLevelBurn"
    assert det.by_alert == {"ServiceLevelBurn": 100.0, "AbandonRateHigh": 1250.0}
    assert dict(result.other) == {
        ("LongestWaitHigh", "chat", "critical"): 1,
        ("CsatLow", "voice", "warning"): 1,
    }


def test_pages_say_which_began_inhibited(tmp_path: Path) -> None:
    """A firing record with ``inhibited: true`` (held back by an inhibit rule when it began)
    is a page that says so; one without the key is not."""
    held = json.loads(_record(150, "ServiceLevelBurnSlow", "voice", "warning", "pending>firing"))
    held["inhibited"] = True
    lines = [
        _record(100, "ServiceLevelBurn", "voice", "critical", "pending>firing"),
        json.dumps(held),
    ]
    path = tmp_path / "alerts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    got = [(p.alert, p.inhibited) for p in score.read_pages(path)]
    assert got == [("ServiceLevelBurn", False), ("ServiceLevelBurnSlow", True)]


def test_group_messages_of_a_hand_made_alerts_file(tmp_path: Path) -> None:
    lines = [
        _record(100, "ServiceLevelBurnSlow", "voice", "warning", "pending>firing"),  # opens voice
        _record(120, "ServiceLevelBurn", "voice", "critical", "pending>firing"),  # within 30 s
        _record(200, "AbandonRateHigh", "voice", "warning", "pending>firing"),  # an update
        _record(300, "ServiceLevelBurnSlow", "voice", "warning", "firing>resolved"),
        _record(310, "ServiceLevelBurn", "voice", "critical", "firing>resolved"),
        _record(320, "CsatLow", "chat", "warning", "pending>firing"),  # opens chat
        _record(400, "AbandonRateHigh", "voice", "warning", "firing>resolved"),  # voice ends
        _record(500, "LongestWaitHigh", "voice", "critical", "inactive>pending"),  # not firing
        _record(600, "LongestWaitHigh", "voice", "critical", "pending>firing"),  # a new voice group
        _record(640, "BacklogGrowing", "voice", "warning", "pending>firing"),  # after 30 s: update
    ]
    path = tmp_path / "alerts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    got = [(p.t, p.channel, p.severity) for p in score.read_group_pages(path, group_wait=30.0)]
    assert got == [
        (100.0, "voice", "critical"),
        (320.0, "chat", "warning"),
        (600.0, "voice", "critical"),
    ]


# ---------------------------------------------------------------------- CUSUM


def test_poisson_cusum_step_up_by_hand() -> None:
    """Rate 1/min -> 4/min, one event every 10 s from t = 10: each event adds ln 4 = 1.386,
    each 10 s gap drifts (1 - 4)/60 * 10 = -0.5. S: 1.386, 2.273, 3.159, 4.045 >= 4: t = 40."""
    times = [10.0 * i for i in range(1, 30)]
    alarms = cusum.poisson(times, lambda _t: 1 / 60, 4.0, 4.0, (0.0, 45.0))
    assert alarms == [40.0]
    # With h = 4.1 the fourth event (4.045) is not enough; the fifth (4.931) is.
    assert cusum.poisson(times, lambda _t: 1 / 60, 4.0, 4.1, (0.0, 55.0)) == [50.0]


def test_poisson_cusum_drop_alarms_between_events() -> None:
    """Rate 1/min -> 0.5/min and no events: S grows at 0.5/60 per second, h = 2 at 240 s."""
    alarms = cusum.poisson([], lambda _t: 1 / 60, 0.5, 2.0, (0.0, 600.0))
    assert alarms == [pytest.approx(240.0), pytest.approx(480.0)]


def test_binomial_cusum_by_hand() -> None:
    """p0 = 0.1, p1 = 0.5: a bad trial adds ln 5 = 1.609, a good one ln(5/9) = -0.588.
    bad, good, bad, bad: 1.609, 1.022, 2.631, 4.241 >= 4 at the fourth trial (t = 4)."""
    trials = [(1.0, 1), (2.0, 0), (3.0, 1), (4.0, 1), (5.0, 1)]
    assert cusum.binomial(trials, 0.1, 0.5, 4.0, (0.0, 10.0)) == [4.0]
    assert cusum.binomial(trials, 0.1, 0.5, 4.3, (0.0, 10.0)) == [5.0]


def test_calibrate_finds_the_smallest_threshold_with_the_allowed_alarms() -> None:
    def alarms_at(h: float) -> int:
        return sum(1 for peak in (1.0, 2.5, 4.0) if peak >= h)

    h = cusum.calibrate(alarms_at, 1)
    assert h == pytest.approx(2.5, rel=2e-3)
    assert alarms_at(h) == 1
    assert cusum.calibrate(alarms_at, 0) == pytest.approx(4.0, rel=2e-3)


def test_report_says_which_unpaged_incidents_the_optimal_cusum_misses_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The line "every incident paged" lists each incident no alert paged in some seed, and
    names the seeds where neither optimal CUSUM finds the incident in its own stream either."""

    def one(seed: int, delay: float | None, cusum: float | None) -> run.Run:
        return run.Run(seed, delay, None, {}, cusum, 5.0, 1, cusum)

    res = run.Results()
    res.runs["sl_collapse", "voice"] = [one(1, 120.0, 60.0), one(2, 300.0, None)]
    res.runs["complaint_spike_8x", "chat"] = [one(1, None, 200.0), one(2, None, None)]
    res.runs["csat_drop", "voice"] = [one(1, None, None)]
    run.print_report(res, [1, 2], ["voice", "chat"], 7.0)
    (line,) = [s for s in capsys.readouterr().out.splitlines() if "every incident paged" in s]
    assert line == (
        "- every incident paged: **missed** (never: complaint_spike_8x/chat, csat_drop/voice; "
        "3 incident-seeds unpaged, 1 of them found by the optimal CUSUM; the CUSUM finds nothing "
        "either in complaint_spike_8x/chat seed 2, csat_drop/voice seed 1)"
    )
    del res.runs["complaint_spike_8x", "chat"]
    del res.runs["csat_drop", "voice"]
    run.print_report(res, [1, 2], ["voice", "chat"], 7.0)
    assert "- every incident paged: met" in capsys.readouterr().out
