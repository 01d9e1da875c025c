"""Export a checkpoint to a self-contained TorchScript file (runs without amsnet's Python code).

The exported module takes the *raw* features of :mod:`amsnet_lib.data.features` (IS10 frames padded
to q with their mask, and the log-mel spectrogram) and returns class probabilities and the
fusion weights::

    probabilities (B, C), alpha (B, 2) = module(frames (B, q, 76) float32,
                                                mask (B, q) bool, spec (B, n_mels, T) float32)

The checkpoint's normaliser is built in (``normalise=False`` exports a module that takes
already standardised features instead). ``alpha`` is NaN for models without connection
attention. The class names, feature configuration and normaliser travel inside the file as
``amsnet.json`` (read them with :func:`load_exported`).

>>> export_torchscript("amsnet_emodb.pt", "amsnet_emodb.ts.pt")             # doctest: +SKIP
>>> module, meta = load_exported("amsnet_emodb.ts.pt")                       # doctest: +SKIP
>>> proba, alpha = module(frames, mask, spec)                                # doctest: +SKIP

No ONNX export: ``torch.onnx`` needs the ``onnx`` package (not a dependency of amsnet), and a
trial export of this model differed from the eager model by up to 1.6e-2 in alpha (onnxruntime),
far beyond rounding, so it is not offered. TorchScript needs nothing beyond torch.
``torch.export`` (the successor torch recommends) cannot capture the data-dependent recurrence
length of :class:`~amsnet_lib.models.peephole.PeepholeLSTM` (``int(lengths.max())``) as is.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..atomic import atomic_path
from .checkpoint import CheckpointInfo, config_to_dict, load_checkpoint
from ..config import FRAME_DIM
from ..errors import CheckpointError
from .predict import inference_threads

__all__ = ["ExportWrapper", "example_inputs", "export_torchscript", "load_exported"]

_META_NAME = "amsnet.json"


class ExportWrapper(nn.Module):
    """``(frames, mask, spec) -> (probabilities, alpha)`` around a model, normaliser included.

    Args:
        model: a model from :func:`amsnet_lib.models.build_model` (``inputs`` names what it takes).
        info: the checkpoint's info (normaliser, model name).
        normalise: standardise the inputs with the checkpoint's normaliser (as
            :meth:`amsnet_lib.data.features.Normaliser.transform`: padded frames stay zero).
    """

    def __init__(self, model: nn.Module, info: CheckpointInfo, normalise: bool = True):
        super().__init__()
        self.model = model.eval()
        self.inputs = tuple(getattr(model, "inputs", ("frames", "mask", "spec")))
        self.normalise = bool(normalise)
        n = info.normaliser
        for name in ("frames_mean", "frames_std", "spec_mean", "spec_std"):
            self.register_buffer(name, torch.as_tensor(np.asarray(getattr(n, name), np.float32)))

    def forward(self, frames: torch.Tensor, mask: torch.Tensor, spec: torch.Tensor):
        if self.normalise:
            frames = ((frames - self.frames_mean) / self.frames_std).masked_fill(~mask.unsqueeze(-1), 0.0)
            spec = (spec - self.spec_mean.unsqueeze(-1)) / self.spec_std.unsqueeze(-1)
        named = {"frames": frames, "mask": mask, "spec": spec}
        out = self.model(*(named[k] for k in self.inputs))
        if isinstance(out, tuple):
            logits, alpha = out[0], out[1]
        else:
            logits, alpha = out, None
        proba = torch.softmax(logits, dim=-1)
        if alpha is None:
            alpha = torch.full((logits.shape[0], 2), float("nan"), dtype=logits.dtype, device=logits.device)
        return proba, alpha


def example_inputs(info: CheckpointInfo, batch: int = 2, *, seed: int = 0, full_mask: bool = True):
    """Random ``(frames, mask, spec)`` of the checkpoint's shapes (raw-feature scale)."""
    c = info.features
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(batch, c.q, FRAME_DIM, generator=g) * torch.as_tensor(info.normaliser.frames_std) \
        + torch.as_tensor(info.normaliser.frames_mean)
    if full_mask:
        lengths = torch.full((batch,), c.q)
    else:
        lengths = torch.randint(1, c.q + 1, (batch,), generator=g)
    mask = torch.arange(c.q).unsqueeze(0) < lengths.unsqueeze(1)
    frames = frames.masked_fill(~mask.unsqueeze(-1), 0.0)
    spec = torch.randn(batch, c.n_mels, c.spec_frames, generator=g) * torch.as_tensor(info.normaliser.spec_std).unsqueeze(-1) \
        + torch.as_tensor(info.normaliser.spec_mean).unsqueeze(-1)
    return frames, mask, spec


