"""Environment overrides of the config file, as ``check-config`` and error messages name them.

pydantic-settings reads ``SUPPORT_MONITOR_<KEY>`` with nested keys joined by ``__``
(``SUPPORT_MONITOR_EXPORTER__LISTEN``), case-insensitively, over the file's values. This module
finds which variables are set, so that an error in a value that came from the environment
names its variable instead of only the file, and a variable that names no setting (a typo such
as ``SUPPORT_MONITOR_EXPORTER_LISTEN``, silently ignored by pydantic-settings) is reported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from typing import Any

PREFIX = "SUPPORT_MONITOR_"
NESTED = "__"
TOOL_VARIABLES = frozenset({"RUN", "REQUIRE_SERVICES", "RELIABILITY_LONG", "CACHE"})
"""Variables with the prefix that the project's scripts and tests read, not settings."""


def overrides(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Config key (``exporter.listen``) -> the variable that sets it, for every variable with
    the prefix (tool variables and empty names left out)."""
    found: dict[str, str] = {}
    for name in os.environ if environ is None else environ:
        if not name.upper().startswith(PREFIX):
            continue
        rest = name[len(PREFIX) :]
        if not rest or rest.upper() in TOOL_VARIABLES:
            continue
        found[".".join(part.lower() for part in rest.split(NESTED))] = name
    return found


def source_of(key: str, env: Mapping[str, str], *, wrong_type: bool = False) -> str | None:
    """The variable whose value ``key`` (``channels.voice.queues[0]``) is, or is part of.
    ``wrong_type`` (the error says the value of ``key`` has the wrong type): also one that sets
    a part of it (``SUPPORT_MONITOR_WINDOWS__0`` makes ``windows`` a mapping, refused as
    ``windows``); another problem of ``key`` is not that variable's doing."""
    for path, name in env.items():
        if key == path or key.startswith((path + ".", path + "[")):
            return name
    if wrong_type:
        for path, name in env.items():
            if path.startswith(key + "."):
                return name
    return None


def whole_list_variable(key: str, variable: str) -> str | None:
    """The variable that sets the list ``key`` whole (``SUPPORT_MONITOR_WINDOWS``) when
    ``variable`` sets one of its items by index (``SUPPORT_MONITOR_WINDOWS__0``), which
    pydantic-settings reads as a mapping; otherwise ``None``."""
    parts = variable[len(PREFIX) :].split(NESTED)
    depth = len(key.replace("[", ".").split("."))
    if len(parts) > depth and parts[depth].isdigit():
        return variable[: len(PREFIX)] + NESTED.join(parts[:depth])
    return None


def under(field: str, env: Mapping[str, str]) -> list[str]:
    """The variables that set ``field`` (a top-level key) or a key inside it, sorted."""
    return sorted(name for path, name in env.items() if path.split(".")[0] == field)


def unknown(fields: Collection[str], env: Mapping[str, str]) -> list[str]:
    """The variables whose first part names no top-level setting (pydantic-settings ignores
    them), sorted."""
    return sorted(name for path, name in env.items() if path.split(".")[0] not in fields)


_SHOWN_KEY = 64
"""A repeated key longer than this is not quoted."""


def _first_repeated(text: str) -> str | None:
    """The first key some object of the JSON ``text`` holds twice (None: none, or no JSON)."""
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen and not repeated:
                repeated.append(key)
            seen[key] = value
        return seen

    try:
        json.loads(text, object_pairs_hook=pairs)
    except ValueError:
        return None  # not JSON: pydantic-settings says so, naming the variable
    return repeated[0] if repeated else None


def repeated_json_key(environ: Mapping[str, str] | None = None) -> str | None:
    """``"VARIABLE: the key 'voice' twice"`` for the first override whose JSON value (an object
    or a list) holds an object with a repeated key: JSON keeps the last silently, where the
    same in a YAML file is refused. ``None`` when there is none; the value is never quoted."""
    env = os.environ if environ is None else environ
    for name in sorted(overrides(env).values()):
        text = env[name].strip()
        key = _first_repeated(text) if text.startswith(("{", "[")) else None
        if key is not None:
            shown = repr(key) if len(key) <= _SHOWN_KEY else "a key"
            return f"{name}: the key {shown} twice (the last would silently win)"
    return None
