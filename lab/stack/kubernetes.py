"""Kubernetes manifests for one configuration of the lab: `python -m lab.stack.kubernetes [--out DIR]`.

The knobs are read and validated as for every other command; a knob they refuse stops with their
own message and nothing is written. What runs is what compose.yaml runs, read from compose.yaml
itself (images, commands, environments, health checks, mounts) and filled in with the variables
the compose backend sets (lab.stack.backends.compose.compose_env), so that the two backends cannot
drift apart: PostgreSQL seeded from db/init.sql, the app of MODE with `resources.limits.cpu` =
CPUS (the CFS quota docker's --cpus sets), Locust's master with its web UI, and LOCUST_WORKERS
workers. The folder holds plain YAML and a kustomization.yaml: `kubectl apply -k DIR`.

Secrets are never written as real values: pods read DB_PASSWORD and DJANGO_SECRET_KEY from a
Secret, either one the user made (--secret NAME) or random placeholders generated here and
marked as such.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import secrets
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from contract.knobs import KnobError, Knobs, from_environ, setting
from contract.serve import server_plan
from lab.stack.backends.compose import compose_env
from lab.stack.checkout import ROOT
from lab.stack.images import IMAGES

Doc = dict[str, object]  # one Kubernetes object (or the kustomization), as YAML will show it

COMPOSE_FILE = ROOT / "compose.yaml"
# The settings that are secrets: a pod reads them from a Secret, never from a value written here.
SECRET_KEYS = ("DB_PASSWORD", "DJANGO_SECRET_KEY")
POSTGRES_PORT = 5432  # where PostgreSQL's image listens; compose's DATABASE_URL says postgres:5432 too
LOCUST_WORKER_PORT = 5557  # Locust's default --master-bind-port, where workers reach the master
# What a container reads from a project folder compose mounts whole (`.:/lab` for Locust): a
# ConfigMap carries these files instead: the locustfile with the Lab tab it imports (its page and
# script beside it), the contract it imports, and db/init.sql, where contract.endpoint reads the
# seeded pairs.
FOLDER_FILES: dict[str, tuple[str, ...]] = {
    ".": (
        *sorted(f"locust/{p.name}" for p in (ROOT / "locust").iterdir() if p.suffix in (".py", ".html", ".js")),
        "db/init.sql",
        *sorted(f"contract/{p.name}" for p in (ROOT / "contract").glob("*.py")),
    ),
}
# Readiness probes. The app's tolerates a minute or more of late answers: /healthz is one more
# request to a server that may serve one at a time, so under load it waits in line, and a
# pod marked unready would leave the Service in the middle of a measurement.
PROBE_TIMING: dict[str, dict[str, int]] = {
    "postgres": {"periodSeconds": 2, "timeoutSeconds": 3, "failureThreshold": 30},
    "app": {"periodSeconds": 2, "timeoutSeconds": 5, "failureThreshold": 60},
    "locust-master": {"periodSeconds": 2, "timeoutSeconds": 3, "failureThreshold": 30},
}
COMPOSE_STOP_GRACE = 10  # seconds: compose's default stop_grace_period
FILES = ("namespace.yaml", "secret.yaml", "postgres.yaml", "app.yaml", "locust.yaml", "kustomization.yaml")
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
URL = re.compile(r"https?://[^\s'\"]+")
DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _mapping(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ValueError(f"compose.yaml: {where} is not a mapping")
    return {str(key): item for key, item in value.items()}


def _sequence(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"compose.yaml: {where} is not a list")
    return value


def cpu_quantity(cpus: float) -> str:
    """CPUS as a Kubernetes CPU quantity: whole CPUs, else millicpus. A limit of L CPUs is a CFS
    quota of L x the period, as docker's --cpus=L; Kubernetes counts in millicpus, so a finer
    CPUS is refused rather than rounded."""
    if cpus == int(cpus):
        return str(int(cpus))
    millis = round(cpus * 1000)
    if abs(millis - cpus * 1000) > 1e-6:
        raise KnobError(f"CPUS={cpus:g} is finer than Kubernetes can limit: its CPU unit is 1m (0.001 CPU)")
    return f"{millis}m"


class Compose:
    """compose.yaml, read with the variables the compose backend would give it."""

    def __init__(self, env: Mapping[str, str], path: Path = COMPOSE_FILE) -> None:
        spec = _mapping(yaml.safe_load(path.read_text()), "the file")
        self.project = str(spec["name"])
        self.services = {name: _mapping(body, name) for name, body in _mapping(spec["services"], "services").items()}
        self.named_volumes = set(_mapping(spec.get("volumes") or {}, "volumes"))
        self.env = env

    def service(self, name: str) -> dict[str, object]:
        return self.services[name]

    def interpolate(self, value: object) -> tuple[str, list[str]]:
        """A value as compose would fill it in, and the secrets it names: those become $(NAME),
        Kubernetes' reference to a variable of the container, never their value."""
        named: list[str] = []

        def fill(match: re.Match[str]) -> str:
            name = match["name"]
            if name in SECRET_KEYS:
                named.append(name)
                return f"$({name})"
            return self.env.get(name) or match["default"] or ""

        text = VARIABLE.sub(fill, str(value))
        if "${" in text or "$$" in text:
            raise ValueError(f"compose.yaml: {value!r} uses interpolation lab.stack.kubernetes does not read")
        return text, named

    def text(self, value: object) -> str:
        """A value outside an environment: it must name no secret."""
        text, named = self.interpolate(value)
        if named:
            raise ValueError(f"compose.yaml: {value!r} names a secret outside an environment")
        return text

    def image(self, service: str) -> str:
        return self.text(self.service(service)["image"])

    def args(self, service: str) -> list[str]:
        """compose's `command` replaces the image's CMD, as a container's `args` does."""
        command = self.service(service).get("command")
        if command is None:
            return []
        if isinstance(command, str):
            return shlex.split(self.text(command))
        return [self.text(part) for part in _sequence(command, f"{service}.command")]

    def env_vars(self, service: str, secret: str) -> list[Doc]:
        """The service's environment; what names a secret reads it from the Secret, defined first
        so that a value such as DATABASE_URL can use it as $(DB_PASSWORD)."""
        from_secret: dict[str, Doc] = {}
        plain: list[Doc] = []
        for name, value in _mapping(self.service(service).get("environment") or {}, f"{service}.environment").items():
            text, named = self.interpolate("" if value is None else value)
            if len(named) == 1 and text == f"$({named[0]})":  # the whole value is one secret
                plain.append(secret_var(name, secret, named[0]))
                continue
            for key in named:
                from_secret.setdefault(key, secret_var(key, secret, key))
            plain.append({"name": name, "value": text})
        return [*from_secret.values(), *plain]

    def container_port(self, service: str) -> int:
        """The container side of the service's first published port (host:port:container)."""
        ports = _sequence(self.service(service)["ports"], f"{service}.ports")
        return int(self.text(ports[0]).rsplit(":", 1)[-1])

    def probe(self, service: str) -> Doc:
        """The service's healthcheck as a readiness probe: a shell test runs as is; a test that
        fetches a URL becomes the kubelet's own GET, with the URL's host as Host (Django checks it)."""
        test = [self.text(part) for part in _sequence(_mapping(self.service(service)["healthcheck"], service)["test"], service)]
        url = URL.search(" ".join(test[1:]))
        if test[0] == "CMD-SHELL":
            handler: Doc = {"exec": {"command": ["sh", "-c", test[1]]}}
        elif test[0] == "CMD" and url:
            parts = urlsplit(url.group())
            handler = {"httpGet": {"path": parts.path or "/", "port": parts.port or 80,
                                   "httpHeaders": [{"name": "Host", "value": parts.hostname or "localhost"}]}}  # fmt: skip
        else:
            raise ValueError(f"compose.yaml: {service}'s healthcheck is neither a shell test nor a URL")
        return {**handler, **PROBE_TIMING[service]}

    def stop_grace(self, service: str) -> int:
        text = self.text(self.service(service).get("stop_grace_period", f"{COMPOSE_STOP_GRACE}s"))
        match = re.fullmatch(r"(\d+)s", text)
        if not match:
            raise ValueError(f"compose.yaml: {service}.stop_grace_period {text!r} is not whole seconds")
        return int(match.group(1))

    def mounts(self, service: str) -> list[tuple[str, str]]:
        """(source, target) of each volume: a named volume or a path in the project."""
        found = []
        for volume in _sequence(self.service(service).get("volumes") or [], f"{service}.volumes"):
            source, target, *_ = self.text(volume).split(":")
            found.append((source, target))
        return found


