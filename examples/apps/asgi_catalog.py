"""An example ASGI app for `APP=asgi_catalog:app APP_DIR=examples/apps`: a slow upstream call and a CPU-heavy page.

Plain ASGI, no framework, a class with an async __call__: /upstream?ms=50 awaits a slow call (asyncio.sleep,
as an HTTP API would keep it waiting), /render?rows=300 builds an HTML table in pure Python.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Message = MutableMapping[str, Any]


def render(rows: int) -> str:
    cells = (f"<tr><td>{i}</td><td>{html.escape(f'item <{i * 7919 % 1000}>')}</td><td>{sum(range(i * 50))}</td></tr>"
             for i in range(rows))  # fmt: skip
    return "<table>" + "".join(cells) + "</table>"


class Catalog:
    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:  # fmt: skip
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        query = parse_qs(scope.get("query_string", b"").decode())
        number = int(query.get("ms", query.get("rows", ["50"]))[0])
        if scope["path"] == "/upstream":
            await asyncio.sleep(number / 1000)
            status, body, kind = 200, f'{{"waited_ms": {number}}}', "application/json"
        elif scope["path"] == "/render":
            status, body, kind = 200, render(number), "text/html"
        else:
            status, body, kind = 404, '{"error": "not found"}', "application/json"
        data = body.encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind.encode()), (b"content-length", str(len(data)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": data})


app = Catalog()
