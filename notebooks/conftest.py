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


NOTEBOOK_GROUP = "notebooks"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups off the items
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``--dist loadgroup``, as ./run_tests.sh runs), every notebook item
    goes into one group, i.e. one worker, in collection order: a notebook's cells share one
    kernel, and in the quick profile 01-05 read the run store the notebooks before them wrote.
    The group is moved to the front so that it (the longest serial chain) starts first and the
    library tests fill the other workers around it."""
    notebook_items = [item for item in items if str(item.fspath).endswith(".ipynb")]
    for item in notebook_items:
        item.add_marker(pytest.mark.xdist_group(NOTEBOOK_GROUP))
    if notebook_items and os.environ.get("PYTEST_XDIST_WORKER"):
        others = [item for item in items if not str(item.fspath).endswith(".ipynb")]
        items[:] = notebook_items + others
    if emodb_dir() is not None:
        return
    where = os.environ.get("AMSNET_EMODB_DIR") or REPO_ROOT / "data" / "emodb"
    skip = pytest.mark.skip(reason=f"EmoDB not found at {where} (set AMSNET_EMODB_DIR to the folder holding wav/): "
                                   "the notebook checks re-execute the notebooks on it")
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(skip)
