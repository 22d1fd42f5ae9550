"""Read side of the engine: the exact numbers the exporter shows and detectors/alerts evaluate.

Everything here is computed from counts (sum, then divide); nothing averages percentages.
``series(engine)`` flattens every gauge and counter into ``Series`` rows, so an alert rule on any
metric name sees the very value a scrape of ``/metrics`` would return at that instant.
Detectors do not build those rows on every tick: they read single values through
``LIVE_GAUGES`` and ``WINDOW_GAUGES`` below, the very expressions ``queue_series`` and
``window_series`` put into the rows (a test holds the two in step).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from support_monitor.monitor.engine.clocks import CLOCKS, instant
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.rows import Series
from support_monitor.monitor.engine.sketch import quantile
from support_monitor.monitor.engine.state import ChannelRuntime, QueueState
from support_monitor.monitor.engine.windows import Agg
from support_monitor.monitor.engine.workforce_readout import workforce_series
from support_monitor.monitor.events import SURVEY_RANGES

QUANTILES = (0.5, 0.9, 0.99)
SLAS = ("answer", "first_response", "next_reply", "resolution")


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def service_level(agg: Agg) -> float:
    """answered in SLA / (answered + abandoned - short abandoned); NaN when the denominator is 0."""
    return _ratio(agg.answered_in_sla, agg.answered + agg.abandoned - agg.abandoned_short)


def abandon_ratio(agg: Agg) -> float:
    long_abandons = agg.abandoned - agg.abandoned_short
    return _ratio(long_abandons, agg.answered + agg.abandoned - agg.abandoned_short)


def csat_ratio(agg: Agg) -> float:
    return _ratio(agg.satisfied, agg.ratings)


def fcr_ratio(agg: Agg) -> float:
    """First-contact solves / solves."""
    return _ratio(agg.solved_first_contact, agg.solved)


def nps_score(agg: Agg) -> float:
    """(promoters - detractors) / NPS answers, -1..1."""
    return _ratio(agg.nps_promoters - agg.nps_detractors, agg.nps_responses)


def ces_score(agg: Agg) -> float:
    """Sum of CES answers / their count."""
    return _ratio(agg.ces_sum, agg.ces_responses)


def self_service_ratio(agg: Agg) -> float:
    """Contained bot sessions / all bot sessions ended."""
    return _ratio(agg.bot_contained, agg.bot_sessions)


def negative_sentiment_ratio(agg: Agg) -> float:
    return _ratio(agg.sentiment_negative, agg.sentiments)


def oldest_open_age(queue: QueueState, now: float) -> float:
    """Age (wall time) of the queue's oldest open ticket; 0 when none is open."""
    oldest = queue.oldest_open_ts()
    return 0.0 if oldest is None else max(0.0, round(now - oldest, 6))


def wait_quantile(agg: Agg, q: float) -> float:
    return quantile(agg.waits, agg.answered, q)


def oldest_wait(queue: QueueState, now: float) -> float:
    oldest = queue.oldest_queued_ts()
    return 0.0 if oldest is None else max(0.0, round(now - oldest, 6))


def _waiting(q: QueueState, now: float) -> tuple[tuple[str, float], ...]:
    del now
    return (("", len(q.waiting)),)


def _oldest(q: QueueState, now: float) -> tuple[tuple[str, float], ...]:
    return (("", oldest_wait(q, now)),)


def breached_waiting(queue: QueueState, now: float) -> int:
    """Contacts waiting at ``now`` whose wait exceeds T: those whose breach is counted, and
    those past their deadline whose breach waits for the watermark (``allowed_lateness``
    behind the clock; a late answer stamped before the deadline may still come), or for a
    raised T's timer (``below_t``). The breach counter follows the watermark; this gauge,
    like the waiting count and the oldest wait, shows the queue as it stands now."""
    count = queue.breached_waiting
    answer = queue.channel.settings.answer_seconds
    if answer is None or not queue.waiting:
        return count
    below_t = queue.below_t
    for c in below_t.values():  # breached under an older, lower T: normally none
        if instant(c.queued_ts + answer) < now:
            count += 1
    pending = queue.pending
    for c in pending.values():  # in queued order: the undecided ones come first
        if instant(c.queued_ts + answer) >= now:
            break
        count += 1
    # waiting, not breached and not pending: queued out of order, each on its own timer
    others = len(queue.waiting) - len(pending) - queue.breached_waiting - len(below_t)
    if others > 0:
        count += sum(
            1
            for cid, c in queue.waiting.items()
            if not c.breached and cid not in pending and instant(c.queued_ts + answer) < now
        )
    return count


