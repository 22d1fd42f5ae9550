"""Detector settings: one block per built-in detector plus a list of threshold detectors.

Pydantic checks each field on its own; ``validate_against`` then checks what needs the channels
and windows (a window that does not exist, a channel without a target, a threshold that can never
fire) and raises ``ValueError`` naming the full key, so an ops engineer sees exactly what to fix.
Channels come from ``monitor.config_channel``, the bottom of the settings tree; ``monitor.config``
composes this module's ``DetectorSettings`` into ``Settings``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from support_monitor.detectors.share_cusum_config import (
    ServiceLevelCusumSettings,
    ShareCusumSettings,
)
from support_monitor.detectors.voice_config import (
    VOICE_NAMES,
    ContainmentDropSettings,
    NegativeSentimentSettings,
    NpsDropSettings,
)
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.config_helpdesk import ZoneName
from support_monitor.monitor.durations import Duration, parse_duration

Op = Literal[">", ">=", "<", "<="]
Aggregate = Literal["max", "min", "sum"]
ChannelName = str

BUILTIN_NAMES = (
    "sla_burn",
    "complaint_spike",
    "backlog_growth",
    "tickets_at_risk",
    "understaffing",
    "estimated_wait",
    *VOICE_NAMES,
)

# ---------------------------------------------------------------------- the metric contract
# Gauges a threshold detector may watch (metrics.md). Counters only grow, histograms are
# distributions: neither has a value a threshold could meaningfully judge at one instant.


class MetricInfo:
    """What the threshold detector needs to know about one gauge of the contract."""

    __slots__ = ("kind", "needs", "ratio", "volume")

    def __init__(
        self,
        kind: Literal["live", "windowed"],
        needs: Literal["live", "tickets", "any"],
        *,
        ratio: bool = False,
        volume: str | None = None,
    ) -> None:
        self.kind = kind
        self.needs = needs
        """Which channels ever have a value: live-contact channels, ticket channels, or all."""
        self.ratio = ratio
        self.volume = volume
        """How the minimum-volume guard counts: ``offered``, ``answered`` or ``ratings``."""


METRICS: dict[str, MetricInfo] = {
    "support_queue_waiting": MetricInfo("live", "live"),
    "support_queue_oldest_wait_seconds": MetricInfo("live", "live"),
    "support_queue_breached_waiting": MetricInfo("live", "live"),
    "support_tickets_open": MetricInfo("live", "tickets"),
    "support_tickets_at_risk": MetricInfo("live", "tickets"),
    "support_service_level_ratio": MetricInfo("windowed", "live", ratio=True, volume="offered"),
    "support_abandon_ratio": MetricInfo("windowed", "live", ratio=True, volume="offered"),
    "support_wait_quantile_seconds": MetricInfo("windowed", "live", volume="answered"),
    "support_csat_ratio": MetricInfo("windowed", "any", ratio=True, volume="ratings"),
    "support_complaints_window": MetricInfo("windowed", "any"),
}
COUNTERS = (
    "support_contacts_queued_total",
    "support_contacts_answered_total",
    "support_contacts_answered_in_sla_total",
    "support_contacts_abandoned_total",
    "support_contacts_abandoned_short_total",
    "support_contacts_abandoned_in_sla_total",
    "support_sla_breaches_total",
    "support_tickets_created_total",
    "support_tickets_solved_total",
    "support_csat_ratings_total",
    "support_complaints_total",
)
SECONDS_GAUGES = ("support_queue_oldest_wait_seconds", "support_wait_quantile_seconds")
"""Gauges in seconds: a threshold on them may be relative to each channel's answer target."""
QUANTILES = ("0.5", "0.9", "0.99")
SLAS = ("first_response", "next_reply", "resolution")
"""The ticket clocks (the ``sla`` label of ``support_tickets_at_risk``), in the engine's order."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _live(ch: ChannelSettings) -> bool:
    return ch.answer_seconds is not None


def _tickets(ch: ChannelSettings) -> bool:
    return ch.first_response_seconds is not None or ch.resolution_seconds is not None


def _scope(
    key: str,
    wanted: Sequence[str],
    channels: Mapping[str, ChannelSettings],
    fits: Callable[[ChannelSettings], bool],
    why: str,
) -> list[str]:
    """The channels a detector runs on: the named ones (each must fit) or every one that fits."""
    if not wanted:
        return [name for name, ch in channels.items() if fits(ch)]
    for name in wanted:
        if name not in channels:
            raise ValueError(
                f"{key}.channels: {name!r} is not a configured channel "
                f"(channels: {sorted(channels)})"
            )
        if not fits(channels[name]):
            raise ValueError(f"{key}.channels: {name!r} {why}")
    return list(wanted)


SHORTEST, LONGEST = "shortest", "longest"
"""Window aliases: the shortest / longest configured window. The defaults use them, so a config
that declares other windows than ``5m`` and ``1h`` keeps working without a detectors block."""


def resolve_window(name: str, windows: Iterable[str]) -> str:
    """A configured window name for ``name`` (``shortest``/``longest`` resolved)."""
    if name not in (SHORTEST, LONGEST):
        return name
    pick = min if name == SHORTEST else max
    sliding = [w for w in windows if w != "today"]  # the day so far is not a sliding window
    return pick(sliding, key=parse_duration)


def _window(key: str, name: str, windows: Sequence[str]) -> None:
    if name not in windows and name not in (SHORTEST, LONGEST):
        raise ValueError(
            f"{key}: {name!r} is not a configured window (windows: {list(windows)}; "
            f"or {SHORTEST!r} / {LONGEST!r})"
        )


# ---------------------------------------------------------------------- threshold


class SustainedLevel(_Model):
    """A second, lower level a live threshold also fires on once the value stays past it: the
    condition ``metric op value`` has held for at least ``share`` of the last ``over`` seconds
    (and holds now). It then stays active until the condition held for less than a quarter of
    the last ``release`` seconds (``detectors/sustain.py``). For a value that flickers around a
    level during an incident, such as the oldest wait while customers keep being answered
    late: the threshold's own level needs one customer to wait that long."""

    value: float = Field(ge=0)
    """In the threshold's units: seconds, or multiples of T with the threshold's
    ``relative_to`` (its ``floor`` does not apply)."""
    share: float = Field(default=0.6, gt=0, le=1)
    over: Duration = Field(default=300.0, gt=0)
    release: Duration = Field(default=300.0, ge=0)

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class ThresholdSettings(_Model):
    """``metric op value`` on one gauge of the metric contract, per channel (or per queue)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    """Detector instance name: the ``detector`` label and what alert rules refer to."""
    enabled: bool = True
    """``false``: the detector does not run (and the alerts built on it never fire); how a
    default threshold is switched off."""
    metric: str
    op: Op
    value: float
    recover: float | None = None
    """Hysteresis: once active, stays active until ``metric op recover`` stops holding."""
    window: str | None = None
    """Required for windowed gauges (``support_service_level_ratio`` ...), refused for live ones."""
    quantile: Literal["0.5", "0.9", "0.99"] | None = None
    """Required for ``support_wait_quantile_seconds``."""
    sla: Literal["first_response", "next_reply", "resolution"] | None = None
    """For ``support_tickets_at_risk``: one SLA, or every SLA aggregated when unset."""
    per_queue: bool = False
    """Live gauges: one signal per queue (label ``queue``) instead of one per channel."""
    aggregate: Aggregate | None = None
    """How queues (and SLAs) combine into the channel value; default max for > and >=, min for <
    and <=."""
    min_volume: int | None = Field(default=None, ge=0)
    """Ratio and quantile gauges: inactive below this many contacts (offered = answered +
    abandoned - short abandoned; answered for quantiles; ratings for CSAT) in the window."""
    channels: tuple[ChannelName, ...] = ()
    """Empty: every channel on which the metric has a value."""
    confidence: float | None = Field(default=None, gt=0.5, lt=1)
    """Ratio gauges: a statistical volume guard. ``>``/``>=`` fire only while the window's
    one-sided Wilson lower bound at this confidence is past ``value`` (``<``/``<=``: the upper
    bound), so a ratio of a few contacts is never enough. Recovery (``recover``) is judged on
    the ratio itself."""
    relative_to: Literal["answer_seconds"] | None = None
    """Seconds gauges: ``value`` and ``recover`` are multiples of each channel's
    ``answer_seconds`` (T) instead of seconds."""
    floor: float = Field(default=0, ge=0)
    """With ``relative_to``: a channel's threshold is at least this many seconds (its recover
    level scales with it)."""
    cusum: ShareCusumSettings | None = None
    """``support_csat_ratio`` with ``<``/``<=`` only: also active while a binomial CUSUM on the
    share of unsatisfied ratings (1-3) against its learnt hour-of-week share is
    (``detectors/share_cusum.py``); none: the threshold alone."""
    sustained: SustainedLevel | None = None
    """Live gauges, one signal per channel (no ``per_queue``): also active while a lower level
    has held for most of the last minutes (:class:`SustainedLevel`); none: the level alone."""
    service_level_evidence: float | None = Field(default=None, gt=0.5, lt=1)
    """Live gauges of channels with live contacts: while at most two customers of the channel
    wait past T and the value is below twice its level, judged only if the channel's service
    level over the shortest window (on fewer than 10 contacts there: and over the longest) is
    shown below its ``service_level_target`` at this confidence (the one-sided Wilson upper
    bound of answered in SLA of offered, the customers waiting past T counted as late, is under
    the target), or nothing was offered nor waits past T. A lone customer waiting long while the
    others are answered on time is then no page until the wait reaches twice the level; none:
    no such condition."""

    def sustained_level(self, answer_seconds: float | None) -> float | None:
        """The ``sustained`` level for a channel (scaled by its T with ``relative_to``)."""
        arm = self.sustained
        if arm is None:
            return None
        if self.relative_to is None or answer_seconds is None:
            return arm.value
        return arm.value * answer_seconds

    def levels(self, answer_seconds: float | None) -> tuple[float, float | None]:
        """(value, recover) for a channel: as configured, or scaled by its T (``relative_to``)
        and floored at ``floor`` (``recover`` keeps its ratio to ``value``)."""
        if self.relative_to is None or answer_seconds is None:
            return self.value, self.recover
        value = max(self.value * answer_seconds, self.floor)
        if self.recover is None:
            return value, None
        return value, value * (self.recover / self.value if self.value else 1.0)

    @field_validator("quantile", mode="before")
    @classmethod
    def _quantile_text(cls, v: object) -> object:
        """``quantile: 0.9`` as YAML writes it unquoted (a number) means the label "0.9"."""
        if isinstance(v, float):
            return repr(v)
        return v

    @field_validator("value", "recover")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @property
    def upward(self) -> bool:
        return self.op in (">", ">=")

    @property
    def effective_aggregate(self) -> Aggregate:
        if self.aggregate is not None:
            return self.aggregate
        return "max" if self.upward else "min"

    @property
    def effective_min_volume(self) -> int:
        if self.min_volume is not None:
            return self.min_volume
        info = METRICS.get(self.metric)
        return 10 if info is not None and info.volume is not None else 0

    def check(  # noqa: C901, PLR0912
        self, key: str, channels: Mapping[str, ChannelSettings], windows: Sequence[str]
    ) -> list[str]:
        info = METRICS.get(self.metric)
        if info is None:
            if self.metric in COUNTERS or self.metric.endswith("_total"):
                raise ValueError(
                    f"{key}.metric: {self.metric!r} is a counter (it only grows); watch a "
                    "windowed gauge such as support_service_level_ratio instead"
                )
            raise ValueError(
                f"{key}.metric: {self.metric!r} is not a gauge of the metric contract "
                f"(one of: {', '.join(sorted(METRICS))})"
            )
        if info.kind == "windowed":
            if self.window is None:
                raise ValueError(f"{key}.window: {self.metric} is windowed; name a window")
            _window(f"{key}.window", self.window, windows)
            if self.per_queue:
                raise ValueError(f"{key}.per_queue: {self.metric} has no queue label")
        elif self.window is not None:
            raise ValueError(f"{key}.window: {self.metric} is a live gauge, not windowed")
        if (self.metric == "support_wait_quantile_seconds") != (self.quantile is not None):
            raise ValueError(
                f"{key}.quantile: set it (0.5, 0.9 or 0.99) for support_wait_quantile_seconds "
                "and only there"
            )
        if self.sla is not None and self.metric != "support_tickets_at_risk":
            raise ValueError(f"{key}.sla: only support_tickets_at_risk has an sla label")
        if self.confidence is not None and not info.ratio:
            raise ValueError(
                f"{key}.confidence: {self.metric} is not a ratio; a statistical guard needs k "
                "of n contacts"
            )
        if self.relative_to is not None and self.metric not in SECONDS_GAUGES:
            raise ValueError(
                f"{key}.relative_to: {self.metric} is not in seconds (one of: "
                f"{', '.join(SECONDS_GAUGES)})"
            )
        if self.floor and self.relative_to is None:
            raise ValueError(f"{key}.floor: only with relative_to (a floor for T multiples)")
        if self.cusum is not None and (self.metric != "support_csat_ratio" or self.upward):
            raise ValueError(
                f"{key}.cusum: only support_csat_ratio with op '<' or '<=' has a CUSUM (on the "
                "share of unsatisfied ratings)"
            )
        if self.min_volume is not None and info.volume is None:
            raise ValueError(
                f"{key}.min_volume: {self.metric} is not a ratio or quantile; it has no volume"
            )
        self._check_sustained(key, info.kind)
        live_contacts = info.kind == "live" and info.needs == "live"
        if self.service_level_evidence is not None and not live_contacts:
            raise ValueError(
                f"{key}.service_level_evidence: only a live gauge of live contacts (waiting, "
                "oldest wait, breached waiting) is judged against the service level"
            )
        value = self.value
        if info.ratio and not 0 <= value <= 1:
            raise ValueError(f"{key}.value: {value} is outside 0..1; {self.metric} is a ratio")
        if value < 0:
            raise ValueError(f"{key}.value: {value} is negative; {self.metric} never is")
        self._check_never(key, info.ratio)
        if self.recover is not None:
            rec = self.recover
            if (self.upward and rec > value) or (not self.upward and rec < value):
                side = "at or below" if self.upward else "at or above"
                raise ValueError(
                    f"{key}.recover: {rec} is on the wrong side; with op {self.op!r} it must be "
                    f"{side} value {value}"
                )
            if info.ratio and not 0 <= rec <= 1:
                raise ValueError(f"{key}.recover: {rec} is outside 0..1; {self.metric} is a ratio")
        fits, why = {
            "live": (_live, "has no answer_seconds: it has no live contacts"),
            "tickets": (_tickets, "has no ticket SLA (first_response_seconds/resolution_seconds)"),
            "any": (lambda _ch: True, ""),
        }[info.needs]
        if self.sla is not None:
            attr = f"{self.sla}_seconds"
            fits, why = (lambda ch: getattr(ch, attr) is not None), f"has no {attr}"
        return _scope(key, self.channels, channels, fits, f"{why}; {self.metric} is never set")

    def never_set(self) -> str:
        """Why no channel sets the metric, for a threshold whose scope came out empty."""
        if self.sla is not None:
            return f"no channel has {self.sla}_seconds"
        return {
            "live": "no channel has answer_seconds (live contacts)",
            "tickets": "no channel has a ticket SLA (first_response_seconds/resolution_seconds)",
        }.get(METRICS[self.metric].needs, "no channel")

    def _check_never(self, key: str, ratio: bool) -> None:
        """Refuse a ``value`` no reading can pass (with ``confidence``: no Wilson bound can)."""
        value = self.value
        never = (self.op == "<" and value <= 0) or (ratio and self.op == ">" and value >= 1)
        if never:
            raise ValueError(f"{key}.value: {self.metric} {self.op} {value} can never fire")
        if self.confidence is None:
            return
        if (self.op == "<=" and value <= 0) or (self.op == ">=" and value >= 1):
            side = "upper bound is above 0" if value <= 0 else "lower bound is below 1"
            raise ValueError(
                f"{key}.value: {self.metric} {self.op} {value:g} with confidence can never fire: "
                f"the Wilson {side} whatever the counts"
            )

    def _check_sustained(self, key: str, kind: str) -> None:
        arm = self.sustained
        if arm is None:
            return
        if kind != "live" or self.per_queue:
            raise ValueError(
                f"{key}.sustained: only a live gauge judged per channel (no per_queue) has a "
                "sustained level"
            )
        if (self.upward and arm.value >= self.value) or (
            not self.upward and arm.value <= self.value
        ):
            side = "below" if self.upward else "above"
            raise ValueError(
                f"{key}.sustained.value: {arm.value:g} must be {side} value {self.value:g} "
                "(the level alone already fires there)"
            )
        if self.op == "<" and arm.value <= 0:
            raise ValueError(f"{key}.sustained.value: {self.metric} < 0 can never fire")


# ---------------------------------------------------------------------- SLA burn rate


class BurnWindow(_Model):
    """One multi-window condition: both windows must burn at least ``burn_rate``."""

    long: str
    short: str
    burn_rate: float = Field(gt=0)
    severity: str = Field(default="page", pattern=r"^[a-z][a-z0-9_]{0,31}$")
    """A hint for alert rules (``page``, ``ticket``); also the ``severity`` label of the signal."""
    confidence: float | None = Field(default=None, gt=0.5, lt=1)
    """With a confidence the pair also needs evidence: in each of its windows the one-sided
    Wilson upper bound of the service level (in SLA of offered) at this confidence must be below
    the level the burn rate stands for, 1 - burn_rate x (1 - target). Such a pair may name one
    window twice: a single-window burn rate that a handful of missed contacts cannot trip."""
    cusum: bool = False
    """Also active while the channel's service-level CUSUM (``sla_burn.cusum``) is: a drop
    too gradual for the windows to show yet (set on the default 5-minute pair)."""


def _default_burn_windows() -> tuple[BurnWindow, ...]:
    # With an 80% target the budget is 20% of contacts and the highest possible burn rate is 5:
    # 2.0 means SL <= 60% over the hour and the last 5 minutes; 1.5 means SL <= 70%. The third
    # pair judges the short window alone, on evidence: SL <= 40% shown at 99.99% (0 of 21 or
    # more within T), a collapse the hour does not show yet (docs/detectors.md, "SLA burn
    # rate"). A channel whose target puts 3.0 past the ceiling gets it capped there, where no
    # bound can pass: the pair is then active on the service-level CUSUM alone (cusum: true,
    # sla_burn.cusum), which also pages a drop to about half the usual service level that
    # several windows show together and one window cannot.
    return (
        BurnWindow(long=LONGEST, short=SHORTEST, burn_rate=2.0, severity="page"),
        BurnWindow(long=LONGEST, short=SHORTEST, burn_rate=1.5, severity="ticket"),
        BurnWindow(
            long=SHORTEST,
            short=SHORTEST,
            burn_rate=3.0,
            severity="page",
            confidence=0.9999,
            cusum=True,
        ),
    )


def _sliding(key: str, window: str) -> None:
    if window == "today":
        raise ValueError(f"{key}: 'today' is not a sliding window")


class SlaBurnSettings(_Model):
    """Multi-window burn rate of each live channel's service-level objective."""

    enabled: bool = True
    windows: tuple[BurnWindow, ...] = Field(default_factory=_default_burn_windows, min_length=1)
    min_volume: int = Field(default=10, ge=0)
    """Both windows need at least this many offered contacts (answered + long abandons)."""
    channels: tuple[ChannelName, ...] = ()
    """Empty: every channel with a ``service_level_target``."""
    cusum: ServiceLevelCusumSettings | None = ServiceLevelCusumSettings()
    """The service-level CUSUM the pairs with ``cusum: true`` are also active on
    (``detectors/sl_cusum.py``); null: none."""

    def check(
        self, key: str, channels: Mapping[str, ChannelSettings], windows: Sequence[str]
    ) -> list[str]:
        scoped = _scope(
            key,
            self.channels,
            channels,
            lambda ch: _live(ch) and ch.service_level_target is not None,
            "has no service_level_target (and answer_seconds): no SLO to burn",
        )
        seen: set[tuple[str, str, str]] = set()
        for i, pair in enumerate(self.windows):
            pkey = f"{key}.windows[{i}]"
            _window(f"{pkey}.long", pair.long, windows)
            _window(f"{pkey}.short", pair.short, windows)
            long_name = resolve_window(pair.long, windows)
            short_name = resolve_window(pair.short, windows)
            _sliding(f"{pkey}.long", long_name)
            _sliding(f"{pkey}.short", short_name)
            if pair.cusum and self.cusum is None and "windows" in self.model_fields_set:
                raise ValueError(
                    f"{pkey}.cusum: true, but {key}.cusum is null: there is no service-level "
                    "CUSUM to be active on; set cusum: false on the pair or configure "
                    f"{key}.cusum"
                )
            labels = (long_name, short_name, pair.severity)  # aliases resolved: the labels
            if labels in seen and "windows" in self.model_fields_set:
                raise ValueError(f"{pkey}: repeats another pair with the same windows and severity")
            seen.add(labels)  # a repeated default (one window configured) is judged once
            if parse_duration(long_name) < parse_duration(short_name):
                raise ValueError(
                    f"{pkey}: long window {pair.long!r} must not be shorter than {pair.short!r}"
                )
            if "windows" not in self.model_fields_set:
                # The defaults are capped per channel at run time (see burn.py). With one
                # configured window both of their aliases name it: a single-window burn rate.
                continue
            if long_name == short_name and pair.confidence is None:
                raise ValueError(
                    f"{pkey}.short: {pair.short!r} is the same window as long {pair.long!r} "
                    f"({long_name!r}): a burn-rate pair needs two distinct windows, or one "
                    "window with a confidence (a single-window burn rate judged on evidence); "
                    "declare a second one in windows, set confidence, or leave "
                    "detectors.sla_burn.windows at its default"
                )
            for name in scoped:
                target = channels[name].service_level_target
                assert target is not None
                ceiling = max_burn_rate(target)
                if pair.burn_rate > ceiling * (1 + 1e-9):
                    raise ValueError(
                        f"{pkey}.burn_rate: {pair.burn_rate:g} can never fire: with "
                        f"service_level_target {target:g} the highest possible burn rate is "
                        f"{round(ceiling, 6)} (channel {name!r})"
                    )
                if pair.confidence is not None and pair.burn_rate >= ceiling * (1 - 1e-9):
                    raise ValueError(
                        f"{pkey}.burn_rate: {pair.burn_rate:g} with confidence can never fire: "
                        f"with service_level_target {target:g} it stands for a service level of "
                        f"0, and the Wilson upper bound is always above 0 (channel {name!r})"
                    )
        return scoped


