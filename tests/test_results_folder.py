"""The owner of a results folder (lab.results.folder) and its manifest (lab.results.manifest): where each file
lies, the `latest` link, writes that leave a whole file or none, and experiment.json read back as written,
old ones included. Pure: nothing is started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contract.cgroup import CpuUsage
from contract.endpoint import TIMELINE_COLUMNS, request_name
from contract.knobs import parse
from lab.live.keep import Where, keep
from lab.live.window import Sample
from lab.results import folder as results
from lab.results.experiments import load
from lab.results.folder import RecordError, ResultsFolder, link_latest, new_folder, write_atomic
from lab.results.manifest import FolderKind, Manifest, default_kind, read_manifest, write_manifest
from lab.results.record import Configuration, LimitApplied, Verification
from lab.results.run_files import read_records
from lab.results.typedjson import read, write
from lab.stack.checkout import ROOT
from lab.stack.machine import Machine
from lab.stack.machine_cpu import MachineCpu

from .records import MACHINE


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """LAB_RESULTS, as the owner read it."""
    monkeypatch.setattr(results, "RESULTS", tmp_path / "results")
    return tmp_path / "results"


def test_each_file_has_its_one_place(tmp_path: Path) -> None:
    files = ResultsFolder(tmp_path)
    assert files.record(3, "async-io") == tmp_path / "runs" / "003-async-io.json"
    assert (files.summary.name, files.manifest.name, files.decision.name, files.path_figures.name) == (
        "summary.csv", "experiment.json", "decision.json", "paths.json")  # fmt: skip
    assert (files.capacity.name, files.interpreter.name, files.compare_md.name, files.compare_json.name) == (
        "capacity.json", "interpreter.json", "compare.md", "compare.json")  # fmt: skip
    assert files.capacity_of("x") == tmp_path / "capacity" / "x.json" and files.path_alone(2) == tmp_path / "paths" / "2"
    assert files.chart("latency") == tmp_path / "chart-latency.png" and files.report_md == tmp_path / "report.md"
    run = files.locust("async-io")
    assert (run.prefix, run.stats, run.window, run.log, run.open_arrivals, run.timeline) == (
        tmp_path / "locust" / "async-io", tmp_path / "locust" / "async-io.json", tmp_path / "locust" / "async-io.window.json",
        tmp_path / "locust" / "async-io.log", tmp_path / "locust" / "async-io.open.json",
        tmp_path / "timeline" / "async-io.csv")  # fmt: skip
    apart = files.locust("async-io", 7)  # windows that share a run's id, each with its own number
    assert (apart.stats.name, apart.timeline.name) == ("007-async-io.json", "007-async-io.csv")
    assert (
        files.relative(apart.timeline) == "timeline/007-async-io.csv"
        and files.file("timeline/007-async-io.csv") == apart.timeline
    )
    for name in ("002-b.json", "001-a.json", "010-c.json"):
        write_atomic(files.runs / name, "{}")
    assert [p.name for p in files.records()] == ["001-a.json", "002-b.json", "010-c.json"]


def test_a_new_folder_is_named_for_its_kind_and_time_and_resume_takes_the_newest_begun(root: Path) -> None:
    first = new_folder("quick")
    assert first.parent == root and first.name.startswith("quick-") and not first.exists()
    assert new_folder("quick", resume=True).name.startswith("quick-")  # nothing begun: a new one
    for name in ("quick-20260101T000000", "quick-20260102T000000", "quick-20260103T000000"):
        (root / name).mkdir(parents=True)
    write_manifest(root / "quick-20260102T000000", Manifest("quick", FolderKind.EXPERIMENT))
    assert new_folder("quick", resume=True) == root / "quick-20260102T000000"  # the newest with a manifest
    assert results.latest() == root / "latest" and results.detached_log("bench-quick") == (root / "bench-quick.log").resolve()


def test_latest_points_at_the_newest_folder_and_leaves_a_folder_of_the_users_alone(root: Path) -> None:
    first, second = root / "quick-1", root / "capacity-2"
    link_latest(first)
    assert first.is_dir() and (root / "latest").is_symlink() and os.readlink(root / "latest") == "quick-1"
    link_latest(second)
    assert (root / "latest").resolve() == second.resolve() and os.readlink(root / "latest") == "capacity-2"
    (root / "latest").unlink()
    (root / "latest").mkdir()  # the user's own folder named latest
    link_latest(first)
    assert not (root / "latest").is_symlink()


def test_a_demo_is_kept_beside_the_folders_and_the_report_finds_it(root: Path) -> None:
    demo = results.new_demo("async", "io")
    assert demo.parent == root / "demos" and demo.name.startswith("demo-async-io-")
    write_atomic(demo, "{}")
    assert ResultsFolder(root / "quick-1").demos() == [demo]


def test_lab_results_is_read_once_and_gives_the_reports_default(tmp_path: Path) -> None:
    env = {**os.environ, "LAB_RESULTS": str(tmp_path / "elsewhere"), "PYTHONPATH": str(ROOT)}
    said = subprocess.run([sys.executable, "-c", "from lab.results.folder import latest, new_folder; "
                           "print(latest()); print(new_folder('quick').parent)"], env=env, capture_output=True, text=True,
                          check=True).stdout.split()  # fmt: skip
    assert said == [str(tmp_path / "elsewhere" / "latest"), str(tmp_path / "elsewhere")]
    report = subprocess.run([sys.executable, "-m", "lab", "report"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert report.returncode != 0 and str(tmp_path / "elsewhere" / "latest") in report.stderr


def test_a_failed_write_leaves_the_old_file_whole_and_no_part_of_the_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "deep" / "summary.csv"
    write_atomic(path, "old\n")  # its folder made on the way
    assert path.read_text() == "old\n"

    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(RecordError, match=r"could not write .*summary\.csv: No space left on device"):
        write_atomic(path, "new, and half written\n")
    assert path.read_text() == "old\n" and sorted(p.name for p in path.parent.iterdir()) == ["summary.csv"]
    monkeypatch.undo()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(RecordError, match="a-file"):
        write_atomic(blocked / "experiment.json", "{}")  # a folder that cannot be made


def test_the_manifest_reads_back_as_it_was_written(tmp_path: Path) -> None:
    experiment = load("quick")
    written = Manifest(
        "quick", FolderKind.EXPERIMENT, "2026-01-01T00:00:00+00:00", experiment.description, definition=experiment.source,
        runs=tuple(Configuration.of(r) for r in experiment.runs), backends=("native",), machine=read(Machine, MACHINE),
        app="shop:app", interface="wsgi",
    )  # fmt: skip
    write_manifest(tmp_path, written)
    assert read_manifest(tmp_path) == written
    assert json.loads((tmp_path / "experiment.json").read_text())["kind"] == "experiment"
    for manifest in (Manifest("capacity", FolderKind.CAPACITY, "t", slo_p95_ms=300.0, budget_s=600.0),
                     Manifest("compare-1", FolderKind.COMPARE, "t", base="a", new="b")):  # fmt: skip
        write_manifest(tmp_path, manifest)
        assert read_manifest(tmp_path) == manifest


def test_an_old_manifest_without_kind_reads_as_its_folder_shows(tmp_path: Path) -> None:
    old_run = write(Configuration.of(load("quick").runs[0]))
    assert isinstance(old_run, dict)
    old_run.pop("label")  # schema 1 named a run by its id alone
    bench = tmp_path / "quick-20250101T000000"
    bench.mkdir()
    (bench / "experiment.json").write_text(json.dumps({
        "name": "quick", "description": "the quick one", "definition": {"name": "quick"}, "runs": [old_run],
        "backend": "native", "started_at": "2025-01-01T00:00:00+00:00", "machine": MACHINE,
    }))  # fmt: skip
    manifest = read_manifest(bench)
    assert manifest and (manifest.kind, manifest.name, manifest.description) == (FolderKind.EXPERIMENT, "quick", "the quick one")
    assert manifest.runs[0].label and manifest.runs[0].id == old_run["id"]
    kept = tmp_path / "live-20250101T000000"
    kept.mkdir()
    (kept / "experiment.json").write_text(json.dumps({"name": kept.name, "description": "kept", "started_at": "t",
                                                      "backends": ["native"]}))  # fmt: skip
    assert (manifest := read_manifest(kept)) and manifest.kind is FolderKind.KEPT and manifest.backends == ("native",)
    none = tmp_path / "copied"
    none.mkdir()
    assert read_manifest(none) is None and default_kind(none) is FolderKind.EXPERIMENT
    (none / "decision.json").write_text("{}")
    assert default_kind(none) is FolderKind.DECISION
    (bench / "experiment.json").write_text('{"name": "quick", "kind": "elsewhere"}')
    with pytest.raises(RecordError, match=r"experiment\.json: kind is 'elsewhere'"):
        read_manifest(bench)


def _sample(at: float, requests: int) -> Sample:
    return Sample(at, CpuUsage(0.01 * requests), MachineCpu(at, 2 * at), None, {"locust": 0.001 * requests}, requests, 0, 2)


def test_a_kept_run_is_begun_and_judged_as_the_bench_does_and_laid_out_by_the_owner(tmp_path: Path) -> None:
    start = 1_000_000.0
    rows = [["1", "1", str(int(start * 1e6) + i * 100_000), str(int(start * 1e6) + i * 100_000 + 20_000), "200", "21.0", "io",
             *[""] * (len(TIMELINE_COLUMNS) - 7)] for i in range(50)]  # fmt: skip
    window = {"start": start, "now": start + 5.0, "user_count": 2, "ramp_seconds": 1.0, "processes": 1, "cpu_warned": False,
              "errors": [], "rows": rows, "workload": "io", "cpu_share": 0.0,
              "entries": [{"name": request_name("io"), "num_requests": 50, "num_failures": 0, "total_response_time": 1050.0,
                           "max_response_time": 30.0, "response_times": {"21": 50}}]}  # fmt: skip
    where = Where("native", LimitApplied(1.0, "test", True), None, "2026-01-01T00:00:00+00:00")
    knobs = parse({"MODE": "async", "WORKLOAD": "io"})
    folder = tmp_path / "live-1"
    for _ in range(2):
        kept = keep(folder, knobs, window, _sample(start, 0), _sample(start + 5.0, 50), where, Verification(ok=True))
    files, record = ResultsFolder(folder), kept.record
    assert kept.path == files.record(2, record.config.id) and record.index == record.total == 2
    assert record.ok and record.reason is None and record.warnings == () and record.started_at == where.started_at
    assert record.measured and record.measured.locust.requests == 50 and record.measured.timeline
    assert files.file(record.measured.timeline.file) == files.locust(record.config.id, 2).timeline
    assert files.locust(record.config.id, 2).stats.exists() and files.summary.exists()
    assert [r.index for r in read_records(folder)] == [1, 2]
    assert (manifest := read_manifest(folder)) and manifest.kind is FolderKind.KEPT and manifest.backends == ("native",)
    failed = keep(folder, knobs, window, _sample(start, 0), _sample(start + 5.0, 50), where, Verification(ok=False, detail="no"))
    assert not failed.record.ok and failed.record.reason == "verification failed: no"
