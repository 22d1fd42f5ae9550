"""One channel's settings, and the pieces every settings module shares.

The bottom of the settings tree: ``detectors.config`` and ``alerts.config`` validate their
sections against the channels defined here, and ``monitor.config`` composes them all into
``Settings``. This module imports no other settings module that imports it back.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from support_monitor.monitor.config_helpdesk import (
    CLOCKS,
    ClockTargets,
    PauseSettings,
)
from support_monitor.monitor.durations import Duration, parse_duration

DEFAULT_SHORT_ABANDON = 5.0
"""``short_abandon_seconds`` when unset (``answer_seconds`` instead when that is shorter)."""

LabelValue = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Priority = Literal["low", "normal", "high", "urgent"]
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")


class FrozenModel(BaseModel):
    """Every settings model: frozen, and unknown keys refused (a typo names its key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelSettings(FrozenModel):
    """SLA settings of one channel. Live-contact channels set ``answer_seconds``; ticket channels
    set ``first_response_seconds`` and/or ``resolution_seconds``; a channel may set both."""

    answer_seconds: Duration | None = None
    short_abandon_seconds: Duration = DEFAULT_SHORT_ABANDON
    """An abandon with a wait below this is short (left out of the service level); default
    5 s, or ``answer_seconds`` when that is shorter."""
    service_level_target: float | None = None
    """Above 0 and below 1: a target of 1 (every contact within T) leaves no error budget, so
    the burn rate and Erlang C's agents required would be infinite."""
    first_response_seconds: Duration | None = None
    resolution_seconds: Duration | None = None
    first_response_warning_seconds: Duration | None = None
    """Lead time of ``support_tickets_at_risk{sla="first_response"}``; default 10% of target."""
    resolution_warning_seconds: Duration | None = None
    """Lead time for ``support_tickets_at_risk{sla="resolution"}``; default 10% of the target."""
    queues: tuple[LabelValue, ...] = ("default",)
    next_reply_seconds: Duration | None = None
    """A ticket's next-reply target: from a customer reply to the next agent response."""
    next_reply_warning_seconds: Duration | None = None
    """Lead time for ``support_tickets_at_risk{sla="next_reply"}``; default 10% of the target."""
    priorities: dict[Priority, ClockTargets] = Field(default_factory=dict)
    """Ticket targets per priority (``docs/helpdesk.md``): a priority listed here uses exactly
    its own targets (a clock it omits has none); other priorities use the channel's
    ``first_response_seconds``, ``next_reply_seconds`` and ``resolution_seconds``."""
    pause: PauseSettings = PauseSettings()
    """Which ticket statuses pause which clock (default: ``pending`` pauses ``resolution``)."""
    calendar: LabelValue | None = None
    """The business calendar (a key of ``calendars``) of this channel's ticket clocks; none:
    they run 24/7."""
    queue_calendars: dict[LabelValue, LabelValue] = Field(default_factory=dict)
    """Queue -> calendar, overriding ``calendar`` for that queue's tickets."""
    agent_concurrency: int | None = Field(default=None, ge=1, le=100)
    """Contacts one agent of this live channel works at once (chats): the staffing math
    (Erlang C) takes an agent as one server that finishes each contact in handle time /
    concurrency. Unset: 1 (one contact per agent, the metric contract's Erlang C); the
    simulator then keeps its own default (two at once on chat-like channels)."""

    @field_validator("service_level_target")
    @classmethod
    def _target(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value < 1:
            msg = (
                f"{value:g} is not a share between 0 and 1 (both excluded): e.g. 0.8 for 80% "
                "within answer_seconds; 1 would leave no error budget (the burn rate and the "
                "agents required would be infinite)"
            )
            raise ValueError(msg)
        return value

    @model_validator(mode="before")
    @classmethod
    def _short_abandon_default(cls, data: object) -> object:
        # The default short-abandon threshold is 5 s, or T when T is shorter: a channel with a
        # 3 s target and no short_abandon_seconds was refused for a value it never wrote.
        if isinstance(data, dict) and "short_abandon_seconds" not in data:
            try:
                answer = parse_duration(data.get("answer_seconds"))
            except (TypeError, ValueError):
                return data  # no (valid) T: reported by the field's own check
            if 0 < answer < DEFAULT_SHORT_ABANDON:
                return {**data, "short_abandon_seconds": answer}
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.answer_seconds is None:
            # Without T the channel takes no contact events: its live settings would do nothing.
            for name in ("short_abandon_seconds", "service_level_target", "agent_concurrency"):
                if name in self.model_fields_set:
                    raise ValueError(
                        f"answer_seconds: is required when {name} is set (a live channel "
                        "needs its answer target T; without it every contact event of the "
                        "channel is rejected)"
                    )
        if self.answer_seconds is not None and self.answer_seconds <= 0:
            raise ValueError(
                "answer_seconds: must be greater than 0 (a 0 s target breaches every contact)"
            )
        if self.answer_seconds is not None and self.short_abandon_seconds > self.answer_seconds:
            raise ValueError(
                f"short_abandon_seconds: {self.short_abandon_seconds:g} s is above answer_seconds "
                f"{self.answer_seconds:g} s: the short-abandon class would swallow every in-SLA "
                "abandon and some breached ones, and take them out of the service level"
            )
        for name in ("first_response_seconds", "resolution_seconds"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}: must be greater than 0")
        return self

    @model_validator(mode="after")
    def _check_ticket_clocks(self) -> Self:
        if self.next_reply_seconds is not None and self.next_reply_seconds <= 0:
            raise ValueError("next_reply_seconds: must be greater than 0")
        for index, (lead, target) in enumerate(
            (
                ("first_response_warning_seconds", "first_response_seconds"),
                ("next_reply_warning_seconds", "next_reply_seconds"),
                ("resolution_warning_seconds", "resolution_seconds"),
            )
        ):
            lead_value, target_value = getattr(self, lead), getattr(self, target)
            if lead_value is not None and not self.has_clock(index):
                raise ValueError(
                    f"{lead}: is set but no priority has a {target.removesuffix('_seconds')} "
                    "target: the warning could never fire"
                )
            if lead_value is not None and target_value is not None and lead_value >= target_value:
                raise ValueError(f"{lead}: must be shorter than {target}")
        for queue in self.queue_calendars:
            if queue not in self.queues:
                raise ValueError(f"queue_calendars: {queue!r} is not one of the queues")
        if len(set(self.queues)) != len(self.queues):
            raise ValueError("queues: must not repeat")
        if not self.queues:
            raise ValueError("queues: must name at least one queue")
        return self

    @property
    def is_live(self) -> bool:
        return self.answer_seconds is not None

    @property
    def concurrency(self) -> int:
        """Contacts one agent works at once, for the staffing math (``agent_concurrency``,
        default 1)."""
        return self.agent_concurrency or 1

    def accepts_queue(self, name: str) -> bool:
        """Whether events may name this queue: a declared one, or ``default`` (always accepted:
        events may omit ``queue``)."""
        return name in self.queues or name == "default"

    def clock_targets(self, priority: str) -> tuple[float | None, float | None, float | None]:
        """(first response, next reply, resolution) targets of a ticket of ``priority``."""
        policy = self.priorities.get(priority)  # type: ignore[call-overload]
        if policy is None:
            return self.first_response_seconds, self.next_reply_seconds, self.resolution_seconds
        return policy.first_response, policy.next_reply, policy.resolution

    def has_clock(self, index: int) -> bool:
        """Whether some priority has a target for clock ``index`` (0 first response, 1 next
        reply, 2 resolution): only then is its ``sla`` series exported."""
        if len(self.priorities) < len(PRIORITIES) and self.clock_targets("")[index] is not None:
            return True
        return any(self.clock_targets(p)[index] is not None for p in self.priorities)

    def lead(self, index: int, target: float) -> float:
        """At-risk lead time of clock ``index`` with ``target``: the configured warning when
        it is shorter than the target, else 10% of the target."""
        configured = (
            self.first_response_warning_seconds,
            self.next_reply_warning_seconds,
            self.resolution_warning_seconds,
        )[index]
        if configured is not None and configured < target:
            return configured
        return target * 0.1

    def paused_by(self, status: str) -> frozenset[int]:
        """Indexes of the clocks that ``status`` pauses."""
        return frozenset(CLOCKS.index(clock) for clock in self.pause.paused_clocks(status))

    def calendar_of(self, queue: str) -> str | None:
        """The calendar name of ``queue``'s ticket clocks (``None``: 24/7)."""
        return self.queue_calendars.get(queue, self.calendar)
