"""The house's rooms: imports run one way (flows -> tasks -> hpc), each folder holds what its
name says, no module grows past 300 lines. Read from the source, nothing imported."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("flows", "tasks", "hpc", "bench")
MAX_LINES = 300


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module name this file imports, at any depth (lazy imports count too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{p.relative_to(ROOT)} imports {name}" for p in (ROOT / folder).rglob("*.py")
            for name in sorted(imported(p)) if name.split(".")[0] in forbidden or name in forbidden]


@pytest.mark.parametrize(("folder", "forbidden"), [
    ("hpc", ("tasks", "flows", "bench", "prefect", "prefect_aws", "ray", "boto3")),
    ("tasks", ("flows", "bench")),
    # Pure: no Prefect, no Ray; Ray workers import these and must start without Prefect.
    ("tasks/genomics", ("prefect", "ray", "boto3")),
])
def test_imports_run_downward(folder, forbidden):
    assert offenders(folder, forbidden) == []


def test_storage_imports_prefect_only_lazily():
    """Storage runs in Ray workers too: Prefect (its run logger, prefect-aws blocks) only inside
    the functions that use it, never at import."""
    for path in (ROOT / "tasks" / "storage").rglob("*.py"):
        tree = ast.parse(path.read_text())
        top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
               for alias in ([ast.alias(node.module)] if isinstance(node, ast.ImportFrom) else node.names)}
        assert not top & {"prefect", "prefect_aws"}, path


def test_every_module_at_the_top_of_tasks_defines_a_task():
    for path in (ROOT / "tasks").glob("*.py"):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        decorated = [d for node in tree.body if isinstance(node, ast.FunctionDef) for d in node.decorator_list
                     if (isinstance(d, ast.Call) and getattr(d.func, "id", "") == "task")
                     or getattr(d, "id", "") == "task"]
        assert decorated, f"{path.relative_to(ROOT)} defines no Prefect task"


def test_flows_only_wire():
    for path in (ROOT / "flows").glob("*.py"):
        source = path.read_text()
        assert "@task" not in source, f"{path.relative_to(ROOT)} defines a task"


def test_benchmarks_live_in_bench_and_modules_stay_small():
    # flows/benchmark.py is the benchmark flows' wiring, where the layout puts every flow.
    stray = [p.relative_to(ROOT) for p in modules()
             if p.name.startswith("bench") and p.parent.name != "bench" and p != ROOT / "flows" / "benchmark.py"]
    assert stray == []
    long = {str(p.relative_to(ROOT)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
