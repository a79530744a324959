"""The currency endpoint on FastAPI: an async handler over psycopg's async connection pool.

The cpu workload runs in the handler itself, as the post's does: it blocks the event loop,
and showing that is part of what the lab is for. With CPU_OFFLOAD=process it runs in a process
pool instead, the usual remedy.
"""

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from contract import pools
from contract.endpoint import Timer, count_primes, query_for, server_report
from contract.knobs import Offload

from .common import POOL_ARGS, SETTINGS, Source, Target, Workload, add_routes, error, make_app, reply
from .common import conversion as to_conversion

DB_UNAVAILABLE = (psycopg.Error, PoolTimeout)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # open(wait=False): the app starts while the database is down and /healthz says so.
    pool = AsyncConnectionPool(SETTINGS.database_url, open=False, **POOL_ARGS)
    await pool.open(wait=False)
    app.state.pool = pool
    app.state.cpu_pool = cpu_pool(SETTINGS.cpu_offload)
    try:
        yield
    finally:
        await pool.close()
        if app.state.cpu_pool:
            app.state.cpu_pool.shutdown(cancel_futures=True)


def cpu_pool(offload: Offload) -> ProcessPoolExecutor | None:
    """The process pool that counts primes off the event loop, one process per core, in each process
    of the server (each Uvicorn or Granian worker holds its own)."""
    if offload is Offload.NONE:
        return None
    workers = os.cpu_count() or 1
    pool = ProcessPoolExecutor(workers, initializer=_own_signals)
    # start every worker now (the pool forks them lazily), so no request pays for a fork
    for done in [pool.submit(time.sleep, 0.2) for _ in range(workers)]:
        done.result()
    return pool


def _own_signals() -> None:
    """In a pool process: drop the signal handling the fork copied from the server's worker. Granian's
    worker hears signals through its event loop's wakeup fd, which a forked process shares: the group's
    SIGTERM then reached that loop from every pool process too, and the worker hung in its handler until
    killed. Here SIGTERM ends the process, and SIGINT (Ctrl-C) is the server's, which shuts the pool down."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


app = make_app(lifespan)


async def convert(request: Request, source: Source, target: Target, workload: Workload = None) -> JSONResponse:
    timer = Timer(one_thread=False)
    conversion = to_conversion(source, target, workload)
    if conversion.workload == "cpu":
        timer.mark()
        if request.app.state.cpu_pool:
            await asyncio.get_running_loop().run_in_executor(request.app.state.cpu_pool, count_primes, SETTINGS.primes_limit)
            timer.lap("cpu", own="wall")  # counted in another process: its CPU is not this thread's
        else:
            count_primes(SETTINGS.primes_limit)  # blocks the event loop, on purpose
            timer.lap("cpu", own="cpu")
    sql, params = query_for(conversion, SETTINGS)
    timer.mark()
    try:
        async with request.app.state.pool.connection() as conn:
            timer.lap("pool")
            row = await (await conn.execute(sql, params)).fetchone()
    except DB_UNAVAILABLE as failure:
        pools.recheck_async(request.app.state.pool)
        return error(503, f"database unavailable: {type(failure).__name__}", timer)
    finally:
        timer.lap("db")
    return reply(conversion, row, timer)


async def healthz(request: Request) -> JSONResponse:
    try:
        async with request.app.state.pool.connection() as conn:
            await conn.execute("SELECT 1")
    except DB_UNAVAILABLE as failure:
        return error(503, f"database unavailable: {type(failure).__name__}")
    if (opening := await pools.still_opening_async(request.app.state.pool)) is not None:
        return error(503, opening)
    state = request.app.state
    offload = Offload.PROCESS if state.cpu_pool else Offload.NONE  # what the app holds, not what it was told
    report = server_report(SETTINGS, pool=state.pool, offload=offload)
    return JSONResponse({"status": "ok", "server": report})


add_routes(app, convert, healthz)
