"""Alert rule and notifier settings.

Frozen, ``extra='forbid'`` models so a typo is an error naming the key. Cross-references (rule
channel scopes, route receivers, mute window names) are checked by
``AlertSettings.validate_against``, called from the top-level settings validator. Defaults page
nobody: no receivers, no routes, no Alertmanager, no state directory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from support_monitor.alerts.links import is_absolute
from support_monitor.alerts.matchers import compile_regex, parse_matcher
from support_monitor.alerts.template import check_template
from support_monitor.alerts.urls import (
    BASIC_AUTH_CONFLICT,
    has_userinfo,
    header_value_problem,
    link_problem,
    token_problem,
    url_problem,
)
from support_monitor.detectors.config import DetectorSettings
from support_monitor.monitor.config_secrets import EnvName, SecretFile
from support_monitor.monitor.durations import Duration
from support_monitor.monitor.files import is_directory

Severity = Literal["info", "warning", "critical"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")]
LabelName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
LabelValue = Annotated[str, Field(min_length=1, max_length=256)]

RESERVED_LABELS = frozenset({"alertname", "alertstate", "severity", "channel"})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- rules -----------------------------------------------------------------------------------


_MAX_HOLD = 7 * 86400.0
"""``for`` and ``keep_firing_for`` at most (a week)."""


class AlertRule(_Model):
    """One alert rule: fires while the named detector's signal is active (per channel/labels)."""

    alert: Name
    detector: Name
    """Detector instance name; its ``Signal.active`` is the condition."""
    channels: tuple[str, ...] | None = None
    """Only these channels (default: every channel the detector reports)."""
    match: dict[LabelName, str] = Field(default_factory=dict)
    """Only signals with these label values (e.g. ``severity: page`` of an sla_burn window pair)."""
    for_: Duration = Field(default=0.0, le=_MAX_HOLD, validation_alias=AliasChoices("for", "for_"))
    """How long the signal must stay active before the alert fires (at most a week: a
    condition that must hold longer than the longest window can see is no alert)."""
    keep_firing_for: Duration = Field(default=0.0, le=_MAX_HOLD)
    severity: Severity = "warning"
    labels: dict[LabelName, LabelValue] = Field(default_factory=dict)
    annotations: dict[LabelName, str] = Field(default_factory=dict)
    resolved_annotations: dict[LabelName, str] = Field(default_factory=dict)
    """Templates used instead of the same-named ``annotations`` once the alert is resolved
    (rendered once, when it resolves); an annotation not named here keeps its firing text."""

    @field_validator("labels")
    @classmethod
    def _no_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(RESERVED_LABELS & set(value))
        if reserved:
            raise ValueError(f"labels: {reserved[0]!r} is set by the rule itself")
        return value

    @field_validator("annotations", "resolved_annotations")
    @classmethod
    def _templates(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for key, text in value.items():
            try:
                check_template(text)
            except ValueError as exc:
                raise ValueError(f"{info.field_name}.{key}: {exc}") from None
        return value

    @property
    def key(self) -> str:
        """Identity across restarts: name, severity, extra labels and ``match`` (not the
        position)."""
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        match = ",".join(f"{k}={v}" for k, v in sorted(self.match.items()))
        return f"{self.alert}|{self.severity}|{extra}|{match}"


DASHBOARD_URL = (
    "{dashboard_base_url}/d/support-channel?var-channel={channel}{dashboard_window}"
    "&from={dashboard_from}&to={dashboard_to}"
)
"""The default rules' ``dashboard_url``: the channel dashboard over the incident's time range,
on the window the rule's detector judges when it judges one (``{dashboard_window}``)."""


def _rule(
    alert: str,
    detector: str,
    severity: Severity,
    texts: tuple[str, str, str, str],
    **extra: str | dict[str, str],
) -> AlertRule:
    """A default rule; ``texts``: firing summary and description, resolved summary and
    description."""
    anchor = alert.lower()
    summary, description, resolved_summary, resolved_description = texts
    return AlertRule.model_validate(
        {
            "alert": alert,
            "detector": detector,
            "severity": severity,
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": "{runbook_base_url}#" + anchor,
                "dashboard_url": DASHBOARD_URL,
            },
            "resolved_annotations": {
                "summary": resolved_summary,
                "description": resolved_description,
            },
            **extra,
        }
    )


