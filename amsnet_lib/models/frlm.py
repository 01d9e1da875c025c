"""FRLM, the frame-level representation learning module (paper §3.2, Fig. 2b).

    frames (B, q, 76) ──stack k frames (tuned recipe; k = 1 in the paper)──> (B, q/k, k·76)
        ──BLSTM (peephole, eq 1)──> H (B, q/k, 2·hidden)
        ──attention pooling (eqs 2-4)──> r (B, 2·hidden) ──dropout──> FC + ReLU ──> (B, 128)
        ──head: Linear(128, n_classes)──> logits

The paper's §4.3 also mentions a "global average pooling layer" after the BLSTM block; §3.2 and
Fig. 2b describe attention pooling, which is what is implemented (GAP after attention
pooling, which already yields one vector, would be a no-op).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import FRLMConfig
from .peephole import PeepholeLSTM, reverse_index


class PlainBLSTM(nn.Module):
    """Bidirectional ``nn.LSTM`` (no peepholes; cuDNN on GPU) with PeepholeLSTM's padding rules.

    Two unidirectional ``nn.LSTM`` s; the backward one reads each sequence reversed within its
    length, so it starts at the last valid frame; padded outputs are zero. Not
    ``pack_padded_sequence``: on CPU a packed nn.LSTM step is ~10x slower than an unpacked one
    (measured, torch 2.13). Forget-gate bias starts at 1.0 (b_ih = 1, b_hh = 0), as in
    PeepholeLSTM, so that ``peephole`` is the only difference between the two.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.output_size = 2 * hidden_size
        self.forward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        with torch.no_grad():
            H = hidden_size
            for lstm in (self.forward_lstm, self.backward_lstm):
                lstm.bias_ih_l0[H:2 * H].fill_(1.0)
                lstm.bias_hh_l0[H:2 * H].fill_(0.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), mask (B, T) bool (left-aligned) -> (B, T, 2·hidden), 0 where padded."""
        T = x.shape[1]
        lengths = mask.sum(dim=1)
        T_run = max(int(lengths.max()), 1)  # steps past the longest sequence: padding only
        x, mask = x[:, :T_run], mask[:, :T_run]
        rev = reverse_index(lengths, T_run).unsqueeze(-1)
        out_f, _ = self.forward_lstm(x)
        out_b, _ = self.backward_lstm(x.gather(1, rev.expand(-1, -1, x.shape[-1])))
        out_b = out_b.gather(1, rev.expand(-1, -1, self.hidden_size))  # back in time order
        out = torch.cat([out_f, out_b], dim=-1).masked_fill(~mask.unsqueeze(-1), 0.0)
        return F.pad(out, (0, 0, 0, T - T_run)) if T_run < T else out


def stack_frames(frames: torch.Tensor, mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate every ``k`` consecutive frames into one step.

    frames (B, q, D), mask (B, q) bool, left-aligned -> (B, ceil(q/k), k·D), (B, ceil(q/k)). A step
    is valid when its first frame is; the padded frames inside the last valid step are zeroed
    (standardised padding is not 0). ``k = 1`` returns the inputs unchanged.
    """
    if k == 1:
        return frames, mask
    B, q, D = frames.shape
    pad = (-q) % k
    x = F.pad(frames * mask.unsqueeze(-1), (0, 0, 0, pad))
    m = F.pad(mask, (0, pad))
    return x.reshape(B, (q + pad) // k, k * D), m[:, ::k]


class AttentionPooling(nn.Module):
    """Attention pooling over time, paper eqs 2-4, with padded frames excluded.

    S = tanh(H) (eq 2), α = softmax(wᵀS) over valid frames (eq 3), r = Hαᵀ (eq 4).
    No bias: it would shift every score equally and cancel in the softmax.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.w = nn.Parameter(torch.empty(dim).uniform_(-1 / math.sqrt(dim), 1 / math.sqrt(dim)))

    def extra_repr(self) -> str:
        return f"dim={self.w.numel()}"

    def weights(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h (B, T, d), mask (B, T) bool -> α (B, T), 0 on padded frames, rows sum to 1."""
        scores = torch.tanh(h) @ self.w  # eqs 2-3: wᵀS
        # -inf, not a large negative number: padding then gets exactly zero weight.
        # Every row needs at least one valid frame (the features guarantee it).
        scores = scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(scores, dim=1)  # eq 3

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, T, d), mask (B, T) -> r (B, d), α (B, T)."""
        alpha = self.weights(h, mask)
        r = torch.bmm(alpha.unsqueeze(1), h).squeeze(1)  # eq 4: r = Hαᵀ
        return r, alpha


class FRLM(nn.Module):
    """Frame-level branch: attention BLSTM → 128-d embedding → classifier head.

    Args:
        cfg: :class:`~amsnet_lib.config.FRLMConfig` (input_dim, hidden_size, peephole,
            dropout, embedding_dim, frame_stack).
        n_classes: outputs of the head.

    Inputs ``frames (B, q, input_dim)`` float, ``mask (B, q)`` bool, True on valid frames
    (left-aligned, at least one per row). ``inputs = ("frames", "mask")``.

    The embedding is ReLU(FC(dropout(r))): non-negative, like the dense layers of the rest
    of the network; the head and the fusion layers take it as is.
    """

    inputs = ("frames", "mask")

    def __init__(self, cfg: FRLMConfig, n_classes: int):
        super().__init__()
        self.cfg = cfg
        step_dim = cfg.frame_stack * cfg.input_dim
        if cfg.peephole:
            self.blstm = PeepholeLSTM(step_dim, cfg.hidden_size, bidirectional=True)
        else:
            self.blstm = PlainBLSTM(step_dim, cfg.hidden_size)
        d = 2 * cfg.hidden_size  # eq 1: forward ⊕ backward
        self.pool = AttentionPooling(d)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(d, cfg.embedding_dim)
        self.head = nn.Linear(cfg.embedding_dim, n_classes)

    def attention(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention weights α (B, q/k) of eq 3 over the recurrent steps (0 on padded ones), e.g. for plotting."""
        x, m = stack_frames(frames, mask, self.cfg.frame_stack)
        return self.pool.weights(self.blstm(x, m), m)

    def embed(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """frames (B, q, D), mask (B, q) -> branch output h1 (B, embedding_dim)."""
        x, m = stack_frames(frames, mask, self.cfg.frame_stack)
        r, _ = self.pool(self.blstm(x, m), m)
        return F.relu(self.fc(self.dropout(r)))

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """frames (B, q, D), mask (B, q) -> logits (B, n_classes)."""
        return self.head(self.embed(frames, mask))
