"""The product's modules import cleanly from many threads at once, in any order.

Under HTTP streams every blocking step runs in a thread pool, and the operation modules load on
the first real request (cold start), so a burst of first requests on a cold instance imports them
from several threads together. Python handles that unless module-level imports form a cycle: then
one thread meets a half-built module (ImportError "partially initialized module", KeyError) or
the import system finds a cycle of module locks (_DeadlockError), and that request fails with 500.
`shared/operations/__init__.py` importing its own modules made such a cycle (the 500s seen in
test_200_sends_cost_at_most_2_token_requests_and_2_key_vault_reads_per_process).
Each process first imports `function_app`, as the worker has when requests arrive: the race
that matters is between the modules that load later (the stdlib's own, e.g. `typing`, can race
too when nothing loaded them first, which never happens in the worker).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from devhost.services import ROOT

PACKAGE = "shared"
RUNS = 6
SCRIPT = textwrap.dedent(
    """
    import importlib, random, sys, threading
    import function_app  # what the worker has loaded (indexing) before the first request
    modules = sys.argv[2:]
    seed = int(sys.argv[1])
    sys.setswitchinterval(1e-6)
    start = threading.Barrier(6)
    errors = []

    def import_all(i):
        order = modules[:]
        random.Random(seed * 10 + i).shuffle(order)
        start.wait()
        for name in order:
            try:
                importlib.import_module(name)
            except Exception as exc:
                errors.append(f"{name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=import_all, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("\\n".join(errors))
    sys.exit(1 if errors else 0)
    """
)


def product_modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def module_level_imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The product modules whose import lock `name` may wait for while holding its own: those
    it imports when it loads (not inside functions, nor under TYPE_CHECKING), with their parent
    packages, and its own parent packages (Python imports a.b before a.b.c, under c's lock)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = {name.rpartition(".")[0]}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for sub in ast.walk(node):
            targets: list[str] = []
            if isinstance(sub, ast.Import):
                targets = [alias.name for alias in sub.names]
            elif isinstance(sub, ast.ImportFrom):
                base = sub.module or ""
                if sub.level:
                    parts = package.split(".")[: len(package.split(".")) - (sub.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                targets = [base, *(f"{base}.{alias.name}" for alias in sub.names)]
            for target in targets:
                parts = target.split(".")
                for end in range(1, len(parts) + 1):
                    found.add(".".join(parts[:end]))
    return {m for m in found if m in known and m != name}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_no_module_level_import_cycle_in_the_product():
    known = product_modules()
    graph = {name: module_level_imports(name, path, known) for name, path in known.items()}
    assert import_cycles(graph) == []


def test_a_package_that_imports_its_own_modules_is_a_cycle(tmp_path):
    # What shared/operations/__init__.py did: `from ops.send import send` in the package.
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "__init__.py").write_text("from ops.send import send\n")
    (tmp_path / "ops" / "send.py").write_text("from ops import size\n")
    (tmp_path / "ops" / "size.py").write_text("LIMIT = 1\n")
    known = {"ops": tmp_path / "ops/__init__.py", "ops.send": tmp_path / "ops/send.py"}
    known["ops.size"] = tmp_path / "ops/size.py"
    graph = {name: module_level_imports(name, path, known) for name, path in known.items()}
    assert import_cycles(graph) == [["ops", "ops.send", "ops.size"]]


def test_every_module_imports_from_six_threads_at_once_in_fresh_processes():
    modules = sorted(product_modules())
    failures = []
    for seed in range(RUNS):
        run = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(seed), *modules],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if run.returncode != 0:
            failures.append(run.stdout.strip() or run.stderr[-400:])
    assert not failures, f"{len(failures)} of {RUNS} processes: {failures[0]}"
