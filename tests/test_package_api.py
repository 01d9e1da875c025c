"""The package as a user meets it: its public names, where the tests find EmoDB, and its build."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

import pytest

from signals import REPO_ROOT, find_emodb


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.slow
def test_lazy_public_names_are_the_same_object_on_every_access():
    """``amsnet_lib.predict`` once was the function on first access and the module after it (the
    sub-module import rebound the name); every lazy name must stay what its first access gave."""
    got = json.loads(_run(
        "import importlib, json, amsnet_lib as ams\n"
        "first = {n: getattr(ams, n) for n in ams._LAZY}\n"
        "for m in set(ams._LAZY.values()): importlib.import_module('amsnet_lib.' + m)\n"
        "import amsnet_lib.serve.predict, amsnet_lib.serve.stream, amsnet_lib.serve.export\n"
        "print(json.dumps({n: [getattr(ams, n) is first[n], callable(first[n]),\n"
        "                      type(first[n]).__name__] for n in ams._LAZY}))\n"))
    for name, (same, is_callable, kind) in got.items():
        assert same and is_callable and kind != "module", (name, kind)


def test_no_lazy_name_is_also_a_sub_module():
    """A lazy name equal to a module beside it would be shadowed by the module's import."""
    import pkgutil

    import amsnet_lib

    modules = {m.name for m in pkgutil.iter_modules(amsnet_lib.__path__)}
    assert not modules & set(amsnet_lib._LAZY)


def test_dir_lists_the_lazy_names_and_all_of_all():
    import amsnet_lib

    names = set(dir(amsnet_lib))
    assert set(amsnet_lib._LAZY) <= names
    assert set(amsnet_lib.__all__) <= names
    assert {"predict", "Recognizer", "export_onnx"} <= names


def test_tests_find_emodb_where_the_project_downloads_it(monkeypatch, tmp_path):
    """./run_all.sh downloads EmoDB to <repo>/data/emodb; the tests must look there too, not
    only in $AMSNET_EMODB_DIR and the shared copy."""
    from amsnet_lib.data.corpora import _common

    (tmp_path / "data" / "emodb" / "wav").mkdir(parents=True)
    monkeypatch.setattr(_common, "REPO_ROOT", tmp_path)
    monkeypatch.delenv("AMSNET_EMODB_DIR", raising=False)
    assert find_emodb() == tmp_path / "data" / "emodb"
    monkeypatch.setenv("AMSNET_EMODB_DIR", str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere" / "wav").mkdir(parents=True)
    assert find_emodb() == tmp_path / "elsewhere"


@pytest.mark.slow
def test_the_wheel_builds_without_warnings_and_ships_both_model_forms(tmp_path):
    """setuptools once warned that ``amsnet_lib.pretrained`` was absent from the ``packages``
    configuration; the wheel must hold the shipped model (.pt and .onnx), its card and the corpus lists."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, src / name)
    shutil.copytree(REPO_ROOT / "amsnet_lib", src / "amsnet_lib", ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run(
        [sys.executable, "-W", "always", "-c",
         f"import setuptools.build_meta as b; print(b.build_wheel({str(tmp_path / 'dist')!r}))"],
        cwd=src, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert "absent from the `packages` configuration" not in log, log[-3000:]
    wheel = tmp_path / "dist" / out.stdout.strip().splitlines()[-1]
    names = set(zipfile.ZipFile(wheel).namelist())
    for want in ("amsnet_lib/pretrained/amsnet_emodb.pt", "amsnet_lib/pretrained/amsnet_emodb.onnx",
                 "amsnet_lib/pretrained/MODEL_CARD.md", "amsnet_lib/serve/onnx_model.py"):
        assert want in names, want
    assert any(n.startswith("amsnet_lib/data/corpora/") and n.endswith(".csv") for n in names)
