"""AMSNet and its ablation models (paper §3, Tables 4-5).

Calling convention shared by every model :func:`build_model` returns:

* ``model.inputs`` names, in order, the positional inputs of ``forward``:
  ``("frames", "mask")`` FRLM, ``("spec",)`` URLM, ``("frames", "mask", "spec")`` early
  fusion, concat and AMSNet; the fusion heads take ``("h1", "h2")``. So an engine can call
  ``model(*(batch[k] for k in model.inputs))``.
* ``forward`` returns logits ``(B, n_classes)`` (FRLM, URLM, EarlyFusion) or a tuple
  ``(logits, alpha)`` (AMSNet and the heads), alpha ``(B, 2)`` = (α_FRLM, α_URLM) for
  connection attention, the fixed weights (w, 1 − w) for late fusion, ``None`` for
  concatenation. :func:`call_model` normalises both to
  ``(logits, alpha_or_None)``.
* ``model.embed(*inputs)`` gives the 128-d embedding (a pair ``(h1, h2)`` for AMSNet).

Shapes: ``frames (B, q, 76)`` float, ``mask (B, q)`` bool (True on valid frames, left-aligned,
at least one per row), ``spec (B, n_mels, T)`` float.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
import torch.nn as nn

from ..config import CLASSIC_MODELS, MODELS, FRLMConfig, FusionConfig, URLMConfig
from .frlm import FRLM, AttentionPooling, PlainBLSTM
from .fusion import AMSNet, ConcatHead, ConnectionAttentionHead, EarlyFusion, LateFusionHead, align_spectrogram
from .peephole import PeepholeLSTM
from .urlm import URLM, SEBlock, TemporalConvBlock

#: The models :func:`build_model` builds: every model of the suite but the classic baselines.
NETWORKS = tuple(m for m in MODELS if m not in CLASSIC_MODELS)


def build_model(name: str, n_classes: int, frlm: FRLMConfig = FRLMConfig(),
                urlm: URLMConfig = URLMConfig(), fusion: FusionConfig = FusionConfig(),
                n_mels: int | None = None, spec_hop_ms: float = 25.0,
                frame_hop_ms: float = 10.0) -> nn.Module:
    """Build one of ``frlm``, ``urlm``, ``concat``, ``early``, ``amsnet``, ``late``.

    Args:
        name: model name (Tables 4-5; ``late``: late fusion, beyond the paper).
        n_classes: classifier outputs.
        frlm, urlm, fusion: architecture configurations.
        n_mels: mel bands of the spectrogram input; overrides ``urlm.input_channels`` when
            given (the feature configuration decides it), else that value is used.
        spec_hop_ms, frame_hop_ms: hops of the two streams, for ``early`` only (it puts the
            spectrogram on the frame grid); defaults match ``FeatureConfig`` (400 / 16 kHz).

    Returns:
        ``FRLM``, ``URLM``, ``EarlyFusion`` or ``AMSNet`` (with ``ConcatHead`` for
        ``concat``, ``ConnectionAttentionHead`` for ``amsnet``, ``LateFusionHead`` over the
        branches' own classifier heads for ``late``).
    """
    if n_mels is not None and n_mels != urlm.input_channels:
        urlm = dataclasses.replace(urlm, input_channels=int(n_mels))
    if name == "frlm":
        return FRLM(frlm, n_classes)
    if name == "urlm":
        return URLM(urlm, n_classes)
    if name == "early":
        return EarlyFusion(frlm, urlm.input_channels, n_classes, spec_hop_ms, frame_hop_ms)
    if name == "late":  # no embedding-size constraint: each branch keeps its own classifier head
        f, u = FRLM(frlm, n_classes), URLM(urlm, n_classes)
        return AMSNet(f, u, LateFusionHead(f.head, u.head))
    if name in ("concat", "amsnet"):
        if frlm.embedding_dim != urlm.embedding_dim:
            raise ValueError(
                f"fusion needs equal branch outputs, got FRLM {frlm.embedding_dim} and URLM "
                f"{urlm.embedding_dim}. Fix: set the same embedding_dim in both configs."
            )
        head_cls = ConnectionAttentionHead if name == "amsnet" else ConcatHead
        head = head_cls(fusion, frlm.embedding_dim, n_classes)
        return AMSNet(FRLM(frlm, n_classes), URLM(urlm, n_classes), head)
    if name in CLASSIC_MODELS:
        raise ValueError(f"{name!r} is a classic baseline (openSMILE functionals and a linear SVM), not a network: "
                         "there is nothing to build. Fix: run it with run_experiment (amsnet train --model "
                         f"{name}), or build one of {', '.join(NETWORKS)}.")
    raise ValueError(f"unknown model {name!r}. Fix: use one of {', '.join(NETWORKS)}.")


def count_parameters(model: nn.Module) -> int:
    """All parameters, trainable and frozen (shared tensors counted once)."""
    return sum(p.numel() for p in model.parameters())


def call_model(model: nn.Module, batch: Mapping[str, torch.Tensor]):
    """Run ``model`` on the entries of ``batch`` named by ``model.inputs``.

    Returns ``(logits, alpha)``, alpha ``None`` for models without connection attention.
    """
    out = model(*(batch[k] for k in model.inputs))
    return out if isinstance(out, tuple) else (out, None)


__all__ = [
    "AMSNet", "AttentionPooling", "ConcatHead", "ConnectionAttentionHead", "EarlyFusion", "LateFusionHead",
    "FRLM", "PlainBLSTM", "PeepholeLSTM", "SEBlock", "TemporalConvBlock", "URLM",
    "align_spectrogram", "build_model", "call_model", "count_parameters",
]
