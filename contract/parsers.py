"""How the text of a knob or setting is read. A parser returns the value, or raises ValueError (KnobError where it
names the part that does not read), and says in words what it accepts; Knob.read makes the one message that names
the knob. Stdlib only, as all of contract/: the servers' images install it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class KnobError(ValueError):
    """A knob has a value it cannot take; the message names the knob and what it accepts."""


KnobValue = str | int | float  # what a knob's text parses to


@dataclass(frozen=True)
class Parser:
    """Reads a knob's text, raising ValueError for a value the knob does not take; `accepts` says,
    in words, what it takes."""

    read: Callable[[str], KnobValue]
    accepts: str

    def __call__(self, text: str) -> KnobValue:
        return self.read(text)


def number(kind: type[int] | type[float], low: float, high: float) -> Parser:
    def parse(text: str) -> KnobValue:
        value = kind(text)
        if not low <= value <= high:
            raise ValueError
        return value

    shown = f"{low:g} to {high:g}" if kind is float else f"{low} to {high}"  # 50000000, not 5e+07
    return Parser(parse, f"{'an integer' if kind is int else 'a number'} from {shown}")


def choice(*choices: str) -> Parser:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError
        return text

    return Parser(parse, "one of " + ", ".join(choices))


def enum(kind: type[StrEnum]) -> Parser:
    return Parser(kind, "one of " + ", ".join(kind))  # an unknown value raises ValueError


def checked(check: Callable[[str], object], accepts: str) -> Parser:
    """The text itself, once `check` has read it (and raised for a value it does not take)."""

    def parse(text: str) -> str:
        check(text)
        return text

    return Parser(parse, accepts)


TEXT = Parser(str, "any text")
YES = ("1", "yes", "true")  # a make variable that turns something on: RESUME=1, DETACH=yes, ...
SWITCH = choice(*YES, "0", "no", "false")

RUN_TIME_RE = re.compile(r"^(\d+h)?(\d+m)?(\d+s)?$")


def run_time_seconds(text: str) -> int:
    """RUN_TIME's duration (30s, 2m, 1h30m) in seconds; ValueError for one it does not read."""
    match = RUN_TIME_RE.match(text)
    if not text or not match or not any(match.groups()):
        raise ValueError
    return sum(int(part[:-1]) * {"h": 3600, "m": 60, "s": 1}[part[-1]] for part in match.groups() if part)


def paths(text: str) -> list[tuple[str, int]]:
    """PATHS="/a /b?x=1:3": each path with its weight (1 unless `:N` ends it); KnobError naming a bad one."""
    found: list[tuple[str, int]] = []
    for part in text.split():
        path, _, weight = part.rpartition(":") if re.search(r":\d+$", part) else (part, "", "1")
        if not path.startswith("/") or not weight.isdigit() or int(weight) < 1:
            raise KnobError(
                f"PATHS has {part!r}: PATHS takes paths that start with /, each with an optional :weight "
                '(an integer >= 1), such as "/a:3 /b?x=1"'
            )
        found.append((path, int(weight)))
    return found