BURN_DIGITS = 12
"""Burn rates are compared rounded to this many decimals: ``(1 - 0.4) / (1 - 0.7)`` is
1.9999999999999996 as floats, and a burn of exactly 2 must reach a ``burn_rate`` of 2."""


def max_burn_rate(target: float) -> float:
    """Burn rate when every contact misses: error ratio 1 over the budget ``1 - target``
    (rounded as burn rates are compared)."""
    return round(1.0 / (1.0 - target), BURN_DIGITS)


# ---------------------------------------------------------------------- complaint spike


class ComplaintSpikeSettings(_Model):
    """Poisson tail test of windowed complaint counts against a seasonal hour-of-week baseline."""

    enabled: bool = True
    window: str = SHORTEST
    """Counts are judged over this configured window; the baseline learns one sample per
    non-overlapping window-length period."""
    alpha: float = Field(default=1e-5, gt=0, lt=0.5)
    """Significance: active when P(X >= observed | expected) < alpha."""
    min_count: int = Field(default=5, ge=1)
    min_ratio: float = Field(default=2.0, ge=1)
    """Observed must also be at least this multiple of expected."""
    prior_per_hour: float = Field(default=6.0, ge=0)
    """Expected complaints per hour per series before anything is learned."""
    warmup_samples: int = Field(default=6, ge=1)
    """A slot (or the global mean) needs this many samples before it is trusted on its own;
    before that it is blended with the fallback."""
    slot_weight: float = Field(default=0.2, gt=0, le=1)
    """EWMA weight of the newest sample in an hour-of-week slot (after its running mean)."""
    relearn_after: int = Field(default=24, ge=0)
    """A warmed-up slot skips flagged periods, but after this many in a row it learns them: the
    level has shifted for good (24 = two weeks of a shift lasting the whole hour, 5m windows)."""
    global_weight: float = Field(default=0.02, gt=0, le=1)
    """EWMA weight of the newest sample in the all-hours mean, the warm-up fallback."""
    timezone: ZoneName = "UTC"
    """Hour-of-week slots are in this IANA time zone (business hours are local)."""
    by_category: bool = True
    """Also judge each complaint category (bounded by ``ingest.complaint_categories``)."""
    cusum_ratio: float = Field(default=4.0, gt=1)
    """The channel total also runs a Poisson CUSUM tuned for a rise to this multiple of the
    expected rate: each complaint adds ln(ratio), each second takes (ratio - 1) x the expected
    rate per second away, floored at 0 (sustained spikes too small for one window)."""
    cusum_threshold: float = Field(default=10.0, ge=0)
    """The CUSUM is active while its statistic is at or above this (0: no CUSUM). It is capped
    at this + ln(ratio), so it stops soon after the spike does."""
    cusum_fast_ratio: float = Field(default=8.0, gt=1)
    """A second CUSUM on the channel total, tuned for a larger rise (the same code and baseline
    rules, its own baseline): a large rise on a quiet channel (email, 4 an hour) reaches the
    threshold with fewer complaints than the 4x CUSUM needs."""
    cusum_fast_threshold: float = Field(default=9.0, ge=0)
    """The second CUSUM is active at or above this (0: none), capped at this + ln(ratio)."""
    channels: tuple[ChannelName, ...] = ()

    def check(
        self, key: str, channels: Mapping[str, ChannelSettings], windows: Sequence[str]
    ) -> list[str]:
        _window(f"{key}.window", self.window, windows)
        return _scope(key, self.channels, channels, lambda _ch: True, "")


