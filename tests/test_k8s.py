"""The Kubernetes manifests (lab/stack/kubernetes.py): rendered for every mode and several CPU limits, each
object validated against the Kubernetes schemas kubernetes-validate ships (strict: an unknown
field fails), the app's CPU limit equal to CPUS, a refused knob refused with the knobs' own words
and nothing written, no secret written as a value, and the folder rendered by `kubectl kustomize`
where kubectl is installed. No cluster runs here."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from contract.knobs import DERIVED, KNOBS, SETTINGS, KnobError, from_environ, parse
from contract.modes import MODES
from contract.serve import server_plan
from lab.stack import kubernetes
from lab.stack.backends.compose import ComposeApp
from lab.stack.checkout import ROOT
from lab.stack.images import IMAGES

Doc = dict[str, Any]  # a document read back from YAML: nested as the file is
# The newest Kubernetes (major.minor) whose schemas the pinned kubernetes-validate ships
KUBERNETES = ".".join(kubernetes_validate.latest_version().split(".")[:2])
# A CPU quantity as the lab writes it: whole CPUs or millicpus (the schema takes any string)
QUANTITY = re.compile(r"^(?P<number>[0-9]+)(?P<milli>m?)$")
# What the environment may set that changes a render: cleared, so a test sees only what it sets
VARIABLES = (*KNOBS, *SETTINGS, *DERIVED, *(image.variable for image in IMAGES), "LOCUST_WORKERS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def render(out: Path, monkeypatch: pytest.MonkeyPatch, *, secret: str | None = None,
           registry: str | None = None, **env: str) -> dict[str, list[Doc]]:  # fmt: skip
    """Render into `out` as the command line does, and read the folder back from disk."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    knobs = from_environ()
    kubernetes.write(out, knobs, kubernetes.render(knobs, secret=secret, registry=registry))
    return {path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc] for path in sorted(out.glob("*.yaml"))}


def objects(files: dict[str, list[Doc]]) -> Iterator[Doc]:
    for name, docs in files.items():
        if name != "kustomization.yaml":  # kustomize's, not the API server's: `kubectl kustomize` checks it
            yield from docs


