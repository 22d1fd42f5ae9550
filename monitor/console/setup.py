"""Opens the console for the daemon: its store, signing key, token and planner hook."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path

import structlog

from support_monitor.alerts.runtime import Alerting
from support_monitor.alerts.silences import AckSigner, ConsoleStore, PlannerHolds, load_signing_key
from support_monitor.monitor.config import Settings
from support_monitor.monitor.console.app import Console
from support_monitor.monitor.console.views import Timeline
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.logs import register_secret

log = structlog.get_logger("support_monitor.console")


def read_token(path: Path | None) -> str | None:
    """The API token from ``console.api_token_file`` (blocking: call off the loop)."""
    if path is None:
        return None
    try:
        token = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"console.api_token_file: cannot read {path}: {exc}"
        raise ValueError(msg) from None
    if len(token) < 16:
        msg = f"console.api_token_file: {path} holds under 16 characters"
        raise ValueError(msg)
    register_secret(token)
    return token


async def open_console(
    stack: AsyncExitStack,
    settings: Settings,
    engine: Engine,
    alerting: Alerting,
    timeline: Timeline,
) -> Console | None:
    """The console (``None`` when ``console.enabled`` is false); its store is closed by
    ``stack``. Hooks the planner: silences hold, acknowledgements stop repeats."""
    cfg = settings.console
    if not cfg.enabled:
        return None
    state_dir = settings.notifiers.state_dir
    store = ConsoleStore(state_dir, cfg.max_silences, alerting.stats)
    await store.open()
    stack.push_async_callback(store.close)
    key = await asyncio.to_thread(load_signing_key, cfg.signing_key_file, state_dir)
    token = await asyncio.to_thread(read_token, cfg.api_token_file)
    signer = AckSigner(key, cfg.external_url, cfg.ack_link_ttl)
    alerting.planner.holds = PlannerHolds(store, signer)
    log.info(
        "console_enabled",
        writable=token is not None,
        ack_links=cfg.external_url is not None,
        persistent=store.persistent,
    )
    return Console(
        cfg,
        engine,
        lambda: alerting.rules,
        store,
        signer=signer,
        timeline=timeline,
        token=token,
        clock=time.time,
    )
