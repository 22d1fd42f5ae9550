"""Keeping secrets out of config error messages (``check-config``, ``config_reload_refused``).

- A validation message never shows the offending value of a secret field (a ``SecretStr``
  anywhere in the settings tree, e.g. ``webhook_url``, ``sasl_password``, Alertmanager
  ``urls``) nor any URL: URLs carry credentials and tokens. pydantic's ``input`` is never shown.
- A YAML syntax error is reported as line, column and problem, never the text of the line;
  :func:`read_yaml` reads config files so, also for a value its tag cannot build (``!!int x``),
  a key written twice, and an alias bomb.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import typing
from collections.abc import Iterator, Mapping
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr
from pydantic_core import ErrorDetails

NOT_SHOWN = "<not shown>"
# a URL, also without its scheme ("//host/path": what is left of one split at a colon)
_URL = re.compile(r"(?:\b[A-Za-z][A-Za-z0-9+.-]{0,15}:)?//[^\s'\"]+")
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


def hide_urls(text: str) -> str:
    """``text`` with every URL replaced by ``<not shown>``."""
    return _URL.sub(NOT_SHOWN, text)


SCRUB_MIN_CHARS = 8
"""A secret shorter than this is hidden from a message only where it is quoted (``'...'``): bare,
a value such as ``space`` or `` t`` also spells words of the message's own text, and hiding
those garbled the message and showed, by what went missing, the secret itself."""


def scrub_message(message: str, error: ErrorDetails, names: frozenset[str]) -> str:
    """``message`` without any URL and without the raw value of a secret field (quoted, or
    bare when it is at least ``SCRUB_MIN_CHARS`` long)."""
    loc = error.get("loc", ())
    inside = any(str(part) in names for part in loc)
    for secret in sorted(_strings_under(error.get("input"), names, inside), key=len, reverse=True):
        if not secret:
            continue
        for quoted in (repr(secret), f"'{secret}'", f'"{secret}"'):
            message = message.replace(quoted, NOT_SHOWN)
        if len(secret.strip()) >= SCRUB_MIN_CHARS:
            message = message.replace(secret, NOT_SHOWN)
    return hide_urls(message)


MAX_YAML_VALUES = 100_000
"""Values a YAML document may hold once its aliases are expanded (each alias counts as a copy of
what it names). A config holds hundreds; an alias bomb ("billion laughs") billions, which would
take pydantic and the error messages minutes and gigabytes to walk."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key written twice in one mapping (the last would
    silently win) and reports a value its tag cannot build (``!!int abc``) by its place only:
    the constructors' own messages quote the value, which may be a secret."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> object:
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:  # noqa: BLE001 - any constructor failure; its text is not shown
            tag = str(node.tag).rsplit(":", 1)[-1]
            problem = f"the value is not a valid {tag} ({type(exc).__name__})"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):  # ``!!map 5m``, ``!!set [a]``
            tag = str(node.tag).rsplit(":", 1)[-1]
            problem = f"the tag !!{tag} needs a mapping ({{key: value}}) here"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    # unquoted: yaml_problem hides quoted text; keys name settings, not secrets
                    problem = f"the key {key_node.value[:64]} is written twice in this mapping"
                    raise yaml.constructor.ConstructorError(
                        None, None, problem, key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 reads an unquoted 20:00 as the base-60 integer 1200 (and 1:30.5 as a float): a
# mute window's ``start: 20:00`` would be 00:20. As in YAML 1.2, such a scalar stays text here:
# PyYAML's int and float patterns without their base-60 branch.
_NUMBERS = {
    "tag:yaml.org,2002:int": re.compile(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
    ),
    "tag:yaml.org,2002:float": re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
        r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, _NUMBERS.get(tag, regexp)) for tag, regexp in resolvers]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(text: str) -> object:
    """The one document in ``text`` with PyYAML's safe tags (``None`` when empty). Raises
    ``yaml.YAMLError`` for anything it cannot read, which :func:`yaml_problem` words by line and
    column only; ``RecursionError`` when it nests too deeply."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_YAML_VALUES:
            problem = (
                f"more than {MAX_YAML_VALUES:,} values (aliases counted as copies of what "
                "they name): a config holds hundreds"
            )
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)
        return loader.construct_document(node)
    finally:
        loader.dispose()


_SURROGATE = re.compile("[\ud800-\udfff]")


def _walk(value: object, where: str = "") -> Iterator[tuple[str, object]]:
    """``value`` and every value under it, depth first, each with its key path
    (``alerts.rules[1].annotations``)."""
    yield where, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{where}[{index}]")


def not_unicode_at(value: object, where: str = "") -> str | None:
    """The key path (``alerts.rules[1].annotations.summary``) of the first string under
    ``value``, key or value, holding a lone surrogate (YAML's ``"\\ud800"`` escape; an
    environment variable whose bytes are not UTF-8): no encoding can write it, so a label,
    a log line, a message or a file name made of it fails later. ``None`` when there is none."""
    for path, item in _walk(value, where):
        if isinstance(item, str) and _SURROGATE.search(item):
            return path or "(the value)"
        if isinstance(item, dict):
            for key in item:
                if isinstance(key, str) and _SURROGATE.search(key):
                    return f"{path} (a key)" if path else "(a top-level key)"
    return None


_YAML_KINDS: dict[type, str] = {
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
    dt.date: "date",
    dt.datetime: "date",
}


def non_text_key(mapping: dict[Any, Any]) -> str | None:
    """What the first key of ``mapping`` that is not a string is (``1:``: "number", ``null:``:
    "null", ...), for an error that never quotes the file; ``None`` when every key is a string.
    Settings are built with the keys as names, so such a key must be refused first."""
    for key in mapping:
        if not isinstance(key, str):
            return _YAML_KINDS.get(type(key), "value that is not text")
    return None


def non_text_key_at(value: object, where: str = "") -> tuple[str, str] | None:
    """Where the first key that is not a string is, below the top level (``exporter``,
    ``alerts.rules[0].labels``), and what it is (see :func:`non_text_key`); ``None`` when every
    key is a string. pydantic would name such a key by its value (``exporter[1]`` for YAML's
    ``on:``, read as true), which reads as a list position."""
    for path, item in _walk(value, where):
        if path and isinstance(item, dict):  # the top level: non_text_key says it
            kind = non_text_key(item)
            if kind is not None:
                return path, kind
    return None


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes under ``node`` counting each alias as a copy (memoised per node: linear time);
    stops counting past :data:`MAX_YAML_VALUES`."""
    known = memo.get(id(node))
    if known is not None:
        return known
    total = 1
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    else:
        children = []
    for child in children:
        total += _expanded_size(child, memo)
        if total > MAX_YAML_VALUES:
            break
    memo[id(node)] = total
    return total


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
