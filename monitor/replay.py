"""``support-monitor replay``: a JSON Lines file through the same pipeline, event time as clock."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Protocol

import msgspec
import structlog

from support_monitor.alerts.runtime import PlanSink, TransitionSink
from support_monitor.monitor.config import Settings
from support_monitor.monitor.consume import consume
from support_monitor.monitor.deadletter import DeadLetter, DeadLetterSink, JsonlDeadLetters
from support_monitor.monitor.durations import format_duration
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.errors import ConfigError, SupportMonitorError
from support_monitor.monitor.events import EARLIEST_TS, LATEST_TS
from support_monitor.monitor.exporter import render
from support_monitor.monitor.registry import build_registry
from support_monitor.monitor.road import Road, build_road
from support_monitor.monitor.sources.file import FileSource
from support_monitor.monitor.stats import DaemonStats


class DeadLettersLostError(SupportMonitorError):
    """``--dead-letters`` could not store some rejected lines; the replay itself completed and
    ``exposition`` is its output."""

    def __init__(self, path: Path, lost: int, exposition: bytes) -> None:
        super().__init__(f"{lost} rejected lines could not be written to {path}")
        self.lost = lost
        self.exposition = exposition


class BytesOut(Protocol):
    """Where ``--alerts-out`` records go: a binary file, or anything with its ``write``."""

    def write(self, data: bytes, /) -> object: ...


def parse_until(text: str) -> float:
    """``--until``: RFC 3339 with offset, or epoch seconds; within the years event times may
    have (:data:`~support_monitor.monitor.events.EARLIEST_TS` to ``LATEST_TS``). Read to the
    microsecond as an event's ``ts`` is (more digits rounded to the nearest one, half up), so
    the same instant gives the same clock in either form and in an event."""
    try:
        value = float(text)
    except ValueError:
        value = _rfc3339(text)
        epoch = False
    else:
        epoch = True
    if not EARLIEST_TS <= value < LATEST_TS:  # also NaN and the infinities
        raise ValueError(f"--until {text!r} is not between 1970 and 8999 (UTC)")
    if epoch:
        micros = Decimal(text.strip()).quantize(Decimal("0.000001"), ROUND_HALF_UP)
        value = (_EPOCH + timedelta(microseconds=int(micros * 1_000_000))).timestamp()
    return value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _rfc3339(text: str) -> float:
    """An RFC 3339 ``--until`` in seconds: parsed as an event's ``ts`` is (msgspec), else by
    ``datetime.fromisoformat`` (its other ISO 8601 forms); a UTC offset is required."""
    try:
        moment = msgspec.convert(text, datetime)
    except msgspec.ValidationError:
        try:
            # RFC 3339 allows a lowercase "z" (and "t"); fromisoformat takes only "Z"
            moment = datetime.fromisoformat(text[:-1] + "Z" if text.endswith("z") else text)
        except ValueError:
            raise ValueError(f"--until {text!r} is neither RFC 3339 nor epoch seconds") from None
    if moment.tzinfo is None:
        raise ValueError(f"--until {text!r} needs a UTC offset, e.g. 2026-01-01T10:00:00Z")
    return moment.timestamp()


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: one existing file (also through links), or, when
    either does not exist yet, one path once resolved (``replay`` must not write to its input,
    its config, or both outputs to one file)."""
    try:
        return a.samefile(b)
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return False


class _NoSink:
    async def write(self, letter: DeadLetter) -> None:
        """Replay reports bad lines on stderr (the pipeline logs each); nothing else to keep."""


