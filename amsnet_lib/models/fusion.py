"""Fusion of the two branches (paper §3.4, §4.3) and the ablation models of Tables 4-5.

    h1 = FRLM.embed(frames, mask), h2 = URLM.embed(spec)          each (B, 128)
    AMSNet:        connection attention (eqs 9-12) → FC 64 → FC 8 → FC n_classes
    concatenation: [h1, h2]                        → FC 64 → FC 8 → FC n_classes
    late fusion:   w · softmax(FRLM head(h1)) + (1 − w) · softmax(URLM head(h2)), w chosen on
                   the validation split (not in the paper; :class:`LateFusionHead`)
    early fusion:  spectrogram resampled onto the frame grid, concatenated per frame with the
                   frame features, one attention BLSTM of FRLM's architecture, end to end.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn

from ..config import FRLMConfig, FusionConfig
from .frlm import FRLM
from .urlm import URLM


def _mlp(in_dim: int, hidden: tuple[int, ...], n_classes: int, dropout: float) -> nn.Sequential:
    """FC(hidden[0]) → ReLU → dropout → ... → FC(n_classes); paper: hidden = (64, 8)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU(), nn.Dropout(dropout)]
        in_dim = width
    layers.append(nn.Linear(in_dim, n_classes))
    return nn.Sequential(*layers)


