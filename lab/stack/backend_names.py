"""The lab's backends by name: what BACKEND takes, and what an experiment's `backends` key may list. Their
code lives in lab/stack/backends/; the names live here, below it, for what only needs to check one (an experiment)."""

from __future__ import annotations

BACKENDS = ("native", "compose", "remote")
