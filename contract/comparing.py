"""How two results folders are compared (`make compare`, lab/compare): the aspects COMPARE_ACROSS may name, the
grammar of THRESHOLDS (which `make bench` and `make capacity` judge too) and of MIN_CHANGE. They say how to judge
runs, not how to run them: no record keeps them. Stdlib only, so the Makefile stops a bad value before anything starts."""

from __future__ import annotations

import re

from contract.parsers import KnobError

# The differences between two configurations that refuse a comparison unless COMPARE_ACROSS names them.
COMPARE_ASPECTS = ("mode", "workers", "threads", "cpus", "workload", "arrivals", "target", "db_pool", "cpu_offload",
                   "interpreter", "app", "backend")  # fmt: skip

# What THRESHOLDS can limit, each with the units it takes and what one of them is in the figure's own unit
# (ms, req/s, a share of requests, ms of CPU per request, MB per worker); no unit: the figure's own.
_LATENCY = {"": 1.0, "ms": 1.0, "s": 1000.0}
_RATE = {"": 1.0, "/s": 1.0, "rps": 1.0}
THRESHOLD_UNITS: dict[str, dict[str, float]] = {
    "rps": _RATE,
    "p50": _LATENCY,
    "p95": _LATENCY,
    "p99": _LATENCY,
    "failures": {"": 1.0, "%": 0.01},
    "cpu": {"": 1.0, "ms": 1.0, "us": 0.001, "s": 1000.0},
    "capacity": _RATE,
    "memory": {"": 1.0, "mb": 1.0, "gb": 1024.0},
}
# k6 writes a percentile p(95): p95 is the same
THRESHOLD_RE = re.compile(r"^(?P<figure>[a-z]+\d*|p\(\d+\))(?P<op><=|>=|<|>)(?P<number>\d+(?:\.\d*)?|\.\d+)(?P<unit>[a-z/%]*)$")
THRESHOLDS_ACCEPT = ('limits such as "p95<300ms rps>50 failures<1%": each a figure (' + ", ".join(THRESHOLD_UNITS)
                     + "), <, <=, > or >=, and a number with its unit")  # fmt: skip


def thresholds(text: str) -> list[tuple[str, str, float]]:
    """THRESHOLDS="p95<300ms rps>50 failures<1%": each limit as (figure, operator, number in the figure's own
    unit); KnobError naming the first term that does not read."""
    found = []
    for term in text.lower().split():
        match = THRESHOLD_RE.match(term)
        figure = match["figure"].replace("(", "").replace(")", "") if match else ""
        units = THRESHOLD_UNITS.get(figure, {})
        if match is None or match["unit"] not in units:
            takes = f"{figure} takes {', '.join(repr(u) for u in units if u)} or no unit" if units else THRESHOLDS_ACCEPT
            raise KnobError(f"THRESHOLDS has {term!r}: {takes}")
        found.append((figure, match["op"], float(match["number"]) * units[match["unit"]]))
    return found


def min_change(text: str) -> float:
    """MIN_CHANGE=5% (or 5): the share it names, from 0.1% to 100%."""
    value = float(text.removesuffix("%")) / 100
    if not 0.001 <= value <= 1:
        raise ValueError
    return value


def aspects(text: str) -> str:
    names = text.replace(",", " ").split()
    if not names or any(name not in COMPARE_ASPECTS for name in names):
        raise ValueError
    return " ".join(names)


def folder(text: str) -> str:
    if not text.strip():
        raise ValueError
    return text
