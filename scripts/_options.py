"""The options every results script shares: where the run store, the search's store, the tables and the
feature cache are, and the device; one definition, so their names, defaults and help agree."""
from __future__ import annotations

import argparse
from pathlib import Path

from amsnet_lib.paths import REPO_ROOT

TABLES = REPO_ROOT / "results" / "tables"


def add_store_options(p: argparse.ArgumentParser, search: bool = False, device: bool = False) -> None:
    """``--run-dir``, ``--tables`` and ``--cache-dir`` on ``p``; ``--search-root`` with ``search``, ``--device``
    with ``device``."""
    p.add_argument("--run-dir", type=Path, default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    if search:
        p.add_argument("--search-root", type=Path, default=None, help="the search's store (default: <run store>/search)")
    p.add_argument("--tables", type=Path, default=TABLES, help="where the tables go (default: results/tables)")
    p.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default: $AMSNET_CACHE_DIR or ./.cache/features)")
    if device:
        p.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when there is one, else the CPU)")
