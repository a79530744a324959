"""The compose backend: the same runs as native, with PostgreSQL, the app and Locust in containers
(compose.yaml), run through compose_cli.py; CPU time is read from each container's
own cgroup on the host (cgroup v1 or v2), as the native backend reads its server's.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from contract import cgroup
from contract.cgroup import CpuUsage
from contract.knobs import Knobs, choice_setting, setting
from lab.stack import app_image, images, stack_state
from lab.stack.app_venv import facts as app_facts
from lab.stack.backends.compose_cli import compose, down, engine_answers, run
from lab.stack.backends.leftovers import stop_leftovers
from lab.stack.backends.seam import LocustOptions, RunFacts
from lab.stack.locust_api import TOKEN_ENV, new_token
from lab.stack.machine import interpreter_facts
from lab.stack.place import Place
from lab.stack.procs import LabError
from lab.stack.stack_state import StateHook

CONTAINER_RESULTS = Path("/results")  # where a bench's Locust container sees the results folder
CONTAINER_APP = "http://app:8000"
CONTAINER_LOCUSTFILE = "/team/locustfile.py"  # LOCUSTFILE, mounted into the bench's Locust container


def compose_env(knobs: Knobs) -> dict[str, str]:
    """What `docker compose` reads for one configuration: the knobs, SERVICE from the mode table and
    the images to run on."""
    source = choice_setting("IMAGES")
    return {**os.environ, **knobs.as_env(), "SERVICE": knobs.server.service, "IMAGES": source, **images.compose_env(source),
            **app_image.compose_env()}  # fmt: skip


def chosen_images() -> dict[str, str]:
    """The image each service runs on, by its compose variable, for the IMAGES in force."""
    chosen = images.compose_env(choice_setting("IMAGES"))
    return {image.variable: chosen.get(image.variable, image.official) for image in images.IMAGES}


RAISED = re.compile(r"^(?:[\w.]+\.)?\w+(?:Error|Exception): (.+)$")  # a traceback's last line, its module dropped


def engine_cpus() -> int:
    result = subprocess.run(["docker", "info", "--format", "{{.NCPU}}"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise LabError("no Docker engine answers: start one (`make engine` installs and starts Docker as root)")
    return int(result.stdout.strip() or 0)


def check_cpus(cpus: list[float]) -> None:
    """Docker refuses a CPU limit above the engine's CPU count: say so before anything starts."""
    most = engine_cpus()
    too_many = sorted({c for c in cpus if c > most})
    if too_many:
        raise LabError(f"CPUS={too_many[-1]:g} is not valid here: the Docker engine has {most} CPUs, so CPUS takes 0 to {most}")


def prepare(cpus: list[float]) -> None:
    """Before the first container: the engine answers, every CPU limit fits it, and the images exist."""
    check_cpus(cpus)
    if choice_setting("IMAGES") == "local":
        took = images.build_standins(lambda text: print(f"images: {text}", flush=True))
        print("images: stand-ins ready (IMAGES=local; built here from Debian, no registry): " + ", ".join(took), flush=True)
    if setting("APP"):  # its folder and requirements go into its image, built by compose from this context
        app_image.stage(say=lambda text: print(f"app image: {text}", flush=True))


def container_ended(container: str) -> str | None:
    """None while a container runs; else its state and exit code, in words."""
    result = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    if result.returncode != 0:
        return "its container is gone" if engine_answers() else "the Docker engine stopped answering"
    status, code = result.stdout.split()
    return None if status == "running" else f"its container is {status} (exit code {code})"


def container_pid(container: str) -> int | None:
    result = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", container], capture_output=True, text=True)
    pid = int(result.stdout.strip() or 0) if result.returncode == 0 else 0
    return pid or None


def cgroup_usage(pid: int | None) -> CpuUsage | None:
    """A container's CPU time and throttling, from the cgroup of its init process as the host sees it."""
    group = cgroup.of(pid) if pid is not None else None
    return group.usage() if group else None


def cgroup_quota(pid: int | None) -> float | None:
    """The CPU limit the kernel enforces on a container, in CPUs (None: no limit, or unreadable)."""
    group = cgroup.of(pid) if pid is not None else None
    return group.limit() if group else None


