"""The currency endpoint, synchronous: one thread does the whole request."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from psycopg_pool import PoolTimeout

from contract import endpoint, pools

DB_UNAVAILABLE = (DatabaseError, PoolTimeout)


def error_response(status: int, message: str, timer: endpoint.Timer | None = None) -> JsonResponse:
    return JsonResponse({"error": message}, status=status, headers=timer.headers() if timer else None)


def refused(request: HttpRequest) -> JsonResponse | None:
    """The contract's 405 for a method other than GET and HEAD; None lets the request through."""
    if request.method in endpoint.ALLOWED_METHODS:
        return None
    response = error_response(405, endpoint.method_not_allowed(str(request.method)))
    response["Allow"] = endpoint.ALLOW
    return response


def read_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Serve GET and HEAD only, sync or async view alike (a Django view takes every method). HEAD
    runs the view as GET does: the server leaves the body out."""
    if iscoroutinefunction(view):

        @wraps(view)
        async def checked_async(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refusal = refused(request)
            return refusal if refusal is not None else await view(request, *args, **kwargs)

        return checked_async

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        refusal = refused(request)
        return refusal if refusal is not None else view(request, *args, **kwargs)

    return checked


@read_only
def convert(request: HttpRequest) -> JsonResponse:
    timer = endpoint.Timer()
    try:
        conversion = endpoint.parse_query(request.GET, settings.LAB.workload)
    except endpoint.BadRequest as error:
        return error_response(400, str(error), timer)
    if conversion.workload == "cpu":
        timer.mark()
        endpoint.count_primes(settings.LAB.primes_limit)
        timer.lap("cpu")
    sql, params = endpoint.query_for(conversion, settings.LAB)
    timer.mark()
    try:
        connection.ensure_connection()  # from Django's pool, or a new connection without one
        timer.lap("pool")
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    except DB_UNAVAILABLE as error:
        if (pool := getattr(connection, "pool", None)) is not None:
            pools.recheck(pool)
        return error_response(503, f"database unavailable: {type(error).__name__}", timer)
    finally:
        timer.lap("db")
    timer.queried(row)
    if row is None:
        return error_response(404, endpoint.not_found(conversion), timer)
    return JsonResponse(endpoint.answer(conversion, row[0]), headers=timer.headers())


@read_only
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DB_UNAVAILABLE as error:
        return error_response(503, f"database unavailable: {type(error).__name__}")
    pool = getattr(connection, "pool", None)  # Django's psycopg pool, when the settings gave it one
    if pool is not None and (opening := pools.still_opening(pool)) is not None:
        return error_response(503, opening)
    report = endpoint.server_report(settings.LAB, pool=pool)
    return JsonResponse({"status": "ok", "server": report})


def _handler(status: int, message: str) -> Callable[..., JsonResponse]:
    def handler(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
        return error_response(status, message)

    return handler


bad_request = _handler(400, "bad request")
not_found_page = _handler(404, endpoint.NOT_FOUND_PAGE)
server_error = _handler(500, "internal error")
