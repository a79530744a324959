"""No other web page drives `make up`'s UI (docs/ui-trust.md). A page whose name resolves to 127.0.0.1 (DNS
rebinding) reaches Locust's web UI and the control server from the user's browser, its requests naming its own
host (Host, Origin): against a real `python -m lab up`, those get 403 from Locust's routes, the Lab plugin's and
the control server's; a swarm from the UI targets the lab's own server; the Lab tab's state is taken from the
`make up` that started Locust alone (its token); and the lab's own path (loopback names, its pushes) still works.
The browser's whole flow is tests/test_live_ui.py's.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from contract.knobs import UI_LOOPBACK, KnobError, host_name, ui_hosts
from lab.live.control import PASSWORD_HEADER
from lab.stack.checkout import ROOT
from lab.stack.locust_api import TOKEN_ENV, TOKEN_HEADER
from lab.stack.place import Place

from .conftest import PYTHON, lab_env, make_place, processes_of
from .test_live_ui import FakeLab, Up, control_server, wait_for

OFFSET = 60  # ports apart from the other tests'
FOREIGN = "rebind.example"  # the name of a page that resolves to 127.0.0.1
CLOSED = {"LAB_UI_HOSTS": "", "LAB_UI_ANY_HOST": "0", "LAB_UI_PASSWORD": ""}  # the defaults, whatever the shell has
JSON = {"Content-Type": "application/json"}


def call(port: int, method: str, path: str, *, host: str | None = None, origin: str | None = None,
         form: dict[str, str] | None = None, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
    """One request to 127.0.0.1:port with the Host and Origin a page would send (loopback's Host unless
    given); the answer's JSON, or its text."""
    sent = {"Host": f"127.0.0.1:{port}" if host is None else host, **(headers or {})}
    if origin is not None:
        sent["Origin"] = origin
    if form is not None:
        body, sent["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        status, data = response.status, response.read()
    finally:
        connection.close()
    try:
        return status, json.loads(data)
    except ValueError:
        return status, data.decode(errors="replace")


def own_page(port: int) -> dict[str, str]:
    """What the UI's own page sends, opened at 127.0.0.1."""
    return {"host": f"127.0.0.1:{port}", "origin": f"http://127.0.0.1:{port}"}


def runner_state(port: int) -> str:
    return str(call(port, "GET", "/stats/requests")[1]["state"])


# ---------------------------------------------------------------- without a lab


def test_host_names_and_the_names_opened_on_purpose(monkeypatch):
    assert [host_name(h) for h in ("127.0.0.1:8089", "[::1]:8089", "[::1]", "LocalHost", "lab.example:1")] == [
        "127.0.0.1", "::1", "::1", "localhost", "lab.example"]  # fmt: skip
    for forged in ("", None, "evil@127.0.0.1", "127.0.0.1:99999", "127.0.0.1/x", "localhost:x", "a b", "::1"):
        assert host_name(forged) is None, forged
    monkeypatch.setenv("LAB_UI_HOSTS", "")
    assert ui_hosts() == UI_LOOPBACK == {"127.0.0.1", "localhost", "::1"}
    monkeypatch.setenv("LAB_UI_HOSTS", "Lab.Example, 192.0.2.7 [2001:db8::1]")
    assert ui_hosts() == UI_LOOPBACK | {"lab.example", "192.0.2.7", "2001:db8::1"}
    for bad in ("http://lab.example", "lab.example:8089", "lab.example/x", "a_b"):
        monkeypatch.setenv("LAB_UI_HOSTS", bad)
        with pytest.raises(KnobError, match=f"LAB_UI_HOSTS has '{bad}'"):
            ui_hosts()


def test_the_control_server_refuses_a_name_it_does_not_serve():
    lab = FakeLab()
    with control_server(lab) as port:
        _refuses_a_forged_name(lab, port)


def _refuses_a_forged_name(lab: FakeLab, port: int) -> None:
    forged = f"{FOREIGN}:{port}"
    status, answer = call(port, "GET", "/state", host=forged)  # the rebinding page reads its own origin: no Origin sent
    assert status == 403 and FOREIGN in answer["error"], answer
    change = json.dumps({"knobs": {"MODE": "async"}}).encode()
    assert call(port, "POST", "/apply", host=forged, origin="http://127.0.0.1:8089", body=change, headers=JSON)[0] == 403
    assert call(port, "OPTIONS", "/apply", host=forged, origin="http://127.0.0.1:8089")[0] == 403
    assert lab.applied == []
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
        assert call(port, "GET", "/state", host=host)[0] == 200, host
    assert call(port, "POST", "/apply", origin="http://localhost:8089", body=change, headers=JSON)[0] == 200
    assert lab.applied == [{"MODE": "async"}]


def test_the_control_server_opened_on_purpose_answers_that_name_too():
    lab = FakeLab()
    with control_server(lab, "s3cret", UI_LOOPBACK | {"lab.example"}) as port:
        change = json.dumps({"knobs": {"MODE": "async"}}).encode()
        page = {"origin": "http://lab.example:8089", "headers": {**JSON, PASSWORD_HEADER: "s3cret"}}
        assert call(port, "POST", "/apply", host=f"lab.example:{port}", body=change, **page)[0] == 200
        # the password is no way round the name: a page elsewhere that learnt it is still refused
        assert call(port, "POST", "/apply", host=f"{FOREIGN}:{port}", body=change, **page)[0] == 403
        assert call(port, "GET", "/state", host=f"{FOREIGN}:{port}")[0] == 403
        assert len(lab.applied) == 1


# ---------------------------------------------------------------- against a real `python -m lab up`


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    """One lab for the tests below: `python -m lab up` with the UI's defaults."""
    place = make_place(tmp_path_factory.mktemp("trust") / "lab", OFFSET)
    up = Up(place, MODE="threaded", IO_SECONDS="1", USERS="1", SPAWN_RATE="1", **CLOSED)
    try:
        yield place
    finally:
        up.stop()
    assert up.proc.returncode == 0, "".join(up.lines)
    assert not processes_of(place.state)


def locust_token(place: Place) -> str:
    """The token `make up` handed its Locust, from Locust's environment: never on a command line."""
    procs = processes_of(place.state)
    tokens = {p.environ().get(TOKEN_ENV) for p in procs if "locust" in " ".join(p.cmdline())} - {None}
    assert len(tokens) == 1, tokens
    token = str(tokens.pop())
    assert len(token) >= 32 and not any(token in " ".join(p.cmdline()) for p in procs)
    return token


@pytest.mark.slow
def test_the_ui_answers_the_names_it_serves(lab):
    port = lab.locust_port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}", "localhost", "127.0.0.1"):
        status, page = call(port, "GET", "/", host=host)
        assert status == 200 and "lab/tab.js" in page, host
    assert call(port, "GET", "/lab/status")[0] == 200