_SINCE = " Going on since {started}."
_RESOLVED = "Resolved after {duration} (from {started} to {ended}). "


def default_rules() -> tuple[AlertRule, ...]:
    """The shipped rule set; detector names match the default detector instances. Firing texts
    say what is wrong with the numbers behind it; resolved texts say it is over, how long it
    lasted and the value now (docs/alerts.md, "Default messages")."""
    burn_resolved = (
        _RESOLVED + "Service level now {sl_short:.0%} over the last {window_short} and "
        "{sl_long:.0%} over the last {window_long} against a target of {target:.0%}."
    )
    return (
        _rule(
            "ServiceLevelBurn",
            "sla_burn",
            "critical",
            (
                (
                    "{channel}: service level {sl_short:.0%} vs {target:.0%} target over "
                    "{window_short}; {sl_long:.0%} over {window_long}"
                ),
                "Too few contacts on {channel} are answered within {answer_seconds:dur}: "
                "{sl_short:.0%} over the last {window_short} and {sl_long:.0%} over the last "
                "{window_long}, against a target of {target:.0%}. The error budget burns "
                "{score:.1f}x faster than sustainable (pages at {threshold:g}x). Queues: "
                "{queue_now}." + _SINCE,
                (
                    "{channel}: resolved, service level now {sl_short:.0%} over "
                    "{window_short} ({sl_long:.0%} over {window_long}, target {target:.0%}); "
                    "lasted {duration}"
                ),
                burn_resolved,
            ),
            match={"severity": "page"},
            **{"for": "2m", "keep_firing_for": "5m"},
        ),
        _rule(
            "ServiceLevelBurnSlow",
            "sla_burn",
            "warning",
            (
                (
                    "{channel}: service level {sl_long:.0%} vs {target:.0%} target over "
                    "{window_long}; {sl_short:.0%} over {window_short}"
                ),
                "Too few contacts on {channel} are answered within {answer_seconds:dur}: "
                "{sl_long:.0%} over the last {window_long} and {sl_short:.0%} over the last "
                "{window_short}, against a target of {target:.0%}. The error budget burns "
                "{score:.1f}x faster than sustainable (warns at {threshold:g}x). Queues: "
                "{queue_now}." + _SINCE,
                (
                    "{channel}: resolved, service level now {sl_short:.0%} over "
                    "{window_short} ({sl_long:.0%} over {window_long}, target {target:.0%}); "
                    "lasted {duration}"
                ),
                burn_resolved,
            ),
            match={"severity": "ticket"},
            # as long as its critical twin's: a longer one outlived the critical and paged the
            # warning (no longer inhibited) in the very message that resolved the critical
            **{"for": "10m", "keep_firing_for": "5m"},
        ),
        _rule(
            "LongestWaitHigh",
            "longest_wait",
            "critical",
            (
                "{channel}: a customer waited {score:dur}, answer target {answer_seconds:dur}",
                "The oldest waiting contact on {channel} reached {score:dur} of waiting (pages "
                "above {threshold:dur}; answer target {answer_seconds:dur}). Queues: "
                "{queue_now}. {sl_short_sentence}" + _SINCE,
                "{channel}: resolved, oldest wait now {value_now:dur}; lasted {duration}",
                _RESOLVED + "Oldest wait now {value_now:dur} (answer target "
                "{answer_seconds:dur}); queues: {queue_now}.",
            ),
            **{"for": "2m", "keep_firing_for": "1m"},
        ),
        _rule(
            "BacklogGrowing",
            "backlog_growth",
            "warning",
            (
                "{signal_summary}",
                "Contacts queue on {channel} faster than they are answered or abandoned, or "
                "arrive well above the usual rate for this hour of the week. Queues: "
                "{queue_now}; answer target {answer_seconds:dur}." + _SINCE,
                (
                    "{channel}: resolved, backlog no longer building up, {waiting:.0f} waiting "
                    "now; lasted {duration}"
                ),
                _RESOLVED + "Queues: {queue_now}; oldest wait {oldest_wait:dur} of "
                "{answer_seconds:dur} allowed.",
            ),
            # no for / keep_firing_for: the detector holds its condition 5m before it says
            # active and lets go itself (backlog_growth.sustain and .release)
        ),
        _rule(
            "TicketsAtRisk",
            "tickets_at_risk",
            "warning",
            (
                "{signal_summary}",
                "Tickets on {channel} need an answer before their {sla_name} target (alerts "
                "at {threshold:.0f} close to the deadline, or when first responses stop for "
                "far longer than usual, and on while they pass it unanswered); {queue_now}."
                + _SINCE,
                (
                    "{channel}: resolved, tickets at risk of the {sla_name} deadline now: "
                    "{value_now:.0f}; lasted {duration}"
                ),
                _RESOLVED + "Open tickets at risk of their {sla_name} target now: "
                "{value_now:.0f} (alerts at {threshold:.0f}).",
            ),
            # 15m: the at-risk count has no hysteresis and hovers at min_count; with 5m the
            # seed-7 replay resolved at 09:35 and paged again at 09:43 (condition gone 12m)
            **{"for": "1m", "keep_firing_for": "15m"},
        ),
        _rule(
            "ComplaintSpike",
            "complaint_spike",
            "warning",
            (
                (
                    "{channel}: complaints{category_phrase} at {score:.0f} in {window_short}, "
                    "about {expected:.1f} usual"
                ),
                "Customers on {channel} complain far more than usual{category_phrase}: "
                "{score:.0f} in the last {window_short} where about {expected:.1f} are usual "
                "for this hour of the week." + _SINCE,
                (
                    "{channel}: resolved, complaints{category_phrase} now {value_now:.0f} in "
                    "{window_short} (about {expected:.1f} usual); lasted {duration}"
                ),
                _RESOLVED + "Complaints{category_phrase} in the last {window_short} now: "
                "{value_now:.0f}, about {expected:.1f} usual.",
            ),
            **{"for": "0s", "keep_firing_for": "20m"},
        ),
        _rule(
            "AbandonRateHigh",
            "abandon_rate",
            "warning",
            (
                (
                    "{channel}: {score:.0%} of contacts abandoned over {window_long} (limit "
                    "{threshold:.0%})"
                ),
                "{score:.1%} of the contacts on {channel} over the last {window_long} left "
                "before an agent answered (pages above {threshold:.0%} once enough contacts "
                "show it). Service level {sl_long:.0%} over {window_long} (target "
                "{target:.0%}). Queues: {queue_now}." + _SINCE,
                (
                    "{channel}: resolved, abandoned contacts now {value_now:.0%} over "
                    "{window_long} (limit {threshold:.0%}); lasted {duration}"
                ),
                _RESOLVED + "{value_now:.1%} of contacts abandoned over the last "
                "{window_long} now (limit {threshold:.0%}); service level {sl_long:.0%} "
                "(target {target:.0%}).",
            ),
            **{"for": "10m", "keep_firing_for": "10m"},
        ),
        _rule(
            "CsatLow",
            "csat_low",
            "warning",
            (
                (
                    "{channel}: customer satisfaction {score:.0%} over {window_long}, usually "
                    "{expected:.0%} (floor {threshold:.0%})"
                ),
                "Only {score:.1%} of the {ratings_long:.0f} ratings on {channel} over the last "
                "{window_long} are satisfied, usually {expected:.0%} at this hour of the week "
                "(pages below {threshold:.0%} once enough ratings show it, or when unsatisfied "
                "ratings run well above their usual share)." + _SINCE,
                (
                    "{channel}: resolved, customer satisfaction now {value_now:.0%} over "
                    "{window_long} (floor {threshold:.0%}); lasted {duration}"
                ),
                _RESOLVED + "{value_now:.1%} of the {ratings_long:.0f} ratings over the last "
                "{window_long} are satisfied now (floor {threshold:.0%}).",
            ),
            **{"for": "2m", "keep_firing_for": "30m"},
        ),
        _rule(
            "ContainmentDrop",
            "containment_drop",
            "critical",
            (
                "{channel}: the bot resolves only {score:.0%} of sessions, usually {expected:.0%}",
                "The bot on {channel} hands far more customers to agents than usual "
                "({score:.0%} of sessions resolved by the bot, usually {expected:.0%} at this "
                "hour of the week): expect the live queues to surge." + _SINCE,
                (
                    "{channel}: resolved, the bot resolves {value_now:.0%} of sessions now "
                    "(usually {expected:.0%}); lasted {duration}"
                ),
                _RESOLVED + "{value_now:.0%} of bot sessions resolved by the bot now, usually "
                "{expected:.0%}.",
            ),
            **{"for": "1m", "keep_firing_for": "10m"},
        ),
        _rule(
            "NegativeSentimentHigh",
            "negative_sentiment",
            "warning",
            (
                "{channel}: {score:.0%} of conversations negative, usually {expected:.0%}",
                "Negative sentiment on {channel} is well above its usual level for this hour "
                "of the week: {score:.0%} of scored conversations, usually {expected:.0%}."
                + _SINCE,
                (
                    "{channel}: resolved, negative conversations now {value_now:.0%} (usually "
                    "{expected:.0%}); lasted {duration}"
                ),
                _RESOLVED + "{value_now:.0%} of scored conversations negative now, usually "
                "{expected:.0%}.",
            ),
            **{"for": "2m", "keep_firing_for": "15m"},
        ),
        _rule(
            "NpsDrop",
            "nps_drop",
            "warning",
            (
                "{channel}: {score:.0%} of survey answers are detractors, usually {expected:.0%}",
                "Detractors (NPS answers 0-6) on {channel} are significantly more than usual "
                "for this hour of the week: {score:.0%} of answers, usually {expected:.0%}."
                + _SINCE,
                (
                    "{channel}: resolved, detractors now {value_now:.0%} of survey answers "
                    "(usually {expected:.0%}); lasted {duration}"
                ),
                _RESOLVED + "{value_now:.0%} of survey answers from detractors now, usually "
                "{expected:.0%}.",
            ),
            **{"for": "5m", "keep_firing_for": "30m"},
        ),
        _rule(
            "Understaffed",
            "understaffing",
            "warning",
            (
                "{channel}: {score:.0f} agents on the queue, {expected:.0f} needed",
                "Erlang C says {channel} needs {expected:.0f} agents to reach its service-level "
                "target ({target:.0%} within {answer_seconds:dur}); {score:.0f} are available, "
                "busy or wrapping up a contact. Queues: {queue_now}." + _SINCE,
                (
                    "{channel}: resolved, {value_now:.0f} agents on the queue now "
                    "({expected_now:.0f} required); lasted {duration}"
                ),
                _RESOLVED + "{value_now:.0f} agents available, busy or wrapping up a contact now; "
                "Erlang C requires {expected_now:.0f}. Queues: {queue_now}.",
            ),
            # no for / keep_firing_for: the detector holds its condition 20m (understaffing.sustain)
            # and lets go as backlog_growth does (understaffing.release)
        ),
        _rule(
            "EstimatedWaitHigh",
            "estimated_wait",
            "warning",
            (
                (
                    "{channel}: estimated wait {score:dur} for a contact arriving now (answer "
                    "target {expected:dur})"
                ),
                "Erlang C's estimated average wait for a contact arriving now on {channel}: "
                "{score:dur} (warns above {threshold:dur}; answer target {expected:dur}). "
                "Queues: {queue_now}." + _SINCE,
                (
                    "{channel}: resolved, estimated wait now {value_now:dur} (answer target "
                    "{expected:dur}); lasted {duration}"
                ),
                _RESOLVED + "A contact arriving now waits about {value_now:dur} on average "
                "(answer target {expected:dur}).",
            ),
            # no for / keep_firing_for: the detector holds its condition 25m
            # (estimated_wait.sustain) and lets go as backlog_growth does (.release)
        ),
    )


