"""The one settings tree, loaded once in ``main()`` and passed down (no global settings).

The YAML file is the source of truth; environment variables ``SUPPORT_MONITOR_<KEY>__<SUB>``
override it (e.g. ``SUPPORT_MONITOR_EXPORTER__LISTEN=0.0.0.0:9108``). Every model is frozen and
refuses unknown keys, so a typo is an error that names the key instead of a silent default.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from support_monitor.alerts.config import AlertSettings, NotifierSettings
from support_monitor.alerts.urls import link_problem
from support_monitor.detectors.config import BUILTIN_NAMES, DetectorSettings
from support_monitor.monitor import config_env, config_paths, redaction
from support_monitor.monitor.cluster.settings import ClusterSettings, StateSettings
from support_monitor.monitor.config_channel import ChannelSettings, FrozenModel, LabelValue
from support_monitor.monitor.config_helpdesk import (
    CalendarSettings,
    ZoneName,
)
from support_monitor.monitor.config_secrets import SecretFile
from support_monitor.monitor.durations import Duration, format_duration, parse_duration
from support_monitor.monitor.errors import ConfigError
from support_monitor.monitor.files import is_directory, read_bounded
from support_monitor.monitor.logs import register_secret
from support_monitor.monitor.sources.settings import KafkaSettings, MqttSettings
from support_monitor.monitor.webconfig import load_web_config, split_listen

TODAY = "today"
"""The window of the day so far (``timezone``, ``day_starts_at``)."""
TODAY_MAX_SECONDS = 25 * 3600.0


class IngestSettings(FrozenModel):
    """Rules every source shares: size limit, de-duplication window, lateness, complaints."""

    max_event_bytes: int = Field(default=65536, gt=0, le=16 * 1024 * 1024)
    dedup_max_ids: int = Field(default=1_000_000, gt=0)
    """At most this many event ids are remembered for de-duplication (oldest forgotten first)."""
    dedup_horizon: Duration = 86400.0
    """Ids are also forgotten once their event time is older than this behind the clock."""
    allowed_lateness: Duration = 5.0
    """Deadlines fire only once the clock is this far past them, so an outcome delivered up to
    this late still lands before the breach is decided. Replay flushes at its end."""
    answered_retention: Duration = 86400.0
    """An answered contact that never gets ``contact.ended`` is forgotten after this long."""
    waiting_retention: Duration = Field(default=86400.0, gt=0)
    """A contact still waiting this long after its ``queued`` (its answer or abandon was lost
    upstream) is forgotten: it leaves the waiting gauges and frees its ``max_open_contacts``
    place (``support_monitor_capacity_exhausted_total{kind="waiting_expired"}``)."""
    complaint_tags: tuple[str, ...] = ("complaint",)
    complaint_categories: tuple[LabelValue, ...] = ()
    """Allowed ``category`` values; others count as ``other``, a missing one ``uncategorized``.
    Empty: the first ``max_complaint_categories`` distinct values seen are kept as they are."""
    max_complaint_categories: int = Field(default=20, ge=0, le=1000)
    max_clock_skew: Duration = 300.0
    """Live mode: an event dated more than this ahead of the wall clock is rejected
    (``reason="timestamp_out_of_range"``): it has not happened yet."""
    max_event_age: Duration = 86400.0
    """An event dated more than this behind the clock (live: the wall clock; replay: the
    stream's clock, the largest ``ts`` seen) is rejected as ``timestamp_out_of_range``."""
    max_replay_gap: Duration = 30 * 86400.0
    """Replay: an event dated more than this ahead of the stream's clock is rejected as
    ``timestamp_out_of_range`` (one line dated 9999 must not end the replay's clock)."""
    max_tags: int = Field(default=64, gt=0, le=10_000)
    """A ``ticket.created`` with more tags than this is rejected (``invalid_value``)."""

    @model_validator(mode="after")
    def _ages(self) -> Self:
        for key in ("complaint_tags", "complaint_categories"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise ValueError(f"{key}: must not repeat")
        if self.max_event_age <= 0:
            raise ValueError("max_event_age: must be above 0 s (at 0 every event is too old)")
        if self.max_event_age < self.allowed_lateness:
            raise ValueError(
                f"max_event_age: {self.max_event_age:g} s is below allowed_lateness "
                f"({self.allowed_lateness:g} s): events the lateness still waits for would be "
                "rejected as too old"
            )
        return self


class LimitsSettings(FrozenModel):
    """Bounds on everything the engine keeps per item (``docs/metrics.md``, "Bounds").

    When a bound is hit the new item is refused (``reason="capacity"``, dead-lettered) and
    ``support_monitor_capacity_exhausted_total{kind}`` counts it; items already open are kept,
    so the numbers of what is being tracked stay right."""

    max_open_contacts: int = Field(default=500_000, gt=0)
    """Contacts waiting or talking at once, over all channels."""
    max_open_tickets: int = Field(default=1_000_000, gt=0)
    """Open tickets at once, over all channels."""
    max_solved_tickets: int = Field(default=200_000, ge=0)
    """Solved tickets remembered (for a reopen or a late rating); the oldest solved is
    forgotten first when more are solved."""
    solved_ticket_retention: Duration = 7 * 86400.0
    """A solved ticket is also forgotten this long after it was solved."""
    max_early_outcomes: int = Field(default=10_000, ge=0)
    """Outcomes held within the allowed lateness until their item's opening event arrives
    (an ``answered`` before its ``queued``); past this many the newest is rejected."""
    max_agents: int = Field(default=20_000, gt=0)
    """Agents tracked at once (one per agent and channel, from ``agent.state`` and from
    answered contacts that name an agent); past it a new agent is refused (``capacity``) and
    agents offline for longer than ``agent_retention`` are forgotten first."""
    agent_retention: Duration = 86400.0
    """An agent whose last state is ``offline`` is forgotten this long after it went offline."""


class SentimentSettings(FrozenModel):
    """Cut-offs of ``support_sentiment_total{polarity}``: a score strictly below
    ``negative_below`` is negative, strictly above ``positive_above`` positive, else neutral."""

    negative_below: float = Field(default=-0.3, ge=-1, le=1)
    positive_above: float = Field(default=0.3, ge=-1, le=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        # A cut-off no score can pass is a threshold that can never fire: refused.
        if self.negative_below == -1:
            raise ValueError(
                "negative_below: -1 is the lowest score, so no score would ever count as "
                "negative (support_negative_sentiment_ratio always 0); use a value above -1"
            )
        if self.positive_above == 1:
            raise ValueError(
                "positive_above: 1 is the highest score, so no score would ever count as "
                "positive; use a value below 1"
            )
        if self.negative_below > self.positive_above:
            raise ValueError(
                f"negative_below: {self.negative_below:g} is above positive_above "
                f"{self.positive_above:g}: a score would be negative and positive at once"
            )
        return self


class DeadLetterSettings(FrozenModel):
    path: Path | None = None
    """JSON Lines file for rejected events (original bytes, reason, position)."""

    @field_validator("path", mode="before")
    @classmethod
    def _named(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: name a file, or leave the key out for no file")
        return value

    @field_validator("path")
    @classmethod
    def _a_file(cls, value: Path | None) -> Path | None:
        if value is not None and is_directory(value):
            raise ValueError(f"{value} is a directory: name a file in it")
        return value


class SimulatorSettings(FrozenModel):
    """The built-in contact center, used when no source is configured."""

    enabled: bool | None = None
    """``None`` (default): on when no other source is configured."""
    seed: int = 7
    speed: float = Field(default=1.0, gt=0, le=3600)
    """Simulated seconds per wall-clock second (at most an hour a second)."""
    arrivals_per_minute: float = Field(default=30.0, gt=0, le=60_000)
    agents: int = Field(default=160, gt=0, le=100_000)
    incidents: bool = True
    """Script a queue surge and a complaint spike so alerts show on a fresh install."""


class SourcesSettings(FrozenModel):
    simulator: SimulatorSettings = SimulatorSettings()
    kafka: KafkaSettings | None = None
    mqtt: MqttSettings | None = None

    @property
    def simulator_on(self) -> bool:
        if self.simulator.enabled is not None:
            return self.simulator.enabled
        return self.kafka is None and self.mqtt is None


class ExporterSettings(FrozenModel):
    listen: str = "127.0.0.1:9108"
    tick_seconds: Duration = Field(default=1.0, ge=0.01, le=60)
    """How often the wall clock advances the engine and the alert rules are evaluated."""
    early_tick_seconds: Duration | None = Field(default=0.1, gt=0)
    """Live mode: an applied event does not wait for the next aligned tick; the clock ticks
    this long after the previous tick (at once when that has passed), so an alert whose input
    an event changed is judged within this of it. Early ticks come at most this often and
    cost at most about a tenth of the loop (``docs/configuration.md``). ``null``: aligned ticks
    only. Replay and backtest always tick on aligned instants of event time."""
    web_config_file: Path | None = None
    """TLS and basic auth for the listener, in the format of Prometheus' exporter-toolkit
    (``tls_server_config``, ``basic_auth_users`` with bcrypt hashes), so existing files work."""
    max_connections: int = Field(default=256, gt=0, le=65536)
    """Open HTTP connections at most; at it a new connection evicts the oldest one not in a
    request, or gets a 503 and is closed when all are in a request."""
    header_timeout: Duration = Field(default=10.0, gt=0)
    """A client must send its request line and headers within this (slowloris guard)."""
    idle_timeout: Duration = Field(default=60.0, gt=0)
    """A kept-alive connection with no request for this long is closed."""

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_listen(value)  # HOST:PORT, port 0-65535; the ValueError names the problem
        return value

    @field_validator("web_config_file")
    @classmethod
    def _web_config(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_web_config(value)  # unknown keys, TLS files, bcrypt hashes: named on failure
        return value


class LoggingSettings(FrozenModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class ConsoleSettings(FrozenModel):
    """The operations console on the listener: status page, ``/api/v1`` and acknowledge links
    (docs/console.md)."""

    enabled: bool = True
    """Serve ``/``, ``/console/*``, ``/ack/*`` and ``/api/v1/*`` on the listener."""
    external_url: str | None = None
    """The console's absolute base URL as users reach it (e.g. ``https://monitor.example:9108``):
    the base of the signed acknowledge link in Slack messages and webhook payloads (no link
    without it)."""
    api_token_file: SecretFile | None = None
    """A secret file holding the bearer token write calls need (ack, silence); unset: the API
    and the page are read-only, only signed links can acknowledge."""
    signing_key_file: SecretFile | None = None
    """A secret file whose bytes key the ack links' HMAC-SHA256; unset: a random key generated
    once and kept (mode 0600) in ``notifiers.state_dir`` (in memory without a state dir)."""
    ack_link_ttl: Duration = Field(default=86400.0, gt=0)
    """How long a signed acknowledge link is valid after the message that carries it."""
    refresh_seconds: Duration = Field(default=5.0, ge=1, le=300)
    """How often the status page polls the API."""
    timeline_size: int = Field(default=200, gt=0, le=10_000)
    """Alert transitions kept (in memory) for the page's timeline and ``/api/v1/timeline``."""
    max_silences: int = Field(default=1000, gt=0, le=100_000)
    """Silences kept at most (active and expired-not-yet-purged); creating more is refused."""

    @field_validator("external_url")
    @classmethod
    def _external(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or len(value.split("/", 3)[2]) == 0:
            raise ValueError("must be an absolute http:// or https:// URL")
        # as the links' readers' HTTP clients will parse it
        problem = link_problem(value, "the acknowledge links in every message")
        if problem is not None:
            raise ValueError(problem)
        return value.rstrip("/")

    @field_validator("api_token_file", "signing_key_file")
    @classmethod
    def _secret_file(cls, value: Path | None) -> Path | None:
        if value is not None:  # checked here so a bad file is a config error, not a traceback
            try:
                size = len(read_bounded(value, SECRET_FILE_MAX_BYTES).strip())
            except OSError as exc:
                raise ValueError(f"cannot read {value}: {exc.strerror}") from None
            if size < 16:  # 128 bits at least
                raise ValueError(f"{value} holds under 16 characters")
        return value


_WAITING_COUNTS = frozenset({"support_queue_waiting", "support_queue_breached_waiting"})
"""Gauges that count waiting contacts: at most ``limits.max_open_contacts``."""

_DEFAULT_CHANNELS: dict[str, dict[str, Any]] = {
    "voice": {
        "answer_seconds": 20,
        "short_abandon_seconds": 5,
        "service_level_target": 0.8,
        "queues": ("billing", "tech"),
    },
    "chat": {
        "answer_seconds": 60,
        "short_abandon_seconds": 5,
        "service_level_target": 0.8,
        "queues": ("sales", "support"),
    },
    "email": {"first_response_seconds": 3600, "resolution_seconds": 86400, "queues": ("default",)},
    # Self-service (bot sessions): no SLA targets.
    "chatbot": {"queues": ("default",)},
}
"""The channels of a config without ``channels``, as the file would write them."""


def _default_channels() -> dict[str, ChannelSettings]:
    return {name: ChannelSettings(**spec) for name, spec in _DEFAULT_CHANNELS.items()}


class Settings(BaseSettings):
    """The whole configuration; ``deploy/support-monitor/config.yaml`` is a commented example."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix="SUPPORT_MONITOR_",
        env_nested_delimiter="__",
    )

    windows: tuple[str, ...] = ("5m", "1h")
    timezone: ZoneName = "UTC"
    """IANA time zone of the ``today`` window's day start."""
    day_starts_at: str = "00:00"
    """Local time (HH:MM, in ``timezone``) at which the ``today`` window resets."""
    calendars: dict[LabelValue, CalendarSettings] = Field(default_factory=dict)
    """Business calendars for ticket clocks, by name (``docs/helpdesk.md``)."""
    channels: dict[LabelValue, ChannelSettings] = Field(default_factory=_default_channels)
    ingest: IngestSettings = IngestSettings()
    limits: LimitsSettings = LimitsSettings()
    sentiment: SentimentSettings = SentimentSettings()
    dead_letter: DeadLetterSettings = DeadLetterSettings()
    sources: SourcesSettings = SourcesSettings()
    exporter: ExporterSettings = ExporterSettings()
    logging: LoggingSettings = LoggingSettings()
    detectors: DetectorSettings = DetectorSettings()
    alerts: AlertSettings = AlertSettings()
    notifiers: NotifierSettings = NotifierSettings()
    state: StateSettings = StateSettings()
    cluster: ClusterSettings = ClusterSettings()
    console: ConsoleSettings = ConsoleSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (passed as init values); secrets dirs come last.
        del settings_cls, dotenv_settings
        return env_settings, init_settings, file_secret_settings

    @field_validator("windows", mode="before")
    @classmethod
    def _window_numbers(cls, value: object) -> object:
        # A duration may be a plain number of seconds (`300`), as everywhere else; its name,
        # the `window` label, is the number as written.
        if isinstance(value, list | tuple):
            return [
                repr(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for v in value
            ]
        if isinstance(value, str | int | float):  # ``windows: 5m``: one span, not a list
            msg = "a list of window spans, e.g. [5m, 1h] (one span too: [5m])"
            raise ValueError(msg)  # noqa: TRY004 - pydantic turns a ValueError into the message
        return value

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Checked on its own (not with the whole tree) so that a bad window is reported next to
        # the other bad keys, and every bad window at once.
        problems: list[str] = []
        seen: set[float] = set()
        seen_names: set[str] = set()
        for name in value:
            if name == TODAY:
                if name in seen_names:
                    problems.append("'today' repeats")
                seen_names.add(name)
                continue
            try:
                seconds = parse_duration(name)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if seconds < 1:
                problems.append(f"{name!r} is shorter than the 1 s bucket resolution")
            elif seconds > 7 * 86400:
                problems.append(f"{name!r} is longer than the 7 d maximum")
            elif seconds in seen:
                problems.append(f"{name!r} repeats another window")
            seen.add(seconds)
        if not seen and not problems:
            problems.append("name at least one sliding window, e.g. ['5m', '1h']")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("channels")
    @classmethod
    def _some_channel(cls, value: dict[str, ChannelSettings]) -> dict[str, ChannelSettings]:
        if not value:
            raise ValueError("declare at least one channel")
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        self.detectors.validate_against(self.channels, self.windows)
        self.alerts.validate_against(self.channels, self.windows, self.notifiers, self.detectors)
        self._check_waiting_retention()
        self._check_open_contact_limit()
        return self

    def _check_open_contact_limit(self) -> None:
        """No more contacts wait than ``limits.max_open_contacts`` (a ``contact.queued`` past
        it is refused): a threshold on a waiting count that only a larger count passes can
        never fire, and is refused."""
        limit = self.limits.max_open_contacts
        for i, t in enumerate(self.detectors.thresholds):
            if not t.enabled or t.metric not in _WAITING_COUNTS or t.op not in {">", ">="}:
                continue
            if t.value > limit or (t.op == ">" and t.value == limit):
                msg = (
                    f"detectors.thresholds[{i}].value: {t.metric} {t.op} {t.value:g} can never "
                    f"fire: limits.max_open_contacts ({limit}) bounds the contacts waiting"
                )
                raise ValueError(msg)

    def _check_waiting_retention(self) -> None:
        """A contact is forgotten once it has waited ``ingest.waiting_retention``, so the oldest
        wait never goes far past it: a threshold on it at or above the retention can never
        fire (the built-in ``longest_wait`` included), and is refused."""
        retention = self.ingest.waiting_retention
        for t in self.detectors.active_thresholds:
            if t.metric != "support_queue_oldest_wait_seconds" or t.op not in {">", ">="}:
                continue
            for name in t.channels or tuple(self.channels):
                answer = self.channels[name].answer_seconds
                if answer is None:
                    continue
                level, _ = t.levels(answer)
                if level >= retention:
                    msg = (
                        f"ingest.waiting_retention: {format_duration(retention)} is not above "
                        f"{format_duration(level)}, the level of threshold {t.name!r} on "
                        f"{name} ({t.metric} {t.op} {level:g}): a contact is forgotten once it "
                        "has waited this long, so that threshold could never fire"
                    )
                    raise ValueError(msg)

    @model_validator(mode="after")
    def _check_calendars(self) -> Self:
        for name, ch in self.channels.items():
            for key, calendar in (("calendar", ch.calendar), *ch.queue_calendars.items()):
                if calendar is not None and calendar not in self.calendars:
                    where = "calendar" if key == "calendar" else f"queue_calendars.{key}"
                    raise ValueError(
                        f"channels.{name}.{where}: no calendar named {calendar!r} under calendars"
                    )
        return self

    @model_validator(mode="after")
    def _check_cluster(self) -> Self:
        if self.cluster.enabled:
            if (
                self.sources.kafka is None
                or self.sources.mqtt is not None
                or (self.sources.simulator_on)
            ):
                raise ValueError(
                    "cluster.enabled: needs sources.kafka as the only source (disable the "
                    "simulator, remove sources.mqtt): replicas split Kafka partitions"
                )
            if self.state.dir is not None:
                raise ValueError(
                    "cluster.enabled: state.dir is the single-node snapshot; in cluster mode "
                    "snapshots go to cluster.state_topic (remove state.dir)"
                )
        return self

    @field_validator("day_starts_at")
    @classmethod
    def _day_start(cls, value: str) -> str:
        match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value, re.ASCII)
        if match is None:
            raise ValueError(f"{value!r} is not a time of day HH:MM (00:00-23:59)")
        return value

    @property
    def window_seconds(self) -> dict[str, float]:
        """Window name -> span; ``today`` -> 25 h, the longest a local day can be."""
        return {
            name: TODAY_MAX_SECONDS if name == TODAY else parse_duration(name)
            for name in self.windows
        }


def _format_errors(exc: ValidationError) -> str:
    """One line per error: the key (``alerts.rules[0].for``) and the problem. Never the offending
    value (pydantic's ``input``), the value of a secret field or any URL (``monitor.redaction``)."""
    secret_names = redaction.secret_field_names(Settings)
    env = config_env.overrides()
    lines = []
    errors = exc.errors(include_url=False, include_input=True)
    # pydantic also reports a list whose every item failed as too short ("at least 1 item
    # after validation, not 0"): the items' own errors already say it
    inner = {err["loc"][:n] for err in errors for n in range(len(err["loc"]))}
    for err in errors:
        loc = err["loc"]
        if err["type"] == "too_short" and loc in inner:
            continue
        key, annotation = config_paths.readable_key(Settings, loc)
        msg = err["msg"].removeprefix("Value error, ")
        if len(loc) >= 2 and loc[-1] == "[key]":  # a map key itself (a channel's name ...)
            key = config_paths.readable_key(Settings, loc[:-2])[0]
            msg = f"the name {str(loc[-2])!r} is refused: {msg}"
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "value_error":  # a model check that starts with the field it means
            key, msg = config_paths.join_message(key, annotation, msg)
        msg = redaction.scrub_message(msg, err, secret_names)
        key = redaction.scrub_message(key, err, secret_names)
        wrong_type = err["type"].endswith("_type")
        variable = config_env.source_of(key, env, wrong_type=wrong_type) if key else None
        if variable is not None:  # the value came from the environment, not the file
            whole = config_env.whole_list_variable(key, variable)
            if whole is not None and err["type"] in {"list_type", "tuple_type"}:
                msg = f"{msg}; a list is set whole, as JSON: {whole}='[...]'"
            key = f"{key} (from the environment: {variable})"
        # Cross-checks of the whole tree already start their message with the key they mean.
        lines.append(_one_line(f"{key}: {msg}" if key else msg))
    return "\n".join(lines)


def _one_line(text: str) -> str:
    """``text`` with each unprintable character escaped (a newline in a key of the file as
    ``\\n``), so an error stays one line and a config cannot forge more."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


SECRET_FILE_MAX_BYTES = 65536
"""A secret file (``webhook_url_file``, ``bearer_token_file`` ...) longer than this is refused."""
FILE_MAX_BYTES = 16 * 1024 * 1024
"""Any other file a setting names (a CA bundle, a certificate) longer than this is refused."""


def _file_problem(path: Path, *, secret: bool) -> str | None:
    """Why ``path`` cannot be used, or ``None``. Never quotes the file's content."""
    try:
        data = read_bounded(path, SECRET_FILE_MAX_BYTES if secret else FILE_MAX_BYTES)
    except OSError as exc:
        if exc.errno == errno.EFBIG and secret:
            return f"{path} is larger than {SECRET_FILE_MAX_BYTES} bytes: not a secret value"
        return f"cannot read {path}: {exc.strerror or type(exc).__name__}"
    if not secret:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"{path} is not UTF-8 text (byte {exc.start})"
    if not text.strip():
        return f"{path} is empty"
    return None


def _files(value: object, key: str, depth: int = 0) -> Iterator[tuple[str, Path, bool]]:
    """``(key, path, secret)`` of every ``*file`` setting that is set: ``secret`` when it holds
    a secret (``X_file`` beside a secret ``X``)."""
    if depth > 12:  # deeper than any settings tree
        return
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        secrets = redaction.secret_field_names(type(value))
        for name in fields:
            item = getattr(value, name)
            where = f"{key}.{name}" if key else name
            if name.endswith("file") and isinstance(item, Path):
                yield where, item, name.endswith("_file") and name.removesuffix("_file") in secrets
            else:
                yield from _files(item, where, depth + 1)
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _files(item, f"{key}.{name}", depth + 1)
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            yield from _files(item, f"{key}[{i}]", depth + 1)


def _file_problems(settings: Settings) -> list[str]:
    """``<key>: <problem>`` for every ``*file`` setting whose file cannot be read. A secret's
    file must also be non-empty UTF-8 text."""
    problems: list[str] = []
    for where, path, secret in _files(settings, ""):
        problem = _file_problem(path, secret=secret)
        if problem is not None:
            problems.append(f"{where}: {problem}")
    return problems


def secret_file_digests(settings: Settings) -> dict[str, str]:
    """Key of each secret file setting -> a SHA-256 of its content (``""``: unreadable), so a
    reload can tell that a file the running daemon read at start-up now holds another
    secret. Blocking reads: call off the loop."""
    digests: dict[str, str] = {}
    for where, path, secret in _files(settings, ""):
        if secret:
            try:
                data = read_bounded(path, SECRET_FILE_MAX_BYTES)
            except OSError:
                data = None
            digests[where] = "" if data is None else hashlib.sha256(data.strip()).hexdigest()
    return digests


def config_notes(settings: Settings) -> list[str]:
    """What a valid config switches off: each alert rule that can never fire (its detector is
    disabled or not configured), and paging as a whole when nothing is routed anywhere; and
    when `run` would feed the built-in simulator's traffic."""
    notes = []
    thresholds = {t.name: t for t in settings.detectors.thresholds}
    for i, rule in settings.alerts.switched_off(settings.detectors):
        known = rule.detector in BUILTIN_NAMES or rule.detector in thresholds
        why = "is disabled" if known else "is not configured (no detectors.thresholds entry)"
        notes.append(
            f"alerts.rules[{i}] ({rule.alert}, {rule.severity}) never fires: its detector "
            f"{rule.detector!r} {why}"
        )
    notes.extend(_burn_severity_notes(settings))
    for i, t in enumerate(settings.detectors.thresholds):
        if t.cusum is not None and t.cusum.warmup_samples is not None:
            notes.append(
                f"detectors.thresholds[{i}].cusum.warmup_samples: no longer read (the usual "
                "share is pooled over ratings: prior_trials); remove it"
            )
    notes.extend(
        f"environment: {name} names no setting and is ignored (nested keys are joined with "
        "__, e.g. SUPPORT_MONITOR_EXPORTER__LISTEN)"
        for name in config_env.unknown(Settings.model_fields, config_env.overrides())
    )
    ingest = settings.ingest
    if ingest.dedup_horizon < ingest.max_event_age:
        notes.append(
            f"ingest.dedup_horizon: {format_duration(ingest.dedup_horizon)} is shorter than "
            f"max_event_age {format_duration(ingest.max_event_age)}: an event redelivered "
            "later than the horizon but within the age is counted twice"
        )
    sources = settings.sources
    if sources.simulator_on:
        only = sources.kafka is None and sources.mqtt is None
        notes.append(
            "sources: no kafka or mqtt source: `run` feeds the built-in simulator's made-up "
            "traffic (sources.simulator)"
            if only
            else "sources.simulator.enabled: the simulator's made-up traffic is mixed with the "
            "real sources"
        )
    notifiers = settings.notifiers
    if not notifiers.routes and not notifiers.alertmanager.urls:
        notes.append(
            "notifiers: no route and no alertmanager.urls: alerts are evaluated and exported "
            "(/metrics, ALERTS), but nobody is paged"
        )
    return notes


def _burn_severity_notes(settings: Settings) -> list[str]:
    """An ``sla_burn`` pair's ``severity`` is a label the rules match on: a pair no running rule
    matches pages nobody, and a rule matching a severity no pair has never fires."""
    burn = settings.detectors.sla_burn
    if not burn.enabled:
        return []
    pairs = {pair.severity for pair in burn.windows}
    rules = [(i, r) for i, r in enumerate(settings.alerts.rules) if r.detector == "sla_burn"]
    notes = [
        f"alerts.rules[{i}] ({rule.alert}, {rule.severity}) never fires: no "
        f"detectors.sla_burn.windows pair has severity {rule.match['severity']!r}"
        for i, rule in rules
        if "severity" in rule.match and rule.match["severity"] not in pairs
    ]
    matched = {r.match.get("severity") for _, r in rules}
    notes.extend(
        f"detectors.sla_burn.windows[{i}] pages nobody: no alerts rule on sla_burn matches its "
        f"severity {pair.severity!r} (the default rules match 'page' and 'ticket')"
        for i, pair in enumerate(burn.windows)
        if None not in matched and pair.severity not in matched
    )
    return notes


def parse_settings(data: dict[str, Any]) -> Settings:
    """Settings from a mapping (the YAML document); environment overrides apply. Its keys
    become keyword arguments, so a key that is not a string (YAML's ``1:``, ``null:``) is
    refused first, by its kind."""
    kind = redaction.non_text_key(data)
    if kind is not None:
        raise ConfigError(
            f"a top-level key is a {kind}, not a name; the keys are setting names such as "
            "windows or channels"
        )
    inner = redaction.non_text_key_at(data)
    if inner is not None:
        where, kind = inner
        raise ConfigError(
            f"{where}: a key is a {kind}, not a name (YAML reads on, off, yes, no, true and "
            "false as booleans and 1 as a number: quote the key)"
        )
    problem = _not_unicode(data)
    if problem is not None:
        raise ConfigError(problem)
    repeated = config_env.repeated_json_key()
    if repeated is not None:
        raise ConfigError(f"environment: {repeated}")
    if "channels" not in data and any(
        path.startswith("channels.") for path in config_env.overrides()
    ):
        # SUPPORT_MONITOR_CHANNELS__VOICE__ANSWER_SECONDS changes voice's T in the built-in
        # channels, as it would in a file's: the environment is merged into the file's values,
        # and a default made in code is no value of the file.
        data = {**data, "channels": copy.deepcopy(_DEFAULT_CHANNELS)}
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None


def _not_unicode(data: dict[str, Any]) -> str | None:
    """The first key, in the file or in an environment override, whose text holds a lone
    surrogate: refused here, by its key, before it reaches a label or a file name."""
    words = (
        "text that is not Unicode (a lone surrogate: an escape such as \\ud800, or bytes that "
        "are not UTF-8)"
    )
    where = redaction.not_unicode_at(data)
    if where is not None:
        return f"{where}: {words}"
    for name in sorted(config_env.overrides().values()):
        if redaction.not_unicode_at(os.environ.get(name, "")) is not None:
            return f"environment: {name}: {words}"
    return None


CONFIG_MAX_BYTES = 4 * 1024 * 1024
"""A config file longer than this is refused (a config of a thousand channels is far smaller)."""


def _read_yaml(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; errors name the file, line and column, never its text."""
    try:
        text = read_bounded(path, CONFIG_MAX_BYTES).decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = redaction.read_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {redaction.yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return data


_ENV_FIELD = re.compile(r'field "([A-Za-z_]+)"')


def _env_problem(exc: SettingsError) -> str:
    """Which environment override pydantic-settings could not parse (its message names the
    top-level field, never the value), and how such a value is written."""
    found = _ENV_FIELD.search(str(exc))
    names = config_env.under(found.group(1).lower(), config_env.overrides()) if found else []
    if len(names) == 1:
        which = names[0]
    elif names:
        which = "one of " + ", ".join(names)
    else:
        which = "an override"
    return (
        f"environment: {which} cannot be parsed: a list or mapping value is written as JSON, "
        """e.g. SUPPORT_MONITOR_WINDOWS='["5m", "1h"]'"""
    )


def load_settings(path: Path | None, *, files: bool = True) -> Settings:
    """Read and validate a YAML config file (``None``: built-in defaults plus environment).

    Errors name the file, key, line and column, never a value of the file (it may be a secret).
    Every ``*file`` setting must name a readable file; a secret's file (``webhook_url_file``,
    ``bearer_token_file``, ...) must hold non-empty UTF-8 text of at most
    ``SECRET_FILE_MAX_BYTES``. The files are read, never quoted (``files=False``: not read at
    all, for replay and backtest, which connect to nothing and send nothing). Every secret of
    the loaded settings is registered with the log redaction."""
    data = {} if path is None else _read_yaml(path)
    try:
        settings = parse_settings(data)
    except SettingsError as exc:  # an environment override that is not valid JSON
        raise ConfigError(_env_problem(exc)) from None
    problems = _file_problems(settings) if files else []  # blocking reads: off the loop
    if problems:
        raise ConfigError("\n".join(problems))
    for secret in redaction.secret_values(settings):
        register_secret(secret)
    return settings
