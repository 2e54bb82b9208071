"""The package's shape: data flows one way through the pipeline stages, no import cycle, one importer per
outside system (the `kaggle` client, TensorFlow), every module documented with an explicit `__all__`."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Pipeline order: a module may import modules of its own stage or an earlier one, never a later one.
STAGES = [
    ("kit", "kit.errors", "kit.tomlfile", "kit.quiet_start", "kit.files", "kit.metrics"),
    ("kit.adapters",),
    ("kit.paths",),
    ("kit.ingest",),
    ("kit.synth", "competitions"),
    ("kit.models",),
    ("kit.config",),
    ("kit.run", "kit.run_fold"),
    ("kit.train",),
    ("kit.infer",),
    ("kit.tune",),
    ("kit.kaggle",),
    ("kit.report",),
    ("kit.notebook", "kit.bench", "kit.bench_train", "kit.cli", "kit.__main__", "kit.gpu_check"),
]


def _modules() -> dict[str, Path]:
    out = {}
    for package in ("kit", "competitions"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _stage(module: str) -> int:
    best = None
    for rank, prefixes in enumerate(STAGES):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    assert best is not None, f"{module} belongs to no stage: add it to STAGES"
    return best[0]


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Every module imported anywhere in the file (top level and inside functions), ours resolved to a module."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    return found


MODULES = _modules()
GRAPH = {m: {i for i in _imports(m, p, set(MODULES)) if i in MODULES and i != m} for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_from_a_later_stage(module):
    later = [i for i in GRAPH[module] if _stage(i) > _stage(module)]
    assert not later, f"{module} (stage {_stage(module)}) imports later stages: {later}"


def test_no_import_cycle():
    state: dict[str, int] = {}

    def visit(module, trail):
        state[module] = 1
        for target in sorted(GRAPH[module]):
            if target.startswith(module + "."):  # a package importing its own modules is not a cycle
                continue
            if state.get(target) == 1:
                raise AssertionError(" -> ".join(trail + [module, target]))
            if target not in state:
                visit(target, trail + [module])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [])


def test_the_engine_never_imports_an_adapter_package():
    offenders = {m: sorted(i for i in GRAPH[m] if i.startswith("competitions")) for m in MODULES if m.startswith("kit")}
    assert not {m: i for m, i in offenders.items() if i}, "adapters are found through the registry, not imported"


@pytest.mark.parametrize(
    "outside, allowed",
    [
        ("kaggle", "kit.kaggle"),
        ("kagglesdk", "kit.kaggle"),
        ("tensorflow", "kit.train.device"),
    ],
)
def test_one_importer_per_outside_system(outside, allowed):
    importers = sorted(
        m
        for m, p in MODULES.items()
        if any(i == outside or i.startswith(outside + ".") for i in _imports(m, p, set()))
        and not (m == allowed or m.startswith(allowed + "."))
    )
    assert not importers, f"only {allowed} may import {outside}; also: {importers}"


@pytest.mark.parametrize("module", sorted(m for m, p in MODULES.items() if p.name != "__init__.py"))
def test_every_module_has_a_docstring_and_all(module):
    tree = ast.parse(MODULES[module].read_text())
    assert ast.get_docstring(tree), f"{module} has no module docstring"
    names = {
        t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
    }
    assert "__all__" in names or module.endswith("__main__"), f"{module} has no __all__"
