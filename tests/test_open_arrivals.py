"""Open arrivals split across Locust's workers: each worker's share of the rate, the constant streams' phases,
what a process reports of its window, and the master's merge of its workers' reports (pure logic); then Locust
with two worker processes against a stub of the endpoint, for real."""

from __future__ import annotations

import json
import math
import random
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from statistics import fmean, pstdev
from urllib.parse import parse_qs, urlparse

import pytest

from contract.endpoint import seeded_rates
from contract.open_arrivals import Arrivals, OpenReport, Share, first_arrival, merge, slots
from lab.bench.measure import open_arrivals
from lab.stack.checkout import ROOT
from lab.stack.procs import LabError

RATES = seeded_rates()


def schedules(rate: float, poisson: bool, workers: int, now: float, seconds: float, lag: float = 0.0) -> list[list[float]]:
    """Each worker's intended starts until `seconds` after `now`, as its Arrivals would hand them to its users: its
    share arrived at `now`, and its test started `lag` after the previous worker's."""
    streams = []
    for share in slots([f"w{i}" for i in range(workers)]).values():
        arrivals = Arrivals()
        arrivals.origin = now
        arrivals.start(rate, poisson, now + lag * share.slot, share)
        taken = []
        while (at := arrivals.take()) < now + seconds:
            taken.append(at)
        streams.append(taken)
    return streams


def merged_gaps(streams: list[list[float]], since: float = -math.inf) -> list[float]:
    merged = sorted(at for stream in streams for at in stream if at >= since)
    return [b - a for a, b in pairwise(merged)]


def test_each_worker_offers_its_share_of_the_rate_in_a_stable_slot() -> None:
    assert slots(["b", "a", "c"]) == {"b": Share(3, 0), "a": Share(3, 1), "c": Share(3, 2)}
    for share in slots(["a", "b", "c", "d"]).values():
        arrivals = Arrivals()
        arrivals.start(40.0, True, 0.0, share)
        assert arrivals.rate == 10.0
    alone = Arrivals()
    alone.start(40.0, False, 5.0)
    assert alone.rate == 40.0 and alone.take() == 5.0  # one process: the whole rate, from now
    closed = Arrivals()
    closed.start(0.0, True, 5.0, Share(2, 1))
    assert closed.rate == 0.0  # a closed loop of users takes no arrivals


def test_constant_streams_are_staggered_so_that_the_merged_stream_is_evenly_spaced() -> None:
    rate, now = 30.0, 1000.0
    assert [first_arrival(rate, False, Share(3, slot), now) for slot in range(3)] == [now, now + 1 / rate, now + 2 / rate]
    streams = schedules(rate, False, 3, now, 10.0)
    assert all(len(stream) == pytest.approx(rate * 10 / 3, abs=1) for stream in streams)
    gaps = merged_gaps(streams)
    assert max(gaps) == pytest.approx(1 / rate) and min(gaps) == pytest.approx(1 / rate)
    # each worker's test starts when its spawn message arrives, some ms after the last: its phase still counts from
    # when its share arrived, and its first arrival is the first of that phase after its start (no burst of past ones)
    assert first_arrival(rate, False, Share(3, 2), now + 0.43, origin=now) == pytest.approx(now + 2 / rate + 0.4)
    lagging = schedules(rate, False, 3, now, 10.0, lag=0.013)
    assert all(stream[0] >= now + 0.013 * slot for slot, stream in enumerate(lagging))
    gaps = merged_gaps(lagging, since=now + 2 * 0.013)
    assert max(gaps) == pytest.approx(1 / rate) and min(gaps) == pytest.approx(1 / rate)


def test_independent_poisson_streams_of_each_share_sum_to_a_poisson_stream_of_the_rate() -> None:
    random.seed(20)
    rate, seconds = 50.0, 100.0
    streams = schedules(rate, True, 2, 0.0, seconds)
    expected = rate * seconds
    assert abs(sum(map(len, streams)) - expected) < 4 * math.sqrt(expected)
    for stream in streams:  # each offers half, within chance
        assert abs(len(stream) - expected / 2) < 4 * math.sqrt(expected / 2)
    gaps = merged_gaps(streams)
    # a Poisson stream's gaps are exponential: their mean is 1/rate and their spread equals their mean
    assert fmean(gaps) == pytest.approx(1 / rate, rel=0.05)
    assert pstdev(gaps) / fmean(gaps) == pytest.approx(1.0, abs=0.08)
    assert min(streams[0][0], streams[1][0]) > 0.0  # the first gap is drawn too: the workers do not all start at once


def test_a_process_reports_its_window_with_what_no_user_took_and_what_is_still_waiting() -> None:
    arrivals = Arrivals()
    arrivals.start(10.0, False, 0.0)
    start, ended = 0.2, 0.95
    taken = [arrivals.take() for _ in range(5)]  # 0.0 to 0.4
    counted = [at for at in taken if at >= start]  # 0.2, 0.3, 0.4: measured
    arrivals.counts["offered"] += len(counted)
    arrivals.counts["sent"] += 2
    arrivals.latencies += [(counted[0], 30.0, True), (counted[1], 40.0, False)]
    arrivals.pending.add(counted[2])
    report = arrivals.report(start, ended)
    assert report["offered"] == 3 + 5 and report["dropped"] == 5  # 0.5 to 0.9: due, and no user took them
    assert report["unanswered"] == 1 and report["sent"] == 2
    assert report["latencies"][-1] == (counted[2], pytest.approx((ended - counted[2]) * 1000), None)
    assert arrivals.next_at > ended


