"""Every relative link in README.md and docs/*.md leads somewhere.

A link ``[text](path)`` outside fenced blocks must name a file or folder that exists (relative to
the page), and a ``#fragment`` on a Markdown page (or a bare ``#fragment``, on the same page)
must be the anchor of one of that page's headings, as GitHub renders them: lower case, every
character but letters, digits, spaces, ``-`` and ``_`` dropped, spaces made ``-``, and a
repeated anchor numbered ``-1``, ``-2``. Links with a scheme (``https:``, ``mailto:``) are not
followed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.*)$")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def outside_fences(text: str) -> list[tuple[int, str]]:
    """The page's lines (numbered from 1) that are not inside a fenced block."""
    lines: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before numbering repeats)."""
    kept = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in outside_fences(text):
        match = HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the page's links, one line each (the page named relative to root)."""
    problems: list[str] = []
    for number, line in outside_fences(page.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if SCHEME.match(target):
                continue
            path, _, fragment = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(root)}:{number}: {target}"
            if not dest.exists():
                problems.append(f"{where}: no such file")
            elif (
                fragment
                and dest.suffix == ".md"
                and fragment not in anchors(dest.read_text(encoding="utf-8"))
            ):
                problems.append(f"{where}: no such heading")
    return problems


def test_slug_follows_githubs_rules() -> None:
    # worked out by hand from GitHub's rules
    assert slug("Where the targets stand (2026-12-03)") == "where-the-targets-stand-2026-12-03"
    assert (
        slug("Live tick (`bench/tick_cost.py`, target at 100 x 10: under 2 ms: **not met**)")
        == "live-tick-benchtick_costpy-target-at-100-x-10-under-2-ms-not-met"
    )
    assert slug("Issue 11's headline complaint case") == "issue-11s-headline-complaint-case"
    assert anchors("# A\n## A\n```\n# A\n```\n### A\n") == {"a", "a-1", "a-2"}


def test_broken_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n[a](#title) [b](#nowhere) [c](missing.md) [d](https://x.invalid)\n"
        "[e](other.md#other-page) [f](other.md#title)\n```\n[g](fenced.md)\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "page.md:2: #nowhere: no such heading",
        "page.md:2: missing.md: no such file",
        "page.md:3: other.md#title: no such heading",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    assert broken_links(page) == []