def _breached(q: QueueState, now: float) -> tuple[tuple[str, float], ...]:
    return (("", breached_waiting(q, now)),)


def _open(q: QueueState, now: float) -> tuple[tuple[str, float], ...]:
    del now
    return (("", q.tickets_open),)


def _at_risk(q: QueueState, now: float) -> tuple[tuple[str, float], ...]:
    del now
    return tuple(zip(CLOCKS, q.at_risk, strict=True))


def _paused(q: QueueState, now: float) -> tuple[tuple[str, float], ...]:
    del now
    return (("", q.tickets_paused),)


def _backlog_age(q: QueueState, now: float) -> tuple[tuple[str, float], ...]:
    return (("", oldest_open_age(q, now)),)


LIVE_GAUGES: dict[str, Callable[[QueueState, float], tuple[tuple[str, float], ...]]] = {
    "support_queue_waiting": _waiting,
    "support_queue_oldest_wait_seconds": _oldest,
    "support_queue_breached_waiting": _breached,
    "support_tickets_open": _open,
    "support_tickets_at_risk": _at_risk,
    "support_tickets_paused": _paused,
    "support_ticket_oldest_open_age_seconds": _backlog_age,
}
"""Live gauge -> one queue's rows of it as ``(sla label or "", value)``, in ``queue_series``
order and with the same value (an ``int`` where the row holds one)."""


def _quantile(agg: Agg, q: str | None) -> float:
    return wait_quantile(agg, float(q or "nan"))


WINDOW_GAUGES: dict[str, Callable[[Agg, str | None], float]] = {
    "support_service_level_ratio": lambda agg, _q: service_level(agg),
    "support_abandon_ratio": lambda agg, _q: abandon_ratio(agg),
    "support_wait_quantile_seconds": _quantile,
    "support_csat_ratio": lambda agg, _q: csat_ratio(agg),
    "support_complaints_window": lambda agg, _q: agg.complaints,
    "support_fcr_ratio": lambda agg, _q: fcr_ratio(agg),
    "support_nps_score": lambda agg, _q: nps_score(agg),
    "support_ces_score": lambda agg, _q: ces_score(agg),
    "support_self_service_ratio": lambda agg, _q: self_service_ratio(agg),
    "support_negative_sentiment_ratio": lambda agg, _q: negative_sentiment_ratio(agg),
}
"""Windowed gauge -> its value for one window's totals (and ``quantile`` label, as in the row)."""


def _lbl(**pairs: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(pairs.items()))


def queue_series(channel: ChannelRuntime, q: QueueState, now: float) -> Iterator[Series]:
    lbl = _lbl(channel=channel.name, queue=q.name)
    yield Series("support_contacts_queued_total", lbl, q.queued)
    yield Series("support_contacts_answered_total", lbl, q.answered)
    yield Series("support_contacts_answered_in_sla_total", lbl, q.answered_in_sla)
    yield Series("support_contacts_abandoned_total", lbl, q.abandoned)
    yield Series("support_contacts_abandoned_short_total", lbl, q.abandoned_short)
    yield Series("support_contacts_abandoned_in_sla_total", lbl, q.abandoned_in_sla)
    yield Series("support_queue_waiting", lbl, len(q.waiting))
    yield Series("support_queue_oldest_wait_seconds", lbl, oldest_wait(q, now))
    yield Series("support_queue_breached_waiting", lbl, breached_waiting(q, now))
    for sla, value in zip(SLAS, (q.breaches_answer, *q.breaches), strict=True):
        yield Series("support_sla_breaches_total", (*lbl, ("sla", sla)), value)
    yield Series("support_tickets_created_total", lbl, q.created)
    yield Series("support_tickets_solved_total", lbl, q.solved)
    yield Series("support_tickets_open", lbl, q.tickets_open)
    for sla, value in zip(CLOCKS, q.at_risk, strict=True):
        yield Series("support_tickets_at_risk", (*lbl, ("sla", sla)), value)
    yield Series("support_tickets_paused", lbl, q.tickets_paused)
    yield Series("support_ticket_oldest_open_age_seconds", lbl, oldest_open_age(q, now))
    yield Series("support_tickets_reopened_total", lbl, q.reopened)
    yield Series("support_tickets_solved_first_contact_total", lbl, q.solved_first_contact)


