"""The sqlite files of ``notifiers.state_dir`` (the outbox and the console's store): opened the
same way, and the errors that leave a store running from memory."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import msgspec

OPEN_ERRORS = (sqlite3.Error, OSError, msgspec.MsgspecError)
"""What opening and reading a store may raise on a full disk or a damaged file."""


def open_db(path: Path, schema: Iterable[str]) -> sqlite3.Connection:
    """A connection in WAL mode with full sync and ``schema`` applied (blocking: call off the
    loop); closed again when any of that fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        for statement in schema:
            db.execute(statement)
    except BaseException:
        db.close()
        raise
    return db


def unavailable(kept: str) -> str:
    """What a store that could not be opened means for the data it holds."""
    return f"{kept} kept in memory only"
