"""Augmentation of training batches for the tuned recipe (beyond the paper).

Applied by :func:`amsnet_lib.train.training.train_model` to each training mini-batch of standardised
features, never to validation or test data. Every draw comes from the loop's own
``torch.Generator``, so a seed gives the same batches on every run and a resumed run continues
the same stream.

- SpecAugment-style masking (Park et al. 2019, "SpecAugment"): one span of time steps and one band
  of feature dimensions per utterance set to 0, the mean of standardised features. Written here for
  batched tensors with a mask of valid frames: torchaudio's ``TimeMasking``/``FrequencyMasking``
  would need a second torch build, and they know no padding mask.
- Gaussian noise on the standardised inputs.
- Mixup (Zhang et al. 2018, "mixup: Beyond empirical risk minimization"): each utterance mixed with
  another of the batch, λ ~ Beta(α, α); the loss mixes the two targets with the same λ.

Shapes: ``frames (B, q, D)`` with ``mask (B, q)`` bool (left-aligned), ``spec (B, n_mels, T)``,
fusion-head inputs ``h1``/``h2`` ``(B, dim)`` (mixup and noise only).
"""
from __future__ import annotations

import numpy as np
import torch

from ..config import TrainConfig

__all__ = ["augment_batch", "mask_spans", "mixup_lambda"]


def mixup_lambda(alpha: float, gen: torch.Generator) -> float:
    """λ ~ Beta(α, α) drawn through ``gen`` (1.0, no mixing, when ``alpha`` is 0)."""
    if alpha <= 0:
        return 1.0
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mask_spans(lengths: torch.Tensor, size: int, max_share: float, gen: torch.Generator) -> torch.Tensor:
    """One random span per row to mask: ``(B, size)`` bool, True inside the span.

    Row i's span has a width drawn uniformly from 0 ... ``max_share`` · lengths[i] (integer steps)
    and starts uniformly within the row's first lengths[i] steps.
    """
    B = len(lengths)
    lengths = lengths.to("cpu", torch.float64)
    width = torch.floor(torch.rand(B, generator=gen, dtype=torch.float64) * (max_share * lengths + 1)).clamp_max(lengths)
    start = torch.floor(torch.rand(B, generator=gen, dtype=torch.float64) * (lengths - width + 1))
    pos = torch.arange(size, dtype=torch.float64)
    return (pos >= start[:, None]) & (pos < (start + width)[:, None])


def _mask_and_noise(x: torch.Tensor, lengths: torch.Tensor, time_axis: int, feat_axis: int, cfg: TrainConfig,
                    gen: torch.Generator, valid: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` (B, ·, ·) with one time span and one feature band of each row set to 0 and Gaussian noise
    added (on ``valid`` entries only, when given); ``lengths``: each row's valid time steps. Draws in
    the order time mask, feature mask, noise."""
    B = x.shape[0]
    keep = torch.ones_like(x)
    if cfg.time_mask:
        keep = keep * ~mask_spans(lengths, x.shape[time_axis], cfg.time_mask, gen).to(x.device).unsqueeze(feat_axis)
    if cfg.freq_mask:
        dims = torch.full((B,), x.shape[feat_axis])
        keep = keep * ~mask_spans(dims, x.shape[feat_axis], cfg.freq_mask, gen).to(x.device).unsqueeze(time_axis)
    if cfg.noise_std:
        noise = cfg.noise_std * torch.randn(x.shape, generator=gen).to(x.device)
        x = x + (noise if valid is None else noise * valid)
    return x * keep


def augment_batch(batch: dict[str, torch.Tensor], cfg: TrainConfig, gen: torch.Generator,
                  lam: float = 1.0) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """The augmented copy of a training batch under ``cfg`` (``time_mask``, ``freq_mask``,
    ``noise_std``, ``mixup``), and the partner labels of mixup (None without it).

    Args:
        batch: ``frames``/``mask``, ``spec``, or ``h1``/``h2``, and ``labels``; left unchanged.
        cfg: the stage's training configuration.
        gen: the training loop's generator (CPU).
        lam: mixup's λ for this batch (:func:`mixup_lambda`); 1.0 mixes nothing.
    """
    out = dict(batch)
    B = len(batch["labels"])
    if "frames" in out:  # (B, q, D): time on axis 1, features on axis 2, noise on valid frames only
        m = out["mask"]
        valid = m.unsqueeze(-1)
        # padding to 0 first: masks and mixes then see silence there
        out["frames"] = _mask_and_noise(out["frames"] * valid, m.sum(1), 1, 2, cfg, gen, valid)
    if "spec" in out:  # (B, n_mels, T): time on axis 2, bands on axis 1
        x = out["spec"]
        out["spec"] = _mask_and_noise(x, torch.full((B,), x.shape[2]), 2, 1, cfg, gen)
    for k in ("h1", "h2"):
        if k in out and cfg.noise_std:
            out[k] = out[k] + cfg.noise_std * torch.randn(out[k].shape, generator=gen).to(out[k].device)
    if lam >= 1.0:
        return out, None
    perm = torch.randperm(B, generator=gen).to(batch["labels"].device)
    for k in ("frames", "spec", "h1", "h2"):
        if k in out:
            out[k] = lam * out[k] + (1 - lam) * out[k][perm]
    if "mask" in out:
        out["mask"] = out["mask"] | out["mask"][perm]
    return out, batch["labels"][perm]
