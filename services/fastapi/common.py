"""What the async and the sync FastAPI apps share: settings, JSON errors and the endpoint's shape."""

import sys
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

# The shared endpoint contract lives in the project's `lab` package, two folders up.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lab.endpoint import NOT_FOUND_PAGE, POOL_TIMEOUT, Settings, Timer, answer, not_found

SETTINGS = Settings.from_environ()
POOL_ARGS = {"min_size": 1, "max_size": SETTINGS.db_pool_size, "timeout": POOL_TIMEOUT, "kwargs": {"connect_timeout": 3}}
ROUTES = ("/currency/convert", "/currency/convert/")


def error(status: int, message: str, timer: Timer | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=timer.headers() if timer else None)


def reply(conversion, row, timer: Timer) -> JSONResponse:
    if row is None:
        return error(404, not_found(conversion), timer)
    return JSONResponse(answer(conversion, row[0]), headers=timer.headers())


def add_error_handlers(app: FastAPI) -> None:
    """JSON for every error, never a traceback or FastAPI's 422."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, NOT_FOUND_PAGE if exc.status_code == 404 else str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, "bad request")

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        return error(500, "internal error")


def add_routes(app: FastAPI, convert, healthz) -> None:
    for route in ROUTES:
        app.add_api_route(route, convert, methods=["GET"], include_in_schema=False)
    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)


def make_app(lifespan) -> FastAPI:
    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    add_error_handlers(app)
    return app
