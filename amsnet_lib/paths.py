"""Where things live: the repository, the run store, the results and the feature cache, resolved once.

Every location has the same precedence: an explicit argument, then an environment variable
(``$AMSNET_RUN_DIR``, ``$AMSNET_CACHE_DIR``), then a default inside the repository; the quick
profile writes under ``.cache/`` so a CI run never overwrites the committed full results.
"""
from __future__ import annotations

import os
from pathlib import Path

#: The clone (or installed tree) the package lives in: ``amsnet_lib/..``.
REPO_ROOT = Path(__file__).resolve().parent.parent


def default_run_dir() -> Path:
    """The run store of the library and the CLI: ``$AMSNET_RUN_DIR`` or ``<repo>/runs``."""
    env = os.environ.get("AMSNET_RUN_DIR")
    return Path(env) if env else REPO_ROOT / "runs"


def default_cache_dir() -> Path:
    """The feature cache: ``$AMSNET_CACHE_DIR`` or ``<repo>/.cache/features``."""
    env = os.environ.get("AMSNET_CACHE_DIR")
    if env:
        return Path(env)
    return REPO_ROOT / ".cache" / "features"


def resolve_results_dir(results_dir: str | os.PathLike | None = None, profile: str = "full") -> Path:
    """Where tables, figures and the report go.

    ``results_dir`` when given (relative paths are taken from the current directory, i.e. the
    notebook's); else ``<repo>/results`` for the ``full`` profile and ``<repo>/.cache/results-quick``
    for ``quick``, so a quick (CI) run never overwrites the committed full results.
    """
    if results_dir is not None:
        return Path(results_dir).expanduser().absolute()
    if profile == "full":
        return REPO_ROOT / "results"
    return REPO_ROOT / ".cache" / f"results-{profile}"


def resolve_run_dir(run_dir: str | os.PathLike | None = None, profile: str = "full") -> Path:
    """The run store: ``run_dir`` > ``$AMSNET_RUN_DIR`` > ``<repo>/runs`` (full) or
    ``<repo>/.cache/runs-quick`` (quick)."""
    if run_dir is not None:
        return Path(run_dir).expanduser().absolute()
    if os.environ.get("AMSNET_RUN_DIR"):
        return Path(os.environ["AMSNET_RUN_DIR"]).expanduser().absolute()
    if profile == "full":
        return REPO_ROOT / "runs"
    return REPO_ROOT / ".cache" / f"runs-{profile}"

