"""The lab's command line: `lab up|bench|capacity|...` (the console script `make setup` installs; `python -m lab`
alike). Each make target of the lab is the command of its name: the knobs and options are environment variables,
make's variables among them, so `make bench RESUME=1` and `RESUME=1 lab bench` are the same command."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from contract import flags
from contract.declared import Who, declared
from contract.knobs import KnobError, Knobs, from_environ
from contract.modes import MODES
from lab.results.experiments import ExperimentError
from lab.results.folder import latest
from lab.stack import backends
from lab.stack.backends import Limit
from lab.stack.checkout import ROOT
from lab.stack.procs import Interrupted, LabError, tail


def _show_plan(knobs: Knobs, limit: Limit | None) -> None:
    print(f"lab: MODE={knobs.mode} ({knobs.server.summary})")
    print(
        f"lab: WORKLOAD={knobs.workload} IO_SECONDS={knobs.io_seconds:g} PRIMES_LIMIT={knobs.primes_limit} "
        f"WORKERS={knobs.workers} THREADS={knobs.threads}"
    )
    print(f"lab: CPU limit CPUS={knobs.cpus:g}: {limit.describe() if limit else 'not applied'}")
    if limit is not None and not limit.enforced and knobs.cpus > 0:
        print("lab: WARNING: no CPU limit could be enforced on this machine; results are not limited to CPUS", file=sys.stderr)


def _show_interpreter(url: str) -> None:
    """Which Python serves, from the server's report of itself: its build is part of the configuration."""
    from contract import interpreter
    from lab.bench.verification import get

    _, _, body = get(f"{url}/healthz", timeout=10)
    built = (body.get("server") or {}).get("interpreter")
    if built:
        print(f"lab: the server runs on {interpreter.summary({'build': built})}")