# ---------------------------------------------------------------------- backlog growth


class BacklogGrowthSettings(_Model):
    """Warns before the oldest waiting contact breaches T while the queue is growing."""

    enabled: bool = True
    window: str = SHORTEST
    """Arrivals vs answers + abandons are compared over this configured window."""
    horizon: Duration | None = None
    """Active when the projected breach is this close; default half of ``answer_seconds``."""
    rate_window: Duration | None = Field(default=None, gt=0)
    """The oldest wait's growth rate is the least-squares slope over this much recent history;
    default ``answer_seconds``."""
    min_waiting: int = Field(default=1, ge=1)
    recover_fraction: float | None = Field(default=None, ge=0, le=1)
    """Hysteresis (none by default): once active, the signal stays active while at least
    ``min_waiting`` wait and the oldest wait is at least this fraction of T, whatever the slope
    does meanwhile (the slope of a queue whose head is answered now and then swings around 0)."""
    sustain: Duration = Field(default=300.0, ge=0)
    """The condition (projection, hysteresis or surge) must hold at every tick for this long
    before the signal is active (0: active at the first tick it holds). The detector applies
    its own persistence so that the many approaches of a waiting customer to T on healthy
    traffic, each a few seconds long, do not show as pending alerts; the default rule has no
    ``for`` of its own."""
    release: Duration = Field(default=1200.0, ge=0)
    """Once active, the signal stays active until the condition held for less than a quarter of
    the last ``release`` seconds (0: inactive at the first tick it does not hold): 15 minutes
    after a clean stop, and minutes after an incident whose aftermath still trips the
    condition now and then (``detectors/sustain.py``)."""
    surge_ratio: float = Field(default=1.4, gt=1)
    """Arrivals outpacing answers: a Poisson CUSUM on the channel's queued contacts, tuned for
    this multiple of the usual hour-of-week rate (``complaint_cusum.py``, the same code as the
    complaint CUSUM). Not judged in an hour of the day it has not learned yet (the first day)."""
    surge_threshold: float = Field(default=8.0, ge=0)
    """The surge CUSUM is active at or above this (0: no surge CUSUM), and then stays active
    until it falls below half of it."""
    surge_min_wait: float = Field(default=0.5, ge=0, le=1)
    """A surge counts only while at least ``min_waiting`` contacts wait and the oldest has
    waited this fraction of T (0: whatever the queue): more arrivals that are answered at once
    are no backlog. Without it the surge CUSUM alone paged healthy Poisson traffic 14-22 times
    a channel-week (an independent test, docs/detectors.md)."""
    surge_service_window: str | None = LONGEST
    """A surge also counts while the service level over this configured window (answered in
    SLA of offered) is below the channel's ``service_level_target``: with short patience the
    extra contacts give up instead of queueing, so the queue above stays short while the
    service level falls (null: only the queue counts; a channel without a target: likewise)."""
    channels: tuple[ChannelName, ...] = ()

    def horizon_for(self, ch: ChannelSettings) -> float:
        assert ch.answer_seconds is not None
        return self.horizon if self.horizon is not None else ch.answer_seconds / 2

    def rate_window_for(self, ch: ChannelSettings) -> float:
        assert ch.answer_seconds is not None
        return self.rate_window if self.rate_window is not None else ch.answer_seconds

    def check(
        self, key: str, channels: Mapping[str, ChannelSettings], windows: Sequence[str]
    ) -> list[str]:
        _window(f"{key}.window", self.window, windows)
        if self.surge_service_window is not None:
            skey = f"{key}.surge_service_window"
            _window(skey, self.surge_service_window, windows)
            _sliding(skey, resolve_window(self.surge_service_window, windows))
        scoped = _scope(
            key, self.channels, channels, _live, "has no answer_seconds: it has no live queue"
        )
        for name in scoped:
            answer = channels[name].answer_seconds
            assert answer is not None
            if self.horizon is not None and self.horizon >= answer:
                raise ValueError(
                    f"{key}.horizon: {self.horizon:g} s is not shorter than {name}'s "
                    f"answer_seconds {answer:g} s: every waiting contact would be about to breach"
                )
        return scoped