def window_series(channel: ChannelRuntime) -> Iterator[Series]:
    windows = channel.windows
    for name, agg in zip(windows.names, windows.totals, strict=True):
        lbl = _lbl(channel=channel.name, window=name)
        yield Series("support_service_level_ratio", lbl, service_level(agg))
        yield Series("support_abandon_ratio", lbl, abandon_ratio(agg))
        for q in QUANTILES:
            yield Series(
                "support_wait_quantile_seconds",
                (*lbl, ("quantile", str(q))),
                wait_quantile(agg, q),
            )
        yield Series("support_wait_quantile_seconds_count", lbl, agg.answered)
        yield Series("support_wait_quantile_seconds_sum", lbl, agg.wait_ms / 1000)
        yield Series("support_csat_ratio", lbl, csat_ratio(agg))
        yield Series("support_complaints_window", lbl, agg.complaints)
        yield Series("support_fcr_ratio", lbl, fcr_ratio(agg))
        yield Series("support_nps_score", lbl, nps_score(agg))
        yield Series("support_ces_score", lbl, ces_score(agg))
        yield Series("support_self_service_ratio", lbl, self_service_ratio(agg))
        yield Series("support_negative_sentiment_ratio", lbl, negative_sentiment_ratio(agg))


def voice_series(channel: ChannelRuntime) -> Iterator[Series]:
    for rating in range(1, 6):
        yield Series(
            "support_csat_ratings_total",
            _lbl(channel=channel.name, rating=str(rating)),
            channel.ratings[rating],
        )
    for category, count in sorted(channel.complaints.items()):
        yield Series(
            "support_complaints_total", _lbl(channel=channel.name, category=category), count
        )
    yield from channel_voice_series(channel)


VOICE_FAMILIES = (
    "support_survey_responses_total",
    "support_bot_sessions_total",
    "support_bot_escalated_contacts_total",
    "support_sentiment_total",
    "support_tickets_open_by_priority",
)
"""The families of :func:`channel_voice_labels` and :func:`channel_voice_values`, in order."""

Labels = tuple[tuple[str, str], ...]


def channel_voice_labels(channel: ChannelRuntime) -> tuple[tuple[Labels, ...], ...]:
    """Per :data:`VOICE_FAMILIES` entry, the label pairs of the channel's series, in the order
    :func:`channel_voice_values` gives their values (sorted by key: ``channel`` sorts first).
    They depend only on the channel's name: every survey, outcome, polarity and priority is
    kept from the start."""
    voice = channel.voice
    c = ("channel", channel.name)
    return (
        tuple(
            (c, ("score", str(score)), ("survey", survey))
            for survey, counts in voice.surveys.items()
            for score in range(SURVEY_RANGES[survey][0], len(counts))
        ),
        tuple((c, ("outcome", outcome)) for outcome in voice.bot),
        ((c,),),
        tuple((c, ("polarity", pole)) for pole in voice.sentiment),
        tuple((c, ("priority", priority)) for priority in channel.open_by_priority),
    )


def channel_voice_values(channel: ChannelRuntime) -> tuple[list[int], ...]:
    """Per :data:`VOICE_FAMILIES` entry, the channel's values now (see
    :func:`channel_voice_labels`)."""
    voice = channel.voice
    surveys: list[int] = []
    for survey, counts in voice.surveys.items():
        surveys += counts[SURVEY_RANGES[survey][0] :]
    return (
        surveys,
        list(voice.bot.values()),
        [voice.escalations_in],
        list(voice.sentiment.values()),
        list(channel.open_by_priority.values()),
    )


def channel_voice_series(channel: ChannelRuntime) -> Iterator[Series]:
    """The Wave 2 per-channel counters and gauges: surveys, bot sessions, sentiment, open
    tickets by priority."""
    for name, labels, values in zip(
        VOICE_FAMILIES,
        channel_voice_labels(channel),
        channel_voice_values(channel),
        strict=True,
    ):
        for pairs, value in zip(labels, values, strict=True):
            yield Series(name, pairs, value)


def series(engine: Engine) -> Iterator[Series]:
    """Every gauge and counter of the engine at the engine's clock."""
    now = engine.now
    for channel in engine.channels.values():
        for q in channel.queues.values():
            yield from queue_series(channel, q, now)
        yield from window_series(channel)
        yield from voice_series(channel)
        yield from workforce_series(engine, channel)