def _metadata(info: CheckpointInfo, normalise: bool) -> dict:
    return {
        "model": info.model_name,
        "classes": list(info.classes),
        "features": config_to_dict(info.features),
        "q": info.features.q,
        "spec_frames": info.features.spec_frames,
        "normalised_inside": normalise,
        "normaliser": info.normaliser.state_dict(),
        "inputs": ["frames (B, q, 76) float32", "mask (B, q) bool", "spec (B, n_mels, T) float32"],
        "outputs": ["probabilities (B, C)", "alpha (B, 2): [frlm, urlm], NaN without fusion"],
        "meta": info.meta,
        "amsnet_version": info.amsnet_version,
        "torch_version": torch.__version__,
        "source_checkpoint": info.path,
    }


def _load(checkpoint):
    if isinstance(checkpoint, tuple):
        return checkpoint
    return load_checkpoint(checkpoint, "cpu")


def _check_equal(eager: nn.Module, exported, info: CheckpointInfo, atol: float, rtol: float) -> float:
    """Largest difference between eager and exported outputs on random inputs of several batch sizes."""
    worst = 0.0
    for batch, full, seed in ((1, True, 1), (3, False, 2), (5, False, 3)):
        args = example_inputs(info, batch, seed=seed, full_mask=full)
        # The plain interpreter runs the saved graph as is; the profiling executor would spend
        # seconds re-optimising the unrolled recurrence for every new input shape.
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            want = eager(*args)
            got = exported(*args)
        for w, g in zip(want, got):
            if w.shape != g.shape or not torch.allclose(w, g, atol=atol, rtol=rtol, equal_nan=True):
                diff = (w - g).abs().nan_to_num(0.0).max().item() if w.shape == g.shape else float("inf")
                raise RuntimeError(f"exported model differs from the eager one (batch {batch}, max |diff| {diff:.3g})")
            worst = max(worst, (w - g).abs().nan_to_num(0.0).max().item())
    return worst


def export_torchscript(checkpoint, out: str | os.PathLike, *, normalise: bool = True, check: bool = True,
                       atol: float = 1e-5, rtol: float = 1e-4, num_threads: int = 1) -> Path:
    """Trace a checkpoint's model into a TorchScript file.

    Args:
        checkpoint: a checkpoint path, or ``(model, info)`` as returned by
            :func:`~amsnet_lib.serve.checkpoint.load_checkpoint`.
        out: the ``.pt`` file to write (atomically).
        normalise: build the checkpoint's normaliser into the module (default).
        check: after writing, load the file back and compare it with the eager model on random
            inputs of several batch sizes and mask lengths (``allclose``); raise if they differ.
        num_threads: torch threads while tracing and checking (restored afterwards; see
            :class:`amsnet_lib.serve.predict.Recognizer` on why 1 is fast for small batches).

    Returns:
        The written path.

    The model is traced with full-length masks: the recurrence then runs all q steps for any
    input, which gives the same outputs as the eager model's early stop at the longest
    sequence (steps past a sequence's end are never read), so variable lengths and batch
    sizes are handled.
    """
    with inference_threads(num_threads):
        return _export_torchscript(checkpoint, out, normalise, check, atol, rtol)


def _export_torchscript(checkpoint, out, normalise, check, atol, rtol) -> Path:
    model, info = _load(checkpoint)
    wrapper = ExportWrapper(model, info, normalise).eval()
    args = example_inputs(info, batch=2, seed=0, full_mask=True)
    with warnings.catch_warnings(), torch.no_grad():
        # TracerWarnings about Python-side shape checks; torch >= 2.10 also flags TorchScript as
        # deprecated in favour of torch.export, which cannot capture the data-dependent
        # recurrence length of PeepholeLSTM (int(lengths.max())) without changes to the model.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, args, check_trace=False, strict=False)
    out = Path(out)
    with atomic_path(out) as tmp:  # a failed equivalence check leaves no file behind
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(traced, str(tmp), _extra_files={_META_NAME: json.dumps(_metadata(info, normalise), default=str)})
            loaded = torch.jit.load(str(tmp)) if check else None
        if check:
            _check_equal(wrapper, loaded, info, atol, rtol)
    return out


def load_exported(path: str | os.PathLike):
    """A TorchScript file written by :func:`export_torchscript`: ``(module, metadata dict)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "exported model file does not exist", "export one: amsnet export CHECKPOINT OUT.pt")
    extra = {_META_NAME: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as error:
        raise CheckpointError(path, f"is not a TorchScript file ({str(error).splitlines()[0][:200]})",
                              "export it again: amsnet export CHECKPOINT OUT.pt") from error
    meta = json.loads(extra[_META_NAME]) if extra[_META_NAME] else {}
    return module.eval(), meta
