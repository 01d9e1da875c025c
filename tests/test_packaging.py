"""The project installs what it says, pinned, the same for pip and conda."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pip_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    return dict(r.split("==") for r in reqs)


def _conda_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s+- ([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            pins[m.group(1)] = m.group(2)
    return pins


def test_every_dependency_is_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for r in project["dependencies"] + sum(project["optional-dependencies"].values(), []):
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][^,;<>]*", r), r


def test_pyproject_and_environment_yml_agree():
    assert _pip_pins() == _conda_pins()


def test_torch_is_pinned_to_the_local_cpu_wheel_version():
    assert _pip_pins()["torch"] == "2.13.0"


def test_console_command_is_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["amsnet"] == "amsnet_lib.cli:main"


def _requirements() -> tuple[set, dict]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {r.split("==")[0] for r in project["dependencies"]}
    extras = {name: {r.split("==")[0] for r in reqs} for name, reqs in project["optional-dependencies"].items()}
    return core, extras


def test_the_package_alone_installs_no_notebook_or_test_tooling():
    """`pip install amsnet` (predict, evaluate, stream) pulls neither JupyterLab nor pytest; the
    notebooks and the tests have their extras, which scripts/setup_env.sh installs."""
    core, extras = _requirements()
    assert {"papermill", "ipykernel", "jupyterlab"} <= extras["notebooks"]
    assert {"pytest", "nbval", "pytest-xdist"} <= extras["test"]
    assert not core & (extras["notebooks"] | extras["test"])


def test_the_core_install_is_the_inference_install_without_torch():
    """Issue #39: someone who only wants predictions installs neither PyTorch nor Ray, Optuna,
    scikit-learn, matplotlib or seaborn; ONNX Runtime runs the shipped model."""
    core, extras = _requirements()
    assert "onnxruntime" in core
    assert not core & {"torch", "ray", "optuna", "scikit-learn", "matplotlib", "seaborn", "onnx", "onnxscript",
                       "librosa", "scipy"}  # librosa brings numba and llvmlite: data/spectral.py computes its numbers
    assert {"torch", "onnx", "onnxscript"} <= extras["torch"]
    assert {"torch", "ray", "optuna", "scikit-learn", "librosa"} <= extras["train"]  # librosa: --augment pitch
    assert {"matplotlib", "seaborn"} <= extras["notebooks"]


def test_setup_env_installs_every_extra():
    """./run_all.sh, ./run_tests.sh and CI go through scripts/setup_env.sh: they need everything."""
    _, extras = _requirements()
    m = re.search(r'-e "\$root\[([a-z,]+)\]"', (ROOT / "scripts" / "setup_env.sh").read_text())
    assert m, "setup_env.sh installs the package with its extras"
    assert set(m.group(1).split(",")) == set(extras)


def test_every_third_party_import_of_the_library_is_declared():
    """A module the library imports (at any depth) comes with the core or one of the extras."""
    core, extras = _requirements()
    declared = core | set().union(*extras.values())
    # None: optional, imported under try (sounddevice for --mic; IPython comes with ipykernel)
    dist = {"sklearn": "scikit-learn", "sounddevice": None, "IPython": "ipykernel"}
    stdlib = set(__import__("sys").stdlib_module_names)
    import ast

    for path in (ROOT / "amsnet_lib").rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names.add(node.module.split(".")[0])
        for name in sorted(names - stdlib - {"amsnet_lib"}):
            want = dist.get(name, name)
            assert want is None or want in declared, (path.name, name)


def test_the_library_imports_no_notebook_or_test_tooling():
    for path in (ROOT / "amsnet_lib").rglob("*.py"):
        text = path.read_text()
        for pkg in ("papermill", "ipykernel", "jupyterlab", "nbval", "pytest"):
            assert not re.search(rf"^\s*(import|from) {pkg}\b", text, re.M), (path, pkg)


def test_the_markdown_users_read_closes_every_code_block():
    """An unclosed ``` swallows the rest of the page (it hid README's results table once)."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        fences = [line for line in path.read_text().splitlines() if line.lstrip().startswith("```")]
        assert len(fences) % 2 == 0, f"{path.name}: {len(fences)} code fences, one is not closed"
