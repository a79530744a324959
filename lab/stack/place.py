"""Where one lab instance keeps its state and listens. Every part uses it (both backends, the bench,
the stack file); tests make their own, with ports and a state folder apart from a lab that is up."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from contract.knobs import int_setting
from lab.stack.checkout import ROOT
from lab.stack.postgres import Postgres


@dataclass(frozen=True)
class Place:
    state: Path = field(default_factory=lambda: Path(os.environ.get("LAB_STATE_DIR", ROOT / ".lab")))
    app_port: int = field(default_factory=lambda: int_setting("APP_PORT"))
    pg_port: int = field(default_factory=lambda: int_setting("PG_PORT"))
    locust_port: int = field(default_factory=lambda: int_setting("LOCUST_PORT"))
    control_port: int = field(default_factory=lambda: int_setting("LAB_CONTROL_PORT"))  # `make up`'s Lab page form

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def stack_file(self) -> Path:
        return self.state / "stack.json"

    @property
    def cgroup_name(self) -> str:
        digest = hashlib.sha1(str(self.state.resolve()).encode()).hexdigest()[:8]
        return f"concurrency-lab-{digest}"

    def postgres(self) -> Postgres:
        return Postgres(self.state / "postgres", self.pg_port)