async def replay_road(
    path: Path,
    settings: Settings,
    *,
    until: float | None = None,
    on_transition: TransitionSink | None = None,
    on_plan: PlanSink | None = None,
    dead_letters: Path | None = None,
    exact_end: bool = False,
) -> Road:
    """The replay road (``replay`` and ``backtest``): feed the file, move the clock to ``until``
    (if later) and flush. ``on_transition`` receives each alert state change record;
    ``on_plan`` each evaluation's planned notifications (``Alerting``: nothing is sent);
    ``dead_letters``: a JSON Lines file for the rejected lines (``None``: they are counted and
    logged only). The config's ``dead_letter.path`` is the daemon's and is never written here:
    a replay with a production config must not append to the production file.
    ``exact_end``: the windows are cut exactly at the end, also a fractional one
    (:meth:`Engine.end_at`), for the exposition printed then."""
    road = build_road(
        settings,
        Engine(settings, exact_end=exact_end),
        DaemonStats(),
        replay=True,
        on_transition=on_transition,
        on_plan=on_plan,
    )
    engine, pipeline = road.engine, road.pipeline
    sink: DeadLetterSink = _NoSink()
    file_sink = None
    if dead_letters is not None:
        if same_file(dead_letters, path):
            # its letters would be read again, rejected again and appended again, forever
            raise ConfigError(f"--dead-letters {dead_letters} is the replayed file")
        file_sink = JsonlDeadLetters(dead_letters, road.stats, give_up=True)
        file_sink.__enter__()
        sink = file_sink
    try:
        async with FileSource(path) as source:
            await consume(source, pipeline, sink)
        gap = settings.ingest.max_replay_gap
        if until is not None and math.isfinite(engine.now) and until - engine.now > gap:
            # Every hour up to --until is judged as a tick would (hourly baselines learn it):
            # bounded like the gap between two events.
            msg = (
                f"--until {_utc(until)} is {until - engine.now:.0f} s after the file's last "
                f"event time ({_utc(engine.now)}): more than ingest.max_replay_gap "
                f"({format_duration(gap)}); raise it to replay that far"
            )
            raise ConfigError(msg)
        final = engine.now if until is None else max(engine.now, until)
        if until is not None and until < engine.now:
            structlog.get_logger("support_monitor.replay").warning(
                "replay_until_passed", until=until, clock=engine.now
            )  # the events already moved the clock past it; the clock never goes back
        if math.isfinite(final):
            # The ticks before the end, then every deadline up to it decided (no later event
            # will come), then the tick at the end itself if there is one: the detectors and
            # rules of that last tick judge the state the exposition shows (decided up to the
            # end, not up to the end less the allowed lateness).
            road.ticks.catch_up(final, inclusive=False)
            try:
                engine.flush(final)
            except Exception:  # noqa: BLE001 - a defect; the numbers so far are still printed
                structlog.get_logger("support_monitor.replay").exception("replay_flush_failed")
            road.ticks.catch_up(final, inclusive=True)
            if exact_end:
                engine.end_at(final)
        for letter in pipeline.take_deferred():  # held outcomes decided at the end
            await sink.write(letter)
    finally:
        if file_sink is not None:
            file_sink.__exit__(None, None, None)
            road.stats.dead_letters_lost += file_sink.lost
    return road


async def replay(
    path: Path,
    settings: Settings,
    *,
    until: float | None = None,
    alerts_out: BytesOut | None = None,
    dead_letters: Path | None = None,
    rejected: Counter[str] | None = None,
) -> bytes:
    """Feed the file, move the clock to ``until`` (if later), and return the exposition text.
    ``dead_letters``: a JSON Lines file for the rejected lines (see :func:`replay_road`); when
    some cannot be stored, :class:`DeadLettersLostError` carries the exposition.
    ``rejected``: counts the rejected lines by reason (for the command's stderr summary)."""
    encoder = msgspec.json.Encoder()

    def write_transition(record: dict[str, object]) -> None:
        if alerts_out is not None:
            alerts_out.write(encoder.encode(record) + b"\n")

    done = await replay_road(
        path,
        settings,
        until=until,
        on_transition=write_transition,
        dead_letters=dead_letters,
        exact_end=True,
    )
    text = render(build_registry(done.engine, done.stats, done.alerting))
    if rejected is not None:
        for (_, reason), count in done.stats.rejected.items():
            if count:
                rejected[reason] += count
    if dead_letters is not None and done.stats.dead_letters_lost:
        raise DeadLettersLostError(dead_letters, done.stats.dead_letters_lost, text)
    return text