@pytest.mark.slow
def test_a_page_of_another_name_gets_403_from_every_route(lab):
    port = lab.locust_port
    forged = f"{FOREIGN}:{port}"
    for path in ("/", "/stats/requests", "/assets/index.js", "/lab/timeline", "/lab/status", "/lab/rows", "/lab/window"):
        status, answer = call(port, "GET", path, host=forged, origin=f"http://{forged}")
        assert status == 403 and FOREIGN in answer["message"], (path, status, answer)
    for host in (f"127.0.0.1.{FOREIGN}:{port}", f"localhost.:{port}", f"{FOREIGN}@127.0.0.1:{port}", ""):
        assert call(port, "GET", "/", host=host)[0] == 403, host
    assert call(port, "POST", "/stop", host=forged, origin=f"http://{forged}")[0] == 403
    workload = json.dumps({"workload": "cpu", "cpu_share": 0}).encode()
    assert call(port, "POST", "/lab/workload", host=forged, origin=f"http://{forged}", body=workload, headers=JSON)[0] == 403
    assert call(port, "GET", "/lab/status")[1]["locust"]["workload"] == "io"


@pytest.mark.slow
def test_a_change_comes_from_the_uis_own_page_alone(lab):
    """A page elsewhere may post a form to loopback (its browser names the lab's host): its Origin says so."""
    port = lab.locust_port
    workload = json.dumps({"workload": "cpu", "cpu_share": 0}).encode()
    for origin in ("http://evil.example", f"http://localhost:{port + 1}", f"http://127.0.0.1:{port + 1}", "null"):
        assert call(port, "POST", "/stats/reset", origin=origin)[0] == 403, origin
        assert call(port, "POST", "/lab/workload", origin=origin, body=workload, headers={"Content-Type": "text/plain"})[0] == 403
    assert call(port, "GET", "/lab/status")[1]["locust"]["workload"] == "io"
    assert call(port, "POST", "/stats/reset", **own_page(port))[0] == 200
    assert call(port, "POST", "/stats/reset")[0] == 200  # no Origin: not a page's request (the lab's own calls)


@pytest.mark.slow
def test_a_swarm_from_the_ui_targets_the_labs_own_server(lab):
    port, own = lab.locust_port, f"http://127.0.0.1:{lab.app_port}"
    elsewhere = {"user_count": "1", "spawn_rate": "1", "host": "http://127.0.0.1:9"}
    try:
        status, answer = call(port, "POST", "/swarm", form=elsewhere, **own_page(port))
        assert status == 403 and answer["success"] is False and own in answer["message"], answer
        assert call(port, "POST", "/swarm", form={**elsewhere, "host": ""}, **own_page(port))[0] == 403
        forged = f"{FOREIGN}:{port}"  # the lab's own host, from a page of another name
        assert call(port, "POST", "/swarm", form={**elsewhere, "host": own}, host=forged, origin=f"http://{forged}")[0] == 403
        time.sleep(2)
        assert runner_state(port) == "ready"  # no swarm started

        # as Locust's own form sends it: the host Locust was started with
        status, answer = call(port, "POST", "/swarm", form={**elsewhere, "host": own}, **own_page(port))
        assert status == 200 and answer["success"] and answer["host"] == own, answer
        wait_for("the swarm to run", lambda: runner_state(port) == "running", 30)
    finally:  # whatever started, stopped: the other tests share this lab
        assert call(port, "POST", "/stop", **own_page(port))[0] == 200
    wait_for("the swarm to stop", lambda: runner_state(port) in ("ready", "stopped"), 30)