def secret_var(name: str, secret: str, key: str) -> Doc:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def labels(project: str, name: str) -> dict[str, str]:
    """What selects a component's pods; stable across renders (a Deployment's selector cannot change)."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": project}


def config_map_name(source: str) -> str:
    return "files-" + (re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-") or "project")


@dataclass(frozen=True)
class Rendered:
    """The folder to write: file name -> its documents, and what `main` tells the user."""

    files: dict[str, list[Doc]]
    project: str
    built_here: list[str]  # images no public registry has: the cluster needs them pushed or loaded
    placeholder: bool


class Renderer:
    def __init__(self, knobs: Knobs, *, locust_workers: int, secret: str | None, registry: str | None) -> None:
        self.knobs = knobs
        self.compose = Compose(compose_env(knobs))
        self.project = self.compose.project
        self.locust_workers = locust_workers
        self.placeholder = secret is None
        self.secret = secret or f"{self.project}-secrets"
        self.registry = registry
        self.config_maps: dict[str, Doc] = {}
        self.secret_values = {key: f"placeholder-{secrets.token_urlsafe(18)}" for key in SECRET_KEYS} if secret is None else {}

    def meta(self, name: str, **extra: object) -> Doc:
        return {"name": name, "namespace": self.project, "labels": labels(self.project, name), **extra}

    def volumes(self, service: str) -> tuple[list[Doc], list[Doc]]:
        """compose's mounts as pod volumes and container mounts: a named volume is an emptyDir (the
        lab's database is only its seed, and `make down` drops compose's volume too); a project
        file or folder is a ConfigMap of its files, made once for every pod that mounts it."""
        volumes: list[Doc] = []
        mounts: list[Doc] = []
        for source, target in self.compose.mounts(service):
            name = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-") or "project"
            if source in self.compose.named_volumes:
                volumes.append({"name": name, "emptyDir": {}})
                mounts.append({"name": name, "mountPath": target})
                continue
            relative = Path(source).as_posix().removeprefix("./")
            folder = (ROOT / relative).is_dir()
            files = FOLDER_FILES[source] if folder else (relative,)
            keys = {path: path.replace("/", "--") for path in files}  # a ConfigMap key cannot hold a slash
            config_map = config_map_name(source)
            if config_map not in self.config_maps:
                about = {f"{self.project}/source": f"{', '.join(files)}: compose mounts {source} at {target}"}
                self.config_maps[config_map] = {"apiVersion": "v1", "kind": "ConfigMap",
                                                "metadata": self.meta(config_map, annotations=about),
                                                "data": {keys[path]: (ROOT / path).read_text() for path in files}}  # fmt: skip
            if folder:
                items = [{"key": keys[path], "path": path} for path in files]
                mounts.append({"name": name, "mountPath": target, "readOnly": True})
            else:  # one file at the path compose mounts it at
                items = [{"key": keys[relative], "path": Path(relative).name}]
                mounts.append({"name": name, "mountPath": target, "subPath": Path(relative).name, "readOnly": True})
            volumes.append({"name": name, "configMap": {"name": config_map, "items": items}})
        return volumes, mounts

    def container(self, service: str, *, ports: Sequence[tuple[str, int]], probe: bool = True) -> tuple[Doc, list[Doc]]:
        volumes, mounts = self.volumes(service)
        container: Doc = {"name": service, "image": self.compose.image(service)}
        args = self.compose.args(service)
        if args:
            container["args"] = args
        env = self.compose.env_vars(service, self.secret)
        if env:
            container["env"] = env
        if ports:
            container["ports"] = [{"name": name, "containerPort": port} for name, port in ports]
        if probe:
            container["readinessProbe"] = self.compose.probe(service)
        if mounts:
            container["volumeMounts"] = mounts
        return container, volumes

    def deployment(self, name: str, container: Doc, volumes: list[Doc], *, replicas: int = 1, recreate: bool = True,
                   pod_labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None) -> Doc:  # fmt: skip
        pod: Doc = {
            # compose's `init: true` keeps the server off PID 1, where a signal without a handler is
            # ignored and a stop waits for the kill; a shared process namespace does the same here
            "shareProcessNamespace": bool(self.compose.service(name).get("init")),
            "terminationGracePeriodSeconds": self.compose.stop_grace(name),
            "containers": [container],
        }
        if volumes:
            pod["volumes"] = volumes
        template_meta: Doc = {"labels": {**labels(self.project, name), **(pod_labels or {})}}
        if annotations:
            template_meta["annotations"] = dict(annotations)
        spec: Doc = {"replicas": replicas, "selector": {"matchLabels": labels(self.project, name)}}
        if recreate:  # one server, one database: never two side by side during a rollout
            spec["strategy"] = {"type": "Recreate"}
        spec["template"] = {"metadata": template_meta, "spec": pod}
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": self.meta(name), "spec": spec}

    def service(self, name: str, ports: Sequence[tuple[str, int]]) -> Doc:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.meta(name),
            "spec": {
                "selector": labels(self.project, name),
                "ports": [{"name": port_name, "port": port, "targetPort": port_name} for port_name, port in ports],
            },
        }

    def secret_annotations(self) -> dict[str, str]:
        """A placeholder Secret is new at every render: its checksum on the pods that read it rolls
        them together, so PostgreSQL (its data in an emptyDir) and the app agree on the password."""
        if not self.placeholder:
            return {}
        digest = hashlib.sha256("\n".join(self.secret_values.values()).encode()).hexdigest()[:16]
        return {f"{self.project}/secret-checksum": digest}

    def postgres(self) -> list[Doc]:
        ports = [("postgres", POSTGRES_PORT)]
        container, volumes = self.container("postgres", ports=ports)
        deployment = self.deployment("postgres", container, volumes, annotations=self.secret_annotations())
        return [deployment, self.service("postgres", ports)]

    def app(self) -> list[Doc]:
        knobs = self.knobs
        ports = [("http", self.compose.container_port("app"))]
        container, volumes = self.container("app", ports=ports)
        quantity = cpu_quantity(knobs.cpus) if knobs.cpus > 0 else None
        if quantity:  # requests = limits: the scheduler reserves what the quota allows
            container["resources"] = {"limits": {"cpu": quantity}, "requests": {"cpu": quantity}}
            cpu_note = (f"{quantity}: a CFS quota of CPUS={knobs.cpus:g} x the period (100 ms by the kubelet's default), "
                        f"as docker --cpus={knobs.cpus:g}")  # fmt: skip
        else:
            cpu_note = "none: CPUS=0, as docker without --cpus"
        # the image's entrypoint (python -m contract.serve) runs this, from the mode table
        plan = server_plan(knobs, host="0.0.0.0", port=ports[0][1], base_env={})
        annotations = {
            f"{self.project}/knobs": " ".join(f"{k}={v}" for k, v in knobs.as_env().items()),
            f"{self.project}/command": shlex.join(plan.argv),
            f"{self.project}/cpu-limit": cpu_note,
            **self.secret_annotations(),
        }
        deployment = self.deployment("app", container, volumes, pod_labels={f"{self.project}/mode": knobs.mode},
                                     annotations=annotations)  # fmt: skip
        return [deployment, self.service("app", ports)]

    def locust(self) -> list[Doc]:
        ui = self.compose.container_port("locust-master")
        master_ports = [("web", ui), ("workers", LOCUST_WORKER_PORT)]
        master, master_volumes = self.container("locust-master", ports=master_ports)
        worker, worker_volumes = self.container("locust-worker", ports=[], probe=False)
        return [
            self.deployment("locust-master", master, master_volumes),
            self.service("locust-master", master_ports),
            self.deployment("locust-worker", worker, worker_volumes, replicas=self.locust_workers, recreate=False),
        ]

    def secret_doc(self) -> Doc:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": self.meta(
                self.secret,
                annotations={
                    f"{self.project}/placeholder": "true",
                    f"{self.project}/about": "random values generated by `python -m lab.stack.kubernetes`, new at every render: "
                    "not a credential to keep; for your own, create a Secret with the keys "
                    f"{' and '.join(SECRET_KEYS)} and render with --secret NAME",
                },
            ),
            "type": "Opaque",
            "stringData": dict(self.secret_values),
        }

    def render(self) -> Rendered:
        postgres, app, locust = self.postgres(), self.app(), self.locust()
        part_of = {"app.kubernetes.io/part-of": self.project}
        namespace: Doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.project, "labels": part_of}}
        files: dict[str, list[Doc]] = {"namespace.yaml": [namespace]}
        if self.placeholder:
            files["secret.yaml"] = [self.secret_doc()]
        files["postgres.yaml"] = [self.config_maps[config_map_name("./db/init.sql")], *postgres]
        files["app.yaml"] = app
        files["locust.yaml"] = [self.config_maps[config_map_name(".")], *locust]
        images = {self.compose.image(name) for name in self.compose.services}
        built_here = sorted(image for image in images if self.built_here(image))
        kustomization: Doc = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": self.project,
            "resources": list(files),
        }
        if self.registry:
            kustomization["images"] = [{"name": name, "newName": f"{self.registry}/{name}"}
                                       for name in sorted({image_name(image) for image in built_here})]  # fmt: skip
        files["kustomization.yaml"] = [kustomization]
        return Rendered(files, self.project, built_here, self.placeholder)

    def built_here(self, image: str) -> bool:
        """The app's image and the stand-ins are built on this machine: a cluster pulls them from a registry."""
        return image == self.compose.image("app") or image in {i.standin for i in IMAGES}