# ---------------------------------------------------------------------- tickets at risk


class TicketsAtRiskSettings(_Model):
    """Open tickets inside the warning lead time of a deadline, per ticket channel and SLA."""

    enabled: bool = True
    min_count: int = Field(default=4, ge=1)
    """Active at this many tickets at risk per SLA. 4: above every count of healthy benchmark
    traffic (30 tickets an hour at the peak), which reached 2 for first response and 3 for
    resolution (docs/detectors.md)."""
    drought_ratio: float = Field(default=0.1, gt=0, lt=1)
    """First responses drying up: a Poisson CUSUM on the channel's first responses (the count
    of ``support_first_response_seconds``), tuned for a drop to this fraction of the usual
    hour-of-week rate (``complaint_cusum.py``, the code of the complaint and arrival CUSUMs,
    with the usual rate erring one standard error low). An at-risk count cannot see a stop
    before the lead window starts; the CUSUM sees the responses that do not come. Judged only
    while at least ``min_count`` open tickets wait for their first response and ``min_count``
    were created in the longest window, and not in an hour of the day it has not learned yet
    (the first day)."""
    drought_threshold: float = Field(default=11.0, ge=0)
    """The first-response signal is also active while the drought CUSUM is at or above this
    (0: no drought CUSUM), held until it falls below half of it."""
    channels: tuple[ChannelName, ...] = ()

    def check(
        self, key: str, channels: Mapping[str, ChannelSettings], windows: Sequence[str]
    ) -> list[str]:
        del windows
        return _scope(
            key,
            self.channels,
            channels,
            _tickets,
            "has no ticket SLA (first_response_seconds/resolution_seconds)",
        )


