"""Console script ``support-monitor``: run, replay, backtest, check-config, simulate, dashboards,
schema."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, BinaryIO, NoReturn

import typer
from pydantic import ValidationError

from support_monitor.alerts.secrets import receiver_problems
from support_monitor.monitor.config import Settings, config_notes, load_settings
from support_monitor.monitor.durations import parse_duration
from support_monitor.monitor.errors import ConfigError
from support_monitor.monitor.events import EARLIEST_TS, LATEST_TS
from support_monitor.monitor.interrupt import run_interruptible
from support_monitor.monitor.logs import configure
from support_monitor.monitor.redaction import hide_urls
from support_monitor.monitor.webconfig import split_listen

app = typer.Typer(
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, pwsh
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Realtime monitoring of contact-center queues and help-desk tickets.",
)
dashboards_app = typer.Typer(no_args_is_help=True, help="Grafana dashboards as code.")
app.add_typer(dashboards_app, name="dashboards")

DASHBOARDS_EXTRA_MISSING = (
    "dashboards build needs the grafana-foundation-sdk package: "
    "pip install 'support-monitor[dashboards]'"
)


def _version(value: bool) -> None:
    if value:
        from support_monitor.monitor.version import VERSION  # noqa: PLC0415 - only when asked

        typer.echo(f"support-monitor {VERSION}")
        raise typer.Exit


@app.callback()
def _main(
    *,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Realtime monitoring of contact-center queues and help-desk tickets."""


# The config's own reader says why a path cannot be read (a directory, no permission), as
# every command words it (``my.yaml: cannot read: ...``, exit 2), not the parser's usage box.
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config file.", readable=False)
]


def _bad_option(option: str, problem: object) -> NoReturn:
    """A command-line option that cannot be used: one line naming it, exit 2."""
    typer.echo(f"error: {option}: {problem}", err=True)
    raise typer.Exit(2)


def _load(path: Path | None, *, files: bool = True) -> Settings:
    settings = _try_load(path, files=files)
    if settings is None:
        raise typer.Exit(2)
    return settings


def _try_load(path: Path | None, *, files: bool = True) -> Settings | None:
    """The config at ``path``, or ``None`` once its errors are printed. ``files=False``: the
    files it names (secrets, certificates) are not read, for commands that connect to nothing
    and send nothing (replay, backtest)."""
    try:
        return load_settings(path, files=files)
    except ConfigError as exc:
        where = f"{path}: " if path is not None and not str(exc).startswith(str(path)) else ""
        typer.echo(f"config error: {where}{exc}".replace("\n", "\n  "), err=True)
        return None


