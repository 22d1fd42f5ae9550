"""Config reload without restart: on SIGHUP and when the file changes.

A reload that fails validation, or that changes what only a restart can change, is refused with
the reason in the log (``config_reload_refused``) and the running config stays. The same
``Reloader`` serves both supervisors: it is given what applies a new config (``single_engine``
for ``run``; ``ClusterNode.reconfigure`` for every partition of a cluster replica).
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Callable
from pathlib import Path

import structlog

from support_monitor.alerts.runtime import Alerting
from support_monitor.monitor.config import Settings, load_settings, secret_file_digests
from support_monitor.monitor.engine.engine import Engine, RestartNeeded
from support_monitor.monitor.errors import ConfigError, raising_line
from support_monitor.monitor.logs import configure

POLL_SECONDS = 2.0
_RESTART_ONLY = ("sources", "exporter", "dead_letter", "notifiers", "state", "cluster", "console")


def restart_only_change(old: Settings, new: Settings) -> str | None:
    """The first part of the config that changed and that only a restart applies."""
    for name in _RESTART_ONLY:
        if getattr(old, name) != getattr(new, name):
            return f"{name} changed: restart the daemon to apply it"
    return None


def single_engine(engine: Engine, alerting: Alerting) -> Callable[[Settings], None]:
    """What applies a new config to one engine and its rules (raises ``RestartNeeded``, and
    changes nothing, when the state's shape would change)."""

    def apply(new: Settings) -> None:
        engine.reconfigure(new)
        alerting.reconfigure(new.detectors, new.alerts)

    return apply


class Reloader:
    def __init__(
        self,
        path: Path,
        settings: Settings,
        apply: Callable[[Settings], None],
        hangup: asyncio.Event | None = None,
    ) -> None:
        """Call ``await reloader.start()`` once the config is loaded, before serving. ``apply``
        takes a new config, or raises ``RestartNeeded`` having changed nothing. ``hangup`` is
        set by the supervisor's SIGHUP handler (``monitor.supervise.signals_set``): each time
        it is set, the file is read again."""
        self.path = path
        self._last: float | None = None
        self.settings = settings
        self._apply = apply
        self._hup = hangup if hangup is not None else asyncio.Event()
        self._log = structlog.get_logger("support_monitor.reload")
        self._secrets: dict[str, str] = {}

    def reload(self, new: Settings) -> str | None:
        """Apply ``new``; ``None`` when applied, else why it was refused (nothing changed)."""
        why = restart_only_change(self.settings, new)
        if why is not None:
            return why
        try:
            self._apply(new)
        except RestartNeeded as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - a defect in applying must not stop the daemon
            return self._roll_back(exc)
        if new.logging != self.settings.logging:
            configure(new.logging.level, new.logging.format)
        self.settings = new
        return None

    def _roll_back(self, exc: Exception) -> str:
        """Applying a config raised (a defect, not a refusal): the running config is applied
        again, so engine and rules are not left half on each; why, for ``config_reload_refused``.
        Logged with the raising line, not the text (it may quote a value of the config)."""
        kind, file, line = raising_line(exc)
        self._log.error("config_reload_failed", error=kind, where=f"{file}:{line}")
        try:
            self._apply(self.settings)
        except Exception as again:  # noqa: BLE001 - said, and the daemon keeps running
            kind2, file2, line2 = raising_line(again)
            self._log.error("config_rollback_failed", error=kind2, where=f"{file2}:{line2}")
        return f"applying it failed ({kind}); the running config is kept"

    async def run_forever(self) -> None:
        while True:
            try:
                async with asyncio.timeout(POLL_SECONDS):
                    await self._hup.wait()
            except TimeoutError:
                pass
            hup = self._hup.is_set()
            self._hup.clear()
            mtime = await asyncio.to_thread(_mtime, self.path)
            if not hup and mtime == self._last:
                continue
            self._last = mtime
            await self._attempt("sighup" if hup else "file_changed")

    async def start(self) -> None:
        """Remember the file's modification time as the loaded version's, and what its secret
        files hold (the notifiers read them at start-up, and only a restart reads them again)."""
        self._last = await asyncio.to_thread(_mtime, self.path)
        self._secrets = await asyncio.to_thread(secret_file_digests, self.settings)

    async def _attempt(self, trigger: str) -> None:
        if await asyncio.to_thread(_empty, self.path):
            # An editor or a deploy tool that truncates, then writes: an empty file would
            # reload every default over the running config for a moment.
            self._log.error(
                "config_reload_refused",
                trigger=trigger,
                path=str(self.path),
                error="the file is empty (still being written?): the running config is kept",
            )
            return
        try:
            new = await asyncio.to_thread(load_settings, self.path)
        except ConfigError as exc:
            self._log.error(
                "config_reload_refused", trigger=trigger, path=str(self.path), error=str(exc)
            )
            return
        except Exception as exc:  # noqa: BLE001 - a reload must never stop the daemon
            # a defect in reading: its text may quote a value of the file, so only its type
            error = f"the config could not be read ({type(exc).__name__})"
            self._log.error(
                "config_reload_refused", trigger=trigger, path=str(self.path), error=error
            )
            return
        secrets = await asyncio.to_thread(secret_file_digests, new)
        why = _secret_changed(self._secrets, secrets) or self.reload(new)
        if why is None:
            self._log.info("config_reloaded", trigger=trigger, path=str(self.path))
        else:
            self._log.error(
                "config_reload_refused", trigger=trigger, path=str(self.path), error=why
            )


def _secret_changed(running: dict[str, str], new: dict[str, str]) -> str | None:
    """Why a reload is refused when a secret file the daemon read at start-up (a webhook URL,
    a token) holds another secret now: only a restart reads it again. A key new in the
    config is a change of its section, refused by ``restart_only_change``."""
    for key, digest in new.items():
        if running.get(key, digest) != digest:
            return (
                f"{key}: the file holds another secret now: restart the daemon to apply it "
                "(the running daemon keeps the one read at start-up)"
            )
    return None


def _empty(path: Path) -> bool:
    """A regular file of 0 bytes (a FIFO or a device also has size 0: the load that follows
    refuses those, and says why)."""
    try:
        status = path.stat()
    except OSError:
        return False  # said by the load that follows
    return stat.S_ISREG(status.st_mode) and status.st_size == 0


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns / 1e9
    except OSError:
        return None
