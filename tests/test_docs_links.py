"""Every relative Markdown link in README.md and docs/*.md leads to a file or folder that exists
(anchors are not checked; links to web addresses and inside code are not links to check)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")
# [text](target) and [text](target "title"); the text may run over a line break.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def relative_links(text):
    """The relative link targets of a Markdown text, without their anchors, and their lines."""
    blank = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    blank = CODE.sub("", blank)
    for m in LINK.finditer(blank):
        target = m.group(1)
        if SCHEME.match(target) or target.startswith("#"):
            continue
        yield target.split("#", 1)[0], blank.count("\n", 0, m.start()) + 1


def test_the_link_reader():
    text = (
        "[a](docs/x.md#part) [b](https://example.org/y) [c](#here) `[d](no.md)`\n"
        '[two\nlines](z.md "title")\n```\n[e](inside.md)\n```\n[f](<w.md>)\n'
    )
    assert list(relative_links(text)) == [("docs/x.md", 1), ("z.md", 2), ("w.md", 7)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files(page):
    broken = [
        f"{page.relative_to(ROOT)}:{line}: {target}"
        for target, line in relative_links(page.read_text(encoding="utf-8"))
        if not (page.parent / target).exists()
    ]
    assert not broken, "links to nothing:\n" + "\n".join(broken)
