"""Worker processes that never outlive the command that started them.

Both process pools of amsnet (feature extraction in ``features.py``, fold training in
``training.py``) start their workers with :func:`die_with_parent`. Without it, a SIGKILL or
SIGTERM of the parent reaches only the parent: its workers wait forever on the pool's pipe
(360-510 MB each, measured for extraction), or finish a fold unseen while a rerun trains the
same fold beside them, both writing its files.
"""
from __future__ import annotations

import os
import sys

__all__ = ["die_with_parent"]


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``).

    Meant as a pool's ``initializer``. Elsewhere it does nothing (macOS and Windows have no
    such call; there a killed parent's workers stop when they next touch the pool).
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        import multiprocessing

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        # the parent died before the call above (this process was re-parented, to init or to a
        # container's subreaper): nothing would signal us
        parent = multiprocessing.parent_process()
        if os.getppid() == 1 or (parent is not None and parent.pid is not None and os.getppid() != parent.pid):
            os._exit(1)
