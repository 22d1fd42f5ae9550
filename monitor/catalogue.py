"""The one metric catalogue: every family the daemon exports, with its type, labels and help.

The collectors build their families from it (``family``, ``help_texts``), the detectors'
settings check metric names against it, the dashboards' query check and the exposition tests
read it, and ``docs/metrics.md`` is checked against it (``tests/monitor/test_catalogue.py``).
Names are written as exposed: counters with ``_total``. ``group`` says which part of the
daemon exports the family:

- ``engine``: the contract's families read from the engine at scrape time;
- ``histograms``: the engine's cumulative histograms (``_bucket``/``_sum``/``_count``);
- ``workforce``, ``channel_settings``, ``alerts``, ``detectors``: the other product families;
- ``daemon``, ``http``, ``cluster``: the daemon's own health (``support_monitor_*``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal, NamedTuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = ["CATALOGUE", "FAMILIES", "Family", "counter", "gauge", "help_texts"]

Kind = Literal["counter", "gauge", "summary", "histogram"]
Group = Literal[
    "engine",
    "histograms",
    "workforce",
    "channel_settings",
    "alerts",
    "detectors",
    "daemon",
    "http",
    "cluster",
]

LIVE = ("channel", "queue")
WINDOWED = ("channel", "window")


class Family(NamedTuple):
    name: str
    """As exposed in the text format (counters end in ``_total``)."""
    type: Kind
    labels: tuple[str, ...]
    """Label names of every sample (a histogram's ``le`` and a summary's samples aside)."""
    group: Group
    help: str

    @property
    def base(self) -> str:
        """The family name without a counter's ``_total`` (what parsers call the family)."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


