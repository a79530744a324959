"""`make report` from a real smoke run: every section and chart, from the records alone."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from PIL import Image

from lab.report.build import build
from lab.results.folder import RecordError
from lab.stack.checkout import ROOT

from .conftest import PYTHON

CHARTS = ("chart-throughput.png", "chart-latency.png", "chart-timeline-io.png", "chart-timeline-cpu.png",
          "chart-mix-latency.png", "chart-timeline-mix.png", "chart-time-parts.png")  # fmt: skip
SECTIONS = (
    "## Conclusions",
    "## Which to pick",
    "## Runs: measured and predicted",
    "## Where the time went",
    "## Charts",
    "## The post's quick check",
    "## Machine",
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Debian's chromium as the tests drive it: no sandbox (a root session cannot have one), nothing fetched
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
WINDOW = 1300  # px: the report reads in a window this wide


@pytest.fixture
def copied(smoke_results, tmp_path):
    """The results folder on 'another machine': nothing but the folder itself."""
    target = tmp_path / "elsewhere" / smoke_results.name
    shutil.copytree(smoke_results, target)
    for old in target.glob("report*"):
        old.unlink()
    return target


def records_of(folder):
    return sorted((folder / "runs").glob("*.json"))


def table_of(md: str, section: str) -> list[dict[str, str]]:
    """The rows of the table in the report's section whose title starts with `section`, by column."""
    text = md.split(f"\n## {section}", 1)[1].split("\n## ", 1)[0]
    first = text[text.index("\n|") :].split("\n\n", 1)[0]  # the section's first table
    lines = [line.strip().strip("|") for line in first.splitlines() if line.startswith("|")]
    columns = [cell.strip() for cell in lines[0].split("|")]
    return [dict(zip(columns, (cell.strip() for cell in line.split("|")), strict=True)) for line in lines[2:]]


def test_report_has_every_section_and_chart(copied):
    page = build(copied)
    md = (copied / "report.md").read_text()
    for section in SECTIONS:
        assert section in md
    for chart in CHARTS:
        assert (copied / chart).stat().st_size > 10_000
        assert f"]({chart})" in md
    for path in records_of(copied):
        run_id = json.loads(path.read_text())["config"]["id"]
        assert run_id.split("-")[0] in md
    html = page.read_text()
    assert html.count("data:image/png;base64,") == len(CHARTS)
    assert 'src="http' not in html and 'href="http' not in html
    # the post's published io totals (10.0472 s and 5.0370 s) beside ours, in the quick check's own columns
    quick = {(row["mode"], row["workload"]): row for row in table_of(md, "The post's quick check")}
    assert quick["nothreading", "io"]["post's total"] == "10.05s"
    assert quick["threaded", "io"]["post's total"] == "5.04s"
    assert quick["threaded", "io"]["post's ÷ nothreading"] == "0.50"
    assert "measured/predicted" in md


def test_conclusions_follow_the_data(copied):
    build(copied)
    before = (copied / "report.md").read_text().split("## Runs")[0]
    # make nothreading the fastest io mode by far: the sentence must change with it
    for path in records_of(copied):
        record = json.loads(path.read_text())
        if record["config"]["id"].startswith("nothreading-io"):
            record["locust"]["rps"] = 10_000.0
            if record.get("intervals"):  # its interval with it, far from every other mode's: never level with one
                record["intervals"]["rps"] = {"estimate": 10_000.0, "low": 9_900.0, "high": 10_100.0, "n": 5}
            # a run the lab flagged (a busy CI machine bounding it) is named apart, not as the fastest: not here
            record.update(bounded_by_machine=False, bounded_by_load_generator=False, findings=[], warnings=[])
            path.write_text(json.dumps(record))
    build(copied)
    after = (copied / "report.md").read_text().split("## Runs")[0]
    assert after != before
    assert "io workload (4 users, CPUS=1), nothreading served the most: 10000 req/s" in after


def test_report_of_failed_runs_says_so(copied):
    for path in records_of(copied):
        record = json.loads(path.read_text())
        record.update(
            status="failed", reason="the app did not start: test", locust=None, server=None, load_generator=None, timeline=None
        )
        path.write_text(json.dumps(record))
    for chart in copied.glob("chart-*.png"):  # drawn by the smoke run itself: the failed runs must draw none
        chart.unlink()
    page = build(copied)
    md = (copied / "report.md").read_text()
    assert "No run succeeded" in md
    assert "the app did not start: test" in md
    # charts from failed runs are simply absent: none drawn, none linked, none embedded
    assert not list(copied.glob("chart-*.png"))
    assert "](chart-" not in md
    assert "data:image/png" not in page.read_text()


