"""The names `make up`'s UI answers to (Locust's web UI and the control server, docs/ui-trust.md): loopback's, and
those LAB_UI_HOSTS opens it to on purpose. Stdlib only."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from contract.parsers import KnobError

UI_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})  # the names `make up`'s UI always answers to
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST_NAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
UI_HOSTS_ACCEPT = "host names or addresses, separated by commas, without a scheme or port (such as lab.example,192.0.2.7)"


def host_name(header: str | None) -> str | None:
    """The name a Host header gives (`name`, `name:port`, `[v6]:port`), lowercased, an IPv6 address without its
    brackets; None for anything else."""
    try:
        parts = urlsplit(f"//{header or ''}")
        parts.port  # noqa: B018  (raises ValueError for a port that is not one)
    except ValueError:
        return None
    name = parts.hostname or ""
    if parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name if HOST_NAME_RE.match(name) else None
    return name


def ui_host_names(text: str) -> frozenset[str]:
    """LAB_UI_HOSTS' names with loopback's; KnobError names one that is not a host name or address."""
    names = set(UI_LOOPBACK)
    for part in filter(None, re.split(r"[,\s]+", text)):
        bare = part.lower().removeprefix("[").removesuffix("]")
        if host_name(f"[{bare}]" if ":" in bare else bare) != bare:  # a port, a scheme, a path: not a name alone
            raise KnobError(f"LAB_UI_HOSTS has {part!r}: LAB_UI_HOSTS takes {UI_HOSTS_ACCEPT}")
        names.add(bare)
    return frozenset(names)
