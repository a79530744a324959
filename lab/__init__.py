"""The concurrency lab: one endpoint, many ways to serve it, measured for real."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def duration(seconds: float) -> str:
    """A span of time as a person reads it: 45s, 3m05s."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