class InhibitRule(_Model):
    """Alertmanager's ``inhibit_rules`` entry: while an alert matching every ``source_matchers``
    fires, alerts matching every ``target_matchers`` that have the same values of the ``equal``
    labels are not paged by the built-in receivers (an alert never inhibits itself)."""

    source_matchers: tuple[str, ...] = Field(min_length=1, max_length=20)
    target_matchers: tuple[str, ...] = Field(min_length=1, max_length=20)
    equal: tuple[LabelName, ...] = ()

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _matchers(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        for i, text in enumerate(value):
            try:
                parse_matcher(text)
            except ValueError as exc:
                raise ValueError(f"{info.field_name}[{i}]: {exc}") from None
        return value


def default_inhibit_rules() -> tuple[InhibitRule, ...]:
    """A firing critical alert of a channel silences its warning twins on that channel: the
    fast burn its slow burn, a long wait the backlog and estimated-wait forecasts of it."""
    return (
        InhibitRule(
            source_matchers=('alertname="ServiceLevelBurn"',),
            target_matchers=('alertname="ServiceLevelBurnSlow"',),
            equal=("channel",),
        ),
        InhibitRule(
            source_matchers=('alertname="LongestWaitHigh"',),
            target_matchers=('alertname=~"BacklogGrowing|EstimatedWaitHigh"',),
            equal=("channel",),
        ),
    )


class AlertSettings(_Model):
    """``alerts:`` rules and their evaluation."""

    rules: tuple[AlertRule, ...] = Field(default_factory=default_rules)
    inhibit_rules: tuple[InhibitRule, ...] = Field(default_factory=default_inhibit_rules)
    """Alertmanager's inhibition for the built-in receivers (Slack, webhook); ``[]``: none."""
    site_name: str = Field(default="", max_length=100)
    """The contact center or site these alerts are about: the ``site`` annotation of every
    alert, the ``{site}`` template variable, and shown in Slack messages; empty: none."""
    resolved_retention: Duration = 900.0
    """Resolved alerts are kept (and re-sent to Alertmanager) this long, like Prometheus' 15m."""
    evaluation_interval: Duration | None = None
    """Evaluate rules on aligned multiples of this (default: every tick of the exporter clock)."""
    runbook_base_url: str = ""
    """``{runbook_base_url}`` in annotations; the default rules link ``<this>#<alertname>``.
    Point it at where your team reads ``docs/runbooks.md`` (e.g. your repository's copy); while
    it is empty, alerts carry no ``runbook_url`` at all rather than a relative, broken link
    (``alerts.links``)."""
    dashboard_base_url: str = "http://localhost:3000"
    """``{dashboard_base_url}`` in annotations: the Grafana root URL. The default rules'
    ``dashboard_url`` (the channel dashboard) is also each alert's ``generatorURL`` unless
    ``notifiers.alertmanager.generator_url`` is set; empty: no dashboard links."""

    @field_validator("runbook_base_url", "dashboard_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _absolute_or_empty(value)

    @field_validator("evaluation_interval")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be greater than 0")
        return value

    def switched_off(self, detectors: DetectorSettings) -> list[tuple[int, AlertRule]]:
        """(index, rule) of every rule whose detector does not run (disabled, or a threshold
        that is not configured): those alerts never fire."""
        running = set(detectors.names())
        return [(i, r) for i, r in enumerate(self.rules) if r.detector not in running]

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.key in seen:
                # the key is what restarts and reloads find a rule's alerts by: channels are
                # not part of it, so two rules on disjoint channels would share one state
                raise ValueError(
                    f"rules[{i}]: another rule has the same alert, severity, labels and match "
                    f"({rule.alert}); rules are told apart by these, not by channels, so their "
                    "alerts would share one state: for one rule per channel write "
                    "match: {channel: voice} instead of channels: [voice]"
                )
            seen.add(rule.key)
        return self

    def validate_against(
        self,
        channels: Mapping[str, Any],
        windows: Sequence[str],
        notifiers: NotifierSettings,
        detectors: DetectorSettings,
    ) -> None:
        """Cross-checks channels, receivers and detectors (``windows``: no rule field names
        one); raises ValueError naming the key. A rule of the default set whose detector is
        disabled simply never fires."""
        del windows
        known = detectors.names()
        configured = "rules" in self.model_fields_set
        for i, rule in enumerate(self.rules):
            if configured and rule.detector not in known:
                raise ValueError(
                    f"alerts.rules[{i}].detector: unknown detector {rule.detector!r} "
                    f"(enabled detectors: {', '.join(known)})"
                )
            for channel in rule.channels or ():
                if channel not in channels:
                    raise ValueError(f"alerts.rules[{i}].channels: unknown channel {channel!r}")
            if configured:
                _check_match(f"alerts.rules[{i}]", rule, channels)
        if configured:
            _check_overlaps(self.rules)
        notifiers.validate_against(channels)


def _check_match(key: str, rule: AlertRule, channels: Mapping[str, Any]) -> None:
    """A ``match`` on a channel or queue no signal can carry: the rule could never fire."""
    channel = rule.match.get("channel")
    if channel is not None:
        if channel not in channels:
            raise ValueError(f"{key}.match.channel: unknown channel {channel!r}: never fires")
        if rule.channels is not None and channel not in rule.channels:
            raise ValueError(
                f"{key}.match.channel: {channel!r} is not in the rule's channels: never fires"
            )
    queue = rule.match.get("queue")
    if queue is not None:
        scope = [channels[channel]] if channel is not None else list(channels.values())
        queues = {q for ch in scope for q in getattr(ch, "queues", ())} | {"default"}
        if queue not in queues:
            raise ValueError(
                f"{key}.match.queue: no channel{' ' + repr(channel) if channel else ''} has a "
                f"queue {queue!r}: never fires"
            )


def _check_overlaps(rules: Sequence[AlertRule]) -> None:
    """Two rules of one alert name, severity and labels whose ``match`` can both hold for one
    channel (no label they both match on with different values), on one detector or on two,
    make the same alert twice: one fingerprint, two states (a pending and a firing record at
    once, each paging on its own)."""
    for j, later in enumerate(rules):
        for i in range(j):
            rule = rules[i]
            if (rule.alert, rule.severity, rule.labels) != (
                later.alert,
                later.severity,
                later.labels,
            ):
                continue
            apart = any(later.match.get(k, v) != v for k, v in rule.match.items()) or bool(
                rule.channels is not None
                and later.channels is not None
                and not set(rule.channels) & set(later.channels)
            )
            if not apart:
                detectors = (
                    f"detector {rule.detector}"
                    if rule.detector == later.detector
                    else f"detectors {rule.detector} and {later.detector}"
                )
                raise ValueError(
                    f"alerts.rules[{j}]: its alerts are also made by alerts.rules[{i}] "
                    f"({rule.alert}, {detectors}): one alert would have two "
                    "states; tell them apart with another alert name, severity or labels, or "
                    "a match on one label with different values"
                )


# --- mute windows ----------------------------------------------------------------------------


class MuteRange(_Model):
    """Local time range ``start``-``end`` (may cross midnight; equal means the whole day),
    optionally only on some weekdays or dates (the day the range starts)."""

    start: time = time(0, 0)
    end: time = time(0, 0)
    weekdays: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = ()
    dates: tuple[str, ...] = ()
    """ISO dates (``2026-12-24``), e.g. holidays; empty = every date."""
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time_of_day(cls, value: object) -> object:
        """``HH:MM`` or ``HH:MM:SS`` text, local to ``timezone``: no number (pydantic would read
        1200 as 00:20) and no UTC offset (a time with one cannot be compared with local
        ones)."""
        if isinstance(value, time):
            return value
        if not isinstance(value, str) or not re.fullmatch(
            r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?", value, re.ASCII
        ):
            raise ValueError(
                "not a time of day: write HH:MM (00:00-23:59, optionally :SS) in quotes, "
                'e.g. "20:00"; the zone is the range\'s timezone'
            )
        return value

    @field_validator("dates")
    @classmethod
    def _dates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", item, re.ASCII) or not _real_date(item):
                raise ValueError(f"{item!r} is not a date like 2026-12-24")
        return value


def _real_date(text: str) -> bool:
    """Whether ``YYYY-MM-DD`` names a day of the calendar (not 2026-02-30)."""
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


# --- receivers -------------------------------------------------------------------------------


def _absolute_or_empty(value: str) -> str:
    """A link base every message carries: empty, or an absolute http(s) URL a browser can
    open, without ``user:password@`` (every page would show it to everyone it reaches)."""
    if not value:
        return value
    if not is_absolute(value):
        raise ValueError("must be empty or an absolute http:// or https:// URL")
    problem = link_problem(value, "every message's links")
    if problem is not None:
        raise ValueError(problem)
    return value


def _exactly_one(model: BaseModel, field: str, *, required: bool) -> None:
    names = (field, f"{field}_file", f"{field}_env")
    given = [name for name in names if getattr(model, name) is not None]
    if len(given) > 1:
        raise ValueError(f"set only one of {', '.join(given)}")
    if required and not given:
        raise ValueError(f"set one of {field}, {field}_file or {field}_env")


def _check_url(model: BaseModel, field: str) -> None:
    """An inline URL must be one httpx can post to (``*_file``/``*_env`` are checked when read
    at start-up). The message names the key, never the URL: it may carry a secret."""
    value: SecretStr | None = getattr(model, field)
    if value is not None:
        problem = url_problem(value.get_secret_value())
        if problem is not None:
            raise ValueError(f"{field}: {problem}")


def _check_token(model: BaseModel, urls: Sequence[SecretStr | None]) -> None:
    """A bearer token (the key that is set is named) written in the config must be a header
    value httpx sends, and no token of any form may sit next to a URL with ``user:password@``."""
    key = next((k for k in _TOKEN_KEYS if getattr(model, k) is not None), None)
    if key is None:
        return
    inline: SecretStr | None = getattr(model, _TOKEN_KEYS[0])
    token = None if inline is None else inline.get_secret_value()
    problem = token_problem(token, [u.get_secret_value() for u in urls if u is not None])
    if problem is not None:
        raise ValueError(f"{key}: {problem}")


_TOKEN_KEYS = ("bearer_token", "bearer_token_file", "bearer_token_env")
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$"
_OWN_HEADERS = frozenset({"content-type", "content-length", "host", "idempotency-key"})


class _ReceiverBase(_Model):
    send_resolved: bool = True
    repeat_interval: Duration = 14400.0
    """A still-firing alert is sent again after this long (0: never)."""
    timeout: Duration = Field(default=10.0, gt=0)
    rate_per_second: float = Field(default=1.0, gt=0)
    """Token bucket: at most this many messages per second per receiver..."""
    burst: int = Field(default=3, ge=1)
    """...with this many allowed back to back."""


class SlackReceiver(_ReceiverBase):
    type: Literal["slack"]
    webhook_url: SecretStr | None = None
    webhook_url_file: SecretFile | None = None
    webhook_url_env: EnvName | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, "webhook_url", required=True)
        _check_url(self, "webhook_url")
        return self


class WebhookReceiver(_ReceiverBase):
    type: Literal["webhook"]
    url: SecretStr | None = None
    url_file: SecretFile | None = None
    url_env: EnvName | None = None
    bearer_token: SecretStr | None = None
    bearer_token_file: SecretFile | None = None
    bearer_token_env: EnvName | None = None
    headers: dict[Annotated[str, Field(pattern=_HEADER_NAME)], SecretStr] = Field(
        default_factory=dict
    )
    """Extra request headers (e.g. an API key); their values are secrets like the URL."""

    @model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, "url", required=True)
        _exactly_one(self, "bearer_token", required=False)
        _check_url(self, "url")
        url = None if self.url is None else self.url.get_secret_value()
        for name, value in self.headers.items():
            lower = name.lower()
            if lower in _OWN_HEADERS or (lower == "authorization" and self.has_token):
                raise ValueError(f"headers.{name}: set by the notifier itself")
            if lower == "authorization" and url is not None and has_userinfo(url):
                raise ValueError(f"headers.{name}: {BASIC_AUTH_CONFLICT}")
            problem = header_value_problem(value.get_secret_value())
            if problem is not None:
                raise ValueError(f"headers.{name}: the value {problem}")
        _check_token(self, (self.url,))
        return self

    @property
    def has_token(self) -> bool:
        return any(getattr(self, name) is not None for name in _TOKEN_KEYS)


