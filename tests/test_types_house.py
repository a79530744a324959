"""The house stays typed and acyclic: no import cycle among the modules of lab/ and contract/, no `Any` back at
the seams that were typed, and the server's report keeps CPU_OFFLOAD as the enum. Pure: nothing is started."""

from __future__ import annotations

import ast
import inspect
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from contract.knobs import Offload
from lab.bench.capacity.command import configurations
from lab.results.record import ServerReport
from lab.results.typedjson import JsonError, read, write
from lab.stack import backends
from lab.stack.backends import BACKENDS, leftovers, seam
from lab.stack.checkout import ROOT

PACKAGES = ("lab", "contract")

Graph = dict[str, set[str]]


def modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of the packages, by its dotted name (a package by its own name, not `.__init__`)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement, at the top or inside a function, but for those under `if TYPE_CHECKING:`
    (its `else:` runs, and counts)."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _type_checking(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))


def _deepest(name: str, known: dict[str, Path]) -> str | None:
    """`import a.b.c`: the deepest of a.b.c, a.b, a that is a module of the house."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in known:
            return ".".join(parts)
        parts.pop()
    return None


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> Graph:
    """Each module -> the modules of the house it imports. `from p import x` leads to p.x where x is a module,
    else to p. A package's own __init__, which Python runs before any of its modules, is not an arrow of
    its own: the arrow is to what the import names."""
    known = modules(root, packages)
    graph: Graph = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(t for alias in node.names if (t := _deepest(alias.name, known)))
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                target = f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else _deepest(source, known)
                if target:
                    targets.add(target)
        targets.discard(name)
        graph[name] = targets
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle, as the modules along it with the first repeated at the end; None without one."""
    seen: dict[str, bool] = {}  # True while on the path walked now, False once every way out of it is walked
    for start in sorted(graph):
        if start in seen:
            continue
        path, ways = [start], [iter(sorted(graph[start]))]
        seen[start] = True
        while ways:
            step = next(ways[-1], None)
            if step is None:
                ways.pop()
                seen[path.pop()] = False
            elif seen.get(step):
                return [*path[path.index(step) :], step]
            elif step not in seen and step in graph:
                seen[step] = True
                path.append(step)
                ways.append(iter(sorted(graph[step])))
    return None


def test_no_import_cycle_in_the_house() -> None:
    graph = import_graph(ROOT)
    assert {"lab.results.experiments", "contract.endpoint", "lab.stack.backends.native"} <= set(graph)  # the house was read
    assert "lab.stack.backend_names" in graph["lab.results.experiments"] and "contract.primes" in graph["contract.interpreter"]
    cycle = find_cycle(graph)
    assert cycle is None, "an import cycle: " + " -> ".join(cycle or [])


def test_the_rooms_keep_the_house_plan(tmp_path: Path) -> None:
    """docs/house.json is the intended house: its rooms (parts), and the pairs of rooms no import may ever join,
    straight or through other modules. Each `never` is held against the import graph of lab/ and contract/."""
    plan = json.loads((ROOT / "docs" / "house.json").read_text())
    graph = import_graph(ROOT)

    def room(module: str) -> str | None:
        path = modules(ROOT, PACKAGES)[module].relative_to(ROOT).as_posix()
        found = [(len(p), name) for name, part in plan["parts"].items() for p in part["is"]
                 if path == p or (p.endswith("/") and path.startswith(p))]  # fmt: skip
        return max(found)[1] if found else None

    rooms = {m: room(m) for m in graph}
    assert {"stack", "results", "analysis", "bench"} <= set(rooms.values())  # the plan names the rooms of today
    broken = []
    for a, b, why in plan["never"]:
        reached, pending = set(), [m for m in graph if rooms[m] == a]
        while pending:
            for target in graph[pending.pop()]:
                if target not in reached and target in graph and rooms[target] != b:
                    reached.add(target)
                    pending.append(target)
                elif rooms.get(target) == b:
                    broken.append(f"{a} reaches {b} through {target} ({why})")
                    break
    assert not broken, broken


def test_the_graph_counts_imports_in_functions_and_not_under_type_checking(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n")
    (package / "a.py").write_text("def f():\n    from . import b\n    return b\n")
    (package / "b.py").write_text("import typing\nif typing.TYPE_CHECKING:\n    from pkg.a import f\nelse:\n    import pkg.c\n")
    (package / "c.py").write_text("from pkg.a import f\n")
    graph = import_graph(tmp_path, ["pkg"])
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n")
    assert find_cycle(import_graph(tmp_path, ["pkg"])) is None


@pytest.mark.parametrize(
    "function",
    [
        pytest.param(seam.Backend.locust_argv, id="Backend.locust_argv"),
        pytest.param(backends.down, id="backends.down"),
        pytest.param(configurations, id="capacity.configurations"),
    ],
)
def test_no_any_at_the_typed_seams(function: Callable[..., object]) -> None:
    written = inspect.get_annotations(function)  # as written: strings, under `from __future__ import annotations`
    assert written and not [name for name, hint in written.items() if "Any" in str(hint)], written


def test_every_backend_has_its_leftovers_stopped() -> None:
    assert set(leftovers.STOPS) == set(BACKENDS)


@pytest.mark.parametrize("offload", list(Offload))
def test_the_server_report_reads_cpu_offload_as_the_enum(offload: Offload) -> None:
    report = read(ServerReport, {"cpu_offload": offload.value})
    assert report.cpu_offload is offload
    written = write(report)
    assert isinstance(written, dict) and written["cpu_offload"] == offload.value  # JSON keeps the string
    assert read(ServerReport, {"cpu_offload": None}).cpu_offload is None


def test_the_server_report_refuses_an_offload_no_lab_wrote() -> None:
    with pytest.raises(JsonError, match="cpu_offload is 'thread', expected one of 'none', 'process'"):
        read(ServerReport, {"cpu_offload": "thread"}, "its report")
