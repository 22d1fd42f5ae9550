"""Settings of the broker sources (Kafka, MQTT); part of the one settings tree in monitor.config.

See ``docs/sources.md`` for what each key does and the delivery semantics behind it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from support_monitor.monitor.durations import Duration
from support_monitor.monitor.webconfig import host_problem, may_hold_secret, split_listen

LibraryLogLevel = Literal["debug", "info", "warning", "error", "critical"]


_KAFKA_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_KAFKA_TOPIC_RULE = (
    "not a Kafka topic name (1-249 of the letters, digits, '.', '_' and '-'; not '.' or '..'): "
    "the broker refuses it"
)


def _is_kafka_topic(name: str) -> bool:
    return _KAFKA_TOPIC.fullmatch(name) is not None and name not in {".", ".."}


def _server_problem(entry: str) -> str:
    """Why ``entry`` is no Kafka ``host[:port]`` (``[v6-address]:port`` too); "" when it is.
    A port is read as ``split_listen`` reads ``--listen``, but 0 is no broker's port."""
    if not entry:
        return "an empty server in the list"
    if may_hold_secret(entry):
        return (
            "a server is HOST:PORT, without a user, password or scheme "
            "(its text is not shown: it may hold a secret)"
        )
    if ":" not in entry:  # a bare host: the client's default port
        problem = host_problem(entry)
        return f"the host {problem}" if problem else ""
    try:
        _, port = split_listen(entry)
    except ValueError as exc:
        return str(exc).removeprefix(f"{entry!r}: ").removeprefix(f"{entry!r} ")
    return "" if port else "port 0 is no broker's port"


