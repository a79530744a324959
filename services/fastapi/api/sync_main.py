"""The currency endpoint on FastAPI with plain `def` handlers: FastAPI runs each in its thread
pool (THREADS threads), over psycopg's synchronous pool. A common mistake (a sync driver in an
async framework) and a common remedy (keep the handler sync), measured side by side."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool, PoolTimeout

from contract import pools
from contract.endpoint import Timer, count_primes, query_for, server_report

from .common import POOL_ARGS, SETTINGS, Source, Target, Workload, add_routes, error, make_app, reply
from .common import conversion as to_conversion

DB_UNAVAILABLE = (psycopg.Error, PoolTimeout)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    limiter = to_thread.current_default_thread_limiter()
    limiter.total_tokens = int(os.environ["THREADS"])  # the lab always sets it
    app.state.threads = int(limiter.total_tokens)  # what the thread pool really holds, for /healthz
    pool = ConnectionPool(SETTINGS.database_url, open=False, **POOL_ARGS)
    pool.open(wait=False)
    app.state.pool = pool
    try:
        yield
    finally:
        pool.close()


app = make_app(lifespan)


def convert(request: Request, source: Source, target: Target, workload: Workload = None) -> JSONResponse:
    timer = Timer()
    conversion = to_conversion(source, target, workload)
    if conversion.workload == "cpu":
        timer.mark()
        count_primes(SETTINGS.primes_limit)
        timer.lap("cpu")
    sql, params = query_for(conversion, SETTINGS)
    timer.mark()
    try:
        with request.app.state.pool.connection() as conn:
            timer.lap("pool")
            row = conn.execute(sql, params).fetchone()
    except DB_UNAVAILABLE as failure:
        pools.recheck(request.app.state.pool)
        return error(503, f"database unavailable: {type(failure).__name__}", timer)
    finally:
        timer.lap("db")
    return reply(conversion, row, timer)


def healthz(request: Request) -> JSONResponse:
    try:
        with request.app.state.pool.connection() as conn:
            conn.execute("SELECT 1")
    except DB_UNAVAILABLE as failure:
        return error(503, f"database unavailable: {type(failure).__name__}")
    if (opening := pools.still_opening(request.app.state.pool)) is not None:
        return error(503, opening)
    state = request.app.state
    report = server_report(SETTINGS, pool=state.pool, threads=state.threads)
    return JSONResponse({"status": "ok", "server": report})


add_routes(app, convert, healthz)
