"""Bad input gets a clear JSON error, never a 500 or a traceback, in both services."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from .conftest import make_place, running

BAD_QUERIES = [
    ("", 400, "missing parameter 'from'"),
    ("?from=usd", 400, "missing parameter 'to'"),
    ("?from=&to=gbp", 400, "missing parameter 'from'"),
    ("?from=us&to=gbp", 400, "three-letter"),
    ("?from=usd1&to=gbp", 400, "three-letter"),
    ("?from=usd&to=%C3%A9%C3%A9%C3%A9", 400, "three-letter"),
    ("?from=usd'%3B%20DROP%20TABLE%20rates%3B--&to=gbp", 400, "three-letter"),
    ("?from=usd&to=gbp&workload=gpu", 400, "workload"),
    ("?from=xyz&to=gbp", 404, "no rate from xyz to gbp"),
    ("?from=GBP&to=EUR", 404, "no rate from gbp to eur"),
]


def fetch(url: str) -> tuple[int, dict[str, object], str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    text = raw.decode()
    return status, json.loads(text), text


@pytest.fixture(scope="module", params=["threaded", "async"])
def app(request, place, database):
    with running(place, database, mode=request.param, workload="io", io_seconds=0.01) as server:
        yield server


@pytest.mark.parametrize(("query", "status", "message"), BAD_QUERIES)
def test_bad_query_gets_json_error(app, query, status, message):
    got, body, text = fetch(f"{app.url}/currency/convert{query}")
    assert got == status
    assert message in body["error"]
    assert "Traceback" not in text


def test_injection_attempt_leaves_the_table_alone(app):
    fetch(f"{app.url}/currency/convert?from=usd'%3B%20DROP%20TABLE%20rates%3B--&to=gbp")
    assert fetch(f"{app.url}/currency/convert?from=usd&to=gbp")[0] == 200


def test_unknown_path_is_json_404(app):
    status, body, _ = fetch(f"{app.url}/nope")
    assert status == 404
    assert "error" in body


def test_fastapi_publishes_its_typed_parameters_and_the_lab_s_error_codes(tmp_path, database):
    with running(make_place(tmp_path, 11), database, mode="async", workload="io", io_seconds=0.01) as server:
        with urllib.request.urlopen(f"{server.url}/openapi.json", timeout=30) as response:
            spec = json.loads(response.read())
        with urllib.request.urlopen(f"{server.url}/docs", timeout=30) as response:
            assert response.status == 200 and b"swagger" in response.read().lower()
    operation = spec["paths"]["/currency/convert"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["from", "to", "workload"]
    assert set(operation["responses"]) == {"200", "400", "404", "503"}