Receiver = Annotated[SlackReceiver | WebhookReceiver, Field(discriminator="type")]


class Route(_Model):
    """Alerts whose labels match go to ``receiver``; the first matching route wins unless it
    says ``continue: true``."""

    receiver: Name
    match: dict[LabelName, str] = Field(default_factory=dict)
    match_re: dict[LabelName, str] = Field(default_factory=dict)
    continue_: bool = Field(default=False, validation_alias=AliasChoices("continue", "continue_"))
    group_by: tuple[LabelName, ...] = ("channel",)
    """Alerts with the same values of these labels share one message (one incident, one page)."""
    group_wait: Duration = Field(default=30.0, ge=0)
    """A new group's first message waits this long for the group's other alerts."""
    group_interval: Duration = Field(default=300.0, ge=0)
    """Later changes of a group already paged go out together, at most once per this long."""
    mute: tuple[Name, ...] = ()
    """Names of ``notifiers.mute_windows`` during which this route's notifications are held."""

    @field_validator("match_re")
    @classmethod
    def _regex(cls, value: dict[str, str]) -> dict[str, str]:
        for key, pattern in value.items():
            try:
                compile_regex(pattern)
            except ValueError as exc:
                raise ValueError(f"match_re.{key}: bad regular expression: {exc}") from None
        return value


