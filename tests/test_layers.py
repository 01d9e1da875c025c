"""The package's layers: every import goes down (or stays inside its own sub-package), and no two
modules import each other, directly or in a circle. Imports inside functions count too: a lazy
import is still a dependency."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "amsnet_lib"

# Sub-packages by job, lowest first; a sub-package may import the root modules and any sub-package
# of a lower layer, never one of its own layer or above (data and models, train and serve, are
# siblings that do not know each other).
LAYERS = {"data": 1, "models": 1, "train": 2, "serve": 2, "report": 3, "cli": 4}
ROOT_LAYER = 0


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package: Path) -> set[str]:
    """Every ``amsnet_lib`` module that ``path`` imports (absolute names, sub-modules included)."""
    name = _module_name(path, package)
    home = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "amsnet_lib"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = home.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "amsnet_lib":
                continue
            out.add(target)
            for alias in node.names:  # `from . import studies`: a module, when such a file exists
                if _exists(f"{target}.{alias.name}", package):
                    out.add(f"{target}.{alias.name}")
    return out


def _exists(module: str, package: Path) -> bool:
    rel = Path(*module.split(".")[1:])
    return (package / rel.with_suffix(".py")).exists() or (package / rel / "__init__.py").exists()


def _layer(module: str) -> tuple[int, str]:
    parts = module.split(".")
    if len(parts) == 1:  # the package's own __init__: the public API, above every layer
        return max(LAYERS.values()) + 1, "amsnet_lib"
    if parts[1] in LAYERS:
        return LAYERS[parts[1]], parts[1]
    return ROOT_LAYER, ""


def _graph(package: Path) -> dict[str, set[str]]:
    return {_module_name(p, package): _imports(p, package) for p in sorted(package.rglob("*.py"))}


def upward_imports(package: Path = PACKAGE) -> list[str]:
    """``importer -> imported`` for every import that runs up or across the layers."""
    wrong = []
    for module, targets in _graph(package).items():
        layer, home = _layer(module)
        for t in targets:
            if t == "amsnet_lib":  # the package itself (its __version__): loaded before any sub-module
                continue
            t_layer, t_home = _layer(t)
            if t_home == home or (t_layer == layer == ROOT_LAYER):
                continue
            if t_layer >= layer:
                wrong.append(f"{module} -> {t}")
    return sorted(wrong)


def circles(package: Path = PACKAGE) -> list[str]:
    """Import circles between modules (a package's ``__init__`` importing its own modules is none)."""
    graph = _graph(package)
    graph = {m: {t for t in ts if t in graph and t != m and not m.startswith(t + ".")} for m, ts in graph.items()}
    state, stack, found = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                found.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return found


def test_every_import_goes_down_a_layer_or_stays_in_its_sub_package():
    wrong = upward_imports()
    assert not wrong, "imports that run up or across the layers:\n" + "\n".join(wrong)


def test_no_module_imports_itself_through_a_circle():
    found = circles()
    assert not found, "import circles:\n" + "\n".join(found)


def test_the_checks_see_an_upward_import_and_a_circle(tmp_path):
    """The checks themselves can fail: a data module importing the report layer, and two train
    modules importing each other, are both caught."""
    fake = tmp_path / "amsnet_lib"
    for d in ("data", "report", "train"):
        (fake / d).mkdir(parents=True)
        (fake / d / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "report" / "tables.py").write_text("")
    (fake / "data" / "features.py").write_text("def f():\n    from ..report import tables\n")
    (fake / "train" / "engine.py").write_text("from . import search\n")
    (fake / "train" / "search.py").write_text("from .engine import run\n")
    assert upward_imports(fake) == ["amsnet_lib.data.features -> amsnet_lib.report",
                                    "amsnet_lib.data.features -> amsnet_lib.report.tables"]
    assert circles(fake) == ["amsnet_lib.train.engine -> amsnet_lib.train.search -> amsnet_lib.train.engine"]
