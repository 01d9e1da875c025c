"""URLM, the utterance-level representation learning module (paper §3.3, Fig. 2a, §4.3).

    spec (B, n_mels, T) ──conv block 512×8 ─ SE ── conv block 256×5 ─ SE ── conv block 128×3
        ──global average pool over time──> (B, 128) ──dropout──> dense + ReLU ──> (B, 128)
        ──head: Linear(128, n_classes)──> logits

"Temporal convolution blocks" (Wang et al. 2021, the MLSTM-FCN design the block sizes and
SE-after-two come from): 1-D convolutions over time with the mel bands as input channels,
'same' padding, each followed by batch norm and ReLU (conv → BN → ReLU → SE, as MLSTM-FCN).
Choices where the paper is silent: convolutions have no bias (the batch norm that follows
adds its own shift), the SE layers have no bias (as MLSTM-FCN), Kaiming-normal init for every
conv and linear weight (the paper names it for the convolutions).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import URLMConfig


class SEBlock(nn.Module):
    """Squeeze-and-excitation over channels of a (B, C, T) map, paper eqs 6-8.

    z = mean over time (eq 6), s = σ(W2 δ(W1 z)) with W1: C→C/r, W2: C/r→C (eq 7),
    output = s ⊙ x channel-wise (eq 8).
    """

    def __init__(self, channels: int, ratio: int):
        super().__init__()
        hidden = max(1, channels // ratio)
        self.squeeze = nn.Linear(channels, hidden, bias=False)  # W1
        self.excite = nn.Linear(hidden, channels, bias=False)  # W2

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T) -> channel weights s (B, C) in (0, 1)."""
        z = x.mean(dim=-1)  # eq 6 (global average pooling)
        return torch.sigmoid(self.excite(F.relu(self.squeeze(z))))  # eq 7

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gates(x).unsqueeze(-1)  # eq 8


class TemporalConvBlock(nn.Module):
    """Conv1d over time ('same' padding) → BatchNorm1d → ReLU → optional SE block."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, se_ratio: int | None):
        super().__init__()
        # 'same' padding written out: (k-1)//2 frames before, the rest after (as Keras and
        # PyTorch's padding="same" do), without the even-kernel copy warning of the latter.
        self.pad = ((kernel - 1) // 2, kernel // 2)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, bias=False)
        self.bn = nn.BatchNorm1d(out_channels)
        self.se = SEBlock(out_channels, se_ratio) if se_ratio else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, T) -> (B, C_out, T)."""
        return self.se(F.relu(self.bn(self.conv(F.pad(x, self.pad)))))


class URLM(nn.Module):
    """Utterance-level branch: SCNN (3 temporal conv blocks, SE after the first two) → 128.

    Args:
        cfg: :class:`~amsnet_lib.config.URLMConfig` (input_channels = n_mels, filters,
            kernels, se_ratio, dropout, embedding_dim).
        n_classes: outputs of the head.

    Input ``spec (B, n_mels, T)`` log-mel spectrogram. ``inputs = ("spec",)``.
    The embedding is ReLU(dense(dropout(GAP))), like FRLM's.
    """

    inputs = ("spec",)

    def __init__(self, cfg: URLMConfig, n_classes: int):
        super().__init__()
        self.cfg = cfg
        channels = (cfg.input_channels, *cfg.filters)
        self.blocks = nn.Sequential(
            *(
                TemporalConvBlock(channels[k], channels[k + 1], cfg.kernels[k],
                                  cfg.se_ratio if k < 2 else None)  # SE after the first two
                for k in range(3)
            )
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.dense = nn.Linear(cfg.filters[-1], cfg.embedding_dim)
        self.head = nn.Linear(cfg.embedding_dim, n_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        """spec (B, n_mels, T) -> branch output h2 (B, embedding_dim)."""
        x = self.blocks(spec).mean(dim=-1)  # global average pooling over time
        return F.relu(self.dense(self.dropout(x)))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """spec (B, n_mels, T) -> logits (B, n_classes)."""
        return self.head(self.embed(spec))
