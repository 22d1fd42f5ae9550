"""The one settings tree, loaded once in ``main()`` and passed down (no global settings).

The YAML file is the source of truth; environment variables ``SUPPORT_MONITOR_<KEY>__<SUB>``
override it (e.g. ``SUPPORT_MONITOR_EXPORTER__LISTEN=0.0.0.0:9108``). Every model is frozen and
refuses unknown keys, so a typo is an error that names the key instead of a silent default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from alerts.config import AlertSettings, NotifierSettings
from detectors.config import DetectorSettings
from monitor.cluster.settings import ClusterSettings, StateSettings
from monitor.durations import Duration, parse_duration
from monitor.sources.settings import KafkaSettings, MqttSettings

LabelValue = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelSettings(_Model):
    """SLA settings of one channel. Live-contact channels set ``answer_seconds``; ticket channels
    set ``first_response_seconds`` and/or ``resolution_seconds``; a channel may set both."""

    answer_seconds: Duration | None = None
    short_abandon_seconds: Duration = 5.0
    service_level_target: float | None = Field(default=None, gt=0, lt=1)
    first_response_seconds: Duration | None = None
    resolution_seconds: Duration | None = None
    first_response_warning_seconds: Duration | None = None
    """Lead time of ``support_tickets_at_risk{sla="first_response"}``; default 10% of target."""
    resolution_warning_seconds: Duration | None = None
    """Lead time for ``support_tickets_at_risk{sla="resolution"}``; default 10% of the target."""
    queues: tuple[LabelValue, ...] = ("default",)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.answer_seconds is not None and self.answer_seconds <= 0:
            raise ValueError(
                "answer_seconds must be greater than 0: a 0 s target breaches every contact"
            )
        for name in ("first_response_seconds", "resolution_seconds"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be greater than 0")
        for lead, target in (
            ("first_response_warning_seconds", "first_response_seconds"),
            ("resolution_warning_seconds", "resolution_seconds"),
        ):
            lead_value, target_value = getattr(self, lead), getattr(self, target)
            if lead_value is not None and target_value is None:
                raise ValueError(f"{lead} is set but {target} is not: the warning could never fire")
            if lead_value is not None and target_value is not None and lead_value >= target_value:
                raise ValueError(f"{lead} must be shorter than {target}")
        if len(set(self.queues)) != len(self.queues):
            raise ValueError("queues must not repeat")
        if not self.queues:
            raise ValueError("queues must name at least one queue")
        return self

    @property
    def is_live(self) -> bool:
        return self.answer_seconds is not None

    @property
    def fr_lead(self) -> float | None:
        if self.first_response_seconds is None:
            return None
        if self.first_response_warning_seconds is not None:
            return self.first_response_warning_seconds
        return self.first_response_seconds * 0.1

    @property
    def res_lead(self) -> float | None:
        if self.resolution_seconds is None:
            return None
        if self.resolution_warning_seconds is not None:
            return self.resolution_warning_seconds
        return self.resolution_seconds * 0.1


class IngestSettings(_Model):
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
    complaint_tags: tuple[str, ...] = ("complaint",)
    complaint_categories: tuple[LabelValue, ...] = ()
    """Allowed ``category`` values; others count as ``other``, a missing one ``uncategorized``.
    Empty: the first ``max_complaint_categories`` distinct values seen are kept as they are."""
    max_complaint_categories: int = Field(default=20, ge=0, le=1000)


class DeadLetterSettings(_Model):
    path: Path | None = None
    """JSON Lines file for rejected events (original bytes, reason, position)."""


class SimulatorSettings(_Model):
    """The built-in contact center, used when no source is configured."""

    enabled: bool | None = None
    """``None`` (default): on when no other source is configured."""
    seed: int = 7
    speed: float = Field(default=1.0, gt=0)
    """Simulated seconds per wall-clock second."""
    arrivals_per_minute: float = Field(default=30.0, gt=0)
    agents: int = Field(default=160, gt=0)
    incidents: bool = True
    """Script a queue surge and a complaint spike so alerts show on a fresh install."""


class SourcesSettings(_Model):
    simulator: SimulatorSettings = SimulatorSettings()
    kafka: KafkaSettings | None = None
    mqtt: MqttSettings | None = None

    @property
    def simulator_on(self) -> bool:
        if self.simulator.enabled is not None:
            return self.simulator.enabled
        return self.kafka is None and self.mqtt is None


class ExporterSettings(_Model):
    listen: str = "127.0.0.1:9108"
    tick_seconds: Duration = Field(default=1.0, gt=0)
    """How often the wall clock advances the engine and the alert rules are evaluated."""


class LoggingSettings(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


def _default_channels() -> dict[str, ChannelSettings]:
    return {
        "voice": ChannelSettings(
            answer_seconds=20,
            short_abandon_seconds=5,
            service_level_target=0.8,
            queues=("billing", "tech"),
        ),
        "chat": ChannelSettings(
            answer_seconds=60,
            short_abandon_seconds=5,
            service_level_target=0.8,
            queues=("sales", "support"),
        ),
        "email": ChannelSettings(
            first_response_seconds=3600, resolution_seconds=86400, queues=("default",)
        ),
    }


class Settings(BaseSettings):
    """The whole configuration; ``deploy/support-monitor/config.yaml`` is a commented example."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix="SUPPORT_MONITOR_",
        env_nested_delimiter="__",
    )

    windows: tuple[str, ...] = ("5m", "1h")
    channels: dict[LabelValue, ChannelSettings] = Field(default_factory=_default_channels)
    ingest: IngestSettings = IngestSettings()
    dead_letter: DeadLetterSettings = DeadLetterSettings()
    sources: SourcesSettings = SourcesSettings()
    exporter: ExporterSettings = ExporterSettings()
    logging: LoggingSettings = LoggingSettings()
    detectors: DetectorSettings = DetectorSettings()
    alerts: AlertSettings = AlertSettings()
    notifiers: NotifierSettings = NotifierSettings()
    state: StateSettings = StateSettings()
    cluster: ClusterSettings = ClusterSettings()

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

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.channels:
            raise ValueError("channels: declare at least one channel")
        seen: set[float] = set()
        for name in self.windows:
            try:
                seconds = parse_duration(name)
            except ValueError as exc:
                raise ValueError(f"windows: {exc}") from None
            if seconds < 1:
                raise ValueError(f"windows: {name!r} is shorter than the 1 s bucket resolution")
            if seconds > 7 * 86400:
                raise ValueError(f"windows: {name!r} is longer than the 7 d maximum")
            if seconds in seen:
                raise ValueError(f"windows: {name!r} repeats another window")
            seen.add(seconds)
        if not self.windows:
            raise ValueError("windows: name at least one window, e.g. ['5m', '1h']")
        self.detectors.validate_against(self.channels, self.windows)
        self.alerts.validate_against(self.channels, self.windows, self.notifiers, self.detectors)
        return self

    @model_validator(mode="after")
    def _check_cluster(self) -> Self:
        if self.cluster.enabled:
            if self.sources.kafka is None or self.sources.mqtt is not None or (
                self.sources.simulator_on
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

    @property
    def window_seconds(self) -> dict[str, float]:
        return {name: parse_duration(name) for name in self.windows}


class ConfigError(Exception):
    """A config that cannot be used; the message names each key and its problem."""


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        # Cross-checks of the whole tree already start their message with the key they mean.
        lines.append(f"{key}: {msg}" if key else msg)
    return "\n".join(lines)


def parse_settings(data: dict[str, Any]) -> Settings:
    """Settings from a mapping (the YAML document); environment overrides apply."""
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None


def load_settings(path: Path | None) -> Settings:
    """Read and validate a YAML config file (``None``: built-in defaults plus environment)."""
    if path is None:
        return parse_settings({})
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return parse_settings(data)
