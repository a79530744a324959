"""The checkout the lab runs from: experiments/, results/, .lab/, the services and the images are under it.
Stdlib only: `make help` reads it before any virtual environment exists."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
