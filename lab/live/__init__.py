"""The live lab of `make up`: Locust's web UI shows what the server is, what it does, what the model
expects and who serves each request (the Lab tab and the Lab page, locust/lab_ui.py), and the page
switches the server and keeps runs through the `make up` process that started the stack.

The supervisor side lives here: each second it samples the stack (probes.py) and pushes the state, in
words (figures.py), to Locust's web app; its control server (control.py) applies new settings
(switch.py, session.py) and keeps runs as run records (keep.py). Locust never reaches the host, so it
works alike for a native Locust and for the compose master's published port, with any number of workers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from contract.knobs import Knobs, ui_hosts
from lab.stack.backends import Serving
from lab.stack.place import Place
from lab.stack.procs import check_port_free


def control_port() -> int:
    return Place().control_port


def check_free() -> None:
    """Before anything starts: the control server's port is free."""
    check_port_free(control_port(), "the Lab page's control server (LAB_CONTROL_PORT)")


@contextmanager
def running(backend: str, stack: Serving, knobs: Knobs) -> Iterator[str]:
    """The live lab over a serving stack, until the block ends; yields the Lab page's address. On the way
    out, a change of settings under way finishes before the stack is stopped."""
    from lab.live.control import Control
    from lab.live.probes import ComposeProbe, NativeProbe, Probe
    from lab.live.session import LiveLab, LiveStack
    from lab.stack.backends.compose import ComposeStack, chosen_images
    from lab.stack.backends.native import Stack

    live_stack: LiveStack
    probe: Probe
    if isinstance(stack, Stack):
        live_stack, probe, postgres = stack, NativeProbe(stack), stack.pg.version()
    elif isinstance(stack, ComposeStack):
        live_stack, probe, postgres = stack, ComposeProbe(stack), f"the {chosen_images()['POSTGRES_IMAGE']} image"
    else:
        raise TypeError(f"no live lab for a {type(stack).__name__}")
    password = os.environ.get("LAB_UI_PASSWORD") or None
    lab = LiveLab(backend, live_stack, probe, knobs, control_port=control_port(), password=bool(password), postgres=postgres)
    check_free()
    control = Control(lab, control_port(), urlsplit(stack.locust_url).port or 8089, password, ui_hosts())
    control.start()
    sampler = threading.Thread(target=lab.run, name="lab-sampler", daemon=True)
    sampler.start()
    try:
        yield f"{stack.locust_url}/lab/timeline"
    finally:
        control.shutdown()
        control.server_close()
        lab.finish()
        sampler.join(timeout=5)