@pytest.mark.slow
def test_the_tabs_state_comes_from_its_own_make_up_alone(lab):
    port = lab.locust_port
    token = locust_token(lab)
    forged = json.dumps({"message": "forged"}).encode()
    for headers in ({}, {TOKEN_HEADER: ""}, {TOKEN_HEADER: "wrong"}, {TOKEN_HEADER: token[:-1]}, {"X-Lab-Password": token}):
        status, answer = call(port, "POST", "/lab/state", body=forged, headers={**JSON, **headers})
        assert status == 403 and TOKEN_HEADER in answer["message"], (headers, status, answer)
    # its own `make up`'s pushes still arrive, each second
    first = wait_for("a push from make up", lambda: call(port, "GET", "/lab/status")[1].get("at"), 30)
    wait_for("the next push", lambda: (call(port, "GET", "/lab/status")[1].get("at") or 0) > first, 10)
    assert call(port, "GET", "/lab/status")[1]["message"] != "forged"
    status, answer = call(port, "POST", "/lab/state", body=json.dumps({"message": "pushed"}).encode(),
                          headers={**JSON, TOKEN_HEADER: token})  # fmt: skip
    assert status == 200 and {"state", "requests", "user_count"} <= set(answer), answer  # Locust's figures, for make up


@pytest.mark.slow
def test_the_labs_control_server_refuses_a_name_it_does_not_serve(lab):
    port = lab.control_port
    assert call(port, "GET", "/state")[0] == 200
    assert call(port, "GET", "/state", host=f"localhost:{port}")[0] == 200
    forged = f"{FOREIGN}:{port}"
    status, answer = call(port, "GET", "/state", host=forged)
    assert status == 403 and FOREIGN in answer["error"], answer
    # a change from the Lab page's own origin, sent to another name: refused before it is read (THREADS=0
    # would be a 400, the knob's refusal, had it been read)
    change = json.dumps({"knobs": {"THREADS": "0"}}).encode()
    page = f"http://127.0.0.1:{lab.locust_port}"
    assert call(port, "POST", "/apply", host=forged, origin=page, body=change, headers=JSON)[0] == 403
    assert call(port, "POST", "/apply", origin=page, body=change, headers=JSON)[0] == 400


@pytest.mark.slow
def test_a_ui_opened_on_purpose_answers_that_name_and_swarms_anywhere(tmp_path):
    place = make_place(tmp_path / "lab", OFFSET + 1)
    up = Up(place, MODE="threaded", IO_SECONDS="1", USERS="1", SPAWN_RATE="1", LAB_UI_HOSTS="lab.example",
            LAB_UI_ANY_HOST="1", LAB_UI_PASSWORD="")  # fmt: skip
    try:
        port, control = place.locust_port, place.control_port
        opened = f"lab.example:{port}"
        assert call(port, "GET", "/", host=opened)[0] == 200
        assert call(port, "GET", "/", host=f"{FOREIGN}:{port}")[0] == 403
        assert call(control, "GET", "/state", host=f"lab.example:{control}")[0] == 200
        assert call(control, "GET", "/state", host=f"{FOREIGN}:{control}")[0] == 403
        other = f"http://localhost:{place.app_port}"  # the lab's server by another name: another host to the form
        form = {"user_count": "1", "spawn_rate": "1", "host": other}
        status, answer = call(port, "POST", "/swarm", form=form, host=opened, origin=f"http://{opened}")
        assert status == 200 and answer["success"] and answer["host"] == other, answer
        assert call(port, "POST", "/stop", host=opened, origin=f"http://{opened}")[0] == 200
    finally:
        up.stop()
    assert up.proc.returncode == 0, "".join(up.lines)
    assert not processes_of(place.state)


@pytest.mark.parametrize(("name", "value", "said"), [
    ("LAB_UI_HOSTS", "http://lab.example:8089", "LAB_UI_HOSTS has 'http://lab.example:8089': LAB_UI_HOSTS takes host names"),
    ("LAB_UI_ANY_HOST", "yes", "LAB_UI_ANY_HOST='yes' is not valid: LAB_UI_ANY_HOST takes one of 0, 1"),
])  # fmt: skip
def test_a_bad_ui_setting_is_refused_before_anything_starts(tmp_path, name, value, said):
    place = make_place(tmp_path / "lab", OFFSET + 2)
    result = subprocess.run([PYTHON, "-m", "lab", "up"], cwd=ROOT, env=lab_env(place, **{**CLOSED, name: value}),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and said in result.stderr, result.stdout + result.stderr
    assert not processes_of(place.state)
