"""Process settings that make CPU training fast: glibc's allocator must not hand big tensors back.

FRLM's peephole recurrence (``models/peephole.py``) allocates tensors of 80-320 MB per batch
(gates, cells and their gradients for all 300 steps). glibc serves every allocation above its
mmap threshold (at most 32 MB, adjusted dynamically) with a fresh ``mmap`` and returns it to the
kernel on ``free``, so every batch pays page faults and zero-filling of ~1 GB. With the
settings below the paper-size FRLM step (batch 256, 300 frames, hidden 128, one thread) runs
faster (``results/benchmarks_allocator.txt``, by ``python -m benchmarks.bench_peephole --allocator``,
which measures the ratio on yours). The cost: a
process keeps its peak memory until it exits instead of handing it back between batches.

glibc reads these variables once, at start-up, so they cannot be set from inside Python
(``mallopt`` caps the threshold at 32 MB). ``run_all.sh`` and ``run_tests.sh`` export them
(``eval "$(python -m amsnet_lib._runtime)"``), the Jupyter kernel of ``.venv`` carries them, and
the ``amsnet`` command re-executes itself with them (:func:`reexec_with_allocator_settings`).
Other C libraries ignore them; on macOS and Windows they do nothing.
"""
from __future__ import annotations

import os
import sys

__all__ = ["ALLOCATOR_ENV", "allocator_env", "reexec_with_allocator_settings"]

ALLOCATOR_ENV = {
    # Never mmap an allocation (below 16 GiB): big tensors come from the heap and are reused.
    "MALLOC_MMAP_THRESHOLD_": str(16 * 2**30),
    # Never give the top of the heap back to the kernel after a batch frees its tensors...
    "MALLOC_TRIM_THRESHOLD_": str(16 * 2**30),
    # ...and grow it in steps of 1 GiB rather than one tensor at a time.
    "MALLOC_TOP_PAD_": str(2**30),
}


def allocator_env(environ: dict | None = None) -> dict:
    """A copy of ``environ`` (default ``os.environ``) with :data:`ALLOCATOR_ENV` added.

    Values the user already set are kept.
    """
    env = dict(os.environ if environ is None else environ)
    for k, v in ALLOCATOR_ENV.items():
        env.setdefault(k, v)
    return env


def _missing(environ=None) -> bool:
    environ = os.environ if environ is None else environ
    return any(k not in environ for k in ALLOCATOR_ENV)


def reexec_with_allocator_settings(module: str, argv: list[str]) -> None:
    """Replace this process by ``python -m module *argv`` with :data:`ALLOCATOR_ENV` set.

    Does nothing when the settings are already there (the re-executed process, or a caller that
    exported them), off Linux, or when ``AMSNET_NO_REEXEC`` is set.
    """
    if not sys.platform.startswith("linux") or not _missing() or os.environ.get("AMSNET_NO_REEXEC"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], allocator_env())


def _main(argv: list[str]) -> int:
    """``python -m amsnet_lib._runtime``: ``export K=V`` lines for a shell's ``eval``;
    ``--kernel-args``: ``--env K V`` arguments for ``ipykernel install``."""
    if argv[:1] == ["--kernel-args"]:
        print(" ".join(f"--env {k} {v}" for k, v in ALLOCATOR_ENV.items()))
    else:
        for k, v in ALLOCATOR_ENV.items():
            print(f"export {k}=\"${{{k}:-{v}}}\"")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
