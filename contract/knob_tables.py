"""The knobs as `make knobs` lists them, as the tables of the README and docs/knobs.md show them and as compose.yaml
reads them, from their one declaration (contract/declared.py): `python -m lab knobs --write` writes each of those
places, and tests/test_knobs_declared.py fails while one differs. Stdlib only: `make help` lists the knobs before
any virtual environment exists."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from contract.declared import Knob, Who, declared

# A table's place in a document: the line before it. Markdown shows nothing of an HTML comment.
TABLE_MARK = "<!-- the table of `python -m lab knobs --markdown --who {}`: `python -m lab knobs --write` writes it -->"
# Where each group's table stands, and compose.yaml, whose x-knobs block passes every knob of a run to the containers
TABLES = {Who.RUN: "README.md", Who.MACHINE: "docs/knobs.md", Who.COMPARE: "docs/knobs.md", Who.COMMAND: "docs/knobs.md",
          Who.LAB: "docs/knobs.md"}  # fmt: skip
COMPOSE = "compose.yaml"
COMPOSE_BLOCK = re.compile(r"^x-knobs: &knobs\n(?:  .*\n)*", re.M)


def _default(knob: Knob) -> str:
    return knob.default or ("(mode)" if knob.who is Who.RUN else "")


def listing(knobs: Mapping[str, Knob]) -> list[str]:
    """A line for each: its name, its default and what it does."""
    width = max(map(len, knobs))
    return [f"  {name:<{width}} {_default(knob):<9} {knob.help}" for name, knob in knobs.items()]


def markdown(knobs: Mapping[str, Knob]) -> str:
    """A table with a row for each: its name, its default (per mode, where the mode decides) and what it does."""
    rows = ["| knob | default | meaning |", "| --- | --- | --- |"]
    for name, knob in knobs.items():
        default = f"`{knob.default}`" if knob.default else "per mode" if knob.who is Who.RUN else "–"
        rows.append(f"| `{name}` | {default} | {knob.help} |")
    return "\n".join(rows)


def compose_block(knobs: Mapping[str, Knob]) -> str:
    """compose.yaml's x-knobs block: each knob of a run with its default, as `${NAME:-default}`."""
    return "x-knobs: &knobs\n" + "".join(f"  {name}: ${{{name}:-{knob.default}}}\n" for name, knob in knobs.items())


def _with_table(text: str, who: Who, where: str) -> str:
    mark = TABLE_MARK.format(who.value)
    if mark not in text:
        raise ValueError(f"{where} has no line `{mark}` to put the table of --who {who} after")
    head, _, rest = text.partition(mark + "\n")
    lines = rest.split("\n")
    kept = next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))
    return head + mark + "\n" + markdown(declared(who)) + "\n" + "\n".join(lines[kept:])


def written(root: Path) -> dict[str, str]:
    """Each generated file's text as the declaration makes it, by its path under root."""
    texts: dict[str, str] = {}
    for who, where in TABLES.items():
        texts[where] = _with_table(texts.get(where) or (root / where).read_text(encoding="utf-8"), who, where)
    compose = (root / COMPOSE).read_text(encoding="utf-8")
    if not COMPOSE_BLOCK.search(compose):
        raise ValueError(f"{COMPOSE} has no `x-knobs: &knobs` block to write the knobs of a run into")
    read = {name: knob for name, knob in declared(Who.RUN).items() if knob.compose}
    texts[COMPOSE] = COMPOSE_BLOCK.sub(lambda _: compose_block(read), compose, count=1)
    return texts


def write(root: Path) -> list[str]:
    """Write what differs from the declaration; the paths written."""
    changed = []
    for where, text in written(root).items():
        path = root / where
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(where)
    return changed
