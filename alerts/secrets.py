"""Webhook URLs and tokens from the config, a file (``*_file``) or the environment (``*_env``).

Kept as ``SecretStr`` end to end so they never reach a log line or a repr.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, SecretStr


def resolve(model: BaseModel, field: str) -> SecretStr | None:
    """Value of ``field``, ``field_file`` or ``field_env`` (blocking read: call off the loop)."""
    value: SecretStr | None = getattr(model, field)
    if value is not None:
        return value
    path: Path | None = getattr(model, f"{field}_file")
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{field}_file: cannot read {path}: {exc.strerror}") from None
        if not text:
            raise ValueError(f"{field}_file: {path} is empty")
        return SecretStr(text)
    env: str | None = getattr(model, f"{field}_env")
    if env is not None:
        text = os.environ.get(env, "").strip()
        if not text:
            raise ValueError(f"{field}_env: environment variable {env} is not set")
        return SecretStr(text)
    return None
