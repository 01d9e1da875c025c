"""Export a checkpoint to a self-contained TorchScript file (runs without amsnet's Python code).

The exported module takes the *raw* features of :mod:`amsnet_lib.data.features` (IS10 frames padded
to q with their mask, and the log-mel spectrogram) and returns class probabilities and the
fusion weights::

    probabilities (B, C), alpha (B, 2) = module(frames (B, q, 76) float32,
                                                mask (B, q) bool, spec (B, n_mels, T) float32)

The checkpoint's normaliser is built in (``normalise=False`` exports a module that takes
already standardised features instead); for a checkpoint trained with
``normalisation="utterance"`` so is the per-utterance standardisation before it
(:func:`standardise_utterance_torch`, checked against
:func:`amsnet_lib.data.features.standardise_utterance`). ``alpha`` is NaN for models without
connection attention. The class names, feature configuration and normaliser travel inside the file as
``amsnet.json`` (read them with :func:`load_exported`).

>>> export_torchscript("amsnet_emodb.pt", "amsnet_emodb.ts.pt")             # doctest: +SKIP
>>> module, meta = load_exported("amsnet_emodb.ts.pt")                       # doctest: +SKIP
>>> proba, alpha = module(frames, mask, spec)                                # doctest: +SKIP

ONNX (:func:`export_onnx`, ``amsnet export --format onnx``) writes the network alone, on
standardised features, with classes, normaliser, feature settings, configuration (its
``normalisation``: ``utterance`` tells the reader to standardise each utterance with its own
statistics first, as :class:`~amsnet_lib.serve.predict.Recognizer` does) and the model card's facts
in the file's metadata; :class:`amsnet_lib.serve.onnx_model.OnnxModel` runs it with
ONNX Runtime and numpy, without torch. The export goes through ``torch.export`` (the dynamo
exporter; needs ``onnx`` and ``onnxscript``, in the ``[torch]`` extra): the recurrence of
:class:`~amsnet_lib.models.peephole.PeepholeLSTM` then runs all q steps, like the traced
TorchScript module, which gives the same outputs (steps past a sequence's end are never read), as one
ONNX ``Scan`` over time (exported in seconds; the shipped file, written before, has the loop unrolled
frame by frame: the same outputs).
An earlier trial with the TorchScript-based exporter differed from the eager model by up to
1.6e-2 in alpha; the file written here is checked against the eager model before it is kept.
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
from ..config import FRAME_DIM, FeatureConfig
from ..errors import CheckpointError
from .predict import inference_threads

__all__ = ["ExportWrapper", "example_inputs", "export_onnx", "export_torchscript", "load_exported",
           "standardise_utterance_torch"]

_META_NAME = "amsnet.json"


class ExportWrapper(nn.Module):
    """``(frames, mask, spec) -> (probabilities, alpha)`` around a model, normaliser included.

    Args:
        model: a model from :func:`amsnet_lib.models.build_model` (``inputs`` names what it takes).
        info: the checkpoint's info (normaliser, model name).
        normalise: standardise the inputs with the checkpoint's normaliser (as
            :meth:`amsnet_lib.data.features.Normaliser.transform`: padded frames stay zero), after
            the per-utterance standardisation of a checkpoint trained with ``normalisation="utterance"``.
    """

    def __init__(self, model: nn.Module, info: CheckpointInfo, normalise: bool = True):
        super().__init__()
        self.model = model.eval()
        self.inputs = tuple(getattr(model, "inputs", ("frames", "mask", "spec")))
        self.normalise = bool(normalise)
        self.per_utterance = bool(normalise) and info.experiment.normalisation == "utterance"
        self.features = info.features
        n = info.normaliser
        for name in ("frames_mean", "frames_std", "spec_mean", "spec_std"):
            self.register_buffer(name, torch.as_tensor(np.asarray(getattr(n, name), np.float32)))

    def forward(self, frames: torch.Tensor, mask: torch.Tensor, spec: torch.Tensor):
        if self.per_utterance:
            frames, spec = standardise_utterance_torch(frames, mask, spec, self.features)
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


def standardise_utterance_torch(frames: torch.Tensor, mask: torch.Tensor, spec: torch.Tensor,
                                config: FeatureConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`amsnet_lib.data.features.standardise_utterance` in torch, batched (``(B, q, 76)``, ``(B, q)``,
    ``(B, n_mels, T)``), for the TorchScript module: the same statistics, the same spectrogram frames
    (:func:`~amsnet_lib.data.features.speech_spec_frames`), the same floor; float32 arithmetic where the
    numpy form uses float64 (tests/test_unseen_speakers.py holds them within 1e-4)."""
    from ..data.features import UTTERANCE_STD_FLOOR

    def standardised(x, weight, dim):
        n = weight.sum(dim, keepdim=True).clamp_min(1.0)
        mean = (x * weight).sum(dim, keepdim=True) / n
        var = ((x - mean) ** 2 * weight).sum(dim, keepdim=True) / n
        return (x - mean) / var.sqrt().clamp_min(UTTERANCE_STD_FLOOR)

    valid = mask.unsqueeze(-1)
    frames = standardised(frames, valid.to(frames.dtype), 1).masked_fill(~valid, 0.0)
    n_valid = mask.sum(1)
    n_spec = spec.shape[-1]
    hop_samples = int(round(config.frame_hop_ms * config.sample_rate / 1000.0))
    held = (1 + torch.div(n_valid * hop_samples, config.hop_length, rounding_mode="floor")).clamp(1, n_spec)
    held = torch.where(n_valid >= config.q, torch.full_like(held, n_spec), held)
    weight = (torch.arange(n_spec, device=spec.device).unsqueeze(0) < held.unsqueeze(1)).unsqueeze(1).to(spec.dtype)
    return frames, standardised(spec, weight, 2)


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
        "normalisation": info.experiment.normalisation,
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