def report_of(rate: float, offered: int, latencies: list[tuple[float, float, bool | None]]) -> OpenReport:
    waiting = sum(ok is None for *_, ok in latencies)
    return OpenReport(rate=rate, poisson=True, offered=offered, sent=len(latencies) - waiting, late=1, dropped=0,
                      unanswered=waiting, latencies=latencies)  # fmt: skip


def test_the_master_merges_its_workers_reports_into_one_window_with_each_ones_counts(tmp_path: Path) -> None:
    reports = {
        "host-b_2e": (Share(2, 1), report_of(5.0, 3, [(10.05, 20.0, True), (10.25, 30.0, False), (10.45, 900.0, None)])),
        "host-a_1f": (Share(2, 0), report_of(5.0, 2, [(10.0, 10.0, True), (10.2, 15.0, True)])),
    }
    merged = merge(reports, ["host-a_1f", "host-b_2e", "host-c_3d"])
    assert merged["rate"] == 10.0 and merged["offered"] == 5 and merged["sent"] == 4 and merged["late"] == 2
    assert merged["unanswered"] == 1
    assert [at for at, *_ in merged["latencies"]] == [10.0, 10.05, 10.2, 10.25, 10.45]  # in arrival order
    assert [(w["worker"], w["slot"], w["offered"], w["answered"], w["waiting"]) for w in merged["workers"]] == [
        ("host-a_1f", 0, 2, 2, 0),
        ("host-b_2e", 1, 3, 2, 1),
    ]
    assert merged["missing"] == ["host-c_3d"]

    # the lab reads the merged file as it reads a lone Locust's, each worker's part beside
    path = tmp_path / "run.open.json"
    path.write_text(json.dumps({**merged, "missing": []}))
    summary = open_arrivals(path, 10.0, 0.5)
    assert summary.offered_rps == 10.0 and summary.sent == 5 and summary.unanswered == 1
    assert [(w.worker, w.answered) for w in summary.workers] == [("host-a_1f", 2), ("host-b_2e", 2)]
    # a worker that did not answer leaves the window short of its arrivals: the run fails, saying which
    path.write_text(json.dumps(merged))
    with pytest.raises(LabError, match="host-c_3d sent the master no account of their open arrivals"):
        open_arrivals(path, 10.0, 0.5)


# ---------------------------------------------------------------- for real: Locust with two worker processes


class Converts(BaseHTTPRequestHandler):
    """The endpoint's right answer at once, with the headers the timeline reads."""

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        pair = (query["from"][0], query["to"][0])
        body = json.dumps({"from": pair[0], "to": pair[1], "rate": RATES[pair], "workload": "io"}).encode()
        now = str(int(time.time() * 1_000_000))
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), "X-Worker-Pid": "1",
                   "X-Thread-Id": str(threading.get_ident()), "X-Request-Start": now, "X-Request-End": now}  # fmt: skip
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_two_locust_processes_offer_half_the_constant_arrivals_each_in_turn_and_the_master_writes_one_window(
    tmp_path: Path,
) -> None:
    rate = 20.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Converts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    files = {name: tmp_path / name for name in ("open.json", "timeline.csv", "window.json")}
    try:
        done = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "locust"), "-f", str(ROOT / "locust" / "locustfile.py"), "--headless",
             "--host", f"http://127.0.0.1:{server.server_address[1]}", "-u", "20", "-r", "200", "-t", "7s",
             "--processes", "2", "--stop-timeout", "0", "--exit-code-on-error", "0", "--loglevel", "WARNING",
             "--lab-warmup", "1", "--lab-arrival-rate", f"{rate:g}", "--lab-arrivals", "constant",
             "--lab-open-file", str(files["open.json"]), "--lab-timeline", str(files["timeline.csv"]),
             "--lab-window", str(files["window.json"])],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr[-3000:]
    window = json.loads(files["window.json"].read_text())
    seconds = window["end"] - window["start"]
    opened = json.loads(files["open.json"].read_text())
    assert opened["rate"] == rate and not opened["missing"], opened["missing"]
    shares = opened["workers"]
    assert sorted(w["slot"] for w in shares) == [0, 1] and all(w["rate"] == rate / 2 for w in shares), shares
    # constant arrivals: each worker offers every other one, so each count is its share of the window, give or take one
    for worker in shares:
        assert abs(worker["offered"] - rate / 2 * seconds) <= 2, (worker, seconds)
    assert abs(opened["offered"] - rate * seconds) <= 3, (opened["offered"], seconds)
    # the merged stream is evenly spaced: the second worker's phase lies between the first one's arrivals (away from
    # the window's edges, which each worker marks by its own clock)
    inside = [at for at, *_ in opened["latencies"] if window["start"] + 0.5 < at < window["end"] - 0.5]
    gaps = [b - a for a, b in pairwise(inside)]
    assert min(gaps) > 0.5 / rate and max(gaps) < 1.5 / rate, (min(gaps), max(gaps))
    answered = sum(w["answered"] for w in shares)
    with files["timeline.csv"].open() as f:
        rows = len(f.readlines()) - 1
    assert abs(rows - answered) <= 0.05 * answered + 2, (rows, answered)  # both processes' rows, in one file
