"""The lab's backends by name: what BACKEND takes, and what an experiment's `backends` key may list. Their
code lives in lab/stack/backends/; the names are declared with BACKEND (contract/declared.py), and read here,
below the backends, by what only needs to check one (an experiment)."""

from __future__ import annotations

from contract.declared import BACKENDS

__all__ = ["BACKENDS"]
