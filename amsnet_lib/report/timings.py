"""Records of a run: the machine it ran on and the wall time of each notebook (``timings.csv``,
written by ``run_all.sh``, quoted by the report).
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path

import pandas as pd





def environment_info() -> dict:
    """Hardware and library versions of this machine, for the report."""
    import importlib.metadata as md

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count()
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # torch missing or broken: say so rather than fail the report
        gpu = "unknown"
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        memory = f"{mem:.1f} GiB"
    except (ValueError, OSError, AttributeError):
        memory = "unknown"
    versions = {}
    for pkg in ("amsnet", "torch", "numpy", "pandas", "scikit-learn", "opensmile", "librosa", "matplotlib", "seaborn", "papermill"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"cpu": cpu, "cores": cores, "memory": memory, "gpu": gpu, "os": platform.platform(),
            "python": platform.python_version(), "versions": versions}


TIMING_COLUMNS = ["notebook", "protocol", "profile", "seconds", "status", "finished_utc"]


def record_timing(path: str | os.PathLike, notebook: str, protocol: str, profile: str, seconds: float, status: str = "ok") -> pd.DataFrame:
    """Insert or replace a notebook's wall time in ``timings.csv`` (atomic write, under
    :func:`~amsnet_lib.atomic.locked`: notebooks finishing at once each keep their row)."""
    from ..atomic import atomic_write_text, locked

    row = {"notebook": notebook, "protocol": protocol, "profile": profile, "seconds": f"{float(seconds):.1f}", "status": status,
           "finished_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    with locked(path) as path:
        old = pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else pd.DataFrame(columns=TIMING_COLUMNS)
        if len(old):
            old = old[~((old["notebook"] == notebook) & (old["protocol"] == protocol) & (old["profile"] == profile))]
        new = pd.concat([old, pd.DataFrame([row])], ignore_index=True)
        atomic_write_text(path, new[TIMING_COLUMNS].to_csv(index=False))
    return new


def read_timings(path: str | os.PathLike) -> pd.DataFrame | None:
    path = Path(path)
    if not path.is_file():
        return None
    t = pd.read_csv(path, keep_default_na=False)
    t["seconds"] = pd.to_numeric(t["seconds"], errors="coerce")
    return t