# ---------------------------------------------------------------------- staffing (Erlang C)


class _StaffingModel(_Model):
    """What the understaffing and estimated-wait detectors share: the Erlang C inputs they
    compute per live channel with agent events (``detectors/staffing.py``)."""

    enabled: bool = True
    rate_windows: tuple[str, ...] = Field(default=(SHORTEST, LONGEST), min_length=1)
    """The arrival rate is the lowest of the channel's queued-per-second rates over these
    windows (the 5 m count alone swings the prediction; the 1 h one lags the daily curve)."""
    handle_window: str = LONGEST
    """Mean handle time (talk + after-call work per ended contact) over this window."""
    min_arrivals: int = Field(default=30, ge=1)
    """Volume guard: not judged while fewer contacts than this were queued in the channel's
    longest window."""
    channels: tuple[ChannelName, ...] = ()

    def _check_windows(self, key: str, windows: Sequence[str]) -> None:
        for i, name in enumerate(self.rate_windows):
            _window(f"{key}.rate_windows[{i}]", name, windows)
            if name == "today":
                raise ValueError(f"{key}.rate_windows[{i}]: 'today' is not a sliding window")
        _window(f"{key}.handle_window", self.handle_window, windows)
        if self.handle_window == "today":
            raise ValueError(f"{key}.handle_window: 'today' is not a sliding window")

    def _live_scope(self, key: str, channels: Mapping[str, ChannelSettings]) -> list[str]:
        return _scope(
            key, self.channels, channels, _live, "has no answer_seconds: it has no live queue"
        )


