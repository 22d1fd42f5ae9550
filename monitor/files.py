"""Reading a local file the operator names (the config, a secret file, the web config) without
letting the file decide how long the read takes or how much memory it holds.

:func:`read_bounded` refuses, as an ``OSError`` whose ``strerror`` says why, a path that is not
a regular file (a FIFO would block until some writer came, ``/dev/zero`` would never end) and
a file longer than the limit. :func:`is_directory` tells a config validator what a named path
is, with a ``ValueError`` (a validation error) for a path the system cannot even look up.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["is_directory", "read_bounded"]


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; ``OSError`` when it
    cannot be read, is a directory or another kind of file, or is longer than ``limit``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once, without a writer
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit:,} bytes")
    return data


def is_directory(path: Path) -> bool | None:
    """Whether ``path`` is a directory (``False``: something else), ``None`` when nothing is
    there. A path the system refuses to look up (a name too long, a loop of links, no
    permission on a parent) is a ``ValueError`` with the system's reason, for a config
    validator to report under its key: ``Path.is_dir`` lets those out as ``OSError``."""
    try:
        return stat.S_ISDIR(path.stat().st_mode)
    except (FileNotFoundError, NotADirectoryError):  # nothing there (or a parent is a file)
        return None
    except OSError as exc:
        raise ValueError(f"cannot be looked up: {exc.strerror or type(exc).__name__}") from None
