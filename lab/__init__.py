"""The concurrency lab: one endpoint, many ways to serve it, measured for real."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
