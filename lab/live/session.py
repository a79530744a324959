"""The live lab held by `make up`: a sample of the stack every second, the state the Lab tab and page show
(pushed to Locust's web app), and the two things the page asks of it: apply new settings (a new server
through the stack that started the first) and keep a run."""

from __future__ import annotations

import resource
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from contract.cgroup import CpuUsage
from contract.knobs import KnobError, Knobs, int_setting
from contract.modes import MODES
from lab.bench.checks import findings, word
from lab.bench.verification import verify
from lab.live import figures, switch
from lab.live.keep import Kept, Where, keep
from lab.live.probes import Probe
from lab.live.window import Sample, live_locust, measured
from lab.results.experiments import RunConfig, run_names
from lab.results.folder import link_latest, new_folder
from lab.results.record import LimitApplied, MachineSaturated, Verification, now
from lab.results.typedjson import write
from lab.stack import machine_cpu
from lab.stack.backends import Limit
from lab.stack.locust_api import Locust, LocustLive
from lab.stack.procs import Interrupted, LabError

TICK = 1.0  # seconds between samples, and between pushes to Locust
STRETCH = 10.0  # seconds of samples behind the live figures
VERIFYING, RUNNING, RESTARTING, FAILED = "verifying", "running", "restarting", "failed"


class BusyError(LabError):
    """Another apply or keep is under way: one at a time."""


class LiveApp(Protocol):
    @property
    def url(self) -> str: ...

    def usage(self) -> CpuUsage: ...


class LiveStack(Protocol):
    """What the live lab needs of a serving stack, on either backend."""

    @property
    def app(self) -> LiveApp: ...

    @property
    def limit(self) -> Limit | None: ...

    @property
    def locust_url(self) -> str: ...

    @property
    def locust_token(self) -> str: ...  # what the Locust it started takes pushes with (locust_api.py)

    def restart(self, knobs: Knobs) -> None: ...


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process, not its children
    return usage.ru_utime + usage.ru_stime


