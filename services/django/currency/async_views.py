"""The currency endpoint as a Django async view, under an ASGI server (MODE=django-asgi).

Django's own database layer is synchronous (an async view would reach it through a thread), so
the async path goes to PostgreSQL through psycopg's async pool, opened on first use in the
server's event loop.
"""

import asyncio

import psycopg
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from contract import endpoint, pools
from currency.views import error_response, read_only

DB_UNAVAILABLE = (psycopg.Error, PoolTimeout)
_pool: AsyncConnectionPool | None = None
_lock = asyncio.Lock()


async def pool() -> AsyncConnectionPool:
    global _pool
    async with _lock:
        if _pool is None:
            _pool = AsyncConnectionPool(settings.LAB.database_url, min_size=settings.LAB.db_pool_open,
                                        max_size=settings.LAB.db_pool_size,
                                        timeout=endpoint.POOL_TIMEOUT, kwargs={"connect_timeout": 3}, open=False)  # fmt: skip
            await _pool.open(wait=False)
    return _pool


@read_only
async def convert(request: HttpRequest) -> JsonResponse:
    timer = endpoint.Timer(one_thread=False)
    try:
        conversion = endpoint.parse_query(request.GET, settings.LAB.workload)
    except endpoint.BadRequest as bad:
        return error_response(400, str(bad), timer)
    if conversion.workload == "cpu":
        timer.mark()
        endpoint.count_primes(settings.LAB.primes_limit)  # in the event loop, as FastAPI's async mode does
        timer.lap("cpu", own="cpu")
    sql, params = endpoint.query_for(conversion, settings.LAB)
    timer.mark()
    try:
        async with (await pool()).connection() as conn:
            timer.lap("pool")
            row = await (await conn.execute(sql, params)).fetchone()
    except DB_UNAVAILABLE as failure:
        pools.recheck_async(await pool())
        return error_response(503, f"database unavailable: {type(failure).__name__}", timer)
    finally:
        timer.lap("db")
    timer.queried(row)
    if row is None:
        return error_response(404, endpoint.not_found(conversion), timer)
    return JsonResponse(endpoint.answer(conversion, row[0]), headers=timer.headers())


@read_only
async def healthz(request: HttpRequest) -> JsonResponse:
    try:
        async with (await pool()).connection() as conn:
            await conn.execute("SELECT 1")
    except DB_UNAVAILABLE as failure:
        return error_response(503, f"database unavailable: {type(failure).__name__}")
    if (opening := await pools.still_opening_async(await pool())) is not None:
        return error_response(503, opening)
    report = endpoint.server_report(settings.LAB, pool=await pool())
    return JsonResponse({"status": "ok", "server": report})