class UnderstaffingSettings(_StaffingModel):
    """Agents on a live channel well below what Erlang C requires for its service level."""

    rate_windows: tuple[str, ...] = Field(default=(SHORTEST,), min_length=1)
    """The arrival rate: as for ``estimated_wait``, but the shortest window alone by default
    (the ``ratio`` margin and ``sustain`` absorb its noise; the longest window would see a
    morning ramp an hour late)."""
    ratio: float = Field(default=0.6, gt=0, le=1)
    """Active when the agents on the channel are fewer than ``ratio`` x agents required ..."""
    min_shortfall: int = Field(default=2, ge=1)
    """... and at least this many agents short."""
    recover_ratio: float = Field(default=0.7, gt=0, le=1)
    """Hysteresis: once active, stays active until the agents reach ``recover_ratio`` x
    required (or the shortfall is gone, or the volume guard stops judging)."""
    sustain: Duration = Field(default=1200.0, ge=0)
    """The condition must hold at every tick this long before the signal is active; the
    default ``Understaffed`` rule has no ``for`` of its own (as ``backlog_growth.sustain``)."""
    release: Duration = Field(default=1200.0, ge=0)
    """Then active until the condition held for less than a quarter of the last ``release``
    seconds (as ``backlog_growth.release``)."""

    def check(
        self, key: str, channels: Mapping[str, ChannelSettings], windows: Sequence[str]
    ) -> list[str]:
        self._check_windows(key, windows)
        if self.recover_ratio < self.ratio:
            raise ValueError(
                f"{key}.recover_ratio: {self.recover_ratio:g} is below ratio {self.ratio:g}; it "
                "must be at or above it (it is the level at which an active signal recovers)"
            )
        return self._live_scope(key, channels)