class LiveLab:
    def __init__(self, backend: str, stack: LiveStack, probe: Probe, knobs: Knobs, *, control_port: int,
                 password: bool, postgres: str | None, folder: Path | None = None) -> None:  # fmt: skip
        self.backend, self.stack, self.probe = backend, stack, probe
        self.server_knobs = knobs  # what the server was started with
        self.run_knobs = knobs  # what Locust's users send: the server's, or WORKLOAD changed alone
        self.locust = Locust(stack.locust_url, stack.locust_token)
        self.control_port, self.password, self.postgres = control_port, password, postgres
        self.folder = folder or new_folder("live")  # one per `make up`, made by its first kept run
        self.operation = threading.Lock()  # one apply or keep at a time; the stack is stopped only after it
        self.stopping = threading.Event()
        self.first_verification = threading.Event()  # set while the first verification holds `operation`
        self.phase, self.message = VERIFYING, f"verifying the {knobs.mode} server from its own report"
        self.since = now()
        self.verification: Verification | None = None
        self.samples: deque[Sample] = deque()
        self.anchor: Sample | None = None  # the first sample of Locust's window (its last reset)
        self.window_start: float | None = None
        self.live: LocustLive = {}
        self.locust_error: str | None = None
        self.kept: list[Kept] = []
        self.state: dict[str, Any] = {}
        self.costs: deque[tuple[float, float, float]] = deque(maxlen=12)  # (time, own CPU, plugin CPU ms)

    # ------------------------------------------------------------ sampling

    def run(self) -> None:
        """The sampler's loop, in a thread of its own until `stopping` is set."""
        self.verify_in_background()
        while not self.stopping.wait(TICK):
            try:
                self.tick()
            except Exception as error:  # a reading that failed once must not end the live figures
                print(f"lab: live figures: {error!r}", file=sys.stderr, flush=True)

    def tick(self) -> None:
        self.state = self.compose()
        try:
            self.live = self.locust.push(self.state)
            self.locust_error = None
        except LabError as error:
            self.locust_error = str(error)
            return
        if self.phase == RESTARTING:
            return  # the app is being replaced: its counters start anew
        self.record(self.read())

    def read(self, requests: int | None = None, failures: int | None = None) -> Sample:
        live = self.live
        return Sample(time.time(), self.probe.server(), machine_cpu.machine(), self.probe.postgres_cpu(),
                      self.probe.load_generator(), live.get("requests", 0) if requests is None else requests,
                      live.get("failures", 0) if failures is None else failures, live.get("user_count", 0),
                      self.probe.active_connections())  # fmt: skip

    def record(self, sample: Sample) -> None:
        window = self.live.get("window_start")
        if self.samples and (sample.requests < self.samples[-1].requests or window != self.window_start):
            self.samples.clear()  # Locust's statistics were reset: counters from before do not subtract
        if window != self.window_start:
            self.window_start, self.anchor = window, sample if window is not None else None
        self.samples.append(sample)
        while len(self.samples) > 2 and sample.at - self.samples[0].at > STRETCH:
            self.samples.popleft()
        self.costs.append((sample.at, _own_cpu(), float(self.live.get("plugin_cpu_ms", 0.0))))

    def fresh(self) -> None:
        """After a new server or a reset: no stretch spans two servers."""
        self.samples.clear()
        self.anchor, self.window_start = None, None

    # ------------------------------------------------------------ the state shown

    def cost(self) -> dict[str, float] | None:
        """The Lab's own CPU while it refreshes: this process (sampling, pushing, the control server) and
        the plugin's handlers in Locust, in CPU-milliseconds per second."""
        if len(self.costs) < 2:
            return None
        (t0, own0, plugin0), (t1, own1, plugin1) = self.costs[0], self.costs[-1]
        seconds = max(t1 - t0, 1e-9)
        return {"supervisor_ms_per_s": round((own1 - own0) * 1000 / seconds, 2),
                "plugin_ms_per_s": round((plugin1 - plugin0) / seconds, 2)}  # fmt: skip

    def compose(self) -> dict[str, Any]:
        knobs, live = self.run_knobs, self.live
        limit = self.stack.limit
        report = write(self.verification.server) if self.verification and self.verification.server else {}
        tables = figures.server_rows(report if isinstance(report, dict) else {}, self.server_knobs,
                                     limit.describe() if limit else "not applied")  # fmt: skip
        warnings: list[str] = []
        model = None
        users = int(live.get("user_count", 0))
        if len(self.samples) >= 2 and self.phase != RESTARTING:
            first, last = self.samples[0], self.samples[-1]
            result = measured(first, last, live_locust(first, last), processes=int(live.get("processes", 1)),
                              warned=bool(live.get("cpu_warned")))  # fmt: skip
            rate = live.get("throughput")
            tables += figures.live_rows(result, knobs.cpus, last.active_connections, rate)
            model = figures.model_now(knobs, users, result, rate[0] if rate else None)
            processes = knobs.capacity(int_setting("DB_POOL_SIZE"))[1]
            if users > 0:
                config = RunConfig(knobs, 0.0, max(result.locust.measured_seconds, 1e-3))
                # a full machine is not what bounds a server that does what the model says it can
                explained = model is not None and 0.9 <= model.ratio <= 1.1
                found = [f for f in findings(config, result, processes) if not (explained and isinstance(f, MachineSaturated))]
                warnings = [word(finding) for finding in found]
        tables += figures.model_rows(model, knobs)
        tables += [figures.row("warning", "the lab says", text) for text in warnings]
        if cost := self.cost():
            own = f"{cost['supervisor_ms_per_s']:.1f} ms/s in `make up`, {cost['plugin_ms_per_s']:.1f} ms/s in Locust's plugin"
            tables.append(figures.row("lab", "this tab's own CPU", own))
        env = knobs.as_env()
        return {
            "at": time.time(),
            "phase": self.phase,
            "message": self.message,
            "locust_error": self.locust_error,
            "running": {
                "label": run_names(self.server_knobs).label,
                "summary": self.server_knobs.server.summary,
                "knobs": self.server_knobs.as_env(),
                "workload": knobs.workload,
                "cpu_share": knobs.mix_cpu_share,
                "since": self.since,
                "backend": self.backend,
            },
            "form": {name: env[name] for name in switch.FORM},
            "modes": {
                m.name: {"summary": m.summary, "workers": m.default_workers, "threads": m.default_threads} for m in MODES.values()
            },
            "control": {"port": self.control_port, "password": self.password},
            "tables": tables,
            "warnings": warnings,
            "model": model.as_dict() if model else None,
            "kept": [k.summary() for k in self.kept],
            "results": str(self.folder),
            "cost": self.cost(),
        }

    # ------------------------------------------------------------ verifying, applying, keeping

    def verify_in_background(self) -> None:
        threading.Thread(target=self._verify_first, name="lab-verify", daemon=True).start()

    def _verify_first(self) -> None:
        with self.operation:
            self.first_verification.set()
            try:
                self._verify()
            finally:
                self.first_verification.clear()

    def _verify(self) -> None:
        knobs = self.server_knobs
        self.phase, self.message = VERIFYING, f"verifying the {knobs.mode} server from its own report"
        try:
            self.verification = verify(self.stack.app, knobs)
            self.phase, self.message = RUNNING, f"{run_names(knobs).label} runs and does the work its settings say"
        except Exception as error:  # a server that answers wrongly, or not at all: the page says so
            self.verification = Verification(ok=False, detail=str(error))
            self.phase, self.message = FAILED, f"{run_names(knobs).label} runs, but its verification failed: {error}"

    def apply(self, form: dict[str, object], start_users: bool = True) -> dict[str, Any]:
        """New settings from the page: validated as the command line does, the swarm stopped, the server
        restarted (when a server setting changed) and verified, Locust's users told, the statistics reset;
        then the same users started again if a swarm was running."""
        wanted = switch.requested(self.run_knobs, form)  # KnobError: the command line's own message
        if not self.operation.acquire(blocking=False):
            raise BusyError("the lab is busy with another change or a kept run; try again once it is done")
        try:
            if self.stopping.is_set():
                raise BusyError("the lab is stopping")
            live = self.live
            swarming = live.get("state") in ("spawning", "running")
            users, rate = int(live.get("target_users") or live.get("user_count") or 0), float(live.get("spawn_rate") or 1)
            self.locust.stop()
            restarted = switch.needs_restart(self.server_knobs, wanted)
            if restarted:
                self._restart(wanted)
            self.run_knobs = wanted
            self.locust.workload(wanted.workload, wanted.mix_cpu_share)
            self.locust.reset()
            self.fresh()
            if swarming and start_users and users > 0 and self.phase != FAILED:
                self.locust.swarm(users, rate)
            return {"ok": self.phase != FAILED, "restarted": restarted, "message": self.message}
        finally:
            self.operation.release()

    def _restart(self, wanted: Knobs) -> None:
        before = self.server_knobs
        self.phase, self.message = RESTARTING, f"stopping {run_names(before).label}, starting {run_names(wanted).label}"
        self.verification = None
        try:
            self.stack.restart(wanted)
            self.server_knobs, self.since = wanted, now()
        except LabError as error:
            said = str(error).splitlines()[0]
            try:  # back to what ran, so that a bad start never leaves the lab without a server
                self.stack.restart(before)
                self.since = now()
            except LabError as again:
                self.phase = FAILED
                self.message = f"{run_names(wanted).label} did not start ({said}), nor did {run_names(before).label} again " \
                               f"({str(again).splitlines()[0]}): no server runs"  # fmt: skip
                raise LabError(self.message) from None
            self._verify()
            self.message = f"{run_names(wanted).label} did not start ({said}); {run_names(before).label} runs again"
            raise LabError(self.message) from None
        finally:
            self.fresh()
        self._verify()

    def keep(self) -> Kept:
        if not self.operation.acquire(blocking=False):
            raise BusyError("the lab is busy with a change of settings; keep the run once it is done")
        try:
            if self.verification is None:
                raise LabError("the server is still being verified: keep the run once the page says it runs")
            window = self.locust.window()
            if window["start"] is None or self.anchor is None or window["user_count"] <= 0:
                raise LabError("no measured window yet: start a swarm; the window opens once every user runs (after "
                               "the ramp-up), and again at each reset of the statistics")  # fmt: skip
            requests = sum(int(e["num_requests"]) for e in window["entries"])
            failures = sum(int(e["num_failures"]) for e in window["entries"])
            if requests <= 0 or not window["rows"]:  # Locust's workers report their requests about once a second
                raise LabError("nothing answered in the measured window has reached Locust yet: keep the run in a "
                               "few seconds")  # fmt: skip
            last = self.read(requests, failures)
            limit = self.stack.limit
            applied = LimitApplied(self.server_knobs.cpus, limit.describe() if limit else None, bool(limit and limit.enforced))
            where = Where(self.backend, applied, self.postgres, datetime.fromtimestamp(window["start"], UTC).isoformat(
                timespec="seconds"))  # fmt: skip
            kept = keep(self.folder, self.run_knobs, window, self.anchor, last, where, self.verification)
            self.kept.append(kept)
            link_latest(self.folder)  # what `make report` reads by default
            return kept
        except (KnobError, OSError, ValueError) as error:
            raise LabError(f"could not keep the run: {error}") from None
        finally:
            self.operation.release()

    def finish(self, timeout: float = 180.0) -> None:
        """Stop sampling, and wait for an apply or keep under way: the stack is stopped only after it."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        # the first verification changes nothing: Ctrl-C stops the stack under it (at IO_SECONDS=5 it takes 20 s)
        while time.monotonic() < deadline and not self.first_verification.is_set():
            try:
                if self.operation.acquire(timeout=1.0):
                    self.operation.release()
                    break
            except (KeyboardInterrupt, Interrupted):  # Ctrl-C again, or SIGTERM: still wait for the change to end
                print("lab: waiting for the change under way to end before stopping everything", file=sys.stderr, flush=True)
        self.probe.close()