@app.command()
def run(
    config: ConfigOption = None,
    listen: Annotated[str | None, typer.Option(help="HOST:PORT for /metrics.")] = None,
) -> None:
    """The daemon. With no source configured it runs the built-in simulator."""
    # Until the daemon's own handlers are installed, SIGTERM/SIGINT/SIGHUP wait (blocked)
    # instead of killing a half-started process; the daemon then receives them and stops
    # cleanly, or reloads.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    settings = _load(config)
    if listen is not None:
        try:
            split_listen(listen)
        except ValueError as exc:
            typer.echo(f"config error: --listen: {hide_urls(str(exc))}", err=True)
            raise typer.Exit(2) from None
    configure(settings.logging.level, settings.logging.format)
    from support_monitor.monitor.daemon import run_daemon  # noqa: PLC0415 - keep check-config start-up light
    from support_monitor.monitor.http import ListenError, WebConfigError  # noqa: PLC0415

    try:
        code = asyncio.run(run_daemon(settings, listen, config))
    except ListenError as exc:  # e.g. the address is in use: one line, not a traceback
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except WebConfigError as exc:  # the web config file changed since it was checked
        typer.echo(f"config error: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command()
def replay(
    events: Annotated[
        Path,
        # readable=False: a file that cannot be read is replay's own error (exit 1), as backtest's
        typer.Argument(help="JSON Lines file of events.", readable=False),
    ],
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config file.")],
    until: Annotated[
        str | None,
        typer.Option(
            help="After the file's events, move the clock on to TS (RFC 3339, or Unix "
            "seconds); timers fire on the way. A TS before the last event changes nothing.",
        ),
    ] = None,
    alerts_out: Annotated[
        Path | None,
        typer.Option("--alerts-out", help="Write alert state changes (JSONL).", dir_okay=False),
    ] = None,
    dead_letters: Annotated[
        Path | None,
        typer.Option(
            "--dead-letters",
            help="Write rejected lines (JSONL) here; the config's dead_letter.path is not used.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Feed a JSON Lines file through the pipeline with event time as the clock; print /metrics."""
    settings = _load(config, files=False)
    configure(settings.logging.level, "console" if sys.stderr.isatty() else "json")
    from support_monitor.monitor import replay as replaying  # noqa: PLC0415

    parse_until, run_replay = replaying.parse_until, replaying.replay

    try:
        until_ts = None if until is None else parse_until(until)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    clash = _outputs_clash(events, config, alerts_out, dead_letters)
    if clash:
        typer.echo(f"error: {clash}", err=True)
        raise typer.Exit(2)
    if dead_letters is not None and not dead_letters.parent.is_dir():  # as --alerts-out's open
        typer.echo(f"error: --dead-letters {dead_letters}: No such directory", err=True)
        raise typer.Exit(2)
    _check_events(events)
    try:
        out = None if alerts_out is None else _AlertsOut(alerts_out.open("wb"))
    except OSError as exc:
        _bad_option(f"--alerts-out {alerts_out}", exc.strerror or exc)
    rejected: Counter[str] = Counter()
    try:
        text = run_interruptible(
            lambda: run_replay(
                events,
                settings,
                until=until_ts,
                alerts_out=out,
                dead_letters=dead_letters,
                rejected=rejected,
            )
        )
    except ConfigError as exc:
        # an option's problem (--until past max_replay_gap) is named by the option itself
        prefix = "" if str(exc).startswith("--") else "config error: "
        typer.echo(f"{prefix}{exc}", err=True)
        raise typer.Exit(2) from None
    except replaying.DeadLettersLostError as exc:  # the numbers are printed, the letters lost
        sys.stdout.buffer.write(exc.exposition)
        sys.stdout.flush()
        typer.echo(f"error: --dead-letters: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:  # reading the events (the outputs keep their own errors)
        typer.echo(f"error: cannot read {events}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        if out is not None:
            out.close()
    sys.stdout.buffer.write(text)
    sys.stdout.flush()
    _report_rejects(rejected)
    if out is not None and out.error is not None:  # the numbers are printed; the file is not whole
        typer.echo(f"error: --alerts-out {alerts_out}: {out.error.strerror or out.error}", err=True)
        raise typer.Exit(1)


def _outputs_clash(
    events: Path, config: Path, alerts_out: Path | None, dead_letters: Path | None
) -> str:
    """Why ``replay`` must not write its outputs where they are ("" when it may): on its
    input, on its config (a config overwritten by alert records stops the next start), or
    both on one file (the alert records would overwrite the dead letters)."""
    from support_monitor.monitor.replay import same_file  # noqa: PLC0415 - as in replay

    outputs = (("--alerts-out", alerts_out), ("--dead-letters", dead_letters))
    for option, path in outputs:
        for what, other in (("the replayed file", events), ("the config file", config)):
            if path is not None and same_file(path, other):
                return f"{option} {path} is {what}"
    if alerts_out is not None and dead_letters is not None and same_file(alerts_out, dead_letters):
        return "--alerts-out and --dead-letters name the same file"
    return ""


_GZIP_MAGIC = b"\x1f\x8b"


def _check_events(events: Path) -> None:
    """Exit 1 with ``error: cannot read FILE: <reason>`` when the events file cannot be opened,
    before an output (``--alerts-out``) is truncated; one stderr line when it starts as a gzip
    file does: every line of it is then rejected (not fatal), and this says why."""
    try:
        with events.open("rb") as file:
            head = file.read(2)
    except OSError as exc:
        typer.echo(f"error: cannot read {events}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    if head == _GZIP_MAGIC:
        typer.echo(
            f"replay: {events} looks gzip-compressed: its lines are not JSON; decompress it "
            f"first (zcat {events} > events.jsonl)",
            err=True,
        )


def _report_rejects(rejected: Counter[str]) -> None:
    """One stderr line with the replay's rejected lines by reason, whatever the log level
    (each is also an ``event_rejected`` warning in the log, with its position)."""
    total = rejected.total()
    if total:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items()))
        lines = "line" if total == 1 else "lines"
        typer.echo(f"replay: {total} {lines} rejected ({reasons}); not fatal", err=True)


class _AlertsOut:
    """The ``--alerts-out`` file: the first write error (a full disk) is kept, not raised, so
    the replay runs to its end and prints its exposition; later writes are dropped."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        if self.error is None:
            try:
                return self._file.write(data)
            except OSError as exc:
                self.error = exc
        return 0

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            self.error = self.error or exc


@app.command()
def backtest(
    events: Annotated[
        Path,
        # readable=False: an unreadable file is backtest's own error (exit 1, docs/backtest.md),
        # not the argument parser's usage error (exit 2)
        typer.Argument(help="JSON Lines file of recorded events.", readable=False),
    ],
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config file.")],
    against: Annotated[
        Path | None, typer.Option("--against", help="A second config, shown side by side.")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Replay a file with a config (and --against another) and print what would have paged."""
    from support_monitor.monitor import backtest as backtesting  # noqa: PLC0415 - keep start-up light

    if output_format not in backtesting.FORMATS:
        _bad_option(f"--format {output_format!r}", "use table or json")
    paths = [path for path in (config, against) if path is not None]
    loaded = [(str(path), _try_load(path, files=False)) for path in paths]  # both configs' errors
    configs = [(name, settings) for name, settings in loaded if settings is not None]
    if len(configs) < len(loaded):
        raise typer.Exit(2)
    level = configs[0][1].logging.level
    configure("error" if level == "error" else "warning", "auto")  # transitions: in the table
    raise typer.Exit(backtesting.main(events, configs, output_format, sys.stdout, sys.stderr))


@app.command("check-config")
def check_config(
    file: Annotated[Path, typer.Argument(help="YAML config file.", readable=False)],
) -> None:
    """Validate a config: exit 0, or a message naming each key and its problem and exit 2.
    A valid config that switches alerts off, or pages nobody, gets one "note:" line each."""
    settings = _load(file)
    typer.echo(
        f"{file}: ok ({len(settings.channels)} channels, windows {', '.join(settings.windows)})"
    )
    for line in config_notes(settings):
        typer.echo(f"note: {line}")
    for name, problem in receiver_problems(settings.notifiers.receivers):
        typer.echo(
            f"note: {problem}: `run` starts, but every page to {name!r} fails "
            "(receiver_unavailable) until this is fixed and the daemon restarted"
        )


@app.command()
def simulate(
    *,
    out: Annotated[Path | None, typer.Option(help="Write events as JSON Lines here.")] = None,
    kafka: Annotated[str | None, typer.Option(help="Publish to Kafka HOST:PORT.")] = None,
    mqtt: Annotated[str | None, typer.Option(help="Publish to MQTT HOST:PORT.")] = None,
    duration: Annotated[
        str | None, typer.Option(help="Simulated span, e.g. 1h (file: 1h; brokers: forever).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override sources.simulator.seed.")] = None,
    speed: Annotated[float | None, typer.Option(help="Simulated seconds per second.")] = None,
    start: Annotated[float | None, typer.Option(help="Start time, epoch seconds (file).")] = None,
    config: ConfigOption = None,
) -> None:
    """Write the simulator's events to a file for "replay", or publish them live to brokers."""
    settings = _load(config)
    sim = settings.sources.simulator
    updates = {k: v for k, v in (("seed", seed), ("speed", speed)) if v is not None}
    try:  # validated as the config's sources.simulator is
        sim = type(sim).model_validate({**sim.model_dump(), **updates})
    except ValidationError as exc:
        error = exc.errors()[0]
        _bad_option(f"--{error['loc'][0]}", error["msg"].lower())
    try:
        span = None if duration is None else parse_duration(duration)
    except ValueError as exc:
        _bad_option("--duration", exc)
    if out is not None:
        from support_monitor.monitor.sources.simulator import write_jsonl  # noqa: PLC0415

        begin = time.time() if start is None else start
        length = 3600.0 if span is None else span  # a file is one hour unless told
        if not EARLIEST_TS <= begin <= begin + length < LATEST_TS:  # also NaN, the infinities
            _bad_option("--start", f"{begin:g}: the events must fall between 1970 and 8999 (UTC)")
        try:
            count = write_jsonl(out, settings.channels, sim, begin, length)
        except OSError as exc:
            _bad_option(f"--out {out}", exc.strerror or exc)
        typer.echo(f"wrote {count} events to {out}")
        return
    if kafka is None and mqtt is None:
        typer.echo("simulate needs --out FILE, or --kafka and/or --mqtt", err=True)
        raise typer.Exit(2)
    configure(settings.logging.level, settings.logging.format)
    from aiokafka.errors import KafkaError  # noqa: PLC0415 - the broker clients load here only
    from aiomqtt import MqttError  # noqa: PLC0415

    from support_monitor.monitor.sources.publish import publish_simulation  # noqa: PLC0415
    from support_monitor.monitor.sources.settings import kafka_servers_problem  # noqa: PLC0415

    try:
        target = None if mqtt is None else split_listen(mqtt)
    except ValueError as exc:
        _bad_option("--mqtt", exc)
    if kafka is not None and (problem := kafka_servers_problem(kafka)):
        _bad_option("--kafka", problem)
    try:
        sent = asyncio.run(
            publish_simulation(settings.channels, sim, kafka=kafka, mqtt=target, duration=span)
        )
    except (OSError, KafkaError, MqttError) as exc:  # a broker that is not there, or goes away
        typer.echo(f"error: cannot publish: {hide_urls(str(exc) or type(exc).__name__)}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"published {dict(sent)}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the event contract."""
    from support_monitor.monitor.events import json_schema  # noqa: PLC0415

    typer.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


@dashboards_app.command("build")
def dashboards_build(
    out: Annotated[Path, typer.Option(help="Directory for the dashboard JSON files.")],
) -> None:
    """Write the Grafana dashboards (generated with grafana-foundation-sdk)."""
    try:
        from support_monitor.dashboards.build import write_all  # noqa: PLC0415
    except ModuleNotFoundError as exc:  # the optional extra is not installed
        if not (exc.name or "").startswith("grafana_foundation_sdk"):
            raise
        typer.echo(DASHBOARDS_EXTRA_MISSING, err=True)
        raise typer.Exit(2) from None

    for path in write_all(out):
        typer.echo(str(path))


_OUTPUT_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EPIPE})
"""Errors of writing the output (standard output on a full disk, a closed pipe): one line on
standard error and exit 1, not a traceback."""


def main() -> None:
    """The console script: the commands, and what a failed standard output does to them."""
    if sys.stdout is None:  # started with standard output closed (``>&-``)
        if sys.stderr is not None:
            sys.stderr.write("support-monitor: standard output is closed\n")
        sys.exit(1)
    if sys.stderr is None:  # started with standard error closed (``2>&-``): nothing to say it on
        sys.stderr = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115 - until exit
    try:
        try:
            app()
        finally:
            sys.stdout.flush()  # here, where a failure can be said, not at interpreter exit
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRORS:
            raise
        _discard_stdout()
        if exc.errno != errno.EPIPE:  # a reader that went away needs no message
            sys.stderr.write(f"support-monitor: cannot write the output: {exc.strerror}\n")
        sys.exit(1)


def _discard_stdout() -> None:
    """Point standard output at ``/dev/null``: what is still buffered in it is not written again
    (and fails again) when the interpreter exits."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
