"""Keeping secrets out of config error messages (``check-config``, ``config_reload_refused``).

- A validation message never shows the offending value of a secret field (a ``SecretStr``
  anywhere in the settings tree, e.g. ``webhook_url``, ``sasl_password``, Alertmanager
  ``urls``) nor any URL: URLs carry credentials and tokens. pydantic's ``input`` is never shown.
- A YAML syntax error is reported as line, column and problem, never the text of the line.
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Iterator, Mapping

import yaml
from pydantic import BaseModel, SecretStr
from pydantic_core import ErrorDetails

NOT_SHOWN = "<not shown>"
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{0,15}://[^\s'\"]+")
_QUOTED = re.compile(r"'[^']{5,}'|\"[^\"]{5,}\"")
_MAX_DEPTH = 12


def _mentions_secret(annotation: object, depth: int = 0) -> bool:
    if annotation is SecretStr:
        return True
    if depth > _MAX_DEPTH:
        return False
    return any(_mentions_secret(arg, depth + 1) for arg in typing.get_args(annotation))


def _models_in(annotation: object, depth: int = 0) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    if depth > _MAX_DEPTH:
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg, depth + 1)


@functools.cache
def secret_field_names(model: type[BaseModel]) -> frozenset[str]:
    """Names of every field holding a ``SecretStr`` in ``model`` and the models it contains."""
    names: set[str] = set()
    seen: set[type[BaseModel]] = set()
    todo = [model]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name, info in current.model_fields.items():
            if _mentions_secret(info.annotation):
                names.add(name)
                if info.alias:
                    names.add(info.alias)
            todo.extend(_models_in(info.annotation))
    return frozenset(names)


def secret_values(value: object, depth: int = 0) -> Iterator[str]:
    """Every ``SecretStr`` value held in a settings tree (models, dicts, tuples)."""
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif depth > _MAX_DEPTH:
        return
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from secret_values(getattr(value, name), depth + 1)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from secret_values(item, depth + 1)
    elif isinstance(value, tuple | list | frozenset | set):
        for item in value:
            yield from secret_values(item, depth + 1)


def _strings_under(
    value: object, names: frozenset[str], inside: bool, depth: int = 0
) -> Iterator[str]:
    """String leaves of a raw (unvalidated) input that sit under a secret field name."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, str | bytes):
        if inside:
            yield value if isinstance(value, str) else value.decode("utf-8", "replace")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings_under(item, names, inside or str(key) in names, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings_under(item, names, inside, depth + 1)


def scrub_message(message: str, error: ErrorDetails, names: frozenset[str]) -> str:
    """``message`` without any URL and without the raw value of a secret field."""
    loc = error.get("loc", ())
    inside = any(str(part) in names for part in loc)
    for secret in sorted(_strings_under(error.get("input"), names, inside), key=len, reverse=True):
        if secret and secret in message:
            message = message.replace(secret, NOT_SHOWN)
    return _URL.sub(NOT_SHOWN, message)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what, without the text of the line (it may hold a secret)."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"not valid YAML ({type(exc).__name__})"
    mark = exc.problem_mark
    problem = _QUOTED.sub("'...'", exc.problem or "syntax error")
    text = f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context = exc.context
    if context and exc.context_mark is not None:
        start = exc.context_mark
        context = _QUOTED.sub("'...'", context)
        text += f" ({context} started at line {start.line + 1}, column {start.column + 1})"
    return text
