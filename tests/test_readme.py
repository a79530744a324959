"""The README is one screen: the two first commands at its top, a map of every make target, and links to the
pages under docs/ that hold the details. Every relative link of the README and of those pages resolves, to a
file and, where it names one, to a heading of that file. Pure: nothing is started."""

from __future__ import annotations

import re
from pathlib import Path

from lab.stack.checkout import ROOT

README = ROOT / "README.md"
# the README and the pages beside docs/README.md; the example folders under docs/ are reports the lab wrote
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text without its fenced code blocks, where a `](` or a `#` is code, not a link or a heading."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped, spaces as dashes, and a
    heading seen before numbered (-1, -2, ...)."""
    found: set[str] = set()
    for heading in re.findall(r"^#+ (.+)$", prose(page.read_text()), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n, unique = 0, slug
        while unique in found:
            n += 1
            unique = f"{slug}-{n}"
        found.add(unique)
    return found


def test_the_readme_fits_one_screen():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move the detail to a page under docs/"


def test_the_readme_opens_with_the_two_first_commands():
    text = README.read_text()
    intro = text.split("\n## ", 1)[0]
    first = intro.split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split("#", 1)[0].strip() for line in first.splitlines()] == ["make up MODE=threaded", "make test"]
    # and, before anything else, how they set themselves up, the locks and the test tiers
    for said in ("Both commands set themselves up", "`make down`", "requirements/*.lock", "`make test-fast`"):
        assert said in intro, said


def test_the_readme_names_every_make_target_in_its_map_of_commands():
    commands = section(README.read_text(), "Commands")
    makefile = (ROOT / "Makefile").read_text()
    targets = re.findall(r"^([a-z0-9-]+):.*## ", makefile, re.M)
    assert {"up", "bench", "capacity", "compare", "report", "serve", "worker", "k8s", "down"} <= set(targets)
    for target in targets:
        assert re.search(rf"make {re.escape(target)}(?![\w-])", commands), target


def test_every_relative_link_of_the_readme_and_the_docs_resolves():
    checked = 0
    for page in PAGES:
        for link in LINK.findall(prose(page.read_text())):
            if re.match(r"[a-z]+:", link):
                continue  # https:, mailto:: not a file here
            path, _, anchor = link.partition("#")
            target = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: {link}"
            assert target.exists(), f"{where} names no file"
            if anchor and target.suffix == ".md":
                assert anchor in anchors(target), f"{where} names no heading of {target.relative_to(ROOT)}"
            checked += 1
    assert checked > 30  # the README's links to every page, and the pages' to each other and the examples