def test_corrupt_record_gives_a_clear_error_naming_the_file(copied):
    victim = records_of(copied)[2]
    victim.write_text('{"schema": 1, "config": ')
    with pytest.raises(RecordError, match=victim.name):
        build(copied)
    result = subprocess.run([PYTHON, "-m", "lab", "report", str(copied)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert victim.name in result.stderr
    assert "Traceback" not in result.stderr


def test_not_a_results_folder(tmp_path):
    result = subprocess.run([PYTHON, "-m", "lab", "report", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "no run records" in result.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_opens_offline_in_a_real_browser(copied, tmp_path):
    page = build(copied)
    shot, netlog = tmp_path / "shot.png", tmp_path / "net.json"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         f"--log-net-log={netlog}", "--window-size=1280,1600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.exists(), result.stderr[-3000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    # Chromium's own background requests carry no origin; any the page made would carry its own
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    jobs = [e["params"] for e in log["events"] if e["type"] == start_job and "url" in e.get("params", {})]
    from_page = [j["url"] for j in jobs if j.get("initiator") != "not an origin" and not j["url"].startswith(("file:", "data:"))]
    assert not from_page
    image = Image.open(shot).convert("L")
    lo, hi = image.getextrema()
    assert hi - lo > 100  # not blank: text and charts
    assert len(image.resize((64, 64)).getcolors(maxcolors=4096) or []) > 20


def test_the_runs_table_keeps_the_columns_a_reader_compares_and_its_notes_below_it(copied):
    build(copied)
    runs = table_of((copied / "report.md").read_text(), "Runs: measured and predicted")
    assert len(runs[0]) <= 13 and {"run", "req/s", "p95 ms", "predicted req/s", "note"} <= set(runs[0])
    notes = (copied / "report.md").read_text().split("\n## Runs", 1)[1].split("\n**", 1)[0]
    for i, row in enumerate(runs, 1):  # each row's note is keyed by its number, in the list under the table
        assert row["note"] == str(i) and f"\n{i}. {row['run']}: " in notes


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_the_report_fits_a_1300_px_window_and_no_note_makes_a_row_tall(copied):
    from playwright.sync_api import sync_playwright

    page = build(copied)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": WINDOW, "height": 900})
            tab.goto(page.as_uri())
            assert tab.evaluate("document.documentElement.scrollWidth") <= WINDOW
            rights = tab.evaluate("[...document.querySelectorAll('table')].map(t => t.getBoundingClientRect().right)")
            assert rights and max(rights) <= WINDOW, rights
            runs = tab.evaluate("""() => {
                const table = document.querySelector('table');  // the runs table: the first of the page
                const heights = [...table.querySelectorAll('tbody tr')].map(r => r.getBoundingClientRect().height);
                const notes = table.nextElementSibling;
                return {heights, notes: notes.tagName + '.' + notes.className, items: notes.children.length};
            }""")
        finally:
            browser.close()
    assert runs["notes"] == "OL.notes" and runs["items"] == len(runs["heights"])
    assert max(runs["heights"]) <= 1.5 * min(runs["heights"]), runs["heights"]  # one line each: the notes are below


def test_sweeps_draw_lines_and_find_where_more_stopped_helping(copied):
    """Records that vary users and CPUs (as `scaling` does) give the sweep charts and sentences."""
    originals = [json.loads(p.read_text()) for p in records_of(copied)]
    for p in records_of(copied):
        p.unlink()
    index = 0
    for record in originals:
        for users, gain in ((4, 1.0), (8, 1.9), (16, 2.0), (32, 2.02)):
            index += 1
            clone = json.loads(json.dumps(record))
            clone["index"] = index
            clone["config"].update(users=users, id=f"{record['config']['id']}-x{users}")
            clone["locust"]["rps"] = record["locust"]["rps"] * gain
            (copied / "runs" / f"{index:03d}-{clone['config']['id']}.json").write_text(json.dumps(clone))
        for cpus in (0.5, 2):
            index += 1
            clone = json.loads(json.dumps(record))
            clone["index"] = index
            clone["config"].update(cpus=cpus, id=f"{record['config']['id']}-c{cpus}")
            (copied / "runs" / f"{index:03d}-{clone['config']['id']}.json").write_text(json.dumps(clone))
    build(copied)
    md = (copied / "report.md").read_text()
    assert (copied / "chart-users.png").stat().st_size > 10_000
    assert (copied / "chart-cpus.png").stat().st_size > 10_000
    assert "More users (io): stopped helping at 8 for" in md
