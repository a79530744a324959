"""The currency endpoint on FastAPI: an async handler over psycopg's async connection pool.

The cpu workload runs in the handler itself, as the post's does: it blocks the event loop,
and showing that is part of what the lab is for.
"""

import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.exceptions import HTTPException

# The shared endpoint contract lives in the project's `lab` package, two folders up.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lab.endpoint import BadRequest, Settings, Timer, answer, count_primes, not_found, parse_query, query_for

SETTINGS = Settings.from_environ()
DB_UNAVAILABLE = (psycopg.Error, PoolTimeout)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # open(wait=False): the app starts while the database is down and /healthz says so.
    pool = AsyncConnectionPool(
        SETTINGS.database_url,
        min_size=1,
        max_size=SETTINGS.db_pool_size,
        timeout=3,
        kwargs={"connect_timeout": 3},
        open=False,
    )
    await pool.open(wait=False)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


def _error(status: int, message: str, timer: Timer | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=timer.headers() if timer else None)


@app.get("/currency/convert")
@app.get("/currency/convert/", include_in_schema=False)
async def convert(request: Request) -> JSONResponse:
    timer = Timer()
    try:
        conversion = parse_query(request.query_params, SETTINGS.workload)
    except BadRequest as error:
        return _error(400, str(error), timer)
    if conversion.workload == "cpu":
        started = time.perf_counter()
        count_primes(SETTINGS.primes_limit)
        timer.phase("cpu", started)
    sql, params = query_for(conversion, SETTINGS)
    started = time.perf_counter()
    try:
        async with request.app.state.pool.connection() as conn:
            row = await (await conn.execute(sql, params)).fetchone()
    except DB_UNAVAILABLE as error:
        return _error(503, f"database unavailable: {type(error).__name__}", timer)
    finally:
        timer.phase("db", started)
    if row is None:
        return _error(404, not_found(conversion), timer)
    return JSONResponse(answer(conversion, row[0]), headers=timer.headers())


@app.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    try:
        async with request.app.state.pool.connection() as conn:
            await conn.execute("SELECT 1")
    except DB_UNAVAILABLE as error:
        return _error(503, f"database unavailable: {type(error).__name__}")
    return JSONResponse({"status": "ok"})


@app.exception_handler(HTTPException)
async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    message = "not found: the endpoint is /currency/convert?from=usd&to=gbp" if exc.status_code == 404 else str(exc.detail)
    return _error(exc.status_code, message)


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return _error(400, "bad request")


@app.exception_handler(Exception)
async def server_error(request: Request, exc: Exception) -> JSONResponse:
    return _error(500, "internal error")
