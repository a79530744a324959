"""Unit tests of the pure parts of `make bench`: matrix expansion and record validation."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from contract.knobs import KNOBS, KnobError, parse
from contract.modes import MODES
from contract.serve import server_plan
from lab.results.experiments import EXPERIMENTS, ExperimentError, expand, given_values, knobs_of, load
from lab.results.folder import RecordError
from lab.results.record import read_record, record_json
from lab.results.run_files import load_records, read_records
from lab.results.typedjson import JsonError

from .records import merged, whole


def test_product_of_the_lists():
    exp = expand(
        "t", {"matrix": [{"modes": ["threaded", "async"], "workloads": ["io", "cpu"], "users": [1, 4], "cpus": [0.5, 1]}]}
    )
    assert len(exp.runs) == 2 * 2 * 2 * 2
    assert len({r.id for r in exp.runs}) == len(exp.runs)


def test_workers_and_threads_multiply_only_the_modes_that_have_them():
    exp = expand(
        "t", {"matrix": [{"modes": ["gunicorn", "nothreading"], "workloads": "io", "workers": [1, 2, 4], "threads": [1, 8]}]}
    )
    gunicorn = [r for r in exp.runs if r.mode == "gunicorn"]
    assert sorted((r.workers, r.threads) for r in gunicorn) == [(1, 1), (1, 8), (2, 1), (2, 8), (4, 1), (4, 8)]
    assert [(r.workers, r.threads) for r in exp.runs if r.mode == "nothreading"] == [(1, 1)]


def test_top_level_values_are_defaults_for_each_matrix():
    exp = expand(
        "t", {"io_seconds": 0.3, "run_time": 5, "matrix": [{"modes": "async"}, {"modes": "threaded", "io_seconds": 0.7}]}
    )
    by_mode = {r.mode: r for r in exp.runs if r.workload == "io"}
    assert by_mode["async"].io_seconds == 0.3
    assert by_mode["threaded"].io_seconds == 0.7
    assert all(r.run_time == 5 for r in exp.runs)


def test_the_same_configuration_in_two_matrices_runs_once():
    exp = expand("t", {"matrix": [{"modes": "async", "users": [1, 2]}, {"modes": "async", "users": [2, 4]}]})
    assert sorted(r.users for r in exp.runs if r.workload == "io") == [1, 2, 4]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "at least one [[matrix]]"),
        ({"matrix": [{"workloads": "io"}]}, "'modes' is required"),
        ({"matrix": [{"modes": "turbo"}]}, "MODE='turbo' is not valid"),
        ({"matrix": [{"modes": "async", "cpus": -2}]}, "CPUS='-2' is not valid"),
        ({"matrix": [{"modes": "async", "usres": 3}]}, "unknown keys ['usres']"),
        ({"matrix": [{"modes": "async", "run_time": 0}]}, "run_time > 0"),
    ],
)
def test_bad_experiments_name_the_problem(data, message):
    with pytest.raises(ExperimentError) as error:
        expand("bad", data)
    assert message in str(error.value)


@pytest.mark.parametrize("name", sorted(p.stem for p in EXPERIMENTS.glob("*.toml")))
def test_shipped_experiments_load(name):
    exp = load(name)
    assert exp.runs and exp.description


def test_quick_covers_every_mode_and_both_workloads_and_measures_a_mix():
    exp = load("quick")
    pure = {(r.mode, r.workload) for r in exp.runs if r.workload != "mix"}
    assert pure == {(m, w) for m in MODES for w in ("io", "cpu")}
    mixed = {r.mode for r in exp.runs if r.workload == "mix"}
    assert {"async", "threaded", "gunicorn"} <= mixed  # one event loop, one GIL's threads, processes


def test_unknown_experiment_lists_the_known_ones():
    with pytest.raises(ExperimentError, match=r"EXPERIMENT takes one of .*quick"):
        load("nope")


def test_a_complete_record_reads_and_writes_back_the_same_json():
    data = whole()
    record = read_record(data)
    assert record.measured and record.measured.locust.p95_ms == 100.0 and record.config.knobs.mode == "async"
    assert read_record(record_json(record)) == record
    assert merged(record_json(record), data) == record_json(record)  # every key and value it read, written back


def test_a_record_missing_fields_says_which():
    data = whole()
    del data["locust"]["p99_ms"]
    with pytest.raises(JsonError, match=r"^locust\.p99_ms is missing$"):
        read_record(data)
    del data["machine"]
    with pytest.raises(JsonError, match=r"^machine is missing$"):
        read_record(data)


def test_a_failed_record_may_lack_measurements_but_an_ok_one_may_not():
    failed = read_record(merged(whole(), {"status": "failed", "locust": None, "server": None, "load_generator": None,
                                          "model": None}))  # fmt: skip
    assert failed.measured is None and failed.model is None
    with pytest.raises(JsonError, match="status 'ok' lacks its measurement"):
        read_record(merged(whole(), {"locust": None}))


def test_records_of_the_first_schema_read_with_their_label_from_their_knobs():
    data = merged(whole(), {"schema": 1, "config": {"mode": "gunicorn", "workers": 4}})
    del data["config"]["label"]
    assert read_record(data).config.label == "gunicorn 4×1"
    with pytest.raises(JsonError, match="this lab reads records of schema 1 to"):
        read_record(merged(whole(), {"schema": 99}))


def test_a_corrupt_record_names_its_file(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "001-x.json").write_text(json.dumps(whole()))
    (tmp_path / "runs" / "002-y.json").write_text("{not json")
    with pytest.raises(RecordError, match=r"002-y\.json"):
        load_records(tmp_path)


def test_a_field_of_the_wrong_type_names_the_file_and_the_field(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "003-x.json").write_text(json.dumps(merged(whole(), {"locust": {"p95_ms": "abc"}})))
    with pytest.raises(RecordError, match=r"runs/003-x\.json: locust\.p95_ms is 'abc', expected a number"):
        read_records(tmp_path)
    (tmp_path / "runs" / "003-x.json").write_text(json.dumps(merged(whole(), {"config": {"mode": "turbo"}})))
    with pytest.raises(RecordError, match=r"runs/003-x\.json: config: MODE='turbo' is not valid"):
        read_records(tmp_path)


@pytest.mark.parametrize("name", sorted(p.stem for p in EXPERIMENTS.glob("*.toml")))
def test_every_knob_of_every_shipped_run_reaches_the_server(name):
    """What the server reads from its environment is the run's configuration, knob by knob: an
    offload run offloads, a no-pool run has no pool (both were once dropped on the way)."""
    for run in load(name).runs:
        env = server_plan(run.knobs, host="127.0.0.1", port=8000, base_env={}).env
        assert set(KNOBS) <= set(env)
        assert parse(env) == run.knobs, run.id
        assert knobs_of(run.as_dict()) == replace(run.knobs, run_time="1m"), run.id  # the record says the same
        assert ("offload-process" in run.id) == (env["CPU_OFFLOAD"] == "process")
        assert ("nopool" in run.id) == (env["DB_POOL"] == "0")


def test_a_knob_that_does_not_apply_leaves_one_run_with_its_default():
    matrix = {"modes": ["async", "threaded"], "workloads": ["io", "cpu", "mix"], "cpu_offload": ["none", "process"],
              "db_pool": ["1", "0"], "mix_cpu_share": [0.1, 0.5]}  # fmt: skip
    exp = expand("t", {"matrix": [matrix]})
    ids = sorted(r.id for r in exp.runs)
    assert "async-io-cpus1-u10" in ids and not any(i.startswith("async-io") and "offload" in i for i in ids)
    assert {"async-cpu-cpus1-u10-offload-process", "async-mix0.5-cpus1-u10-offload-process"} <= set(ids)
    assert {"threaded-io-cpus1-u10-nopool", "threaded-mix0.1-cpus1-u10-nopool"} <= set(ids)
    assert not any("nopool" in i for i in ids if i.startswith("async"))
    # async: io, cpu x offload, mix x share x offload; threaded the same with the pool for offload
    assert len(ids) == len(set(ids)) == (1 + 2 + 4) + (2 + 2 + 4)


# ---------------------------------------------------------------- the experiment's own value, the command line's, the default

ONE = {"matrix": [{"modes": "async", "workloads": "cpu"}, {"modes": "gunicorn", "workloads": "cpu", "primes_limit": 50_000}]}


def test_a_knob_given_on_the_command_line_is_taken_where_the_experiment_has_none():
    runs = {r.mode: r for r in expand("t", ONE, given={"PRIMES_LIMIT": "100000", "CPUS": "2"}).runs}
    assert runs["async"].knobs.primes_limit == 100_000  # was the experiments' default, 20,000, in silence
    assert runs["gunicorn"].knobs.primes_limit == 50_000  # the experiment's own value wins
    assert {r.knobs.cpus for r in runs.values()} == {2}
    assert {r.knobs.users for r in runs.values()} == {10}  # neither: the experiments' default
    assert expand("t", ONE).runs[0].knobs.primes_limit == 20_000


def test_the_file_s_top_level_wins_over_the_command_line_and_a_matrix_over_both():
    data = {"primes_limit": 30_000, **ONE}
    runs = {r.mode: r for r in expand("t", data, given={"PRIMES_LIMIT": "100000"}).runs}
    assert (runs["async"].knobs.primes_limit, runs["gunicorn"].knobs.primes_limit) == (30_000, 50_000)


def test_an_overridden_knob_is_said_in_one_line_naming_it_both_values_and_the_winner():
    exp = expand("my", ONE, given={"PRIMES_LIMIT": "100000", "USERS": "4"})
    assert exp.overridden == [
        "experiment my: primes_limit = 50000 in the experiment wins over PRIMES_LIMIT=100000 from the command line or "
        "environment; matrix 1, without one, takes 100000"
    ]
    modes = expand("my", {"matrix": [{"modes": ["async", "threaded"]}]}, given={"MODE": "gunicorn"}).overridden
    assert modes == ['experiment my: modes = ["async", "threaded"] in the experiment wins over MODE=gunicorn from the '
                     "command line or environment"]  # fmt: skip


def test_a_given_value_the_experiment_also_says_is_not_an_override():
    data = {"primes_limit": 30_000, "cpus": 1, "matrix": [{"modes": ["async"]}]}
    assert expand("t", data, given={"PRIMES_LIMIT": "30000", "CPUS": "1.0", "MODE": "async"}).overridden == []


def test_load_reads_the_command_line_from_the_environment_and_says_what_the_experiment_overrode(tmp_path, monkeypatch, capsys):
    path = tmp_path / "my.toml"
    path.write_text('[[matrix]]\nmodes = "async"\nworkloads = "cpu"\nusers = 3\n')
    monkeypatch.setenv("PRIMES_LIMIT", "100000")
    monkeypatch.setenv("USERS", "7")
    monkeypatch.setenv("CPUS", "")  # make exports a knob it was not given as an empty variable: not given
    (run,) = load(str(path)).runs
    assert (run.knobs.primes_limit, run.knobs.users, run.knobs.cpus) == (100_000, 3, 1)
    said = capsys.readouterr().err.splitlines()
    assert said == ["experiment my: users = 3 in the experiment wins over USERS=7 from the command line or environment"]


def test_run_time_given_is_the_whole_locust_run_and_the_warm_up_comes_out_of_it():
    (run,) = expand("t", {"warmup": 5, "matrix": [{"modes": "async", "workloads": "io"}]}, given={"RUN_TIME": "1m"}).runs
    assert (run.warmup, run.run_time, run.knobs.run_time) == (5, 55, "60s")
    (own,) = expand("t", {"run_time": 4, "matrix": [{"modes": "async", "workloads": "io"}]}, given={"RUN_TIME": "1m"}).runs
    assert own.run_time == 4
    with pytest.raises(ExperimentError, match=r"matrix 1: RUN_TIME=2s is the whole Locust run: it takes more than the warmup"):
        expand("t", {"matrix": [{"modes": "async"}]}, given={"RUN_TIME": "2s"})


def test_what_was_given_is_checked_and_said_again_in_the_command_that_resumes(monkeypatch):
    monkeypatch.setenv("PRIMES_LIMIT", "many")
    with pytest.raises(KnobError, match=r"^PRIMES_LIMIT='many' is not valid: PRIMES_LIMIT takes an integer from 2"):
        given_values(os.environ)
    exp = expand("t", ONE, given={"PRIMES_LIMIT": "100000", "ARRIVALS": "constant"})
    assert exp.given_args == " PRIMES_LIMIT=100000 ARRIVALS=constant"
    assert {r.arrivals for r in exp.runs} == {"constant"}