class EstimatedWaitSettings(_StaffingModel):
    """Erlang C estimated wait of a contact arriving now above a multiple of the answer target."""

    multiple: float = Field(default=5.0, gt=0)
    """Active when the estimated wait exceeds ``multiple`` x the channel's answer_seconds
    (+Inf, an overloaded queue, always does)."""
    recover_multiple: float | None = Field(default=None, gt=0)
    """Hysteresis: once active, stays active until the estimate is at or below this multiple of
    T; default 0.75 x ``multiple``."""
    sustain: Duration = Field(default=1500.0, ge=0)
    """The condition must hold at every tick this long before the signal is active; the
    default ``EstimatedWaitHigh`` rule has no ``for`` of its own (as
    ``backlog_growth.sustain``)."""
    release: Duration = Field(default=1200.0, ge=0)
    """Then active until the condition held for less than a quarter of the last ``release``
    seconds (as ``backlog_growth.release``)."""

    @property
    def effective_recover(self) -> float:
        return self.recover_multiple if self.recover_multiple is not None else self.multiple * 0.75

    def check(
        self, key: str, channels: Mapping[str, ChannelSettings], windows: Sequence[str]
    ) -> list[str]:
        self._check_windows(key, windows)
        if self.recover_multiple is not None and self.recover_multiple > self.multiple:
            raise ValueError(
                f"{key}.recover_multiple: {self.recover_multiple:g} is above multiple "
                f"{self.multiple:g}; it must be at or below it"
            )
        return self._live_scope(key, channels)


# ---------------------------------------------------------------------- the whole block


