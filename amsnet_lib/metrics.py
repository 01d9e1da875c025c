"""Evaluation measures of the paper (§4.3): WA (eq 15), UA (eq 16), recall, confusion."""
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
