"""The knobs as `make knobs` lists them and as the tables of the README and docs/knobs.md show them, from their
one declaration (contract/declared.py); tests/test_knobs_declared.py holds the docs to it. Stdlib only: `make help`
lists the knobs before any virtual environment exists."""

from __future__ import annotations

from collections.abc import Mapping

from contract.declared import Knob, Who


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