def _default_thresholds() -> tuple[ThresholdSettings, ...]:
    # Measured on the detection benchmark (docs/benchmarks.md): 4 x T with a 120 s floor is
    # quiet on healthy chat (T = 60 s, some chats wait 150 s+ a few times a day) and pages a
    # staffing collapse in 5-12 minutes; ratio alerts need 99.9% Wilson evidence, because
    # abandons and bad ratings come in clusters (one bad queue episode) and are over-dispersed.
    return (
        ThresholdSettings(
            name="longest_wait",
            metric="support_queue_oldest_wait_seconds",
            op=">",
            value=4,
            recover=3,
            relative_to="answer_seconds",
            floor=120,
            # a collapse: waits past 3 x T most of the time, rarely one customer past the floor
            sustained=SustainedLevel(value=3, share=0.6, over=300.0, release=300.0),
            # a lone customer waiting long while the others are answered on time (over the last
            # 5 minutes, or the hour when 5 minutes hold few contacts): no incident until the
            # wait reaches twice the level
            service_level_evidence=0.999,
        ),
        ThresholdSettings(
            name="abandon_rate",
            metric="support_abandon_ratio",
            window=LONGEST,
            op=">",
            value=0.2,
            recover=0.15,
            min_volume=20,
            confidence=0.999,
        ),
        ThresholdSettings(
            name="csat_low",
            metric="support_csat_ratio",
            window=LONGEST,
            op="<",
            value=0.8,
            recover=0.82,
            min_volume=20,
            confidence=0.999,
            cusum=ShareCusumSettings(),
        ),
    )


def merge_thresholds(value: object) -> object:
    """``detectors.thresholds`` as given, then every default threshold the list does not name.

    An entry named like a default (``longest_wait``, ``abandon_rate``, ``csat_low``) replaces
    that default as written (no key is inherited: ``relative_to`` or ``confidence`` would
    silently change what ``value`` means); ``{name: csat_low, enabled: false}`` switches a
    default off without repeating its keys. Configured entries keep their positions, so errors
    name the index the user wrote. An empty list means no thresholds at all, defaults included.
    Anything but a list is left to the field's own validation."""
    if not isinstance(value, (list, tuple)) or not value:
        return value
    defaults = {t.name: t for t in _default_thresholds()}
    out: list[object] = []
    named: set[str] = set()
    for entry in value:
        raw = entry.model_dump(exclude_unset=True) if isinstance(entry, BaseModel) else entry
        name = raw.get("name") if isinstance(raw, dict) else None
        base = defaults.get(name) if isinstance(name, str) else None
        off = isinstance(raw, dict) and raw.get("enabled") is False
        if base is not None and isinstance(raw, dict) and off and name not in named:
            raw = base.model_dump(exclude_unset=True) | raw
        if isinstance(name, str):
            named.add(name)
        out.append(raw)
    out.extend(t for name, t in defaults.items() if name not in named)
    return out


class DetectorSettings(_Model):
    """``detectors:`` in the config file."""

    sla_burn: SlaBurnSettings = SlaBurnSettings()
    complaint_spike: ComplaintSpikeSettings = ComplaintSpikeSettings()
    backlog_growth: BacklogGrowthSettings = BacklogGrowthSettings()
    tickets_at_risk: TicketsAtRiskSettings = TicketsAtRiskSettings()
    understaffing: UnderstaffingSettings = UnderstaffingSettings()
    estimated_wait: EstimatedWaitSettings = EstimatedWaitSettings()
    containment_drop: ContainmentDropSettings = ContainmentDropSettings()
    negative_sentiment: NegativeSentimentSettings = NegativeSentimentSettings()
    nps_drop: NpsDropSettings = NpsDropSettings()
    thresholds: tuple[ThresholdSettings, ...] = Field(default_factory=_default_thresholds)
    """The default thresholds merged with the configured ones by ``name`` (``merge_thresholds``)."""

    @field_validator("thresholds", mode="before")
    @classmethod
    def _merge(cls, value: object) -> object:
        return merge_thresholds(value)

    @property
    def active_thresholds(self) -> tuple[ThresholdSettings, ...]:
        """The thresholds that run (``enabled``)."""
        return tuple(t for t in self.thresholds if t.enabled)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: set[str] = set()
        for i, t in enumerate(self.thresholds):
            if t.name in BUILTIN_NAMES:
                raise ValueError(
                    f"thresholds[{i}].name: {t.name!r} is the name of a built-in detector"
                )
            if t.name in seen:
                raise ValueError(f"thresholds[{i}].name: {t.name!r} repeats another threshold")
            seen.add(t.name)
        return self

    def names(self) -> tuple[str, ...]:
        """Enabled detector instance names (the ``detector`` label values alert rules may use)."""
        builtin = (name for name in BUILTIN_NAMES if getattr(self, name).enabled)
        return (*builtin, *(t.name for t in self.active_thresholds))

    def scopes(
        self, channels: Mapping[str, ChannelSettings], windows: Sequence[str]
    ) -> dict[str, list[str]]:
        """Detector name -> channels it runs on (validating as ``validate_against``)."""
        out: dict[str, list[str]] = {}
        blocks: list[tuple[str, Any]] = [
            (name, getattr(self, name)) for name in BUILTIN_NAMES if getattr(self, name).enabled
        ]
        for name, block in blocks:
            out[name] = block.check(f"detectors.{name}", channels, windows)
        defaults = {t.name: t for t in _default_thresholds()}
        for i, t in enumerate(self.thresholds):
            key = f"detectors.thresholds[{i}]"
            scope = t.check(key, channels, windows)
            if t.enabled and not scope and t != defaults.get(t.name):
                # a default left as it is may find no channel (an email-only config): silent
                raise ValueError(
                    f"{key}: {t.never_set()}, so {t.metric} is never set and {t.name!r} can "
                    "never fire (declare such a channel, or remove the threshold)"
                )
            if t.enabled:
                out[t.name] = scope
        return out

    def validate_against(self, channels: Mapping[str, Any], windows: Sequence[str]) -> None:
        """Cross-checks against the channels and windows; raises ValueError naming the key."""
        self.scopes(channels, windows)
