"""A long `make up` under a steady swarm, with the Lab tab open in a headless browser: every lab process's
resident memory and open files sampled as it runs, so that a leak shows as a slope, not as a crash days later.

`.venv/bin/python -m tests.soak --minutes 30` (the knobs as for `make up`: MODE, USERS, ...).
It writes soak.csv (one row per process per sample) and soak.md (each process kind's memory and open files at
1 and 5 minutes and at the end, and the slope after the first 5 minutes) into a results folder of its own, keeps
one run at the end through the Lab page and says how large it is, and stops everything it started, on error or
Ctrl-C too.
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import psutil

from contract.knobs import int_setting
from lab.analysis.stats import slope_intercept
from lab.results.folder import new_folder
from lab.stack.checkout import ROOT
from lab.stack.place import Place
from lab.stack.procs import LabError, wait_until

SAMPLE_S = 15.0
SETTLED_S = 300.0  # memory may grow while caches and pools fill: the slope is read after this
KINDS = (("postgres", "PostgreSQL"), ("locust", "Locust"), ("lab up", "the lab (make up)"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the swarm started
    pid: int
    kind: str
    rss_mb: float
    files: int


def kind_of(cmdline: list[str]) -> str:
    text = " ".join(cmdline)
    if "-m lab up" in text or text.endswith("lab up"):
        return "lab up"
    for needle, _ in KINDS:
        if needle in text:
            return needle
    return "server"


def lab_processes(up: psutil.Process) -> list[psutil.Process]:
    """`make up` and everything under it, and the processes of the lab's venv or state with theirs: PostgreSQL runs
    detached, and its backends (a connection each, titled `postgres: lab lab ...`) are its postmaster's children."""
    found = {up.pid: up}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(str(ROOT / ".venv") in part or str(Place().state) in part for part in cmdline):
            found.setdefault(proc.pid, proc)
    for proc in list(found.values()):
        try:
            found.update((child.pid, child) for child in proc.children(recursive=True))
        except psutil.Error:  # ended between the listing and the reading
            continue
    return list(found.values())


def sample(up: psutil.Process, at: float) -> list[Sample]:
    rows = []
    for proc in lab_processes(up):
        try:
            with proc.oneshot():
                rows.append(Sample(round(at, 1), proc.pid, kind_of(proc.cmdline()), round(proc.memory_info().rss / 2**20, 1),
                                   proc.num_fds()))  # fmt: skip
        except psutil.Error:  # ended between the listing and the reading
            continue
    return rows


Total = tuple[float, int, int]  # a kind's resident MB, open files and processes at one sample


def summary(samples: list[Sample], kept: str) -> str:
    """Per kind of process: the sum over its processes at 1 and 5 minutes and at the end, the slope after 5, and how
    many there are (PostgreSQL's backends, a connection each, or the server's workers growing would show there)."""
    by_kind: dict[str, dict[float, Total]] = defaultdict(dict)
    for s in samples:
        rss, files, count = by_kind[s.kind].get(s.at, (0.0, 0, 0))
        by_kind[s.kind][s.at] = (rss + s.rss_mb, files + s.files, count + 1)
    head = ("| processes | RSS at 1 min (MB) | at 5 min | at the end | slope after 5 min (MB/min, 95%) | "
            "open files, 5 min → end | processes, 5 min → end |")  # fmt: skip
    lines = [head, "|---|---|---|---|---|---|---|"]
    names = dict(KINDS) | {"server": "the server"}
    for kind, series in sorted(by_kind.items()):
        times = sorted(series)

        def at(t: float, series: dict[float, Total] = series, times: list[float] = times) -> Total:
            return series[min(times, key=lambda x: abs(x - t))]

        late = [t for t in times if t >= SETTLED_S]
        slope = "–"
        if len(late) >= 3:
            line = slope_intercept([t / 60 for t in late], [series[t][0] for t in late])
            slope = f"{line.slope.estimate:+.2f} [{line.slope.low:+.2f}, {line.slope.high:+.2f}]"
        settled, end = at(SETTLED_S), at(times[-1])
        lines.append(f"| {names.get(kind, kind)} | {at(60)[0]:.1f} | {settled[0]:.1f} | {end[0]:.1f} | {slope} | "
                     f"{settled[1]} → {end[1]} | {settled[2]} → {end[2]} |")  # fmt: skip
    return "\n".join([*lines, "", kept])


def _post(url: str, origin: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Origin": origin})  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as answer:
        found = json.loads(answer.read())
    return found if isinstance(found, dict) else {}


def folder_size_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 2)


def soak(minutes: float, users: int, out: Path) -> Path:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    place = Place()
    locust = f"http://127.0.0.1:{place.locust_port}"
    log = (out / "up.log").open("w")
    up = subprocess.Popen([sys.executable, "-m", "lab", "up"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    samples: list[Sample] = []
    try:
        if not wait_until(lambda: "lab: Lab " in (out / "up.log").read_text() or up.poll() is not None, 300, 0.5) \
                or up.poll() is not None:  # fmt: skip
            raise LabError(f"make up did not come up: see {out / 'up.log'}")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            tab = browser.new_page(viewport={"width": 1400, "height": 1100})
            tab.goto(locust)
            tab.fill("input[name=userCount]", str(users))
            tab.fill("input[name=spawnRate]", str(users))
            tab.get_by_role("button", name="Start").click()
            tab.get_by_role("tab", name="Lab").click()
            started, proc = time.monotonic(), psutil.Process(up.pid)
            with (out / "soak.csv").open("w", newline="") as file:
                writer = csv.writer(file)
                writer.writerow(["seconds", "pid", "kind", "rss_mb", "open_files"])
                while (at := time.monotonic() - started) < minutes * 60:
                    if up.poll() is not None:
                        raise LabError(f"make up ended during the soak: see {out / 'up.log'}")
                    rows = sample(proc, at)
                    samples += rows
                    writer.writerows([r.at, r.pid, r.kind, r.rss_mb, r.files] for r in rows)
                    file.flush()
                    print(f"soak: {at / 60:.1f} of {minutes:g} min, lab processes "
                          f"{sum(r.rss_mb for r in rows):.0f} MB resident", flush=True)  # fmt: skip
                    time.sleep(SAMPLE_S)
            control = f"http://127.0.0.1:{place.control_port}/keep"
            kept = _post(control, locust, {})
            path = Path(str(kept.get("path", "")))
            folder = path if path.is_dir() else path.parent.parent  # the record's runs/ folder lies in the kept one
            size = folder_size_mb(folder)
            said = f"One run kept at the end: {path} (its folder {size} MB)" if path.exists() else f"keep: {kept}"
            browser.close()
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)  # as Ctrl-C: everything it started is stopped
            try:
                up.wait(120)
            except subprocess.TimeoutExpired:
                up.kill()
        log.close()
    report = out / "soak.md"
    report.write_text(f"# Soak: {minutes:g} minutes, {users} users\n\n{summary(samples, said)}\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=int_setting("USERS"))
    args = parser.parse_args(argv)
    try:
        report = soak(args.minutes, args.users, new_folder("soak"))
    except (LabError, KeyboardInterrupt) as error:
        print(f"soak: {error or 'interrupted'}", file=sys.stderr)
        return 1
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
