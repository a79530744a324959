"""The Lab tab and the Lab page of `make up`, for real: Debian's chromium driven by Playwright opens Locust's
web UI of a `python -m lab up` started here, starts a swarm, watches the Lab tab's figures move, switches
the server from the page (async, then gunicorn with two workers), keeps a run of each, and builds the
report of the kept runs. The form's validation, what needs a new server, and the control server's
refusals are checked without a browser.

LAB_SCREENSHOTS=<folder> keeps the browser's screenshots of the tab and the page there.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from contract.knobs import UI_LOOPBACK, KnobError, parse
from lab.live import switch
from lab.live.control import PASSWORD_HEADER, Control
from lab.results.run_files import load_records
from lab.stack.checkout import ROOT

from .conftest import PYTHON, knobs, lab_env, make_place, processes_of

CHROMIUM = Path("/usr/bin/chromium")
# never a browser of Playwright's own: Debian's, without the sandbox a root session cannot have
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
OFFSET = 40  # ports apart from the other tests'
SCREENSHOTS = os.environ.get("LAB_SCREENSHOTS")


# ---------------------------------------------------------------- without a browser


def test_the_form_refuses_a_bad_value_in_the_command_lines_own_words():
    running = knobs(mode="threaded")
    with pytest.raises(KnobError) as from_page:
        switch.requested(running, {"MODE": "gunicorn", "WORKERS": "0"})
    with pytest.raises(KnobError) as from_command_line:
        parse({"MODE": "gunicorn", "WORKERS": "0"})
    assert (
        str(from_page.value) == str(from_command_line.value) == "WORKERS='0' is not valid: WORKERS takes an integer from 1 to 64"
    )
    with pytest.raises(KnobError, match="does not apply to MODE=async"):
        switch.requested(running, {"MODE": "async", "THREADS": "4"})
    with pytest.raises(KnobError, match="not USERS"):
        switch.requested(running, {"USERS": "3"})
    assert switch.requested(running, {"MODE": "gunicorn", "WORKERS": "", "THREADS": ""}).workers == 2  # the mode's own


def test_workload_alone_is_a_setting_of_the_users_not_of_the_server():
    io = knobs(mode="async", workload="io")
    assert not switch.needs_restart(io, knobs(mode="async", workload="mix", mix_cpu_share=0.3))
    assert not switch.needs_restart(knobs(mode="async", workload="mix"), io)  # a mix server serves io by default
    assert switch.needs_restart(io, knobs(mode="async", workload="cpu"))  # an io server serves no cpu request unnamed
    assert switch.needs_restart(io, knobs(mode="threaded", workload="io"))
    assert switch.needs_restart(io, knobs(mode="async", workload="io", io_seconds=2))


class FakeLab:
    def __init__(self) -> None:
        self.state: dict[str, Any] = {"phase": "running"}
        self.applied: list[dict[str, object]] = []

    def apply(self, form: dict[str, object], start_users: bool = True) -> dict[str, Any]:
        switch.requested(knobs(mode="threaded"), form)
        self.applied.append(form)
        return {"ok": True}

    def keep(self) -> Any:
        raise AssertionError("not asked here")


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@contextmanager
def control_server(lab: FakeLab, password: str | None = None, names: frozenset[str] = UI_LOOPBACK) -> Iterator[int]:
    """The lab's control server over `lab` on a free port, which it yields; shut whatever the test found."""
    server = Control(lab, 0, 8089, password, names)  # port 0: any free one
    server.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def control() -> Iterator[tuple[FakeLab, str]]:
    lab = FakeLab()
    with control_server(lab) as port:
        yield lab, f"http://127.0.0.1:{port}"


