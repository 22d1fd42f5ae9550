"""The commands and config examples the docs mark as runnable still run.

A marker is an HTML comment on the line right before a fenced block (invisible once rendered):

- ``<!-- runnable -->`` before a shell block: the block runs with ``bash -euo pipefail`` and must
  exit 0;
- ``<!-- config -->`` or ``<!-- config: NAME.yaml -->`` before a YAML block: the block must parse
  as a mapping, ``support-monitor check-config`` must accept it, and it is saved as ``NAME.yaml``
  for the runnable blocks after it on the same page.

Each page runs in its own scratch directory, blocks in page order, with the repository's
``.venv/bin`` first on PATH, a copy of ``deploy/`` (so ``deploy/support-monitor/config.yaml``
resolves and anything written there stays in the scratch directory) and ``.venv`` linked in.
Only blocks that need no servers and run in seconds are marked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!--\s*(runnable|config)(?::\s*([A-Za-z0-9_.-]+\.ya?ml))?\s*-->\s*$")
LOOKS_LIKE_MARKER = re.compile(r"<!--\s*(run|conf)", re.IGNORECASE)
FENCE = re.compile(r"^```(\S*)")
SHELLS = {"sh", "bash", "shell", "console", ""}
TIMEOUT = 120


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    kind: str  # "runnable" or "config"
    name: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def marked_blocks(page: str, text: str) -> list[Block]:
    """The marked fenced blocks of a page, in order; a malformed marker raises ValueError."""
    lines = text.splitlines()
    blocks: list[Block] = []
    for i, line in enumerate(lines):
        match = MARKER.match(line.strip())
        if match is None:
            if LOOKS_LIKE_MARKER.search(line):
                raise ValueError(f"{page}:{i + 1}: not a marker: {line.strip()!r}")
            continue
        kind, name = match.group(1), match.group(2)
        fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if fence is None:
            raise ValueError(f"{page}:{i + 1}: the marker is not right before a fenced block")
        language = fence.group(1)
        if kind == "runnable" and (language not in SHELLS or name is not None):
            raise ValueError(f"{page}:{i + 1}: runnable marks a shell block (got {language!r})")
        if kind == "config" and language not in {"yaml", "yml"}:
            raise ValueError(f"{page}:{i + 1}: config marks a yaml block (got {language!r})")
        try:
            end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
        except StopIteration:
            raise ValueError(f"{page}:{i + 2}: the fenced block is not closed") from None
        body = "\n".join(lines[i + 2 : end]) + "\n"
        blocks.append(Block(page, i + 2, kind, name, body))
    return blocks


def scratch(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A directory that looks like the repository root to a doc's commands, and their env."""
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy", symlinks=True)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORT_MONITOR_")}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # The example config writes dead letters to /tmp/support-monitor: keep them in here.
    env["SUPPORT_MONITOR_DEAD_LETTER__PATH"] = str(tmp_path / "dead-letters.jsonl")
    env.pop("VIRTUAL_ENV", None)
    return tmp_path, env


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> str | None:
    """``None`` when the block passes, else what went wrong (with the output's tail)."""
    if block.kind == "config":
        try:
            data = yaml.safe_load(block.text)
        except yaml.YAMLError as exc:
            return f"{block.where}: the config example is not valid YAML: {exc}"
        if not isinstance(data, dict):
            return f"{block.where}: the config example is not a mapping of keys"
        name = block.name or f"config-{block.line}.yaml"
        (cwd / name).write_text(block.text, encoding="utf-8")
        argv = ["support-monitor", "check-config", name]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", block.text]
    try:
        result = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return f"{block.where}: did not finish within {TIMEOUT} s"
    if result.returncode != 0:
        tail = (result.stdout[-1500:] + result.stderr[-1500:]).strip()
        return f"{block.where}: exit {result.returncode}\n{block.text}{tail}"
    return None


def _page_blocks() -> dict[str, list[Block]]:
    out = {}
    for path in PAGES:
        blocks = marked_blocks(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))
        if blocks:
            out[str(path.relative_to(ROOT))] = blocks
    return out


BLOCKS = _page_blocks()


@pytest.mark.parametrize("page", sorted(BLOCKS))
def test_marked_blocks_run(page: str, tmp_path: Path) -> None:
    cwd, env = scratch(tmp_path)
    for block in BLOCKS[page]:
        problem = run_block(block, cwd, env)
        assert problem is None, problem


def test_the_commands_a_user_tries_first_are_marked() -> None:
    runnable = "\n".join(b.text for bs in BLOCKS.values() for b in bs if b.kind == "runnable")
    for command in (
        "support-monitor check-config ",
        "support-monitor simulate ",
        "support-monitor replay ",
        "support-monitor schema",
        "support-monitor dashboards build --out ",
    ):
        assert command in runnable, f"no runnable block runs {command!r}"
    configs = [b for bs in BLOCKS.values() for b in bs if b.kind == "config"]
    assert len(configs) >= 2


def test_a_broken_block_fails(tmp_path: Path) -> None:
    page = """<!-- config: bad.yaml -->
```yaml
channels:
  voice: {answer_seconds: -5s}
```
<!-- runnable -->
```sh
support-monitor chek-config deploy/support-monitor/config.yaml
```
<!-- runnable -->
```sh
support-monitor check-config deploy/support-monitor/config.yaml
```
"""
    config, typo, good = marked_blocks("t.md", page)
    cwd, env = scratch(tmp_path)
    problem = run_block(config, cwd, env)
    assert problem is not None
    assert "exit 2" in problem
    assert "channels.voice.answer_seconds: a duration must not be negative (got -5s)" in problem
    problem = run_block(typo, cwd, env)
    assert problem is not None
    assert problem.startswith("t.md:7: exit 2")
    assert run_block(good, cwd, env) is None


@pytest.mark.parametrize(
    ("page", "why"),
    [
        ("<!-- runnable -->\ntext\n", "not right before a fenced block"),
        ("<!-- runnable -->\n```python\nx\n```\n", "runnable marks a shell block"),
        ("<!-- config -->\n```sh\nx\n```\n", "config marks a yaml block"),
        ("<!-- runable -->\n```sh\nx\n```\n", "not a marker"),
        ("<!-- runnable -->\n```sh\nx\n", "not closed"),
    ],
)
def test_malformed_markers_are_refused(page: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        marked_blocks("t.md", page)
