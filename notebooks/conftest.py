"""nbval checks of the notebooks (`pytest --nbval-lax notebooks`): skip logic and the quick profile.

The committed notebook outputs come from a quick-profile run on EmoDB, and only cells marked
``# NBVAL_CHECK_OUTPUT`` are compared. Re-executing them needs EmoDB: when it cannot be found
(no ``$AMSNET_EMODB_DIR`` and no ``./data/emodb``), every notebook item is skipped with the reason
instead of failing (or downloading the corpus in the middle of a test run).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before the first notebook's kernel starts (after the library tests ran, untouched):
    re-execute in the profile the committed outputs come from, and single-threaded, which
    makes the quick profile's tiny networks several times faster. Both can be overridden by
    setting the variables. The kernel nbval starts inherits this environment; the notebooks
    read AMSNET_PROFILE in their parameters cell."""
    if str(item.fspath).endswith(".ipynb"):
        os.environ.setdefault("AMSNET_PROFILE", "quick")
        os.environ.setdefault("OMP_NUM_THREADS", "1")


def emodb_dir() -> Path | None:
    """EmoDB as the notebooks find it: ``$AMSNET_EMODB_DIR``, else ``<repo>/data/emodb``."""
    env = os.environ.get("AMSNET_EMODB_DIR")
    folder = Path(env) if env else REPO_ROOT / "data" / "emodb"
    return folder if (folder / "wav").is_dir() else None


def pytest_collection_modifyitems(config, items):
    """Notebook cells share one kernel per notebook, and in the quick profile 01-05 read the run
    store the notebooks before them wrote: they run in order in one process. pytest-xdist cannot
    keep them together under pytest 9 (its ``xdist_group`` renames node ids, which pytest 9 no
    longer reads), so under xdist they are skipped, saying why; ./run_tests.sh runs them in a
    process of their own beside the library tests."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        serial = pytest.mark.skip(reason="notebook checks run in order in one process, not under pytest-xdist: "
                                         "./run_tests.sh runs them beside the library tests")
        for item in items:
            if str(item.fspath).endswith(".ipynb"):
                item.add_marker(serial)
    if emodb_dir() is not None:
        return
    where = os.environ.get("AMSNET_EMODB_DIR") or REPO_ROOT / "data" / "emodb"
    skip = pytest.mark.skip(reason=f"EmoDB not found at {where} (set AMSNET_EMODB_DIR to the folder holding wav/): "
                                   "the notebook checks re-execute the notebooks on it")
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(skip)