FAMILIES: tuple[Family, ...] = (
    Family(
        "support_contacts_queued_total", "counter", LIVE, "engine", "Contacts that started waiting."
    ),
    Family("support_contacts_answered_total", "counter", LIVE, "engine", "Contacts answered."),
    Family(
        "support_contacts_answered_in_sla_total",
        "counter",
        LIVE,
        "engine",
        "Contacts answered with wait <= answer_seconds.",
    ),
    Family("support_contacts_abandoned_total", "counter", LIVE, "engine", "All abandons."),
    Family(
        "support_contacts_abandoned_short_total",
        "counter",
        LIVE,
        "engine",
        "Abandons with wait < short_abandon_seconds.",
    ),
    Family(
        "support_contacts_abandoned_in_sla_total",
        "counter",
        LIVE,
        "engine",
        "Abandons with wait <= answer_seconds.",
    ),
    Family(
        "support_sla_breaches_total",
        "counter",
        (*LIVE, "sla"),
        "engine",
        "Contacts and tickets breached, counted at the deadline.",
    ),
    Family("support_queue_waiting", "gauge", LIVE, "engine", "Contacts waiting now."),
    Family(
        "support_queue_oldest_wait_seconds",
        "gauge",
        LIVE,
        "engine",
        "Wait so far of the longest-waiting contact (0 if none).",
    ),
    Family(
        "support_queue_breached_waiting",
        "gauge",
        LIVE,
        "engine",
        "Contacts waiting now whose wait already exceeds T.",
    ),
    Family(
        "support_service_level_ratio",
        "gauge",
        WINDOWED,
        "engine",
        "Answered in SLA / (answered + abandoned - short abandoned) over the window.",
    ),
    Family(
        "support_abandon_ratio",
        "gauge",
        WINDOWED,
        "engine",
        "(Abandoned - short abandoned) / (answered + abandoned - short abandoned) over the window.",
    ),
    Family(
        "support_wait_quantile_seconds",
        "summary",
        (*WINDOWED, "quantile"),
        "engine",
        "Quantiles of answered waits over the window (<=1% error); no _count or _sum.",
    ),
    Family(
        "support_csat_ratio",
        "gauge",
        WINDOWED,
        "engine",
        "Ratings of 4-5 / all ratings over the window.",
    ),
    Family("support_complaints_window", "gauge", WINDOWED, "engine", "Complaints in the window."),
    Family("support_tickets_created_total", "counter", LIVE, "engine", "Tickets created."),
    Family("support_tickets_solved_total", "counter", LIVE, "engine", "Tickets solved."),
    Family(
        "support_tickets_open",
        "gauge",
        LIVE,
        "engine",
        "Tickets created or reopened and not solved now.",
    ),
    Family(
        "support_tickets_at_risk",
        "gauge",
        (*LIVE, "sla"),
        "engine",
        "Open tickets whose deadline is within the warning lead time.",
    ),
    Family(
        "support_csat_ratings_total",
        "counter",
        ("channel", "rating"),
        "engine",
        "CSAT answers by rating.",
    ),
    Family(
        "support_complaints_total",
        "counter",
        ("channel", "category"),
        "engine",
        "Complaints (explicit events and complaint-tagged tickets).",
    ),
    Family(
        "support_tickets_paused",
        "gauge",
        LIVE,
        "engine",
        "Open tickets whose every running clock is paused now.",
    ),
    Family(
        "support_ticket_oldest_open_age_seconds",
        "gauge",
        LIVE,
        "engine",
        "Age of the oldest open ticket (backlog age), wall time; 0 when none is open.",
    ),
    Family(
        "support_tickets_open_by_priority",
        "gauge",
        ("channel", "priority"),
        "engine",
        "Open tickets by current priority.",
    ),
    Family("support_tickets_reopened_total", "counter", LIVE, "engine", "Reopen events applied."),
    Family(
        "support_tickets_solved_first_contact_total",
        "counter",
        LIVE,
        "engine",
        "Tickets solved with at most one agent response and never reopened before.",
    ),
    Family(
        "support_fcr_ratio",
        "gauge",
        WINDOWED,
        "engine",
        "First-contact solves / solves over the window.",
    ),
    Family(
        "support_survey_responses_total",
        "counter",
        ("channel", "survey", "score"),
        "engine",
        "Survey answers by survey and score.",
    ),
    Family(
        "support_nps_score",
        "gauge",
        WINDOWED,
        "engine",
        "(Promoters 9-10 - detractors 0-6) / NPS answers over the window.",
    ),
    Family(
        "support_ces_score",
        "gauge",
        WINDOWED,
        "engine",
        "Mean CES answer (sum / count) over the window.",
    ),
    Family(
        "support_bot_sessions_total",
        "counter",
        ("channel", "outcome"),
        "engine",
        "Self-service sessions ended, by outcome.",
    ),
    Family(
        "support_bot_escalated_contacts_total",
        "counter",
        ("channel",),
        "engine",
        "Bot sessions escalated to a live contact of this channel (contact_id known).",
    ),
    Family(
        "support_self_service_ratio",
        "gauge",
        WINDOWED,
        "engine",
        "Contained / all self-service sessions ended over the window.",
    ),
    Family(
        "support_sentiment_total",
        "counter",
        ("channel", "polarity"),
        "engine",
        "Sentiment scores by polarity.",
    ),
    Family(
        "support_negative_sentiment_ratio",
        "gauge",
        WINDOWED,
        "engine",
        "Negative / all sentiment scores over the window.",
    ),
    Family("support_wait_seconds", "histogram", LIVE, "histograms", "Waits of answered contacts."),
    Family(
        "support_handle_seconds",
        "histogram",
        LIVE,
        "histograms",
        "Handle time (answered to ended).",
    ),
    Family(
        "support_first_response_seconds",
        "histogram",
        LIVE,
        "histograms",
        "Ticket created to first response.",
    ),
    Family(
        "support_resolution_seconds", "histogram", LIVE, "histograms", "Ticket created to solved."
    ),
    Family(
        "support_agents",
        "gauge",
        ("channel", "state"),
        "workforce",
        "Agents in each state now (an agent counts in each channel it is in).",
    ),
    Family(
        "support_occupancy_ratio",
        "gauge",
        WINDOWED,
        "workforce",
        "(busy + after-call-work time) / (available + busy + after-call-work time)"
        " over the window.",
    ),
    Family(
        "support_agents_required",
        "gauge",
        LIVE,
        "workforce",
        "Erlang C: fewest agents for which the predicted service level reaches the target.",
    ),
    Family(
        "support_estimated_wait_seconds",
        "gauge",
        LIVE,
        "workforce",
        "Erlang C expected wait of a contact arriving now with the agents on the queue now.",
    ),
    Family(
        "support_channel_answer_seconds",
        "gauge",
        ("channel",),
        "channel_settings",
        "The channel's configured answer target T (answer_seconds); live channels only.",
    ),
    Family(
        "support_channel_service_level_target",
        "gauge",
        ("channel",),
        "channel_settings",
        "The channel's configured service_level_target; channels that set one only.",
    ),
    Family(
        "support_alerts",
        "gauge",
        ("alertname", "alertstate", "severity", "channel"),
        "alerts",
        "Pending or firing alerts (like Prometheus' ALERTS): 1 per alert; alerts that differ "
        "only in other labels share a series, whose value is their number.",
    ),
    Family(
        "support_detector_score",
        "gauge",
        ("detector", "channel"),
        "detectors",
        "Value each detector judged (burn rate, complaint count, seconds to breach, metric value);"
        " the worst signal per detector and channel.",
    ),
    Family(
        "support_detector_expected",
        "gauge",
        ("detector", "channel"),
        "detectors",
        "What the detector expected (complaint baseline for the window); NaN when it has none.",
    ),
    Family(
        "support_detector_threshold",
        "gauge",
        ("detector", "channel"),
        "detectors",
        "The level at which the detector's signal becomes active.",
    ),
    Family(
        "support_monitor_events_total", "counter", ("source", "type"), "daemon", "Events applied."
    ),
    Family(
        "support_monitor_events_rejected_total",
        "counter",
        ("source", "reason"),
        "daemon",
        "Events not applied, by reason.",
    ),
    Family(
        "support_monitor_events_duplicate_total",
        "counter",
        ("source",),
        "daemon",
        "Redelivered events skipped (same event_id).",
    ),
    Family(
        "support_monitor_source_dropped_total",
        "counter",
        ("source",),
        "daemon",
        "Messages a source's client discarded unread because its receive buffer was full"
        " (MQTT max_queued_messages or max_queued_bytes): QoS 0 ones are lost, QoS 1 ones come"
        " again after a reconnect.",
    ),
    Family(
        "support_monitor_dead_letters_total",
        "counter",
        ("source", "sink"),
        "daemon",
        "Rejected events stored in a dead-letter sink, by source and sink.",
    ),
    Family(
        "support_monitor_dead_letters_dropped_total",
        "counter",
        ("source",),
        "daemon",
        "Rejected events whose dead letter was dropped unstored: the oldest past the in-memory"
        " sink's bound (no dead_letter.path), or past 10,000 deferred letters of a source whose"
        " sink is stalled.",
    ),
    Family(
        "support_monitor_dead_letter_failures_total",
        "counter",
        ("sink",),
        "daemon",
        "Failed attempts to store dead letters (each retried until it succeeds).",
    ),
    Family(
        "support_monitor_store_failures_total",
        "counter",
        ("store",),
        "daemon",
        "Failed opens and writes of the daemon's own state files, by store (snapshot, outbox,"
        " console); the store meanwhile keeps its last copy or runs from memory.",
    ),
    Family(
        "support_monitor_store_failing",
        "gauge",
        ("store",),
        "daemon",
        "1 while the last open or write of the daemon's own state file failed, by store"
        " (snapshot, outbox, console); 0 once one succeeds.",
    ),
    Family(
        "support_monitor_tick_failures_total",
        "counter",
        ("handler",),
        "daemon",
        "Clock ticks in which a tick handler (detectors, rules, the engine) raised.",
    ),
    Family(
        "support_monitor_event_lag_seconds",
        "histogram",
        (),
        "daemon",
        "Processing time minus event time.",
    ),
    Family(
        "support_monitor_notifications_total",
        "counter",
        ("notifier", "result"),
        "daemon",
        "Notification attempts by outcome.",
    ),
    Family(
        "support_monitor_source_up",
        "gauge",
        ("source",),
        "daemon",
        "1 while a source is connected.",
    ),
    Family(
        "support_monitor_kafka_partition_lag",
        "gauge",
        ("topic", "partition"),
        "daemon",
        "Messages behind the partition end.",
    ),
    Family(
        "support_monitor_loop_lag_seconds",
        "gauge",
        (),
        "daemon",
        "Event-loop scheduling delay of the clock tick.",
    ),
    Family(
        "support_monitor_build_info",
        "gauge",
        ("version", "python"),
        "daemon",
        "Version labels, value 1.",
    ),
    Family(
        "support_monitor_capacity_exhausted_total",
        "counter",
        ("kind",),
        "daemon",
        "Items refused or forgotten because a limits or retention bound was reached.",
    ),
    Family(
        "support_monitor_http_connections_open",
        "gauge",
        (),
        "http",
        "HTTP connections open now (TLS handshakes in progress included).",
    ),
    Family(
        "support_monitor_http_connections_refused_total",
        "counter",
        (),
        "http",
        "HTTP connections refused (503): exporter.max_connections open, all in a request.",
    ),
    Family(
        "support_monitor_http_connections_evicted_total",
        "counter",
        (),
        "http",
        "Waiting HTTP connections closed at exporter.max_connections to admit a new one.",
    ),
    Family(
        "support_monitor_http_connections_timed_out_total",
        "counter",
        ("reason",),
        "http",
        "HTTP connections closed by the header or idle timeout.",
    ),
    Family(
        "support_monitor_http_accept_errors_total",
        "counter",
        (),
        "http",
        "accept() calls that failed (e.g. EMFILE: out of file descriptors).",
    ),
    Family(
        "support_monitor_http_tls_handshake_failures_total",
        "counter",
        (),
        "http",
        "TLS handshakes that failed or timed out.",
    ),
    Family(
        "support_monitor_http_requests_unauthorized_total",
        "counter",
        (),
        "http",
        "Requests answered 401 (basic auth missing or wrong).",
    ),
    Family(
        "support_monitor_console_requests_refused_total",
        "counter",
        ("reason",),
        "http",
        "Console requests refused for their credentials: bad_token (a write without the API "
        "token), bad_link (an acknowledge link whose signature or expiry does not check out), "
        "stale_link (a link of an earlier firing).",
    ),
    Family(
        "support_monitor_cluster_partition_ready",
        "gauge",
        ("topic", "partition"),
        "cluster",
        "1 per owned partition that caught up (served), 0 while it catches up.",
    ),
    Family(
        "support_monitor_cluster_snapshots",
        "gauge",
        ("reason",),
        "cluster",
        "Partition snapshots written to the state topic since start, by reason.",
    ),
    Family(
        "support_monitor_cluster_config_mismatch",
        "gauge",
        (),
        "cluster",
        "Assigned partitions this replica does not serve because its config shape differs "
        "from the shape their state was written under (0: none).",
    ),
)
CATALOGUE: MappingProxyType[str, Family] = MappingProxyType({f.name: f for f in FAMILIES})


def help_texts(group: Group) -> dict[str, str]:
    """Name -> help of one group's families, in catalogue order."""
    return {f.name: f.help for f in FAMILIES if f.group == group}


def counter(name: str, value: float | None = None) -> CounterMetricFamily:
    """The catalogued counter family ``name`` (empty, or label-less with ``value``)."""
    f = CATALOGUE[name]
    assert f.type == "counter", name
    if value is not None:
        return CounterMetricFamily(f.base, f.help, value=value)
    return CounterMetricFamily(f.base, f.help, labels=list(f.labels))


def gauge(name: str, value: float | None = None) -> GaugeMetricFamily:
    """The catalogued gauge family ``name`` (empty, or label-less with ``value``)."""
    f = CATALOGUE[name]
    assert f.type == "gauge", name
    if value is not None:
        return GaugeMetricFamily(f.name, f.help, value=value)
    return GaugeMetricFamily(f.name, f.help, labels=list(f.labels))