def cmd_up(args: argparse.Namespace) -> int:
    from lab import live

    knobs = from_environ()
    backend = backends.get(args.backend)
    live.check_free()
    print(f"lab: starting PostgreSQL, the {knobs.mode} server and the Locust web UI ({backend.name} backend)...", flush=True)
    ready = False
    try:
        command = f"make up MODE={knobs.mode}"
        with backend.serving(knobs, command, locust_ui=True, locust_workers=args.locust_workers) as stack:
            _show_plan(knobs, stack.limit)
            _show_interpreter(stack.url)
            print(f"lab: app     {stack.url}/currency/convert?from=usd&to=gbp")
            print(f"lab: Locust  {stack.locust_url}  (users {knobs.users}, spawn rate {knobs.spawn_rate:g}/s)")
            with live.running(backend.name, stack, knobs) as page:
                print(f"lab: Lab     {page}  (and the Lab tab at {stack.locust_url}): switch modes, keep runs")
                print(f"lab: logs: {stack.logs}; Ctrl-C or `make down` stops everything", flush=True)
                ready = True
                while True:
                    signal.pause()
    except KeyboardInterrupt:
        if not ready:  # interrupted while starting: everything is stopped, but it never ran
            raise
    # once the lab is up, Ctrl-C is the way to stop a foreground `make up`: not an error
    print("\nlab: stopped everything it started", flush=True)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    backend = backends.down()
    print(f"lab: stopped everything the lab started ({backend} backend)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lab.bench.quick_check import quick_check
    from lab.results.folder import new_demo, shown, write_atomic
    from lab.results.quick_check import render

    knobs = from_environ()
    backend = backends.get(args.backend)
    print(f"lab: starting PostgreSQL and the {knobs.mode} server ({backend.name} backend)...", flush=True)
    with backend.serving(knobs, f"make demo MODE={knobs.mode}") as stack:
        _show_plan(knobs, stack.limit)
        _show_interpreter(stack.url)
        check = quick_check(stack.url, knobs.mode, knobs.workload, args.n)
        limit = stack.limit.describe() if stack.limit else None
    print(render(check))
    record = new_demo(knobs.mode, knobs.workload)
    write_atomic(record, json.dumps({"knobs": knobs.as_env(), "backend": backend.name, "cpu_limit": limit,
                                     **check.as_dict()}, indent=2))  # fmt: skip
    print(f"lab: recorded in {shown(record)}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from lab.bench.run import run_experiment
    from lab.results.experiments import load

    experiment = load(args.experiment, args.repeats)
    if args.detach:
        return detach(args, f"bench-{experiment.name}")
    try:
        folder = run_experiment(experiment, resume=args.resume, backend_name=args.backend, calibrate=args.calibrate,
                                settled=_settled_against_base())  # fmt: skip
    except (KeyboardInterrupt, Interrupted):
        print(
            f"\nbench: interrupted; finished runs are kept. Continue with: make bench EXPERIMENT={args.experiment}"
            f"{experiment.given_args} RESUME=1",
            file=sys.stderr,
        )
        return 130
    _say_picks(folder)
    return _judged(folder)


def _settled_against_base() -> Callable[[Path], str | None] | None:
    """BASE=folder on a bench: its repeats stop once every verdict against BASE is decided."""
    from contract.knobs import compare_settings

    values = compare_settings(os.environ)
    if not values["BASE"]:
        return None
    from lab.compare.comparison import Settings  # statistics' libraries: a second's import, only for a comparison
    from lab.compare.settle import against

    return against(Path(str(values["BASE"])), Settings.of(values))


def _say_picks(folder: Path) -> None:
    """Which to pick, in the report's own words, once every run is recorded: the bench measures, the report judges."""
    from lab.analysis.intervals import machine_spread
    from lab.report.rows import rows_of
    from lab.report.words import advice
    from lab.results.folder import ResultsFolder
    from lab.results.run_files import read_records

    if picks := advice(rows_of(read_records(folder), machine_spread(ResultsFolder(folder).interpreter))):
        print("bench: which to pick (`make report` draws the charts and gives the reasons):")
        print("\n".join(f"  - {sentence}" for sentence in picks), flush=True)


def cmd_capacity(args: argparse.Namespace) -> int:
    from lab.bench.capacity.command import configurations, run_capacity
    from lab.bench.capacity.summary import recompute_from_records
    from lab.bench.capacity.words import found_in_words
    from lab.results.experiments import load

    if args.again:
        for f in recompute_from_records(Path(args.again)):
            print(f"  - {f.label} · {f.workload} · CPUS={f.cpus:g} · {f.arrivals}: {f.capacity}; " + found_in_words(f))
        print(f"capacity: {Path(args.again) / 'capacity.json'} worked out anew from its records; `make report "
              f"RESULTS={args.again}` draws it")  # fmt: skip
        return 0
    experiment = load(args.experiment) if "EXPERIMENT" in args.given else None  # else the knobs' one configuration
    configs, slo = configurations(experiment, from_environ())
    if args.detach:
        return detach(args, f"capacity-{experiment.name if experiment else 'capacity'}")
    try:
        folder = run_capacity(configs, slo, name=experiment.name if experiment else "capacity", max_steps=args.steps,
                              backend_name=args.backend, budget_s=experiment.budget_s if experiment else None)  # fmt: skip
    except (KeyboardInterrupt, Interrupted):
        print("\ncapacity: interrupted; every finished step is kept", file=sys.stderr)
        return 130
    return _judged(folder)


def _judged(folder: Path) -> int:
    """THRESHOLDS judged on the folder a bench or a capacity search wrote: non-zero where one is broken."""
    from lab.compare.command import judge_thresholds

    return judge_thresholds(folder)


def cmd_compare(args: argparse.Namespace) -> int:
    """`make compare`: each figure's change between two results folders, its interval and a verdict; GATE=1 exits by it."""
    from lab.compare.command import compare_folders

    if not (args.base and args.new):
        raise LabError("make compare takes BASE=folder and NEW=folder: two results folders, such as results/latest")
    return compare_folders(str(args.base), str(args.new))


def cmd_decide(args: argparse.Namespace) -> int:
    """`make bench APP=...`: measure the app's paths, try the configurations worth trying, say which to deploy."""
    from lab.bench.decide import decide
    from lab.report import deploy, deploy_words

    if args.detach:
        return detach(args, "decide")
    try:
        folder = decide(backend_name=args.backend, minutes=args.minutes)
    except (KeyboardInterrupt, Interrupted):
        print("\ndecide: interrupted; every finished run is kept", file=sys.stderr)
        return 130
    if decided := deploy.read(folder):
        print("decide: which to deploy (`make report` gives the reasons with every figure):")
        print("\n".join(f"  - {sentence}" for sentence in deploy_words.decision_sentences(decided[0])), flush=True)
    return 0


def detach(args: argparse.Namespace, name: str) -> int:
    """Run the same command in a session of its own, its output in a log: a closed terminal or a dropped
    connection does not end it. Returns once it holds the stack (or has failed to start)."""
    from lab.results.folder import detached_log
    from lab.stack import stack_state
    from lab.stack.place import Place
    from lab.stack.procs import spawn, wait_until

    place = Place()
    log = detached_log(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "lab", *(part for part in sys.argv[1:] if part != "--detach")]
    # a session of its own: no terminal to hang up; DETACH=1 from make stays with this one
    child = spawn(argv, cwd=ROOT, env={**os.environ, "DETACH": "0"}, log=log)
    wait_until(lambda: child.poll() is not None or stack_state.read(place).get("supervisor") == child.pid, 120)
    if child.poll() is not None:
        print(f"error: the detached run stopped at once (code {child.returncode}); end of {log}:\n{tail(log)}", file=sys.stderr)
        return child.returncode or 2
    print(f"lab: running detached as pid {child.pid}; progress in {log} (`tail -f {log}`); `make down` stops it")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from lab.report.build import build
    from lab.results.folder import ResultsFolder

    page = build(Path(args.results) if "RESULTS" in args.given else latest())  # the default: LAB_RESULTS's latest
    print(f"report: {page}\nreport: {ResultsFolder(page.parent).report_md} and the charts beside it")
    return 0


def cmd_modes(args: argparse.Namespace) -> int:
    width = max(map(len, MODES))
    for mode in MODES.values():
        print(f"  {mode.name:<{width}}  {mode.service:<7}  {mode.summary}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from lab.stack.watch import follow_logs

    try:
        return follow_logs(args.backend)
    except KeyboardInterrupt:  # the way to stop following: not an error
        return 0


def cmd_ps(args: argparse.Namespace) -> int:
    from lab.stack.watch import processes

    return processes(args.backend)


def cmd_images(args: argparse.Namespace) -> int:
    from lab.stack.images import main as build

    return build()


def cmd_k8s(args: argparse.Namespace) -> int:
    from lab.stack.kubernetes import run

    return run(args, args.given)


def cmd_knobs(args: argparse.Namespace) -> int:
    from contract.knob_tables import listing, markdown, write

    if args.write:  # after a knob's row is added or changed in contract/declared.py
        changed = write(ROOT)
        print(f"knobs: wrote {', '.join(changed)}" if changed else "knobs: the README, docs/knobs.md and compose.yaml "
              "already hold the declared knobs")  # fmt: skip
        return 0
    for who in args.who or [Who.RUN]:
        print(markdown(declared(Who(who))) if args.markdown else "\n".join(listing(declared(Who(who)))))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """`make serve`: PostgreSQL and the server alone on this host, for a lab on another host to measure (TARGET)."""
    from lab.stack.backends.native import NativeBackend
    from lab.stack.backends.remote import address, measured_with

    knobs = from_environ()
    bind = address("BIND")
    print(f"lab: starting PostgreSQL and the {knobs.mode} server alone, listening on {bind}...", flush=True)
    with NativeBackend().serving(knobs, f"make serve MODE={knobs.mode}", bind=bind) as stack:
        _show_plan(knobs, stack.limit)
        _show_interpreter(stack.url)
        port = stack.url.rsplit(":", 1)[1]
        host = "<this host>" if bind == "0.0.0.0" else bind
        reach = "from this host only: BIND=0.0.0.0 serves other hosts" if bind == "127.0.0.1" else "from other hosts"
        print(f"lab: serving on {bind}:{port} ({reach}); PostgreSQL listens on this host's loopback only")
        print(f"lab: measure it with: make bench|capacity TARGET=http://{host}:{port} {measured_with(knobs)}")
        print(f"lab: logs: {stack.logs}; Ctrl-C or `make down` stops it", flush=True)
        try:
            while True:
                signal.pause()
        except KeyboardInterrupt:  # the way to stop it once it serves: not an error
            pass
    print("\nlab: stopped the server and PostgreSQL", flush=True)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """`make worker`: Locust worker(s) for the bench's master on another host, run after run, until Ctrl-C."""
    from lab.stack.backends.remote_workers import join

    if not args.master:
        raise LabError("make worker takes MASTER=host: the host whose bench runs with LOCUST_REMOTE_WORKERS=N")
    try:
        join(args.master, args.locust_master_port, args.locust_workers, args.wait)
    except KeyboardInterrupt:
        print("\nlab: the worker stopped", flush=True)
    return 0


APP_COMMANDS = ("up", "demo", "capacity", "serve")  # bench prepares the app as it loads its experiment


def route(args: argparse.Namespace) -> argparse.Namespace:
    """`make bench APP=...` without an EXPERIMENT of the user's measures the app and decides how to serve it
    (lab/bench/decide.py); so does `make capacity APP=...` without one and without a MODE."""
    app_alone = bool(os.environ.get("APP")) and "EXPERIMENT" not in args.given
    if app_alone and (args.command == "bench" or (args.command == "capacity" and not os.environ.get("MODE"))):
        args.command, args.run = "decide", cmd_decide
    return args


def command_line() -> argparse.ArgumentParser:
    """The commands, each option of theirs from its declaration (contract/flags.py): a flag, else the make variable."""
    parser = argparse.ArgumentParser(prog="lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str, *names: str) -> argparse.ArgumentParser:
        each = sub.add_parser(name, help=help)
        each.set_defaults(run=run)
        for option in names:
            flags.add(each, option)
        return each

    command("up", cmd_up, "start PostgreSQL, the app in MODE and the Locust web UI; Ctrl-C stops", "BACKEND", "LOCUST_WORKERS")
    command("down", cmd_down, "stop everything the lab started, on whichever backend")
    flags.add(command("demo", cmd_demo, "the post's quick check: N concurrent requests", "BACKEND"), "N", "-n", "--requests")
    bench = command("bench", cmd_bench, "run EXPERIMENT headless and record every run; with APP= alone, decide how to "
                    "serve the app", "BACKEND", "RESUME", "CALIBRATE", "DETACH", "REPEATS", "MINUTES")  # fmt: skip
    flags.add(bench, "EXPERIMENT", positional=True)
    capacity = command("capacity", cmd_capacity, "the highest arrival rate held at SLO_P95_MS, by a bounded search; "
                       "with APP= and no MODE, decide as bench does", "EXPERIMENT", "BACKEND", "DETACH", "MINUTES")  # fmt: skip
    capacity.add_argument("--steps", type=int, default=8, help="steps at most per configuration")
    capacity.add_argument("--again", metavar="RESULTS", help="work a finished search's answers out anew from its records")
    compare = command("compare", cmd_compare, "each figure's change from BASE to NEW with its interval, and a verdict")
    flags.add(compare, "BASE", positional=True)
    flags.add(compare, "NEW", positional=True)
    command("decide", cmd_decide, "APP: measure each path, try the configurations worth trying, pick one", "BACKEND",
            "MINUTES", "DETACH")  # fmt: skip
    flags.add(command("report", cmd_report, "build report.html, report.md and charts from a results folder"), "RESULTS",
                positional=True)  # fmt: skip
    command("modes", cmd_modes, "list the server modes")
    knobs = command("knobs", cmd_knobs, "list the knobs and their defaults")
    knobs.add_argument("--who", choices=list(Who), action="append", help="the knobs of a run (default), or another group")
    knobs.add_argument("--markdown", action="store_true", help="as the table of the README and docs/knobs.md")
    knobs.add_argument("--write", action="store_true",
                       help="write the README's and docs/knobs.md's tables and compose.yaml's x-knobs block")  # fmt: skip
    command("serve", cmd_serve, "PostgreSQL and the server of MODE alone, on BIND, for a lab on another host")
    worker = command("worker", cmd_worker, "join the Locust master of a bench on another host as a Locust worker", "MASTER")
    flags.add(worker, "LOCUST_MASTER_PORT", "--master-port")
    flags.add(worker, "LOCUST_WORKERS", "--processes")
    worker.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the master before the first run")
    command("logs", cmd_logs, "follow the logs of the running lab", "BACKEND")
    command("ps", cmd_ps, "list the lab's processes or containers", "BACKEND")
    command("images", cmd_images, "build the local stand-in images (IMAGES=local): Debian via debootstrap, no registry")
    command("k8s", cmd_k8s, "render Kubernetes manifests for MODE/CPUS/... into K8S_OUT", "K8S_OUT", "LOCUST_WORKERS",
            "K8S_SECRET", "K8S_REGISTRY")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = command_line().parse_args(argv)
    try:
        args.given = flags.resolve(args)
        if "backend" in args:
            args.backend = backends.resolve(args.backend)
        args = route(args)
        if args.command in APP_COMMANDS and os.environ.get("APP"):
            from lab.stack.app_venv import prepare

            # the team's locustfile runs in closed loops of its own users, from the bench's Locust and make up's native one
            unrun = args.command == "capacity" or (args.command == "up" and args.backend == "compose")
            if os.environ.get("LOCUSTFILE") and unrun:
                raise KnobError(f"LOCUSTFILE is not run by `make {args.command}` on this backend yet (open arrivals and "
                                "compose's Locust UI send PATHS): use PATHS there, or make bench")  # fmt: skip
            prepare()  # the app's venv, locustfile and interface, before anything starts
        return args.run(args)
    except (KnobError, LabError, ExperimentError) as error:  # a record that cannot be read is a LabError too
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nlab: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except Interrupted as signal_name:
        print(f"lab: {signal_name}: stopped everything it started", file=sys.stderr)
        return 143
    except BrokenPipeError:  # `make modes | head`: the reader has all it wanted
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