# --------------------------------------------------------------------------- ONNX


class _GraphWrapper(nn.Module):
    """``(inputs the model takes) -> (logits, alpha)``: the network alone, alpha NaN without fusion."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()
        self.inputs = tuple(getattr(model, "inputs", ("frames", "mask", "spec")))

    def forward(self, *args: torch.Tensor):
        out = self.model(*args)
        logits, alpha = (out[0], out[1]) if isinstance(out, tuple) else (out, None)
        if alpha is None:
            alpha = torch.full((logits.shape[0], 2), float("nan"), dtype=logits.dtype, device=logits.device)
        return logits, alpha


def _standardised_inputs(info: CheckpointInfo, batch: int, seed: int, full_mask: bool) -> dict:
    """Random standardised ``frames``, ``mask``, ``spec`` (padded frames zero), as the graph takes them."""
    c = info.features
    g = torch.Generator().manual_seed(seed)
    lengths = torch.full((batch,), c.q) if full_mask else torch.randint(1, c.q + 1, (batch,), generator=g)
    mask = torch.arange(c.q).unsqueeze(0) < lengths.unsqueeze(1)
    frames = torch.randn(batch, c.q, FRAME_DIM, generator=g).masked_fill(~mask.unsqueeze(-1), 0.0)
    spec = torch.randn(batch, c.n_mels, c.spec_frames, generator=g)
    return {"frames": frames, "mask": mask, "spec": spec}


def card_facts(info: CheckpointInfo) -> dict:
    """The model card's key facts from a checkpoint's meta (what an ONNX file carries without its card)."""
    m = info.meta
    keys = ("data", "corpus", "n_utterances", "class_counts", "speakers", "recipe", "configuration", "protocol",
            "loso_accuracy", "paper_protocol_accuracy", "other_recipe_loso_accuracy", "date", "git_commit")
    facts = {k: m[k] for k in keys if k in m}
    c = info.features
    facts["input"] = (f"audio brought to {c.sample_rate} Hz mono; only the first {c.duration:g} s are used "
                      "(shorter audio is zero-padded)")
    facts["output"] = f"one of {len(info.classes)} classes: {', '.join(info.classes)}"
    return facts


def export_onnx(checkpoint, out: str | os.PathLike, *, check: bool = True, atol: float = 1e-4,
                card: dict | None = None, num_threads: int = 1) -> Path:
    """Export a checkpoint to a self-contained ONNX file, run by ONNX Runtime without torch.

    Args:
        checkpoint: a checkpoint path, or ``(model, info)`` as :func:`load_checkpoint` returns.
        out: the ``.onnx`` file to write (atomically).
        check: load the file into ONNX Runtime and compare its logits and alpha with the eager
            model on random inputs of batch 1, 3 and 5 with random mask lengths; raise (and keep
            no file) if any differs by more than ``atol``.
        card: the model card's key facts for the metadata (default :func:`card_facts`).
        num_threads: torch threads while exporting (restored afterwards).

    Returns:
        The written path. Graph and metadata: :mod:`amsnet_lib.serve.onnx_model`.
    """
    with inference_threads(num_threads):
        return _export_onnx(checkpoint, Path(out), check, atol, card)


def _export_onnx(checkpoint, out: Path, check: bool, atol: float, card: dict | None) -> Path:
    try:
        import onnx
    except ImportError as error:
        raise CheckpointError(out, "the ONNX export needs the onnx and onnxscript packages, which are not installed",
                              "pip install 'amsnet[torch]'") from error
    from .onnx_model import FORMAT, FORMAT_VERSION, OnnxModel

    model, info = _load(checkpoint)
    wrapper = _GraphWrapper(model).eval()
    example = _standardised_inputs(info, 2, seed=0, full_mask=True)
    args = tuple(example[k] for k in wrapper.inputs)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(wrapper, args, dynamo=True, input_names=list(wrapper.inputs),
                                    output_names=["logits", "alpha"], dynamic_shapes=(tuple({0: batch} for _ in args),),
                                    optimize=False, verbose=False)
    proto = program.model_proto
    for node in proto.graph.node:  # the exporter's per-node stack traces: two thirds of the file, no use here
        del node.metadata_props[:]
        node.doc_string = ""
    metadata = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model": info.model_name, "classes": list(info.classes),
        "inputs": list(wrapper.inputs), "outputs": ["logits", "alpha"], "normalised_inside": False,
        "normalisation": info.experiment.normalisation, "normaliser": info.normaliser.state_dict(),
        "features": config_to_dict(info.features),
        "experiment": config_to_dict(info.experiment), "card": card if card is not None else card_facts(info),
        "meta": info.meta, "amsnet_version": info.amsnet_version, "torch_version": torch.__version__,
        "source_checkpoint": Path(info.path).name if info.path else None,
    }
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value, default=_json_default)
    proto.producer_name = "amsnet"
    with atomic_path(out) as tmp:  # a failed equivalence check leaves no file behind
        onnx.save_model(proto, str(tmp))
        if check:
            _check_onnx(wrapper, OnnxModel(tmp), info, atol)
    return out


def _json_default(o):
    if isinstance(o, (np.generic, np.ndarray)):
        return o.tolist()
    return str(o)


def _check_onnx(eager: nn.Module, onnx_model, info: CheckpointInfo, atol: float) -> float:
    """Largest |eager - ONNX Runtime| over logits and alpha on random inputs; RuntimeError beyond ``atol``."""
    worst = 0.0
    for batch, full, seed in ((1, True, 1), (3, False, 2), (5, False, 3)):
        x = _standardised_inputs(info, batch, seed=seed, full_mask=full)
        with torch.inference_mode():
            want = eager(*(x[k] for k in eager.inputs))
        got = onnx_model(x["frames"].numpy(), x["mask"].numpy(), x["spec"].numpy())
        for w, g in zip(want, got):
            w = w.numpy()
            if w.shape != g.shape:
                raise RuntimeError(f"ONNX model's output has shape {g.shape}, the eager model's {w.shape} (batch {batch})")
            if not np.array_equal(np.isnan(w), np.isnan(g)):
                raise RuntimeError(f"ONNX model's NaNs differ from the eager model's (batch {batch})")
            diff = float(np.nan_to_num(np.abs(w - g), nan=0.0).max())
            if diff > atol:
                raise RuntimeError(f"exported ONNX model differs from the eager one (batch {batch}, max |diff| {diff:.3g} "
                                   f"> {atol:g})")
            worst = max(worst, diff)
    return worst
