"""What the Lab page's form may change, validated as the command line validates it, and whether a change
needs a new server or only new Locust users."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

from contract.knobs import KNOBS, KnobError, Knobs, parse

# The form's fields: the server's settings, and WORKLOAD (with its share), which Locust's users send.
FORM = ("MODE", "WORKERS", "THREADS", "CPUS", "IO_SECONDS", "PRIMES_LIMIT", "WORKLOAD", "MIX_CPU_SHARE")
# settings of the users, not the server; WORKLOAD too, where the running server serves it (serves)
LOCUST_ONLY = {name.lower() for name, knob in KNOBS.items() if not knob.server} | {"workload"}


def requested(running: Knobs, form: Mapping[str, object]) -> Knobs:
    """The knobs the form asks for: those running, with the form's fields over them (WORKERS or THREADS
    left empty take the mode's own). A bad value raises KnobError with the command line's own words."""
    unknown = sorted(set(form) - set(FORM))
    if unknown:
        raise KnobError(f"the Lab page sets {', '.join(FORM)}; not {', '.join(unknown)}")
    env = running.as_env()
    env.update({name: str(value).strip() for name, value in form.items()})
    return parse(env)


def serves(server_workload: str, wanted: str) -> bool:
    """Does a server started with WORKLOAD=server_workload serve what Locust sends under `wanted`? A mix's
    requests name their kind; a server under WORKLOAD=mix serves a request that names none as io."""
    return wanted in (server_workload, "mix") or (server_workload == "mix" and wanted == "io")


def needs_restart(server: Knobs, wanted: Knobs) -> bool:
    """A new server for a setting of the server; WORKLOAD alone is a setting of the users, unless the
    running server cannot serve what they would send."""
    changed = {f.name for f in fields(Knobs) if getattr(server, f.name) != getattr(wanted, f.name)}
    return bool(changed - LOCUST_ONLY) or not serves(server.workload, wanted.workload)
