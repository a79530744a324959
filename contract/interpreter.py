"""Which Python runs, and how fast: the interpreter is part of a configuration.

Two builds of the same version can differ by a fifth in CPU per request (a distribution's build with
profile-guided optimisation against one compiled without it), so every record keeps the build of
the interpreter that served it and its speed on a fixed loop: the endpoint's own prime count.
`python -m contract.interpreter` prints both as JSON, for the lab to run with any interpreter
(a server's venv, a container's image). Standard library only.
"""

from __future__ import annotations

import json
import platform
import sys
import sysconfig
import time

from contract.primes import count_primes

SPEED_LIMIT = 200_000  # primes below this: about 0.2 s of CPU on the lab's machines
SPEED_ROUNDS = 3


def build() -> dict[str, object]:
    """What the interpreter tells of itself: implementation, version, how it was compiled."""
    config_args = str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    return {
        "implementation": platform.python_implementation(),
        "version": platform.python_version(),
        "executable": sys.executable,
        "prefix": sys.base_prefix,
        "compiler": platform.python_compiler(),
        "built": " ".join(platform.python_build()),
        "optimizations": "--enable-optimizations" in config_args,
        "lto": "--with-lto" in config_args,
        "cflags": str(sysconfig.get_config_var("PY_CFLAGS") or "").split(),
        "gil": bool(getattr(sys, "_is_gil_enabled", lambda: True)()),
    }


def speed(limit: int = SPEED_LIMIT, rounds: int = SPEED_ROUNDS) -> dict[str, object]:
    """CPU seconds of the fixed loop: the best of a few rounds, as timing tools take the minimum."""
    times = []
    for _ in range(rounds):
        started = time.process_time()
        count_primes(limit)
        times.append(time.process_time() - started)
    return {"loop": f"count the primes below {limit:,}", "cpu_seconds": round(min(times), 4), "rounds": rounds}


def summary(facts: dict[str, object]) -> str:
    """One line a person reads: 'CPython 3.11.2 (GCC 12.2.0, /usr/bin/python3.11): 0.161 s per loop'."""
    built = facts.get("build")
    if not isinstance(built, dict):
        return f"an interpreter the lab could not question ({facts.get('error', 'no answer')})"
    took = facts.get("speed")
    pace = f": {took['cpu_seconds']:.3f} s for the loop" if isinstance(took, dict) else ""
    return f"{built['implementation']} {built['version']} ({built['compiler']}, {built['prefix']}){pace}"


if __name__ == "__main__":
    print(json.dumps({"build": build(), "speed": speed()}))
