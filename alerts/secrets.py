"""Webhook URLs and tokens from the config, a file (``*_file``) or the environment (``*_env``).

Kept as ``SecretStr`` end to end so they never reach a log line or a repr; every value read is
also registered with the log redaction (``monitor.logs.register_secret``) as a safety net.
Error messages name the key, the file or the variable, never the value.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import httpx
from pydantic import BaseModel, SecretStr

from support_monitor.alerts.config import SlackReceiver, WebhookReceiver
from support_monitor.alerts.urls import token_problem, url_problem
from support_monitor.monitor.logs import register_secret


def resolve(model: BaseModel, field: str) -> SecretStr | None:
    """Value of ``field``, ``field_file`` or ``field_env`` (blocking read: call off the loop)."""
    value: SecretStr | None = getattr(model, field)
    if value is not None:
        register_secret(value.get_secret_value())
        return value
    path: Path | None = getattr(model, f"{field}_file")
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{field}_file: cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ValueError(f"{field}_file: {path} is not UTF-8 text") from None
        if not text:
            raise ValueError(f"{field}_file: {path} is empty")
        register_secret(text)
        return SecretStr(text)
    env: str | None = getattr(model, f"{field}_env")
    if env is not None:
        text = os.environ.get(env, "").strip()
        if not text:
            raise ValueError(f"{field}_env: environment variable {env} is not set")
        register_secret(text)
        return SecretStr(text)
    return None


def resolve_token(model: BaseModel, field: str, url: SecretStr | None = None) -> SecretStr | None:
    """An optional bearer token, checked as ``urls.token_problem`` says (``ValueError`` names
    the key that is set, never the token)."""
    value = resolve(model, field)
    if value is None:
        return None
    key = next(k for k in (field, f"{field}_file", f"{field}_env") if getattr(model, k) is not None)
    urls = [] if url is None else [url.get_secret_value()]
    problem = token_problem(value.get_secret_value(), urls)
    if problem is not None:
        raise ValueError(f"{key}: {problem}")
    return value


def resolve_url(model: BaseModel, field: str) -> SecretStr:
    """A required URL secret, checked the way httpx will parse it (``ValueError`` names the key,
    never the URL)."""
    value = resolve(model, field)
    if value is None:
        raise ValueError(f"set one of {field}, {field}_file or {field}_env")
    problem = url_problem(value.get_secret_value())
    if problem is not None:
        raise ValueError(f"{_source(model, field)}: {problem}")
    register_url(value.get_secret_value())
    return value


def _source(model: BaseModel, field: str) -> str:
    """The key a secret came from, with its file or variable (``webhook_url_env
    SLACK_URL``): what a user corrects."""
    for suffix in ("_file", "_env"):
        where = getattr(model, f"{field}{suffix}")
        if where is not None:
            return f"{field}{suffix} {where}"
    return field


def register_url(value: str) -> None:
    """Mask a URL secret in logs as given and as the HTTP client writes it (httpx's own INFO
    line ``HTTP Request: POST <url>`` shows the normalised form: lower-case host, default port
    dropped, spaces percent-encoded)."""
    register_secret(value)
    with contextlib.suppress(Exception):  # a URL httpx cannot parse is never requested
        register_secret(str(httpx.URL(value)))


def receiver_problems(
    receivers: Mapping[str, SlackReceiver | WebhookReceiver],
) -> list[tuple[str, str]]:
    """``(name, "notifiers.receivers.<name>: <problem>")`` for each receiver whose URL or
    token, read from its file or variable as the daemon reads them at start-up, it could not
    use (not a URL, a variable not set here): the daemon starts, and every page to it fails.
    Blocking reads (``check-config``); each message names the key, never the value."""
    problems = []
    for name, cfg in receivers.items():
        try:
            if isinstance(cfg, SlackReceiver):
                resolve_url(cfg, "webhook_url")
            else:
                resolve_token(cfg, "bearer_token", resolve_url(cfg, "url"))
        except ValueError as exc:
            problems.append((name, f"notifiers.receivers.{name}: {exc}"))
    return problems