def kafka_servers_problem(servers: str) -> str:
    """Why the comma-separated ``servers`` cannot all be dialled ("" when they can)."""
    for entry in servers.split(","):
        problem = _server_problem(entry.strip())
        if problem:
            return problem if may_hold_secret(entry) else f"{entry.strip()!r}: {problem}"
    return ""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Model):
    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated ``host:port`` list."""
    topics: tuple[str, ...] = ("support-events",)
    group_id: str = "support-monitor"
    """Consumer group: offsets are committed under it; daemons sharing it split the partitions."""
    client_id: str = "support-monitor"
    dead_letter_topic: str | None = None
    """Rejected messages go here (original bytes + reason/detail/position headers), written
    before their offset is committed. ``None``: the daemon's ``dead_letter`` sink keeps them."""
    dead_letter_max_bytes: int = Field(default=1_000_000, gt=1024, le=16 * 1024 * 1024)
    """A dead letter larger than this is cut to this size (header ``raw_truncated`` keeps the
    original length) so it fits the broker's ``message.max.bytes``."""
    max_batch: int = Field(default=2000, gt=0)
    """Records handed over per fetch; offsets are committed once per batch, after it was applied."""
    poll_timeout: Duration = Field(default=0.5, gt=0)
    """How long one fetch waits for records before the source checks the broker connection."""
    max_partition_fetch_bytes: int = Field(default=1024 * 1024, gt=0)
    fetch_max_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    """Upper bound of what the client prefetches per request (the only buffer besides a batch)."""
    commit_timeout: Duration = Field(default=5.0, gt=0)
    """An offset commit that takes longer is given up (the records are redelivered later)."""
    reconnect_max_seconds: Duration = Field(default=30.0, gt=0)
    """Cap of the jittered exponential backoff between (re)connection attempts."""
    close_timeout: Duration = Field(default=5.0, gt=0)
    """Bound of the final commit and the client shutdown when the daemon stops."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_keyfile_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    library_log_level: LibraryLogLevel = "critical"
    """Level of the ``aiokafka`` library's own (stdlib) loggers. It logs every failed connection
    attempt, many per second during an outage; the source logs its own state changes instead."""

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, value: str) -> str:
        problem = kafka_servers_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _topic_names(self) -> Self:
        bad = [f"topics[{i}]" for i, topic in enumerate(self.topics) if not _is_kafka_topic(topic)]
        if bad:
            raise ValueError(
                f"{bad[0]}: {_KAFKA_TOPIC_RULE}" + "".join(f"; {b}: the same" for b in bad[1:])
            )
        if self.dead_letter_topic is not None and not _is_kafka_topic(self.dead_letter_topic):
            raise ValueError(f"dead_letter_topic: {_KAFKA_TOPIC_RULE}")
        return self

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.topics:
            raise ValueError("topics: name at least one topic")
        if self.dead_letter_topic is not None and self.dead_letter_topic in self.topics:
            raise ValueError("dead_letter_topic must not be one of the consumed topics")
        if self.security_protocol.startswith("SASL_"):
            if self.sasl_mechanism is None:
                raise ValueError(f"sasl_mechanism is required with {self.security_protocol}")
            if self.sasl_username is None or self.sasl_password is None:
                raise ValueError("sasl_username and sasl_password are required with SASL")
        else:
            # credentials that nothing would send: a typo of the protocol, or (alone) an
            # environment override that made a Kafka source of a config without one
            for name in ("sasl_mechanism", "sasl_username", "sasl_password"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is set but security_protocol is not SASL_*")
        if (self.ssl_keyfile is None) != (self.ssl_certfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together (client certificate)")
        return self


def mqtt_filter_problem(topic: str) -> str:
    """Why ``topic`` is no MQTT topic filter (MQTT 3.1.1, 4.7), "" when it is: the broker would
    refuse the subscription (and the client raise) at every connect."""
    if not topic:
        return "an empty topic filter"
    if "\0" in topic:
        return "a topic filter holds no NUL character"
    if len(topic.encode("utf-8", "surrogatepass")) > _MQTT_TOPIC_MAX:
        return f"longer than {_MQTT_TOPIC_MAX} bytes"
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return "'#' stands alone in the last level (e.g. support/#)"
        if "+" in level and level != "+":
            return "'+' stands alone in its level (e.g. support/+/events)"
    return ""


def _filter_problems(topics: tuple[str, ...]) -> list[str]:
    """Every bad filter of ``topics``, each by its position (``topics[1]: 'a/#/b': ...``)."""
    problems = []
    for i, topic in enumerate(topics):
        if topic.startswith("$share/"):
            problem = "write the plain filter and set shared_group instead"
        else:
            problem = mqtt_filter_problem(topic)
        if problem:
            problems.append(f"topics[{i}]: {topic!r}: {problem}")
    return problems


_MQTT_TOPIC_MAX = 65535


class MqttSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, gt=0, lt=65536)
    topics: tuple[str, ...] = ("support/events/#",)
    """Topic filters, subscribed with QoS 1."""
    shared_group: str | None = Field(default=None, pattern=r"^[^/+#]+$")
    """Subscribe as ``$share/<group>/<topic>`` so several daemons split the stream."""
    client_id: str = Field(default="support-monitor", min_length=1, max_length=64)
    """Must be stable (and unique per daemon): the broker keeps the persistent session under it."""
    clean_session: bool = False
    """``False``: persistent session, QoS 1 messages published while the daemon is away are
    delivered when it reconnects."""
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False
    """Skip the server host name check (test set-ups only)."""
    dead_letter_topic: str | None = None
    """Rejected messages are published here (QoS 1) as JSON records; ``None``: the daemon's
    ``dead_letter`` sink keeps them."""
    dead_letter_max_bytes: int = Field(default=1_000_000, gt=1024, le=16 * 1024 * 1024)
    """A dead letter's JSON record larger than this has its ``raw`` cut until it fits (field
    ``raw_truncated`` keeps the original length), so it fits the broker's message size limit
    (mosquitto ``message_size_limit``, ``max_packet_size``)."""
    keepalive: int = Field(default=30, ge=5, le=65535)
    connect_timeout: Duration = Field(default=10.0, gt=0)
    reconnect_max_seconds: Duration = 30.0
    max_queued_messages: int = Field(default=10_000, gt=0)
    """Bound of the client's receive buffer. Messages are acknowledged only after they were
    applied, so the broker's in-flight window (mosquitto ``max_inflight_messages``) normally keeps
    the buffer far below this."""
    max_queued_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Bound of the payload bytes in the client's receive buffer: past it (or past
    ``max_queued_messages``) a message is discarded as from a full buffer, unless the buffer is
    empty. So the buffer holds at most this plus one message, whatever size the broker lets
    through."""
    close_timeout: Duration = Field(default=5.0, gt=0)
    catch_up_seconds: Duration = Field(default=10.0, ge=0)
    """At start the clock (deadlines, detectors, rules) waits until the messages the broker kept
    for the session while the daemon was away are in: the source has connected and no message
    came for half a second. At most this long (a busy topic never goes quiet; a broker that is
    down is not waited for longer); 0: no wait."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if may_hold_secret(self.host):
            raise ValueError(
                "host: a host name or address, without a user, password or scheme (its text "
                "is not shown: it may hold a secret); set username and password instead"
            )
        problem = host_problem(self.host)
        if problem:
            raise ValueError(f"host: {self.host!r}: the host {problem}")
        if not self.topics:
            raise ValueError("topics: name at least one topic filter")
        problems = _filter_problems(self.topics)
        if problems:
            raise ValueError("; ".join(problems))
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (client certificate)")
        if not self.tls and (self.ca_file or self.cert_file):
            raise ValueError("ca_file/cert_file are set but tls is false")
        if self.dead_letter_topic is not None:
            _check_dead_letter_topic(self.dead_letter_topic, subscribed_filters(self))
        return self


MAX_TOPIC_BYTES = 65_535
"""MQTT's longest topic name, in UTF-8 bytes."""


