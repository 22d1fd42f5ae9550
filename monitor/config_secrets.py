"""The config's key types that point at a secret: ``*_file`` (a file holding it) and ``*_env``
(the variable holding it).

A value pasted into the wrong key is the secret itself: a Slack URL in ``webhook_url_file``, a
token in ``bearer_token_env``. Both are refused by their key, never quoted, before anything
(a "cannot read" or "is not set" message) could print them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

__all__ = ["EnvName", "SecretFile"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}", re.ASCII)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        msg = (
            "not an environment variable name (letters, digits and _, not starting with a "
            "digit): give the name of the variable that holds the secret, not the secret"
        )
        raise ValueError(msg)
    return value


def _not_a_url(value: object) -> object:
    if isinstance(value, str) and _URL.match(value.strip()):
        msg = "holds a URL: give the path of a file that holds the secret, not the secret"
        raise ValueError(msg)
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
"""The name of an environment variable that holds a secret."""

SecretFile = Annotated[Path, BeforeValidator(_not_a_url)]
"""The path of a file that holds a secret (a URL there is the secret itself: refused)."""
