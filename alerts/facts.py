"""What an alert's annotations can say about its channel right now, read from the engine.

Detectors judge one number; the people paged also want the context around it: the service level
against its target over the short and the long window, how long the oldest contact has waited
against the answer target T, which queue is worst, the complaint category. ``channel_facts``
reads those from the engine with the very functions the exporter and the detectors use
(``monitor.engine.readout``), at the evaluation that renders the annotations, and gives them to
the templates as variables (the names are listed in ``FACT_NAMES`` and in docs/alerts.md).

A number that does not exist on the channel (no service-level target on a ticket channel, no
contact in a window) is NaN and renders as ``n/a``; a phrase that does not apply is empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from support_monitor.detectors.config import LONGEST, SHORTEST, DetectorSettings, resolve_window
from support_monitor.monitor.durations import format_duration as duration
from support_monitor.monitor.engine.clocks import CLOCKS
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import oldest_wait, service_level
from support_monitor.monitor.engine.state import ChannelRuntime

Facts = dict[str, str | float]

FACT_NAMES = (
    "target",
    "answer_seconds",
    "window_short",
    "window_long",
    "sl_short",
    "sl_long",
    "sl_short_sentence",
    "ratings_long",
    "waiting",
    "oldest_wait",
    "worst_queue",
    "worst_queue_waiting",
    "worst_queue_wait",
    "queue_now",
    "sla_name",
    "category_phrase",
)
"""Template variables ``channel_facts`` sets (each one always, NaN or "" when unknown)."""


def judged_windows(detectors: DetectorSettings, windows: Sequence[str]) -> dict[str, str]:
    """Detector instance name -> the one configured window it judges (``shortest``/``longest``
    resolved), for the detectors that judge a single window: the thresholds on a windowed gauge
    (``abandon_rate`` and ``csat_low`` by default), ``complaint_spike``, ``backlog_growth`` and
    the customer-voice detectors. The others (``sla_burn``'s window pairs, ``tickets_at_risk``'s
    rate windows, the live and staffing detectors) are not in it."""
    single = {
        "complaint_spike": detectors.complaint_spike.window,
        "backlog_growth": detectors.backlog_growth.window,
        "containment_drop": detectors.containment_drop.window,
        "negative_sentiment": detectors.negative_sentiment.window,
        "nps_drop": detectors.nps_drop.window,
    }
    out = {name: resolve_window(window, windows) for name, window in single.items()}
    for threshold in detectors.thresholds:
        if threshold.window is not None:
            out[threshold.name] = resolve_window(threshold.window, windows)
    return out


def _windows(ch: ChannelRuntime, labels: Mapping[str, str]) -> tuple[str, str]:
    """The short and long window: a burn signal's own pair, else the channel's shortest and
    longest sliding windows. A single-window pair (the default 5m collapse pair) names its
    window as the short one and the channel's longest as the long one, so its texts still give
    the service level over the longer span."""
    names = ch.windows.names
    short = labels.get("short", "")
    long = labels.get("long", "")
    if short not in names:
        short = resolve_window(SHORTEST, names)
    if long not in names or long == short:
        long = resolve_window(LONGEST, names)
    return short, long


def _sl_sentence(level: float, window: str, target: float | None) -> str:
    """``Service level 40% over the last 5m (target 80%).``, or what an empty window means."""
    if math.isnan(level):
        return f"Nobody was answered or gave up in the last {window}."
    of_target = f" (target {target:.0%})" if target is not None else ""
    return f"Service level {level:.0%} over the last {window}{of_target}."


def _queue_now(ch: ChannelRuntime, now: float, facts: Facts, sla: str) -> str:
    """Fills the queue facts and returns the ``queue_now`` phrase."""
    if sla in CLOCKS:  # ticket SLA: the queue with most tickets at risk of this clock
        index = CLOCKS.index(sla)
        ranked = sorted(ch.queues.values(), key=lambda q: (-q.at_risk[index], q.name))
        top = ranked[0] if ranked else None
        if top is None or top.at_risk[index] <= 0:
            facts["worst_queue"] = ""
            facts["worst_queue_waiting"] = 0.0
            return "no ticket is close to its deadline now"
        facts["worst_queue"] = top.name
        facts["worst_queue_waiting"] = float(top.at_risk[index])
        return f"most at risk in queue {top.name} ({top.at_risk[index]})"
    worst = None
    worst_wait = -1.0
    waiting = 0
    for q in ch.queues.values():  # insertion order: the first queue wins a tie
        if not q.waiting:
            continue
        waiting += len(q.waiting)
        wait = oldest_wait(q, now)
        if wait > worst_wait:
            worst, worst_wait = q, wait
    facts["waiting"] = float(waiting)
    facts["oldest_wait"] = max(worst_wait, 0.0)
    if worst is None:
        facts["worst_queue"] = ""
        facts["worst_queue_waiting"] = 0.0
        facts["worst_queue_wait"] = 0.0
        return "nobody is waiting now"
    facts["worst_queue"] = worst.name
    facts["worst_queue_waiting"] = float(len(worst.waiting))
    facts["worst_queue_wait"] = worst_wait
    return (
        f"{waiting} waiting now, the longest for {duration(worst_wait)} in queue {worst.name} "
        f"({len(worst.waiting)} waiting there)"
    )


def channel_facts(engine: Engine, now: float, channel: str, labels: Mapping[str, str]) -> Facts:
    """The facts about ``channel`` at ``now`` for an alert with these labels (a burn alert's
    ``short``/``long`` windows, a ticket alert's ``sla``, a complaint alert's ``category``);
    every name of ``FACT_NAMES``."""
    sla = labels.get("sla", "")
    category = labels.get("category", "")
    facts: Facts = {
        "target": math.nan,
        "answer_seconds": math.nan,
        "window_short": "",
        "window_long": "",
        "sl_short": math.nan,
        "sl_long": math.nan,
        "sl_short_sentence": "",
        "ratings_long": 0.0,
        "waiting": 0.0,
        "oldest_wait": 0.0,
        "worst_queue": "",
        "worst_queue_waiting": 0.0,
        "worst_queue_wait": 0.0,
        "queue_now": "",
        "sla_name": sla.replace("_", " "),
        "category_phrase": f" about {category}" if category else "",
    }
    ch = engine.channels.get(channel)
    if ch is None:
        return facts
    settings = ch.settings
    if settings.service_level_target is not None:
        facts["target"] = settings.service_level_target
    if settings.answer_seconds is not None:
        facts["answer_seconds"] = settings.answer_seconds
    short, long = _windows(ch, labels)
    facts["window_short"] = short
    facts["window_long"] = long
    facts["sl_short"] = sl_short = service_level(ch.windows.total(short))
    long_total = ch.windows.total(long)
    facts["sl_long"] = service_level(long_total)
    facts["sl_short_sentence"] = _sl_sentence(sl_short, short, settings.service_level_target)
    facts["ratings_long"] = float(long_total.ratings)
    facts["queue_now"] = _queue_now(ch, now, facts, sla)
    return facts
