"""The options of the lab's commands, each from its one declaration (contract/declared.py), as Gunicorn makes its
flags from its settings: the flag given wins, else the variable of the same name in the environment (what `make`
passes), else the declared default. Each value is read in its declaration's words after argparse, so a bad one is
refused in one line (`REPEATS='x' is not valid: REPEATS takes an integer from 1 to 20`). Stdlib only: `make help`
runs before any virtual environment exists."""

from __future__ import annotations

import argparse
import os

from contract.declared import DECLARED
from contract.parsers import SWITCH, YES


def add(parser: argparse.ArgumentParser, name: str, *flags: str, positional: bool = False) -> None:
    """Option `name` on the parser: its flag (--name-in-lower-case unless `flags` name others) or, `positional`, an
    argument that may be left out; its help and default from its declaration."""
    knob = DECLARED[name]
    default = f" ({name}=...; default {knob.default})" if knob.default else f" ({name}=...)"
    if positional:
        parser.add_argument(name, nargs="?", help=knob.help + default)
    elif knob.parse is SWITCH:
        parser.add_argument(*(flags or (knob.option,)), dest=name, action="store_const", const="1",
                            help=f"{knob.help} ({name}=1)")  # fmt: skip
    else:
        parser.add_argument(*(flags or (knob.option,)), dest=name, metavar=name, help=knob.help + default)


def resolve(args: argparse.Namespace) -> set[str]:
    """Each option's value as its command takes it, set on `args` by the name in lower case (args.backend,
    args.repeats: an int, args.resume: a bool); the names of those given, by a flag or in the environment.
    KnobError names a bad one."""
    given = set()
    for name in [name for name in vars(args) if name in DECLARED]:
        knob = DECLARED[name]
        text = (getattr(args, name) or os.environ.get(name, "")).strip()
        if text:
            given.add(name)
        value = knob.read(text or knob.default) if text or knob.default else None
        setattr(args, name.lower(), value in YES if knob.parse is SWITCH else value)
    return given
