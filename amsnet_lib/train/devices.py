"""Devices: where training runs and what a finished fold records about it.

Float reductions differ between a CPU and a GPU (and between GPU models), so the same seed gives
the same numbers only on the same kind of device; every fold's ``metrics.json`` names its device.
"""
from __future__ import annotations

import torch


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _training_device(device) -> torch.device:
    """``device`` (default: CUDA when available), with deterministic algorithms on a CPU: every
    path that trains folds (run_experiment, the engine's tasks) sets the same."""
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cpu" and not torch.are_deterministic_algorithms_enabled():
        # The eager kernels' switch, which torch.use_deterministic_algorithms sets after setting
        # torch.compile's inductor flag too: that import of torch._dynamo costs each training process
        # (every Ray worker, every `amsnet train`) about a second, and nothing here compiles.
        torch._C._set_deterministic_algorithms(True, warn_only=True)
    return device


def device_name(device) -> str:
    """What a run was trained on, as its ``metrics.json`` records it: ``cpu`` or ``cuda (<GPU name>)``.

    Float reductions differ between a CPU and a GPU (and between GPU models), so the same seed
    gives the same numbers only on the same kind of device: reports say which one produced each row.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


#: The device of a fold whose metrics.json predates the ``device`` field: until then every fold of
#: the committed run store was trained on a CPU (GPU sessions kept their runs apart, results/gpu).
_LEGACY_DEVICE = "cpu"


def trained_on_cpu(metrics: dict) -> bool:
    """Whether a finished fold's ``metrics.json`` was trained on a CPU (a fusion fold: its head, named
    first; a fold from before devices were recorded: a CPU's)."""
    return str(metrics.get("device", _LEGACY_DEVICE)).startswith("cpu")


def _join_devices(devices) -> str:
    return " + ".join(sorted({p for d in devices for p in str(d).split(" + ") if p}))