def find(files: dict[str, list[Doc]], kind: str, name: str) -> Doc:
    (found,) = [doc for doc in objects(files) if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


def pod(files: dict[str, list[Doc]], name: str) -> Doc:
    return find(files, "Deployment", name)["spec"]["template"]


def app_container(files: dict[str, list[Doc]]) -> Doc:
    return pod(files, "app")["spec"]["containers"][0]


def validate(docs: Iterator[Doc] | list[Doc]) -> None:
    for doc in docs:
        assert kubernetes_validate.validate(doc, KUBERNETES, strict=True) == KUBERNETES


def cpus_of(quantity: str) -> float:
    match = QUANTITY.match(quantity)
    assert match, f"{quantity!r} is not a CPU quantity the lab writes"
    return int(match["number"]) / (1000 if match["milli"] else 1)


def run_cli(out: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return subprocess.run([sys.executable, "-m", "lab", "k8s", "--out", str(out), *args], env={**base, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_renders_manifests_the_kubernetes_schemas_accept(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = render(tmp_path / "out", monkeypatch, MODE=mode)
    validate(objects(files))
    knobs = from_environ()
    container = app_container(files)
    env = {var["name"]: var.get("value") for var in container["env"]}
    assert {k: env[k] for k in knobs.as_env()} == knobs.as_env()  # every knob, as compose passes them
    assert container["image"] == ComposeApp(knobs).image == f"concurrency-lab-{MODES[mode].service}:official"
    # no command: the image's entrypoint, contract.serve, starts the mode as under compose
    assert "command" not in container and "args" not in container
    plan = server_plan(knobs, host="0.0.0.0", port=8000, base_env={})
    assert pod(files, "app")["metadata"]["annotations"]["concurrency-lab/command"] == shlex.join(plan.argv)
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_labels_select_each_component_and_services_reach_named_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = render(tmp_path / "out", monkeypatch, MODE="gunicorn")
    deployments = {doc["metadata"]["name"]: doc for doc in objects(files) if doc["kind"] == "Deployment"}
    assert set(deployments) == {"postgres", "app", "locust-master", "locust-worker"}
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        selector = spec["selector"]["matchLabels"]
        assert selector.items() <= spec["template"]["metadata"]["labels"].items(), name
    services = [doc for doc in objects(files) if doc["kind"] == "Service"]
    assert {s["metadata"]["name"] for s in services} == {"postgres", "app", "locust-master"}
    for service in services:
        selected = [d for d in deployments.values()
                    if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]  # fmt: skip
        assert len(selected) == 1, service["metadata"]
        ports = {p["name"] for c in selected[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    # names as compose's services, so compose's own commands and URLs reach them
    master = pod(files, "locust-master")["spec"]["containers"][0]
    assert "http://app:8000" in master["args"]
    assert {p["port"] for p in find(files, "Service", "locust-master")["spec"]["ports"]} == {8089, 5557}


@pytest.mark.parametrize("cpus", ["0.25", "0.5", "1", "1.5", "2", "0.125", "64"])
def test_the_app_cpu_limit_is_cpus(cpus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = render(tmp_path / "out", monkeypatch, CPUS=cpus)
    validate(files["app.yaml"])
    resources = app_container(files)["resources"]
    assert cpus_of(resources["limits"]["cpu"]) == float(cpus)
    assert resources["requests"] == resources["limits"]
    assert f"docker --cpus={float(cpus):g}" in pod(files, "app")["metadata"]["annotations"]["concurrency-lab/cpu-limit"]


def test_cpus_0_sets_no_limit_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = render(tmp_path / "out", monkeypatch, CPUS="0")
    validate(files["app.yaml"])
    assert "resources" not in app_container(files)
    assert pod(files, "app")["metadata"]["annotations"]["concurrency-lab/cpu-limit"].startswith("none: CPUS=0")


@pytest.mark.parametrize("env", [{"CPUS": "-1"}, {"MODE": "bogus"}, {"MODE": "threaded", "WORKERS": "3"}, {"IMAGES": "cloud"}])
def test_a_refused_knob_gets_the_knobs_message_and_nothing_is_written(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(KnobError) as refused:  # the knobs' own words, as every command of the lab prints them
        from_environ()
    out = tmp_path / "out"
    result = run_cli(out, **env)
    assert result.returncode == 2
    assert result.stderr == f"error: {refused.value}\n"
    assert result.stdout == ""
    assert not out.exists()


def test_a_cpu_limit_kubernetes_cannot_express_is_refused_not_rounded(tmp_path: Path) -> None:
    parse({"CPUS": "0.0005"})  # the knobs take it (docker would refuse it too)
    out = tmp_path / "out"
    result = run_cli(out, CPUS="0.0005")
    assert result.returncode == 2
    assert "CPUS=0.0005 is finer than Kubernetes can limit" in result.stderr
    assert not out.exists()


def test_the_command_writes_the_folder_and_says_how_to_apply_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(out, MODE="async-workers", WORKERS="3", CPUS="1.5", LOCUST_WORKERS="4")
    assert result.returncode == 0, result.stderr
    assert f"kubectl apply -k {out}" in result.stdout
    assert 'limits.cpu "1500m"' in result.stdout
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in out.glob("*.yaml") if p.name != "kustomization.yaml")
    workers = [d for d in yaml.safe_load_all((out / "locust.yaml").read_text()) if d["metadata"]["name"] == "locust-worker"]
    assert workers[0]["spec"]["replicas"] == 4
    assert run_cli(out, LOCUST_WORKERS="0").returncode == 2  # argparse's refusal: no Locust without workers


def test_secrets_are_read_from_a_secret_never_written_as_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = {"DB_PASSWORD": "a-real-password-from-env", "DJANGO_SECRET_KEY": "a-real-django-key-from-env"}
    files = render(tmp_path / "out", monkeypatch, **real)
    text = "".join(path.read_text() for path in (tmp_path / "out").iterdir())
    assert not any(value in text for value in real.values())
    # nor compose's development defaults (the ConfigMaps carry the contract's source, which names them)
    manifests = yaml.safe_dump([doc for doc in objects(files) if doc["kind"] != "ConfigMap"])
    assert SETTINGS["DB_PASSWORD"] not in manifests and SETTINGS["DJANGO_SECRET_KEY"] not in manifests
    secret = find(files, "Secret", "concurrency-lab-secrets")
    assert secret["metadata"]["annotations"]["concurrency-lab/placeholder"] == "true"
    assert all(value.startswith("placeholder-") for value in secret["stringData"].values())
    assert "PLACEHOLDER" in (tmp_path / "out" / "secret.yaml").read_text()
    env = {var["name"]: var for var in app_container(files)["env"]}
    assert env["DATABASE_URL"]["value"] == "postgresql://lab:$(DB_PASSWORD)@postgres:5432/lab"
    assert list(env).index("DB_PASSWORD") < list(env).index("DATABASE_URL")  # Kubernetes expands only earlier variables

    mine = render(tmp_path / "out", monkeypatch, secret="my-lab-secret")  # the same folder: secret.yaml goes
    assert "secret.yaml" not in mine
    assert not any(doc["kind"] == "Secret" for doc in objects(mine))
    refs = re.findall(r"secretKeyRef:\s+name: (\S+)", "".join(p.read_text() for p in (tmp_path / "out").iterdir()))
    assert refs and set(refs) == {"my-lab-secret"}
    validate(objects(mine))


def test_images_come_from_the_variables_compose_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    official = render(tmp_path / "official", monkeypatch, MODE="async")
    assert app_container(official)["image"] == "concurrency-lab-fastapi:official"
    assert pod(official, "postgres")["spec"]["containers"][0]["image"] == IMAGES[1].official
    assert pod(official, "locust-worker")["spec"]["containers"][0]["image"] == IMAGES[2].official
    local = render(tmp_path / "local", monkeypatch, registry="registry.example.com/lab", IMAGES="local")
    assert app_container(local)["image"] == ComposeApp(from_environ()).image == "concurrency-lab-fastapi:local"
    assert pod(local, "postgres")["spec"]["containers"][0]["image"] == IMAGES[1].standin
    renamed = {entry["name"]: entry["newName"] for entry in local["kustomization.yaml"][0]["images"]}
    assert renamed["concurrency-lab-fastapi"] == "registry.example.com/lab/concurrency-lab-fastapi"
    standin = kubernetes.image_name(IMAGES[1].standin)
    assert renamed[standin] == f"registry.example.com/lab/{standin}"


def test_kubectl_kustomize_renders_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = render(tmp_path / "out", monkeypatch, MODE="gthread", CPUS="0.5", registry="registry.example.com/lab")
    # on PATH, or beside this interpreter (.ci/run installs the pinned wheel into the venv where the machine has none)
    kubectl = shutil.which("kubectl") or shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if kubectl is None:
        pytest.skip("KUBECTL IS NOT INSTALLED: the folder's `kubectl kustomize` rendering is not checked here")
    result = subprocess.run([kubectl, "kustomize", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in built) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in objects(files)
    )
    assert all(d["metadata"].get("namespace", d["metadata"]["name"]) == "concurrency-lab" for d in built)
    app = next(d for d in built if d["kind"] == "Deployment" and d["metadata"]["name"] == "app")
    assert app["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/lab/concurrency-lab-django:official"
    validate(built)


def test_locusts_pods_carry_every_module_the_locustfile_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose mounts the project folder into Locust's container; the pods get a ConfigMap of its files
    instead, so a module the locustfile imports (the Lab tab, the open-arrival schedule) must be in it."""
    files = render(tmp_path / "out", monkeypatch, MODE="gunicorn")
    carried = {key.replace("--", "/") for doc in objects(files) if doc["kind"] == "ConfigMap" for key in doc.get("data", {})}
    source = (ROOT / "locust" / "locustfile.py").read_text()
    imported = set(re.findall(r"^(?:from|import) ((?:contract\.)?\w+)", source, re.MULTILINE))
    own = {f"locust/{name}.py" for name in imported if (ROOT / "locust" / f"{name}.py").exists()}
    own |= {f"{name.replace('.', '/')}.py" for name in imported if name.startswith("contract.")}
    assert own and own <= carried, own - carried
    assert {"locust/lab_page.html", "locust/lab_tab.js", "db/init.sql"} <= carried
