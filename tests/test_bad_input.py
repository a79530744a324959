"""Bad input gets a clear JSON error, never a 500 or a traceback, in every mode: bad parameters,
unknown paths, methods other than GET and HEAD, and a service started without the lab's environment."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from email.message import Message

import pytest

from contract.endpoint import method_not_allowed
from contract.modes import MODES
from lab.stack.checkout import ROOT

from .conftest import PYTHON, make_place, running

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
# Every method but GET and HEAD, OPTIONS and an extension method included; those that usually
# carry a body send one, which the server must not take for parameters.
REFUSED_METHODS = ("POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND")
WITH_BODY = ("POST", "PUT", "PATCH")
READ_PATHS = ("/currency/convert?from=usd&to=gbp", "/currency/convert/?from=usd&to=gbp", "/healthz")


def send(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, Message, bytes]:
    """Status, headers and raw body of one request, whatever its status."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, object], str]:
    status, _, raw = send(url, method)
    text = raw.decode()
    return status, json.loads(text), text


@pytest.fixture(scope="module", params=list(MODES))
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


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_path_is_json_404(app, method):
    status, body, _ = fetch(f"{app.url}/nope", method)  # the path is wrong before the method is
    assert status == 404
    assert "error" in body


@pytest.mark.parametrize("path", READ_PATHS)
@pytest.mark.parametrize("method", REFUSED_METHODS)
def test_other_methods_get_405_with_allow_and_the_contract_s_json(app, method, path):
    status, headers, raw = send(f"{app.url}{path}", method, b'{"from": "usd", "to": "gbp"}' if method in WITH_BODY else None)
    # one expected answer for every mode of the table: so the answer is the same in each
    expected = (405, "GET, HEAD", "application/json", {"error": method_not_allowed(method)})
    assert (status, headers["Allow"], headers.get_content_type(), json.loads(raw)) == expected
    assert method in json.loads(raw)["error"]


@pytest.mark.parametrize(("path", "status"), [(READ_PATHS[0], 200), ("/currency/convert?from=us&to=gbp", 400), ("/healthz", 200)])
def test_head_is_get_without_the_body(app, path, status):
    got, got_headers, got_raw = send(f"{app.url}{path}")
    head, head_headers, head_raw = send(f"{app.url}{path}", "HEAD")
    assert (got, head, head_raw) == (status, status, b"")
    assert json.loads(got_raw)
    assert head_headers.get_content_type() == got_headers.get_content_type() == "application/json"
    if path.startswith("/currency") and "Content-Length" in head_headers:  # its body is the same each time
        assert head_headers["Content-Length"] == got_headers["Content-Length"] == str(len(got_raw))


def test_fastapi_publishes_its_typed_parameters_and_the_lab_s_error_codes(tmp_path, database):
    with running(make_place(tmp_path, 11), database, mode="async", workload="io", io_seconds=0.01) as server:
        with urllib.request.urlopen(f"{server.url}/openapi.json", timeout=30) as response:
            spec = json.loads(response.read())
        with urllib.request.urlopen(f"{server.url}/docs", timeout=30) as response:
            assert response.status == 200 and b"swagger" in response.read().lower()
    operation = spec["paths"]["/currency/convert"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["from", "to", "workload"]
    assert set(operation["responses"]) == {"200", "400", "404", "503"}


def manage_check(**env: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check` as someone would run it by hand: without the variables the lab passes, but `env`."""
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    argv = [PYTHON, str(ROOT / "services" / "django" / "manage.py"), "check"]
    return subprocess.run(argv, env={**base, **env}, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"DJANGO_SECRET_KEY": "test-only-key"}, "DATABASE_URL"),
        ({}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://lab@127.0.0.1:1/lab"}, "DJANGO_SECRET_KEY"),
    ],
)
def test_django_without_the_lab_s_environment_says_what_to_set(env, missing):
    result = manage_check(**env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {missing} is not set.")
    assert "Traceback" not in result.stderr and "KeyError" not in result.stderr


def test_django_with_the_lab_s_environment_passes_its_checks():
    # the database is not reached by `check`: any URL will do
    result = manage_check(DATABASE_URL="postgresql://lab@127.0.0.1:1/lab", DJANGO_SECRET_KEY="test-only-key")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