class ComposeLimit:
    """The app container's CPU limit, as the engine set it in the container's cgroup."""

    def __init__(self, cpus: float, pid: int | None) -> None:
        self.cpus = cpus
        self.quota = cgroup_quota(pid)
        self.enforced = cpus == 0 or (self.quota is not None and abs(self.quota - cpus) < 0.01)

    def describe(self) -> str:
        if self.cpus == 0:
            return "none (CPUS=0)"
        seen = "not found in the container's cgroup" if self.quota is None else f"{self.quota:g} CPU in the container's cgroup"
        return f"Docker --cpus={self.cpus:g} (a CFS quota set by the engine; {seen})"


class ComposeApp:
    """The app container for one configuration; PostgreSQL stays up between runs."""

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.env = compose_env(knobs)
        self.limit: ComposeLimit | None = None
        self.id = ""
        self.pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{setting('APP_PORT')}"

    @property
    def image(self) -> str:
        return f"concurrency-lab-{self.env['SERVICE']}:{self.env['IMAGES']}"

    def start(self) -> None:
        try:
            run(["up", "--detach", "--wait", *build_flags(self.env), "postgres", "app"], self.env)
        except LabError as error:  # the server's own last words say why it exited
            said = subprocess.run(compose("logs", "--no-color", "--no-log-prefix", "--tail", "12", "app"), env=self.env,
                                  capture_output=True, text=True, timeout=60, check=False).stdout.strip()  # fmt: skip
            raised = [m.group(1) for line in said.splitlines() if (m := RAISED.match(line))]
            headline = f"{raised[-1]}: " if raised else ""  # the exception the server died of, before compose's words
            raise LabError(f"{headline}{error}\nthe app's log ends:\n{said}" if said else str(error)) from None
        self.id = self.container()
        self.pid = container_pid(self.id)
        self.limit = ComposeLimit(self.knobs.cpus, self.pid)

    def died(self) -> str | None:
        return container_ended(self.id) if self.id else None

    def facts(self) -> RunFacts:
        chosen = chosen_images()
        found: RunFacts = {"images": images.describe([chosen["POSTGRES_IMAGE"], self.image, chosen["LOCUST_IMAGE"]])}
        if app := app_facts():
            found["app"] = app
        return found

    def container(self, service: str = "app") -> str:
        return run(["ps", "--quiet", service], self.env).strip()

    def usage(self) -> CpuUsage:
        return cgroup_usage(self.pid) or CpuUsage(0.0)

    def logs(self) -> str:
        return run(["logs", "--no-color", "--tail", "200", "app"], self.env)

    @property
    def setup_argv(self) -> list[str]:
        """APP_SETUP in the app's container, beside the containers' database (APP_SETUP from the caller's environment)."""
        return compose("exec", "-T", "-e", "APP_SETUP", "app", "python", "-m", "contract.serve", "setup")

    def stop(self) -> None:
        run(["rm", "--stop", "--force", "app"], self.env)
        self.pid = None


LOCUST_CONTAINER = "concurrency-lab-bench-locust"  # named, so that its cgroup can be read while it runs


def writable(results: Path) -> None:
    """The folders Locust's container writes in a results folder, open to it: it runs as its image's own user."""
    for sub in ("locust", "timeline"):
        (results / sub).mkdir(parents=True, exist_ok=True)
        (results / sub).chmod(0o777)


def locust_argv(options: LocustOptions, results: Path) -> list[str]:
    """Locust's headless run in a locust-master container, writing into the results folder, mounted (a decision
    measures each path in a folder of its own, made after the backend opened)."""
    writable(results)
    mapped = {k: CONTAINER_RESULTS / Path(v).relative_to(results) if isinstance(v, Path) else v for k, v in options.items()}
    mapped["--host"] = CONTAINER_APP
    pull = ["--pull", "never"] if choice_setting("IMAGES") == "local" else []
    files, own = "/lab/locust/locustfile.py", []
    if path := setting("LOCUSTFILE"):  # the team's own, mounted beside the lab's: its users send the traffic
        files += f",{CONTAINER_LOCUSTFILE}"
        own = ["--volume", f"{Path(path).resolve()}:{CONTAINER_LOCUSTFILE}:ro", "--env", f"LOCUSTFILE={CONTAINER_LOCUSTFILE}"]
    argv = compose("run", "--rm", "--no-deps", "-T", *pull, "--name", LOCUST_CONTAINER, "--volume",
                   f"{results}:{CONTAINER_RESULTS}", *own, "locust-master", "-f", files, "--headless",
                   "--only-summary")  # fmt: skip
    return argv + [str(part) for pair in mapped.items() for part in pair]


def cpu_seconds(container: str) -> float | None:
    usage = cgroup_usage(container_pid(container)) if container else None
    return None if usage is None else usage.cpu_seconds


