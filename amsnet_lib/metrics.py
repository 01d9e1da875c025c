"""Evaluation measures of the paper (§4.3): WA (eq 15), UA (eq 16), recall, confusion; and, beyond the
paper, two models compared on the same test utterances (paired bootstrap, McNemar)."""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts; row = true class, column = predicted class."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def per_class_recall(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Recall TP_i / (TP_i + FN_i) per class; NaN for a class absent from ``y_true``."""
    m = confusion_matrix(y_true, y_pred, n_classes)
    support = m.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(m) / support, np.nan)


def weighted_accuracy(y_true, y_pred) -> float:
    """WA, eq 15: overall accuracy, sum_i TP_i / sum_i (TP_i + FN_i)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def unweighted_accuracy(y_true, y_pred, n_classes: int) -> float:
    """UA, eq 16: mean of the per-class recalls, over the classes present in ``y_true``."""
    return float(np.nanmean(per_class_recall(y_true, y_pred, n_classes)))


# --------------------------------------------------------------------------- comparing two models (beyond the paper)


def paired_bootstrap(y_true, pred_a, pred_b, n_classes: int, parts=None, *, n_resamples: int = 10000,
                     seed: int = 0, chunk: int = 500) -> dict:
    """How sure is the difference of two models' WA and UA on the same test utterances?

    The statistic is the tables' own: the mean over parts (folds, or fold × seed) of the per-part
    difference ``metric(A) − metric(B)``. Each resample draws, within every part, as many test
    utterances as it has, with replacement, the same draw for both models (a paired bootstrap,
    stratified by part). It measures the uncertainty of a finite test set for these trained
    models and folds, not that of retraining them (see the seed study for that).

    Args:
        y_true, pred_a, pred_b: ``(N,)`` class indices: truth and the two models' predictions.
        n_classes: number of classes (UA averages the recalls of the classes present, eq 16).
        parts: ``(N,)`` part label of each utterance (e.g. ``"seed0/fold3"``); ``None``: one part.
        n_resamples: bootstrap resamples.
        seed: of the resampling; the same seed gives the same interval.
        chunk: resamples drawn at once (memory: ``chunk × part size`` integers).

    Returns:
        ``{"wa": d, "ua": d}`` with, for each, ``delta`` (percentage points, A − B), ``low`` and
        ``high`` (the 2.5th and 97.5th percentiles of the resampled deltas: a 95 % interval) and
        ``p`` (two-sided: twice the smaller share of resampled deltas on either side of 0, at most 1).
    """
    y, a, b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    parts = np.zeros(len(y), dtype=int) if parts is None else np.asarray(parts)
    if not (len(y) == len(a) == len(b) == len(parts)) or not len(y):
        raise ValueError(f"y_true, pred_a, pred_b and parts need the same non-zero length, got "
                         f"{len(y)}, {len(a)}, {len(b)}, {len(parts)}")
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(parts == g) for g in np.unique(parts)]
    point = {"wa": [], "ua": []}
    boot = {"wa": np.zeros(n_resamples), "ua": np.zeros(n_resamples)}
    for idx in groups:
        onehot = np.eye(n_classes)[y[idx]]  # (n, C)
        hits_a, hits_b = onehot * (a[idx] == y[idx])[:, None], onehot * (b[idx] == y[idx])[:, None]
        point["wa"].append(weighted_accuracy(y[idx], a[idx]) - weighted_accuracy(y[idx], b[idx]))
        point["ua"].append(unweighted_accuracy(y[idx], a[idx], n_classes) - unweighted_accuracy(y[idx], b[idx], n_classes))
        n = len(idx)
        for start in range(0, n_resamples, chunk):
            r = min(chunk, n_resamples - start)
            w = rng.multinomial(n, np.full(n, 1.0 / n), size=r).astype(float)  # (r, n) draws per utterance
            support = w @ onehot
            with np.errstate(invalid="ignore", divide="ignore"):
                ua = np.nanmean((w @ hits_a) / support, axis=1) - np.nanmean((w @ hits_b) / support, axis=1)
            boot["wa"][start:start + r] += (w @ (hits_a.sum(1) - hits_b.sum(1))) / n
            boot["ua"][start:start + r] += ua
    out = {}
    for m in ("wa", "ua"):
        deltas = 100 * boot[m] / len(groups)
        p = 2 * min((deltas <= 0).mean(), (deltas >= 0).mean())
        out[m] = {"delta": 100 * float(np.mean(point[m])), "low": float(np.percentile(deltas, 2.5)),
                  "high": float(np.percentile(deltas, 97.5)), "p": float(min(1.0, p))}
    return out


def mcnemar(y_true, pred_a, pred_b) -> dict:
    """McNemar's exact test of two models' accuracy on the same utterances.

    Returns:
        ``a_only`` (utterances A gets right and B wrong), ``b_only`` (the reverse) and ``p``:
        two-sided exact binomial p-value of ``a_only`` among the ``a_only + b_only`` discordant
        utterances under equal accuracy (1 when there are none).
    """
    from scipy.stats import binomtest

    y, a, b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    ra, rb = a == y, b == y
    a_only, b_only = int((ra & ~rb).sum()), int((~ra & rb).sum())
    p = binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return {"a_only": a_only, "b_only": b_only, "p": float(p)}
