"""Config keys as one readable path: ``alerts.rules[0].for``, ``notifiers.receivers.pager.url``.

pydantic reports where an error is as a tuple (``("alerts", "rules", 0, "for")``) and puts the
tag of a discriminated union in it (``("notifiers", "receivers", "pager", "slack", "timeout")``)
although the file has no such key. ``readable_key`` writes list positions as ``[i]`` and leaves
the tag out. A model-level check names the key it means at the start of its message
(``urls[0]: ...``); ``join_message`` moves that key into the path when it is a field of the
model the error is located at, so every message reads ``<full key>: <problem>``.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator, Sequence

from pydantic import BaseModel

_MAX_DEPTH = 12
_LEADING_KEY = re.compile(
    r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\]|\.[A-Za-z0-9_-]+)*): (.*)$", re.DOTALL
)


def _members(annotation: object, depth: int = 0) -> Iterator[object]:
    """The alternatives of an annotation, without ``Annotated`` and ``Optional`` wrappers."""
    if depth > _MAX_DEPTH:
        return
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _members(typing.get_args(annotation)[0], depth + 1)
    elif origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(annotation):
            yield from _members(arg, depth + 1)
    else:
        yield annotation


def _is_tag(model: type[BaseModel], part: str) -> bool:
    """``part`` is the ``type`` literal of ``model`` (the tag of a discriminated union)."""
    field = model.model_fields.get("type")
    return field is not None and part in typing.get_args(field.annotation)


def _step(annotation: object, part: str | int) -> tuple[object, bool] | None:
    """The annotation one location part further in, and whether that part is a union tag."""
    for member in _members(annotation):
        origin = typing.get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel) and isinstance(part, str):
            field = member.model_fields.get(part)
            if field is not None:
                return field.annotation, False
        elif origin is dict and isinstance(part, str):
            return typing.get_args(member)[1], False
        elif origin is tuple and isinstance(part, int):
            return typing.get_args(member)[0], False
    if isinstance(part, str):
        for member in _members(annotation):
            if isinstance(member, type) and issubclass(member, BaseModel) and _is_tag(member, part):
                return member, True
    return None


def readable_key(root: type[BaseModel], loc: Sequence[str | int]) -> tuple[str, object | None]:
    """``loc`` as ``a.b[0].c``, and the annotation it ends at (``None`` once it is unknown)."""
    key = ""
    annotation: object | None = root
    for part in loc:
        step = None if annotation is None else _step(annotation, part)
        annotation = None if step is None else step[0]
        if step is not None and step[1]:
            continue  # the union tag is not a key of the file
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else str(part)
    return key, annotation


def join_message(key: str, annotation: object | None, message: str) -> tuple[str, str]:
    """Move a field name that starts ``message`` (``"urls[0]: bad"``) into ``key``, when the
    error sits at a model that has that field or at that field itself; otherwise return both
    unchanged."""
    match = _LEADING_KEY.match(message)
    if match is None or annotation is None:
        return key, message
    name, rest, problem = match.groups()
    for member in _members(annotation):
        if (
            isinstance(member, type)
            and issubclass(member, BaseModel)
            and (name in member.model_fields)
        ):
            return (f"{key}.{name}{rest}" if key else f"{name}{rest}"), problem
    if key == name or key.endswith(f".{name}"):  # a field's own check that repeats its name
        return f"{key}{rest}", problem
    return key, message