def _check_dead_letter_topic(dead: str, filters: list[str]) -> None:
    """An MQTT dead-letter topic the broker stores and the source never reads back."""
    if not dead or any(c in dead for c in "+#\0"):
        raise ValueError("dead_letter_topic must be a topic name, not a filter")
    if len(dead.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES:
        raise ValueError(f"dead_letter_topic: longer than MQTT's {MAX_TOPIC_BYTES:,} bytes")
    if dead.startswith("$"):
        raise ValueError(
            f"dead_letter_topic {dead!r}: topics starting with $ belong to the broker "
            "($SYS): it acknowledges publishes there and drops them"
        )
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in dead):
        raise ValueError(
            f"dead_letter_topic {dead!r}: control characters (U+0001-U+001F, "
            "U+007F-U+009F) are not allowed in an MQTT topic (brokers drop the "
            "connection)"
        )
    for topic in filters:
        if topic_matches(topic, dead):
            raise ValueError(
                f"dead_letter_topic {dead!r} matches the subscription {topic!r}: every "
                "letter would be consumed again, rejected again and dead-lettered again"
            )


def subscribed_filters(settings: MqttSettings) -> list[str]:
    """The filters the MQTT source subscribes: ``topics``, as ``$share/<group>/<filter>`` with
    ``shared_group``."""
    if settings.shared_group is None:
        return list(settings.topics)
    return [f"$share/{settings.shared_group}/{topic}" for topic in settings.topics]


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether an MQTT 3.1.1 topic filter matches a topic name (section 4.7): ``+`` is one
    level, a trailing ``#`` is the parent level and everything below it, and a filter starting
    with a wildcard does not match a name starting with ``$``. A shared subscription
    ``$share/<group>/<filter>`` matches what ``<filter>`` matches."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        if len(parts) < 3:
            return False
        topic_filter = parts[2]
    wanted = topic_filter.split("/")
    levels = topic.split("/")
    if topic.startswith("$") and wanted[0] in {"+", "#"}:
        return False
    for i, level in enumerate(wanted):
        if level == "#":
            return True
        if i >= len(levels):
            return False
        if level not in {"+", levels[i]}:
            return False
    return len(levels) == len(wanted)
