"""What the async and the sync FastAPI apps share: settings, typed query parameters, the OpenAPI
description, JSON errors and the endpoint's routes."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Literal, TypedDict

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from contract.endpoint import (
    ALLOW,
    CODE_PATTERN,
    NOT_FOUND_PAGE,
    POOL_TIMEOUT,
    BadRequest,
    Conversion,
    Settings,
    Timer,
    answer,
    method_not_allowed,
    not_found,
    parse_query,
)

SETTINGS = Settings.from_environ()


class PoolArgs(TypedDict):
    """psycopg_pool's ConnectionPool and AsyncConnectionPool arguments, the same for both apps."""

    min_size: int
    max_size: int
    timeout: float
    kwargs: dict[str, Any]  # each connection's, as psycopg_pool types them


POOL_ARGS = PoolArgs(
    min_size=SETTINGS.db_pool_open, max_size=SETTINGS.db_pool_size, timeout=POOL_TIMEOUT, kwargs={"connect_timeout": 3}
)

# The post's own parameters, typed: FastAPI validates them and publishes them in its schema.
Source = Annotated[str, Query(alias="from", pattern=CODE_PATTERN, description="three-letter currency code", examples=["usd"])]
Target = Annotated[str, Query(alias="to", pattern=CODE_PATTERN, description="three-letter currency code", examples=["gbp"])]
Workload = Annotated[
    Literal["io", "cpu"] | None, Query(description="this request's work: io waits in PostgreSQL, cpu counts primes")
]


class Rate(BaseModel):
    source: str = Field(alias="from")
    to: str
    rate: float
    workload: Literal["io", "cpu"]


class Error(BaseModel):
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": Error}, 404: {"model": Error}, 503: {"model": Error}}


def conversion(source: str, target: str, workload: str | None) -> Conversion:
    """The typed parameters as the contract reads them (lower case; the configured workload by default)."""
    return parse_query({"from": source, "to": target, "workload": workload or ""}, SETTINGS.workload)


def error(status: int, message: str, timer: Timer | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=timer.headers() if timer else None)


def reply(conversion: Conversion, row: tuple | None, timer: Timer) -> JSONResponse:
    if row is None:
        return error(404, not_found(conversion), timer)
    timer.queried(row)
    return JSONResponse(answer(conversion, row[0]), headers=timer.headers())


def add_error_handlers(app: FastAPI) -> None:
    """JSON for every error in the lab's words, never a traceback or FastAPI's 422."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 405:  # the router's Allow would name only its first route's methods (GET)
            response = error(405, method_not_allowed(request.method))
            response.headers["Allow"] = ALLOW
            return response
        return error(exc.status_code, NOT_FOUND_PAGE if exc.status_code == 404 else str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        try:  # the contract words each bad parameter the same for every service
            parse_query(request.query_params, SETTINGS.workload)
        except BadRequest as bad:
            return error(400, str(bad))
        return error(400, "bad request")

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        return error(500, "internal error")


def add_routes(app: FastAPI, convert: Callable[..., Any], healthz: Callable[..., Any]) -> None:
    summary = "Convert one currency to another, doing the configured work"
    app.add_api_route("/currency/convert", convert, methods=["GET"], response_model=Rate, responses=ERRORS, summary=summary)
    app.add_api_route("/currency/convert/", convert, methods=["GET"], include_in_schema=False)
    app.add_api_route("/healthz", healthz, methods=["GET"], summary="The database answers; the server's effective configuration")
    # HEAD is GET without the body (the server leaves it out), as in the Django modes; routes of their
    # own, out of the schema, so that it lists each operation once
    for path, handler in (("/currency/convert", convert), ("/currency/convert/", convert), ("/healthz", healthz)):
        app.add_api_route(path, handler, methods=["HEAD"], include_in_schema=False)


def make_app(lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]]) -> FastAPI:
    app = FastAPI(title="Concurrency lab: currency endpoint", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    add_error_handlers(app)
    generated = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generated()
        for operations in schema["paths"].values():
            for operation in operations.values():
                operation["responses"].pop("422", None)  # bad input is a 400 here (validation_error)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's own way to change the schema it serves
    return app