class AlertmanagerSettings(_Model):
    urls: tuple[SecretStr, ...] = ()
    """Base URLs of every Alertmanager (each gets every alert), e.g. ``http://127.0.0.1:9093``;
    ``http://user:password@host:9093`` sends basic auth. Secrets: never logged or echoed."""
    resend_interval: Duration = Field(default=60.0, gt=0)
    timeout: Duration = Field(default=10.0, gt=0)
    bearer_token: SecretStr | None = None
    bearer_token_file: SecretFile | None = None
    bearer_token_env: EnvName | None = None
    generator_url: str = ""
    """``generatorURL`` of every alert (Alertmanager and the webhook); empty: each alert's
    ``dashboard_url`` annotation (the Grafana channel dashboard), if it has one."""

    @field_validator("generator_url")
    @classmethod
    def _generator(cls, value: str) -> str:
        return _absolute_or_empty(value)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _exactly_one(self, "bearer_token", required=False)
        for i, url in enumerate(self.urls):
            problem = url_problem(url.get_secret_value())
            if problem is not None:
                raise ValueError(f"urls[{i}]: {problem}")
        _check_token(self, ())  # a URL with user:password@ gets basic auth, the others the token
        return self


class NotifierSettings(_Model):
    """``notifiers:`` who gets told, how, and where undelivered notifications are kept."""

    receivers: dict[Name, Receiver] = Field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    mute_windows: dict[Name, tuple[MuteRange, ...]] = Field(default_factory=dict)
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    state_dir: Path | None = None
    """Directory for the outbox and alert state (sqlite); ``None``: memory only, lost on restart."""
    outbox_max: int = Field(default=10_000, ge=1)
    """Undelivered notifications kept at most; when full the oldest are dropped."""
    retry_for: Duration = Field(default=3600.0, gt=0)
    """A notification still failing this long after it was created is dropped."""

    @field_validator("state_dir")
    @classmethod
    def _a_directory(cls, value: Path | None) -> Path | None:
        """As ``state.dir``: a file there would leave the daemon running on memory only."""
        if value is not None and is_directory(value) is False:
            raise ValueError(
                f"{value} is a file, not a directory: the outbox and alert state could not be "
                "stored"
            )
        return value

    def validate_against(self, channels: Mapping[str, Any]) -> None:
        for i, route in enumerate(self.routes):
            if route.receiver not in self.receivers:
                raise ValueError(
                    f"notifiers.routes[{i}].receiver: unknown receiver {route.receiver!r}"
                )
            for name in route.mute:
                if name not in self.mute_windows:
                    raise ValueError(f"notifiers.routes[{i}].mute: unknown mute window {name!r}")
            channel = route.match.get("channel")
            if channel is not None and channel not in channels:
                raise ValueError(
                    f"notifiers.routes[{i}].match.channel: unknown channel {channel!r}"
                )