class ConnectionAttentionHead(nn.Module):
    """Connection attention over the two branch outputs, eqs 9-12, then the classifier MLP.

    β_i = tanh(W_f h_iᵀ + b) with ONE W_f (dim → 1) and b shared by both branches (eqs 9-10),
    α = softmax(β_1, β_2) (eq 11), h = α_1 h_1 + α_2 h_2 (eq 12).
    Because β ∈ [-1, 1], each α_i stays within [1/(1+e²), e²/(1+e²)] ≈ [0.12, 0.88]: neither
    branch can be switched off entirely.

    ``inputs = ("h1", "h2")``: trained alone on frozen branch embeddings in stage 2.
    """

    inputs = ("h1", "h2")

    def __init__(self, cfg: FusionConfig, dim: int, n_classes: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)  # W_f and b, shared by both branches
        self.mlp = _mlp(dim, cfg.hidden, n_classes, cfg.dropout)

    def forward(self, h1: torch.Tensor, h2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h1, h2 (B, dim) -> logits (B, n_classes), alpha (B, 2) = (α_FRLM, α_URLM)."""
        h = torch.stack([h1, h2], dim=1)  # (B, 2, dim)
        beta = torch.tanh(self.score(h)).squeeze(-1)  # eqs 9-10, (B, 2)
        alpha = torch.softmax(beta, dim=1)  # eq 11
        fused = (alpha.unsqueeze(-1) * h).sum(dim=1)  # eq 12
        return self.mlp(fused), alpha


class ConcatHead(nn.Module):
    """Concatenation fusion (Tables 4-5, "URLM+FRLM (Concat)"): the same MLP on [h1, h2].

    ``inputs = ("h1", "h2")``; ``forward`` returns ``(logits, None)``.
    """

    inputs = ("h1", "h2")

    def __init__(self, cfg: FusionConfig, dim: int, n_classes: int):
        super().__init__()
        self.mlp = _mlp(2 * dim, cfg.hidden, n_classes, cfg.dropout)

    def forward(self, h1: torch.Tensor, h2: torch.Tensor) -> tuple[torch.Tensor, None]:
        """h1, h2 (B, dim) -> logits (B, n_classes), None."""
        return self.mlp(torch.cat([h1, h2], dim=-1)), None


class LateFusionHead(nn.Module):
    """Late (decision-level) fusion, beyond the paper: the two branches' class probabilities averaged.

        p = w · softmax(head_FRLM(h1)) + (1 − w) · softmax(head_URLM(h2)),   w ∈ [0, 1]

    The probabilities are the pre-trained branches' own, through their own classifier heads
    (``frlm_head``, ``urlm_head``: the branches' modules, shared, not copies), so w = 1 gives
    FRLM's predictions and w = 0 URLM's. Nothing here learns by gradient descent: the single
    weight w (a buffer) is chosen on held-out predictions, the fold's validation split
    (:func:`amsnet_lib.train.training.fit_late_weight`). Why: the learned heads (AMSNet,
    concatenation) fit embeddings of the training part, which the branches already classify
    almost perfectly, so what one branch adds to the other is invisible to them; a branch's
    probabilities on utterances it was not trained on show it.

    ``inputs = ("h1", "h2")``; ``forward`` returns ``(log p, alpha)``, alpha ``(B, 2)`` =
    ``(w, 1 − w)`` for every utterance, the weight each branch got (as AMSNet's α).
    """

    inputs = ("h1", "h2")

    def __init__(self, frlm_head: nn.Linear, urlm_head: nn.Linear, weight: float = 0.5):
        super().__init__()
        self.frlm_head, self.urlm_head = frlm_head, urlm_head
        self.register_buffer("weight", torch.tensor(float(weight)))

    def extra_repr(self) -> str:
        return f"weight={float(self.weight):.2f}"

    def branch_probabilities(self, h1: torch.Tensor, h2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h1, h2 (B, dim) -> each branch's class probabilities (B, n_classes), FRLM's first."""
        return torch.softmax(self.frlm_head(h1), dim=-1), torch.softmax(self.urlm_head(h2), dim=-1)

    def forward(self, h1: torch.Tensor, h2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h1, h2 (B, dim) -> log-probabilities (B, n_classes) (logits: softmax gives p back), alpha (B, 2)."""
        p1, p2 = self.branch_probabilities(h1, h2)
        w = self.weight.to(p1.dtype)
        p = w * p1 + (1 - w) * p2
        alpha = torch.stack([w, 1 - w]).expand(p.shape[0], 2)
        # p sums to 1, so log p are logits whose softmax is p; the floor keeps log finite when
        # both branches give a class exactly zero (float underflow)
        return torch.log(p.clamp_min(torch.finfo(p.dtype).tiny)), alpha


class AMSNet(nn.Module):
    """The two branches and a fusion head (connection attention: AMSNet; concat, late: ablations).

    Attributes ``frlm``, ``urlm``, ``head`` are the sub-modules: the paper pre-trains the
    branches on their own (each with its own classifier head, unused here), then holds them
    fixed and trains ``head`` on their embeddings.
    ``inputs = ("frames", "mask", "spec")``.
    """

    inputs = ("frames", "mask", "spec")

    def __init__(self, frlm: FRLM, urlm: URLM, head: nn.Module):
        super().__init__()
        self.frlm, self.urlm, self.head = frlm, urlm, head

    def embed(self, frames, mask, spec) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (h1 (B, 128) from FRLM, h2 (B, 128) from URLM)."""
        return self.frlm.embed(frames, mask), self.urlm.embed(spec)

    def forward(self, frames, mask, spec):
        """frames (B, q, 76), mask (B, q), spec (B, n_mels, T) -> (logits, alpha (B, 2) or None)."""
        return self.head(*self.embed(frames, mask, spec))


def align_spectrogram(spec: torch.Tensor, n_frames: int, spec_hop_ms: float = 25.0,
                      frame_hop_ms: float = 10.0) -> torch.Tensor:
    """Bring a spectrogram onto the frame grid: spec (B, n_mels, T_s) -> (B, n_frames, n_mels).

    Frame t (at t·frame_hop ms) takes spectrogram frame round(t·frame_hop / spec_hop), the
    centred STFT frame nearest in time, clipped to the last one.
    """
    t = torch.arange(n_frames, device=spec.device, dtype=torch.float64)
    idx = torch.floor(t * frame_hop_ms / spec_hop_ms + 0.5).long().clamp_(0, spec.shape[-1] - 1)
    return spec.index_select(-1, idx).transpose(1, 2)


class EarlyFusion(nn.Module):
    """Early (feature-level) fusion baseline, Tables 4-5; the paper does not define it.

    The spectrogram is put on the 10 ms frame grid (:func:`align_spectrogram`), concatenated
    per frame with the frame features (76 + n_mels dims) and fed to one network of FRLM's
    architecture (attention BLSTM → 128 → classifier), trained end to end.
    ``inputs = ("frames", "mask", "spec")``; ``forward`` returns logits.
    """

    inputs = ("frames", "mask", "spec")

    def __init__(self, frlm_cfg: FRLMConfig, n_mels: int, n_classes: int,
                 spec_hop_ms: float = 25.0, frame_hop_ms: float = 10.0):
        super().__init__()
        self.spec_hop_ms, self.frame_hop_ms = spec_hop_ms, frame_hop_ms
        cfg = dataclasses.replace(frlm_cfg, input_dim=frlm_cfg.input_dim + n_mels)
        self.net = FRLM(cfg, n_classes)

    def fuse_inputs(self, frames: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """frames (B, q, D), spec (B, n_mels, T_s) -> (B, q, D + n_mels)."""
        aligned = align_spectrogram(spec, frames.shape[1], self.spec_hop_ms, self.frame_hop_ms)
        return torch.cat([frames, aligned.to(frames.dtype)], dim=-1)

    def embed(self, frames, mask, spec) -> torch.Tensor:
        """-> (B, 128)."""
        return self.net.embed(self.fuse_inputs(frames, spec), mask)

    def attention(self, frames, mask, spec) -> torch.Tensor:
        """Attention weights (B, q) over frames."""
        return self.net.attention(self.fuse_inputs(frames, spec), mask)

    def forward(self, frames, mask, spec) -> torch.Tensor:
        """-> logits (B, n_classes)."""
        return self.net(self.fuse_inputs(frames, spec), mask)
