"""``support-monitor backtest``: what a config would have paged on a recorded file.

The file goes through the replay road itself (:func:`monitor.replay.replay_road`: the same
pipeline, tick road, detectors and alert rules as ``replay`` and the daemon). Two things differ,
both outside that road:

- the alert state changes go to an in-memory :class:`Recorder`, and so do the notifications the
  planner would send at each evaluation (grouping, ``group_wait``/``group_interval``,
  inhibition and mute windows in event time; nothing is put in an outbox or sent: the alert
  evaluation is never opened for delivery, as in ``replay``). A config that routes to no one
  is planned with one stand-in receiver on a default route (:func:`offline`);
- rejected lines go to a sink that only counts them, and the settings the road sees have
  ``dead_letter.path``, ``state.dir`` and ``notifiers.state_dir`` unset, so nothing is written
  where a running daemon keeps its dead letters, snapshot, outbox, alert state or console state.

The summary per (alert, severity, channel) is described in ``docs/backtest.md``: firings
(transitions into ``firing``), how many of them reached a receiver in a message and how many
began inhibited, pages per day (firings / max(file span, 1 h) in days), minutes firing (an
alert still firing at the end counts until the replay's clock stops) and the first firing; per run,
the messages by kind and receiver. Memory: one entry per alert label set that fired, one per
(alert, severity, channel) row, one per receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import signal
import stat
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TextIO, cast

import structlog

from support_monitor.alerts.config import Route, WebhookReceiver
from support_monitor.alerts.notify.message import Notification
from support_monitor.alerts.timefmt import rfc3339
from support_monitor.monitor.config import Settings
from support_monitor.monitor.errors import SupportMonitorError
from support_monitor.monitor.interrupt import run_interruptible, sigint_held
from support_monitor.monitor.replay import replay_road

__all__ = [
    "FORMATS",
    "MIN_SPAN_SECONDS",
    "STAND_IN_RECEIVER",
    "Backtest",
    "Recorder",
    "Row",
    "RowKey",
    "as_json",
    "as_table",
    "main",
    "offline",
    "report_rejects",
    "run_backtest",
]

MIN_SPAN_SECONDS = 3600.0
"""Pages per day divide by at least one hour of event time (a 5-minute file does not turn one
firing into 288 pages a day)."""
DAY = 86400.0
FORMATS = ("table", "json")
STAND_IN_RECEIVER = "pager"
"""The receiver a config without routes is planned with (one route, default grouping)."""
KINDS = ("new", "repeat", "resolved")

log = structlog.get_logger("support_monitor.backtest")

RowKey = tuple[str, str, str]
"""(alertname, severity, channel)."""


@dataclass(slots=True)
class Row:
    """One (alert, severity, channel): what it would have paged."""

    alertname: str
    severity: str
    channel: str
    firings: int = 0
    paged: int = 0
    """Firings that reached a receiver in a message (the rest were inhibited, muted or
    resolved before their group's message)."""
    inhibited: int = 0
    """Firings that began inhibited (``"inhibited": true`` on the firing record)."""
    seconds_firing: float = 0.0
    first_firing: float | None = None

    @property
    def key(self) -> RowKey:
        return self.alertname, self.severity, self.channel


class Recorder:
    """The in-memory stand-in for the notifiers: takes each alert state change record
    (``alerts.rules.transition_record``) and keeps firings and firing time per row, and each
    evaluation's planned notifications (messages by kind and receiver, firings paged)."""

    def __init__(self) -> None:
        self.rows: dict[RowKey, Row] = {}
        self.transitions = 0
        self.messages: Counter[str] = Counter(dict.fromkeys(KINDS, 0))
        self.receivers: Counter[str] = Counter()
        self._firing: dict[str, tuple[Row, float]] = {}  # fingerprint -> (row, fired at)
        self._told: dict[str, float] = {}  # fingerprint -> activation (active_at) paged

    def record(self, record: dict[str, object]) -> None:
        """One ``transition_record``: ``ts`` (event time), ``state``, ``previous``, ``labels``
        and ``fingerprint`` are read."""
        self.transitions += 1
        state = record["state"]
        fingerprint = str(record["fingerprint"])
        now = cast("float", record["ts"])
        if state == "firing":
            labels = cast("dict[str, str]", record["labels"])
            key = (
                labels.get("alertname", ""),
                labels.get("severity", ""),
                labels.get("channel", ""),
            )
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = Row(*key)
            row.firings += 1
            if record.get("inhibited"):
                row.inhibited += 1
            if row.first_firing is None:
                row.first_firing = now
            self._firing[fingerprint] = (row, now)
        elif record["previous"] == "firing":  # resolved after firing
            opened = self._firing.pop(fingerprint, None)
            if opened is not None:
                row, since = opened
                row.seconds_firing += now - since

    def plan(self, notifications: list[Notification]) -> None:
        """One evaluation's planned messages: counted by kind and receiver; an alert firing in a
        message counts as paged once per activation, whichever receiver got it first."""
        for note in notifications:
            self.messages[note.kind] += 1
            self.receivers[note.receiver] += 1
            for info in note.alerts:
                if info.resolved_at is not None:
                    self._told.pop(info.fingerprint, None)
                    continue
                if self._told.get(info.fingerprint) == info.active_at:
                    continue
                self._told[info.fingerprint] = info.active_at
                labels = info.labels
                key = (
                    labels.get("alertname", ""),
                    labels.get("severity", ""),
                    labels.get("channel", ""),
                )
                row = self.rows.get(key)
                if row is not None:
                    row.paged += 1

    def close(self, end: float) -> None:
        """Alerts still firing count until ``end`` (the end of the replay's clock)."""
        for row, since in self._firing.values():
            row.seconds_firing += max(0.0, end - since)
        self._firing.clear()


@dataclass(slots=True)
class Backtest:
    """One config's run over the file."""

    config: str
    first_event: float | None
    last_event: float | None
    events_applied: int
    rejected: dict[str, int]
    duplicates: int
    transitions: int
    rows: list[Row] = field(default_factory=list)
    messages: dict[str, int] = field(default_factory=dict)
    """Planned messages by kind (``new``, ``repeat``, ``resolved``)."""
    receivers: dict[str, int] = field(default_factory=dict)
    """Planned messages by receiver."""
    stand_in: bool = False
    """The config routes to no one: planned with :data:`STAND_IN_RECEIVER`."""

    @property
    def span_seconds(self) -> float:
        if self.first_event is None or self.last_event is None:
            return 0.0
        return max(0.0, self.last_event - self.first_event)

    @property
    def days(self) -> float:
        """The divisor of pages per day: the span in days, at least one hour."""
        return max(self.span_seconds, MIN_SPAN_SECONDS) / DAY

    @property
    def events_rejected(self) -> int:
        return sum(self.rejected.values())

    def pages_per_day(self, row: Row) -> float:
        return row.firings / self.days

    @property
    def message_count(self) -> int:
        return sum(self.messages.values())


def routes_to_no_one(settings: Settings) -> bool:
    return not settings.notifiers.routes


def offline(settings: Settings) -> Settings:
    """The settings with every path a daemon writes to unset: dead letters, the engine
    snapshot, and the notifier state directory (outbox, alert state, console silences and
    signing key). A config without routes gets one stand-in receiver (``pager``, never
    contacted) on a route with the default grouping, so its messages can be counted."""
    notifiers = settings.notifiers.model_copy(update={"state_dir": None})
    if routes_to_no_one(settings):
        stand_in = WebhookReceiver(type="webhook", url="https://backtest.invalid/")
        notifiers = notifiers.model_copy(
            update={
                "receivers": {STAND_IN_RECEIVER: stand_in},
                "routes": (Route(receiver=STAND_IN_RECEIVER),),
            }
        )
    return settings.model_copy(
        update={
            "dead_letter": settings.dead_letter.model_copy(update={"path": None}),
            "state": settings.state.model_copy(update={"dir": None}),
            "notifiers": notifiers,
        }
    )


async def run_backtest(path: Path, settings: Settings, config: str) -> Backtest:
    """Replay ``path`` with ``settings`` on the replay road and summarise what fired.
    Raises ``OSError`` when the file cannot be read."""
    recorder = Recorder()
    done = await replay_road(
        path,
        offline(settings),
        on_transition=recorder.record,
        on_plan=recorder.plan,
    )
    pipeline = done.pipeline
    first = pipeline.earliest_applied if math.isfinite(pipeline.earliest_applied) else None
    last = pipeline.latest_applied if math.isfinite(pipeline.latest_applied) else None
    if last is not None:
        # the replay's clock: the last event time, or later where a line refused by the state
        # it met moved it (alerts may fire and resolve up to there)
        clock = done.engine.now
        recorder.close(max(last, clock) if math.isfinite(clock) else last)
    stats = done.stats
    rejected: Counter[str] = Counter()
    for (_, reason), count in stats.rejected.items():
        if count:
            rejected[reason] += count
    return Backtest(
        config=config,
        first_event=first if last is not None else None,
        last_event=last,
        events_applied=sum(stats.events.values()),
        rejected=dict(sorted(rejected.items())),
        duplicates=sum(stats.duplicates.values()),
        transitions=recorder.transitions,
        rows=sorted(recorder.rows.values(), key=lambda r: r.key),
        messages=dict(recorder.messages),
        receivers=dict(sorted(recorder.receivers.items())),
        stand_in=routes_to_no_one(settings),
    )


# --- output -----------------------------------------------------------------------------------


def _time(ts: float | None) -> str | None:
    return None if ts is None else rfc3339(ts)


def _numbers(run: Backtest, row: Row | None) -> tuple[int, int, int, float, float]:
    """Firings, paged, inhibited, pages per day and minutes firing of a row (zeros where it
    did not fire)."""
    if row is None:
        return 0, 0, 0, 0.0, 0.0
    return row.firings, row.paged, row.inhibited, run.pages_per_day(row), row.seconds_firing / 60


NUMBERS = ("firings", "paged", "inhibited", "pages_per_day", "minutes_firing")


def _row_json(run: Backtest, row: Row | None) -> dict[str, object]:
    out: dict[str, object] = dict(zip(NUMBERS, _numbers(run, row), strict=True))
    out["first_firing"] = None if row is None else _time(row.first_firing)
    return out


def _run_json(run: Backtest) -> dict[str, object]:
    return {
        "config": run.config,
        "first_event": _time(run.first_event),
        "last_event": _time(run.last_event),
        "span_seconds": run.span_seconds,
        "days": run.days,
        "events_applied": run.events_applied,
        "events_rejected": run.events_rejected,
        "rejected": run.rejected,
        "duplicates": run.duplicates,
        "transitions": run.transitions,
        "messages": {
            **{kind: run.messages.get(kind, 0) for kind in KINDS},
            "total": run.message_count,
            "per_day": run.message_count / run.days,
        },
        "receivers": run.receivers,
        "stand_in_receiver": run.stand_in,
        "alerts": [
            {"alertname": r.alertname, "severity": r.severity, "channel": r.channel}
            | _row_json(run, r)
            for r in run.rows
        ],
    }


def _pairs(base: Backtest, other: Backtest) -> list[tuple[RowKey, Row | None, Row | None]]:
    """Every row of either run, in (alert, severity, channel) order."""
    a = {r.key: r for r in base.rows}
    b = {r.key: r for r in other.rows}
    return [(key, a.get(key), b.get(key)) for key in sorted(a.keys() | b.keys())]


def as_json(events: Path, base: Backtest, other: Backtest | None) -> str:
    """The ``--format json`` document (its shape is documented in ``docs/backtest.md``)."""
    doc: dict[str, object] = {
        "events_file": str(events),
        "runs": [_run_json(base)] + ([] if other is None else [_run_json(other)]),
        "diff": None,
    }
    if other is not None:
        diff = []
        for (alertname, severity, channel), a, b in _pairs(base, other):
            entry: dict[str, object] = {
                "alertname": alertname,
                "severity": severity,
                "channel": channel,
            }
            for name, before, after in zip(
                NUMBERS, _numbers(base, a), _numbers(other, b), strict=True
            ):
                entry[name] = {"config": before, "against": after, "change": after - before}
            entry["first_firing"] = {
                "config": None if a is None else _time(a.first_firing),
                "against": None if b is None else _time(b.first_firing),
            }
            diff.append(entry)
        doc["diff"] = diff
    return json.dumps(doc, indent=2) + "\n"


def _summary(label: str, run: Backtest) -> str:
    rejected = ", ".join(f"{reason} {n}" for reason, n in run.rejected.items())
    span = (
        "none"
        if run.first_event is None or run.last_event is None
        else f"{rfc3339(run.first_event)} .. {rfc3339(run.last_event)}"
    )
    kinds = ", ".join(f"{kind} {run.messages.get(kind, 0)}" for kind in KINDS)
    to = ", ".join(f"{name} {n}" for name, n in run.receivers.items()) or "nobody"
    if run.stand_in:
        to = f"{to}; the config has no route: {STAND_IN_RECEIVER!r} stands in"
    return (
        f"{label}{run.config}: {run.events_applied} events applied, {run.events_rejected} "
        f"rejected{f' ({rejected})' if rejected else ''}, {run.duplicates} duplicates; "
        f"event time {span} ({run.span_seconds / 3600:.2f} h; pages/day over {run.days:.4f} d)"
        f"\n{' ' * len(label)}{run.message_count} messages ({kinds}; "
        f"{run.message_count / run.days:.2f}/day) to {to}"
    )


def _grid(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    out = []
    for line in [header, *rows]:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
    return out


def _signed(value: float, digits: int) -> str:
    text = f"{value:+.{digits}f}"
    return "0" if float(text) == 0 else text


def as_table(events: Path, base: Backtest, other: Backtest | None) -> str:
    """The ``--format table`` text: aligned columns, rows in (alert, severity, channel) order."""
    lines = [f"backtest of {events}"]
    if other is None:
        lines.append(_summary("", base))
        header = ["ALERT", "SEVERITY", "CHANNEL", "FIRINGS", "PAGED", "INHIBITED"]
        header += ["PAGES/DAY", "MIN FIRING", "FIRST FIRING"]
        rows = [
            [
                r.alertname,
                r.severity,
                r.channel,
                str(r.firings),
                str(r.paged),
                str(r.inhibited),
                f"{base.pages_per_day(r):.2f}",
                f"{r.seconds_firing / 60:.1f}",
                rfc3339(r.first_firing) if r.first_firing is not None else "-",
            ]
            for r in base.rows
        ]
        right = {3, 4, 5, 6, 7}
    else:
        lines.extend((_summary("A = ", base), _summary("B = ", other)))
        header = ["ALERT", "SEVERITY", "CHANNEL", "FIRINGS A", "B", "B-A", "PAGED A", "B"]
        header += ["B-A", "PAGES/DAY A", "B", "B-A", "MIN FIRING A", "B", "B-A"]
        header += ["FIRST FIRING A", "FIRST FIRING B"]
        rows = []
        for (alertname, severity, channel), a, b in _pairs(base, other):
            fa, ga, _, pa, ma = _numbers(base, a)
            fb, gb, _, pb, mb = _numbers(other, b)
            first = [
                "-" if r is None or r.first_firing is None else rfc3339(r.first_firing)
                for r in (a, b)
            ]
            rows.append(
                [
                    alertname,
                    severity,
                    channel,
                    str(fa),
                    str(fb),
                    _signed(fb - fa, 0),
                    str(ga),
                    str(gb),
                    _signed(gb - ga, 0),
                    f"{pa:.2f}",
                    f"{pb:.2f}",
                    _signed(pb - pa, 2),
                    f"{ma:.1f}",
                    f"{mb:.1f}",
                    _signed(mb - ma, 1),
                    *first,
                ]
            )
        right = set(range(3, 15))
    lines.append("")
    if rows:
        lines.extend(_grid(header, rows, right))
    else:
        lines.append("no alert fired")
    return "\n".join(lines) + "\n"


def report_rejects(run: Backtest, err: TextIO) -> None:
    """One stderr line per run with rejected lines (each was also logged with its position)."""
    if run.events_rejected:
        reasons = ", ".join(f"{reason} {n}" for reason, n in run.rejected.items())
        lines = "line" if run.events_rejected == 1 else "lines"
        err.write(
            f"backtest: {run.config}: {run.events_rejected} {lines} rejected ({reasons}); "
            "not fatal: each is an event_rejected warning in the log, with its position (at "
            "logging.level warning or lower)\n"
        )


def _cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity call here (macOS, Windows)
        return 1


def _run_all(events: Path, configs: list[tuple[str, Settings]]) -> list[Backtest]:
    """Run each config over ``events``. Each run is CPU-bound on one core: with ``--against``
    and more than one CPU (:func:`_cpus`), the second config runs in a forked worker process
    while this one runs the first, on Linux. Raises ``OSError`` when the file cannot be read."""
    if len(configs) < 2 or sys.platform != "linux" or _cpus() < 2:
        return [_run(events, settings, name) for name, settings in configs]
    (first, first_settings), (second, second_settings) = configs
    worker = None
    try:
        with sigint_held():  # a Ctrl-C mid-fork would leave a child nobody stops or reaps
            worker = _Worker(events, second, second_settings)
        runs = [_run(events, first_settings, first)]
        other = worker.result()
        if other is None:  # the worker died without an answer: run it here
            other = _run(events, second_settings, second)
        runs.append(other)
    finally:
        if worker is not None:
            worker.stop()
    return runs


def _run(events: Path, settings: Settings, name: str) -> Backtest:
    """One backtest on an event loop of its own; a Ctrl-C cancels it and is raised as
    ``KeyboardInterrupt`` once the loop is closed (:func:`run_interruptible`)."""
    return run_interruptible(lambda: run_backtest(events, settings, name))


class _Worker:
    """One backtest in a forked child process; its :class:`Backtest` (or the ``OSError`` that
    stopped it) comes back over a pipe. The child gets the default SIGINT disposition unless
    SIGINT is ignored here (Ctrl-C then ends it at once, with no traceback), and is ended when
    this process stops waiting."""

    def __init__(self, events: Path, name: str, settings: Settings) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe(duplex=False)
        for stream in (sys.stdout, sys.stderr):  # the child must not write them out again
            stream.flush()
        self._process = context.Process(
            target=_work,
            args=(child, events, name, settings),
            name=f"backtest {name}",
            daemon=True,
        )
        self._process.start()
        child.close()

    def result(self) -> Backtest | None:
        """The child's run; ``None`` (logged) when it ended without one. Raises the child's
        ``OSError``."""
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError):
            self._process.join()
            log.warning(
                "backtest_worker_lost",
                exitcode=self._process.exitcode,
                action="running that config in this process",
            )
            return None
        if kind == "oserror":
            raise cast("OSError", value)
        return cast("Backtest", value)

    def stop(self) -> None:
        self._conn.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()


def _work(conn: Connection, events: Path, name: str, settings: Settings) -> None:
    """The worker process: one backtest, its result sent back."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # as the parent has it otherwise
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        try:
            answer: tuple[str, object] = ("run", asyncio.run(run_backtest(events, settings, name)))
        except OSError as exc:
            answer = ("oserror", OSError(exc.errno, exc.strerror))
        conn.send(answer)
    finally:
        conn.close()


class SpoolError(SupportMonitorError):
    """The copy of an events stream that cannot be read twice could not be written; the
    message is the system's reason."""


def _why(where: object, exc: OSError) -> str:
    return f"{where}: {exc.strerror or type(exc).__name__}"


def _readable_twice(events: Path) -> bool:
    try:
        return stat.S_ISREG(events.stat().st_mode)
    except OSError:
        return True  # the run says why it cannot read it


def _spool(events: Path, directory: str) -> Path:
    """Copy ``events`` (a pipe, ``/dev/stdin``, a FIFO) into ``directory``: every config of
    ``--against`` must read the same lines, and such a stream gives them only once. A failure
    to read it is an ``OSError``; to write the copy, a :class:`SpoolError`."""
    copy = Path(directory) / (events.name or "events")  # log positions name the stream
    with events.open("rb") as src:
        try:
            dst = copy.open("wb")
        except OSError as exc:
            raise SpoolError(_why(copy, exc)) from None
        with dst:
            while chunk := src.read(1 << 20):
                try:
                    dst.write(chunk)
                except OSError as exc:
                    raise SpoolError(_why(copy, exc)) from None
    return copy


def main(
    events: Path, configs: list[tuple[str, Settings]], fmt: str, out: TextIO, err: TextIO
) -> int:
    """The command: 0 when the summary is written, 1 when the events file cannot be read.
    ``configs``: (name, settings) of ``--config`` and, with ``--against``, of that file."""
    with contextlib.ExitStack() as stack:
        source = events
        try:
            if len(configs) > 1 and not _readable_twice(events):
                try:
                    directory = stack.enter_context(
                        tempfile.TemporaryDirectory(prefix="support-monitor-backtest-")
                    )
                except OSError as exc:
                    raise SpoolError(_why(tempfile.gettempdir(), exc)) from None
                source = _spool(events, directory)
            runs = _run_all(source, configs)
        except SpoolError as exc:
            err.write(f"error: cannot keep a copy of {events} for --against: {exc}\n")
            return 1
        except OSError as exc:
            err.write(f"error: cannot read {events}: {exc.strerror or type(exc).__name__}\n")
            return 1
    for run in runs:
        report_rejects(run, err)
    base, other = runs[0], (runs[1] if len(runs) > 1 else None)
    out.write(as_json(events, base, other) if fmt == "json" else as_table(events, base, other))
    out.flush()
    return 0