class ComposeBackend:
    """Runs in containers: PostgreSQL stays up for the whole experiment, an app container per run,
    and each run's Locust in a container of its own."""

    name = "compose"
    load_generator_is_child = False

    def __init__(self, place: Place | None = None) -> None:
        self.place = place or Place()
        # the images too: PostgreSQL's container started again must be the one the runs started (IMAGES=local
        # asks no registry), not compose's default image
        self.env = {**os.environ, **images.compose_env(choice_setting("IMAGES"))}
        self.pg_container = ""

    def check_database(self) -> str | None:
        if run(["ps", "--status", "running", "--quiet", "postgres"], self.env).strip():
            return None
        run(["up", "--detach", "--wait", "postgres"], self.env)
        self.pg_container = ""
        return "PostgreSQL's container had stopped; the lab started it again"

    def open(self, folder: Path | None, cpus: list[float]) -> str:
        prepare(cpus)
        if folder is not None:
            writable(folder)
        source = choice_setting("IMAGES")
        print(f"bench: compose backend on {source} images: " + ", ".join(self.images().values()), flush=True)
        return f"the {self.images()['POSTGRES_IMAGE']} image"

    def images(self) -> dict[str, str]:
        return chosen_images()

    def app(self, knobs: Knobs, record: StateHook) -> ComposeApp:
        return ComposeApp(knobs)  # the engine owns the container's processes: `make down` stops them through compose

    def locust_argv(self, options: LocustOptions, results: Path) -> list[str]:
        return locust_argv(options, results)

    def locust_env(self, knobs: Knobs) -> dict[str, str]:
        return compose_env(knobs)

    def locust_cpu(self, locust: subprocess.Popen[bytes]) -> float | None:
        return cpu_seconds(LOCUST_CONTAINER)

    def interpreter(self, knobs: Knobs) -> dict[str, object]:
        env = compose_env(knobs)
        return interpreter_facts(compose("run", "--rm", "--no-deps", "-T", *build_flags(env), "--entrypoint", "python",
                                         "app", "-m", "contract.interpreter"), env)  # fmt: skip

    def postgres_cpu(self) -> float | None:
        if not self.pg_container:
            self.pg_container = run(["ps", "--quiet", "postgres"], self.env).strip()
        return cpu_seconds(self.pg_container)

    def close(self) -> None:
        down(self.env)

    @contextmanager
    def serving(self, knobs: Knobs, command: str, *, locust_ui: bool = False, locust_workers: int = 1) -> Iterator[ComposeStack]:
        """The stack of compose.yaml, healthy (`up --wait`); down, volumes and all, on the way out."""
        with stack_state.claimed(self.place, [self.name], command, partial(stop_leftovers, self.place)):
            token = new_token()  # the master takes the Lab's state from this stack's pushes alone (compose.yaml passes it)
            env = {**compose_env(knobs), TOKEN_ENV: token}
            prepare([knobs.cpus])
            locust = ["--scale", f"locust-worker={locust_workers}", "locust-master", "locust-worker"] if locust_ui else []
            try:
                run(["up", "--detach", "--wait", *build_flags(env), "postgres", "app", *locust], env)
                app = ComposeApp(knobs)
                app.pid = container_pid(app.container())
                limit = ComposeLimit(knobs.cpus, app.pid)
                print("lab: images: " + images.summary(app.facts()["images"]), flush=True)
                locust_url = f"http://127.0.0.1:{setting('LOCUST_PORT')}"
                yield ComposeStack(app.url, limit, locust_url, "make logs (docker compose logs)", app, token)
            finally:
                down(env)


@dataclass
class ComposeStack:
    url: str
    limit: ComposeLimit
    locust_url: str
    logs: str
    app: ComposeApp
    locust_token: str  # what its Locust master takes pushes with

    def restart(self, knobs: Knobs) -> None:
        """The app under new knobs, for the Lab page: compose recreates the app container alone (its old one
        stops before the new one starts, never two servers); Locust's containers and PostgreSQL stay."""
        app = ComposeApp(knobs)
        app.start()
        self.app = app
        self.limit = app.limit or ComposeLimit(knobs.cpus, app.pid)


def build_flags(env: dict[str, str]) -> list[str]:
    """Build the app image unless BUILD=0; never reach for a registry with IMAGES=local."""
    build = ["--build"] if choice_setting("BUILD") == "1" else []
    return build + (["--pull", "never"] if env["IMAGES"] == "local" else [])
