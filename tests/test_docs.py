"""The README and docs/ render on GitHub: every link and image is relative and leads to a file of the
repository (and a heading there, for an #anchor); the README stays short enough to finish."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from helpers import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')


def without_code(text: str) -> str:
    text = re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as '-', repeats numbered."""
    text = re.sub(r"^```.*?^```[^\n]*$", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    seen: dict[str, int] = {}
    anchors = set()
    for match in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, flags=re.M):
        words = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1)).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", words.strip().lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def broken_links(page: Path, root: Path = REPO_ROOT) -> list[str]:
    problems = []
    for target in LINK.findall(without_code(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z]+:", target) or target.startswith("//"):
            problems.append(f"not relative: {target}")
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path)).resolve() if path else page
        if not dest.exists() or not dest.is_relative_to(root.resolve()):
            problems.append(f"no such file in the repository: {target}")
        elif anchor and (dest.suffix != ".md" or anchor not in heading_anchors(dest)):
            problems.append(f"no such heading: {target}")
    return problems


def test_every_link_and_image_of_the_pages_leads_somewhere():
    assert len(PAGES) >= 5
    assert {str(page.relative_to(REPO_ROOT)): broken_links(page) for page in PAGES} == {
        str(page.relative_to(REPO_ROOT)): [] for page in PAGES}


def test_the_checker_finds_what_is_broken(tmp_path):
    (tmp_path / "other.md").write_text("# A heading\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#a-heading) [gone](missing.md) ![img](none.png) [far](https://example.com) "
                    "[anchor](other.md#nope) `[code](ignored.md)`\n")
    assert broken_links(page, root=tmp_path) == [
        "no such file in the repository: missing.md", "no such file in the repository: none.png",
        "not relative: https://example.com", "no such heading: other.md#nope"]
    (tmp_path / "sub").mkdir()
    assert broken_links(page, root=tmp_path / "sub")[0] == "no such file in the repository: other.md#a-heading"


def test_the_readme_is_short_and_every_docs_page_is_linked_from_it():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 300
    linked = {Path(unquote(t.partition("#")[0])).name for t in LINK.findall(without_code(readme))}
    assert {page.name for page in PAGES[1:]} <= linked