def test_the_control_server_answers_locusts_page_alone(control):
    lab, url = control
    body = json.dumps({"knobs": {"MODE": "async"}}).encode()
    json_from = {"Content-Type": "application/json", "Origin": "http://127.0.0.1:8089"}
    assert post(f"{url}/apply", body, json_from)[0] == 200
    assert lab.applied == [{"MODE": "async"}]
    # another page in the same browser: refused, and a plain form post (no preflight) is never acted on
    assert post(f"{url}/apply", body, {**json_from, "Origin": "http://example.org"})[0] == 403
    assert post(f"{url}/apply", b"knobs=1", {"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
    status, answer = post(f"{url}/apply", json.dumps({"knobs": {"MODE": "async", "THREADS": "0"}}).encode(), json_from)
    assert status == 400 and answer["error"] == "THREADS='0' is not valid: THREADS takes an integer from 1 to 256"
    assert len(lab.applied) == 1
    preflight = urllib.request.Request(f"{url}/apply", method="OPTIONS", headers={"Origin": "http://localhost:8089"})
    with urllib.request.urlopen(preflight, timeout=10) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8089"


def test_with_a_password_every_change_must_carry_it():
    with control_server(FakeLab(), "s3cret") as port:
        url = f"http://127.0.0.1:{port}/apply"
        body = json.dumps({"knobs": {"MODE": "async"}}).encode()
        headers = {"Content-Type": "application/json"}
        assert post(url, body, headers)[0] == 403
        assert post(url, body, {**headers, PASSWORD_HEADER: "wrong"})[0] == 403
        assert post(url, body, {**headers, PASSWORD_HEADER: "s3cret"})[0] == 200


# ---------------------------------------------------------------- in a real browser


class Up:
    """`python -m lab up` in the background, until it says where the Lab page is."""

    def __init__(self, place: Any, **env: str) -> None:
        self.place = place
        self.lines: list[str] = []
        self.proc = subprocess.Popen([PYTHON, "-m", "lab", "up", *env.pop("ARGS", "").split()], cwd=ROOT,
                                     env=lab_env(place, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + float(env.get("UP_TIMEOUT", "120"))
        while not any(line.startswith("lab: Lab ") for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("make up did not come up:\n" + "".join(self.lines))
            time.sleep(0.2)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # as Ctrl-C
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def lab_cell(page: Any, figure: str) -> str:
    """The value of one of the Lab tab's rows, by its figure ('' while it is not there)."""
    rows = page.locator("tr").filter(has=page.locator("td", has_text=re.compile(f"^{re.escape(figure)}$")))
    return str(rows.first.locator("td").nth(2).inner_text()) if rows.count() else ""


def keep_run(page: Any, count: int) -> None:
    """Keep a run from the page; the window needs every user running for a few seconds first."""
    kept, error = page.locator("#kept li"), page.locator("#keep-error")
    deadline = time.monotonic() + 40
    while True:
        page.click("#keep")
        wait_for("the kept run to be listed", lambda: kept.count() >= count or error.is_visible(), 20)
        if kept.count() >= count:
            return
        said = page.inner_text("#keep-error")
        if ("no measured window" not in said and "still being verified" not in said) or time.monotonic() > deadline:
            pytest.fail(f"could not keep a run: {said}")
        time.sleep(2)


def apply(page: Any, **fields: str) -> None:
    form = page.locator("#settings")
    form.locator("select[name=MODE]").select_option(fields.pop("MODE"))
    for name, value in fields.items():
        form.locator(f"[name={name}]").fill(value)
    page.click("#apply")
    wait_for("the change to be applied", lambda: not page.locator("#apply").is_disabled() and
             ("runs" in page.inner_text("#apply-ok") or page.locator("#apply-error").is_visible()), 120)  # fmt: skip
    assert not page.locator("#apply-error").is_visible(), page.inner_text("#apply-error")


def switch_to_gunicorn_with_two_workers_and_keep(page: Any, count: int, timeout: float) -> None:
    """From the page: MODE=gunicorn, WORKERS=2; once both workers serve (two processes on the timeline), keep a run.
    The few seconds' wait: distributed Locust workers send their rows each second, and a window kept before any
    row of it has reached the master is recorded without a timeline."""
    apply(page, MODE="gunicorn", WORKERS="2", THREADS="")
    wait_for("gunicorn 2×1 to run", lambda: "gunicorn 2×1 runs" in page.inner_text("#running"), timeout)
    wait_for("two worker processes on the timeline", lambda: "in 2 process(es)" in page.inner_text("#figures"), 30)
    time.sleep(3)
    keep_run(page, count)


def section(md: str, title: str) -> str:
    """One `## title` section of report.md, up to the next."""
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", md, re.M | re.S)
    assert found, f"report.md has no section {title!r}:\n{md}"
    return found.group(1)


def assert_the_report_compares(folder: Path, place: Any, labels: list[str]) -> None:
    """`lab report` on the kept runs sets them side by side: each run in the runs table with its measured req/s,
    and the conclusions and the pick name the configurations compared."""
    report = subprocess.run([PYTHON, "-m", "lab", "report", str(folder)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env=lab_env(place))  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert (folder / "report.html").exists()
    md = (folder / "report.md").read_text()
    runs = section(md, "Runs: measured and predicted")
    table = runs[runs.index("| run |") :].split("\n\n")[0].splitlines()  # the first table: the runs, measured
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    rows = {cells[0]: dict(zip(header, cells, strict=True))
            for cells in ([c.strip() for c in line.strip("|").split("|")] for line in table[2:])}  # fmt: skip
    for record, label in zip(load_records(folder), labels, strict=True):
        row = rows.get(f"{label} · {record['config']['workload']}")
        assert row is not None, f"{label} is not in the runs table:\n" + "\n".join(table)
        assert row["req/s"] == f"{record['locust']['rps']:.1f}", (label, row, record["locust"]["rps"])
    assert len(rows) == len(labels), table
    conclusions, pick = section(md, "Conclusions"), section(md, "Which to pick")
    assert all(label in conclusions for label in labels), conclusions
    assert re.search(r"pick (" + "|".join(map(re.escape, labels)) + r")\b", pick), pick


def swarm_and_open_the_lab_tab(browser: Any, locust: str) -> Any:
    """As a user would: Locust's page, four users, Start, then the Lab tab."""
    tab = browser.new_page(viewport={"width": 1400, "height": 1100})
    tab.goto(locust)
    tab.fill("input[name=userCount]", "4")
    tab.fill("input[name=spawnRate]", "4")
    tab.get_by_role("button", name="Start").click()
    tab.get_by_role("tab", name="Lab").click()
    return tab


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="NO DEBIAN CHROMIUM: the browser test did not run (.ci/run installs it)")
def test_the_lab_tab_and_page_in_a_real_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    place = make_place(tmp_path / "lab", OFFSET)
    results = tmp_path / "results"
    up = Up(place, LAB_RESULTS=str(results), MODE="threaded",
            IO_SECONDS="1", USERS="4", SPAWN_RATE="4")  # fmt: skip
    locust = f"http://127.0.0.1:{place.locust_port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            tab = swarm_and_open_the_lab_tab(browser, locust)
            # the server as it reports itself, and the model for the users running now
            wait_for("the server's own report", lambda: "runserver" in lab_cell(tab, "program"))
            assert "a thread per request" in lab_cell(tab, "workers × threads")
            # the model's prediction beside the measured figure, once a few waves of requests have ended
            ratio = re.compile(r"= (\d+\.\d+)$")
            wait_for("measured / predicted near 1", lambda: (found := ratio.search(lab_cell(tab, "measured / predicted")))
                     and 0.75 < float(found.group(1)) < 1.25, 40)  # fmt: skip
            assert "requests in flight" in lab_cell(tab, "which bound binds")
            predicted = re.match(r"(\d+\.\d+) req/s", lab_cell(tab, "predicted"))
            assert predicted and 3.5 < float(predicted.group(1)) <= 4.0, lab_cell(tab, "predicted")  # 4 users / 1 s each
            first = lab_cell(tab, "throughput") + lab_cell(tab, "server CPU") + lab_cell(tab, "machine CPU")
            wait_for("the tab's figures to change", lambda: lab_cell(tab, "throughput") + lab_cell(tab, "server CPU")
                     + lab_cell(tab, "machine CPU") != first, 20)  # fmt: skip
            assert lab_cell(tab, "PostgreSQL active connections").isdigit()
            # where the time went, live: each request's second of pg_sleep is the database's part
            parts = lab_cell(tab, "where the time went")
            waited = re.search(r"the database (\d+\.\d)", parts)
            assert waited and 950 < float(waited.group(1)) < 1100, parts
            assert tab.locator("#lab-link").get_attribute("href") == "./lab/timeline"
            if SCREENSHOTS:
                tab.screenshot(path=str(Path(SCREENSHOTS) / "lab-tab.png"), full_page=True)

            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{locust}/lab/timeline")
            wait_for("lanes of threads on the timeline", lambda: int(page.get_attribute("#timeline", "data-lanes") or 0) >= 2)
            assert "threaded runs" in page.inner_text("#running")
            keep_run(page, 1)

            apply(page, MODE="async")
            wait_for("async to run", lambda: "async runs" in page.inner_text("#running"), 60)
            time.sleep(4)
            keep_run(page, 2)

            switch_to_gunicorn_with_two_workers_and_keep(page, 3, 60)
            if SCREENSHOTS:
                page.screenshot(path=str(Path(SCREENSHOTS) / "lab-page.png"), full_page=True)

            # a bad value: the command line's own words, and nothing restarts
            page.locator("#settings [name=THREADS]").fill("0")
            page.click("#apply")
            error = wait_for("the form's refusal", lambda: page.locator("#apply-error").is_visible() and
                             page.inner_text("#apply-error"))  # fmt: skip
            assert error == "THREADS='0' is not valid: THREADS takes an integer from 1 to 256"
            assert "gunicorn 2×1 runs" in page.inner_text("#running")
            browser.close()
    finally:
        up.stop()
    assert up.proc.returncode == 0, "".join(up.lines)
    assert not processes_of(place.state)

    [folder] = results.glob("live-*")
    records = load_records(folder)
    assert [r["config"]["mode"] for r in records] == ["threaded", "async", "gunicorn"]
    assert all(r["status"] == "ok" and r["verification"]["ok"] for r in records), [r["reason"] for r in records]
    assert records[2]["config"]["workers"] == 2 and records[2]["verification"]["server"]["workers"] == 2
    assert all(r["locust"]["requests"] > 0 and r["timeline"]["rows"] > 0 for r in records)
    assert_the_report_compares(folder, place, ["threaded", "async", "gunicorn 2×1"])
    print(f"browser test: {time.monotonic() - started:.0f} s")


def engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="NO DEBIAN CHROMIUM: the browser test did not run (.ci/run installs it)")
@pytest.mark.skipif(not engine_answers(), reason="NO DOCKER ENGINE ANSWERS: the compose Lab test did not run (`make engine`)")
def test_the_lab_on_compose_with_two_locust_workers(tmp_path):
    """The same Lab with Locust's master and two workers in containers: the rows reach the master from both
    workers, PostgreSQL is read inside its container, the app container is replaced, never doubled."""
    from playwright.sync_api import sync_playwright

    from lab.stack import images

    images.build_standins(print)
    started = time.monotonic()
    place = make_place(tmp_path / "lab", OFFSET + 1)
    results = tmp_path / "results"
    up = Up(place, ARGS="--backend compose --locust-workers 2", IMAGES="local",
            LAB_RESULTS=str(results), MODE="threaded", IO_SECONDS="1", USERS="4", SPAWN_RATE="4", UP_TIMEOUT="600")  # fmt: skip
    locust = f"http://127.0.0.1:{place.locust_port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            tab = swarm_and_open_the_lab_tab(browser, locust)
            wait_for("the model's figures", lambda: re.search(r"= \d+\.\d+$", lab_cell(tab, "measured / predicted")), 90)
            assert "Docker --cpus=1" in lab_cell(tab, "CPU limit")
            wait_for("PostgreSQL's active connections", lambda: lab_cell(tab, "PostgreSQL active connections").isdigit(), 30)
            assert "of 2 load-generating process(es)" in lab_cell(tab, "load generator CPU")

            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{locust}/lab/timeline")
            wait_for("lanes from both workers' rows", lambda: int(page.get_attribute("#timeline", "data-lanes") or 0) >= 2, 30)
            keep_run(page, 1)
            apply(page, MODE="async")
            wait_for("async to run", lambda: "async runs" in page.inner_text("#running"), 120)
            apps = subprocess.run(["docker", "ps", "--quiet", "--filter", "label=com.docker.compose.service=app"],
                                  capture_output=True, text=True).stdout.split()  # fmt: skip
            assert len(apps) == 1
            time.sleep(4)
            keep_run(page, 2)
            switch_to_gunicorn_with_two_workers_and_keep(page, 3, 120)
            browser.close()
    finally:
        up.stop()
    assert up.proc.returncode == 0, "".join(up.lines)
    [folder] = results.glob("live-*")
    records = load_records(folder)
    assert [(r["config"]["mode"], r["backend"], r["status"]) for r in records] == [
        ("threaded", "compose", "ok"), ("async", "compose", "ok"), ("gunicorn", "compose", "ok")
    ], [r["reason"] for r in records]  # fmt: skip
    assert records[2]["config"]["workers"] == 2 and records[2]["verification"]["server"]["workers"] == 2
    assert all(r["config"]["locust_processes"] == 2 and r["timeline"]["rows"] > 0 for r in records)
    assert_the_report_compares(folder, place, ["threaded", "async", "gunicorn 2×1"])
    print(f"compose browser test: {time.monotonic() - started:.0f} s")