def image_name(image: str) -> str:
    """An image without its tag (a registry's port is not a tag), as kustomize's `images` matches it."""
    head, _, tail = image.rpartition(":")
    return head if head and "/" not in tail else image


def render(knobs: Knobs, *, locust_workers: int = 1, secret: str | None = None, registry: str | None = None) -> Rendered:
    return Renderer(knobs, locust_workers=locust_workers, secret=secret, registry=registry).render()


class _Dumper(yaml.SafeDumper):
    """Block style, file contents as literal blocks, and no anchors for the dicts the builders share."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _text)


def to_yaml(docs: list[Doc], header: str) -> str:
    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    body = "---\n".join(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000) for doc in docs)
    return comment + body


def header(knobs: Knobs, name: str, rendered: Rendered) -> str:
    text = (
        f"Rendered by `python -m lab.stack.kubernetes` from the knobs (MODE={knobs.mode} WORKLOAD={knobs.workload} "
        f"CPUS={knobs.cpus:g})\nand compose.yaml: change a knob and render again rather than edit this file.\n"
    )
    if name == "secret.yaml":
        text += (
            "\nPLACEHOLDER secrets: random values generated at this render, never a real credential.\n"
            f"For your own: kubectl -n {rendered.project} create secret generic NAME "
            + " ".join(f"--from-literal={key}=..." for key in SECRET_KEYS)
            + "\nthen render with --secret NAME (this file is then left out).\n"
        )
    return text


def write(out: Path, knobs: Knobs, rendered: Rendered) -> list[Path]:
    """Write the folder; a file an earlier render wrote and this one does not (secret.yaml) goes."""
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if name not in rendered.files:
            (out / name).unlink(missing_ok=True)
    written = []
    for name, docs in rendered.files.items():
        path = out / name
        path.write_text(to_yaml(docs, header(knobs, name, rendered)))
        written.append(path)
    return written


def _secret_name(text: str) -> str:
    if len(text) > 253 or not DNS_NAME.match(text):
        raise KnobError(f"K8S_SECRET={text!r} is not a Secret name: lower-case letters, digits, '-' and '.'")
    return text


def _registry(text: str) -> str:
    if not text.strip("/") or any(c.isspace() for c in text):
        raise KnobError(f"K8S_REGISTRY={text!r} is not a registry, such as registry.example.com/lab")
    return text.rstrip("/")


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run(args: argparse.Namespace, given: set[str]) -> int:
    """`make k8s` (`lab k8s`), its options read (contract/flags.py): the manifests of the knobs, written into K8S_OUT."""
    try:
        args.out = Path(args.k8s_out) if "K8S_OUT" in given else ROOT / args.k8s_out  # the default: the checkout's
        args.secret = args.k8s_secret and _secret_name(args.k8s_secret)
        args.registry = args.k8s_registry and _registry(args.k8s_registry)
        knobs = from_environ()
        rendered = render(knobs, locust_workers=args.locust_workers, secret=args.secret, registry=args.registry)
    except KnobError as error:  # nothing is written
        print(f"error: {error}", file=sys.stderr)
        return 2
    written = write(args.out, knobs, rendered)
    out, ns, ui = _shown(args.out), rendered.project, setting("LOCUST_PORT")
    limit = f'limits.cpu "{cpu_quantity(knobs.cpus)}"' if knobs.cpus > 0 else "no CPU limit"
    workers = f"{args.locust_workers} Locust worker{'s' if args.locust_workers > 1 else ''}"
    print(f"k8s: wrote {len(written)} files into {out}/ (MODE={knobs.mode} WORKLOAD={knobs.workload} CPUS={knobs.cpus:g}: "
          f"{limit}; {workers})")  # fmt: skip
    if rendered.placeholder:
        print("k8s: secret.yaml holds random placeholders, marked as such; for a Secret of your own: --secret NAME")
    built = ", ".join(rendered.built_here)
    if args.registry:
        print(f"k8s: the cluster pulls what is built here ({built}) from {args.registry}/: push it there first")
    else:
        print(f"k8s: built here, in no registry: {built}; push to a registry and render with --registry, or load into "
              "the cluster (kind load docker-image ...)")  # fmt: skip
    print(f"apply:  kubectl apply -k {out}")
    print(f"UI:     kubectl -n {ns} port-forward svc/locust-master {ui}:8089, then http://127.0.0.1:{ui}")
    print(f"remove: kubectl delete -k {out}")
    return 0
