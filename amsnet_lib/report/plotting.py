"""Every figure of the reproduction, named after the figure's concept.

Each function takes data (arrays, DataFrames), returns a :class:`matplotlib.figure.Figure` and,
given ``save``, also writes it as PNG atomically (a reader sees the old file or the complete new
one). Figures are built with the object-oriented API (no pyplot state), so they work under any
backend, Agg included, and are not kept alive by a global figure manager.

Paper figures: Fig. 1 :func:`spectrograms`; Fig. 4 :func:`confusion_matrix`; Fig. 5 and Fig. 8
:func:`training_curves`; Fig. 6 and Fig. 7 :func:`study_bars` / :func:`study_curves`; the
fusion-weight distribution (not in the paper) :func:`fusion_weights`; late fusion's weight choice
(not in the paper) :func:`late_fusion_weights`; training corpus x test corpus (not in the paper)
:func:`cross_corpus`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..atomic import atomic_path

__all__ = [
    "confusion_matrix",
    "cross_corpus",
    "ensemble_validation",
    "fusion_weights",
    "late_fusion_weights",
    "save_figure",
    "spectrograms",
    "study_bars",
    "study_curves",
    "training_curves",
]

DPI = 130

# Curve columns written by amsnet_lib.train.training.train_model, and how to label them.
_ACC_COLUMNS = {"train_acc": "train accuracy", "val_wa": "validation WA", "val_ua": "validation UA"}
_LOSS_COLUMNS = {"train_loss": "train loss", "val_loss": "validation loss"}


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = DPI) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically; creates the folder. Returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return path


def _finish(fig: Figure, title: str | None, save) -> Figure:
    if title:
        fig.suptitle(title)
    if save is not None:
        save_figure(fig, save)
    return fig


def spectrograms(
    specs: Mapping[str, np.ndarray],
    *,
    hop_seconds: float = 400 / 16000,
    captions: Mapping[str, str] | None = None,
    title: str | None = "Log-mel spectrograms",
    save: str | os.PathLike | None = None,
) -> Figure:
    """Fig. 1: one log-mel spectrogram per emotion, on a shared colour scale.

    Args:
        specs: emotion name -> ``(n_mels, T)`` log-mel spectrogram (natural log of mel power).
        hop_seconds: time between spectrogram frames (paper: 400 / 16000 s).
        captions: emotion name -> extra line under its panel title (e.g. the file name).
        title: figure title.
        save: PNG path, written atomically.
    """
    if not specs:
        raise ValueError("spectrograms needs at least one spectrogram")
    n = len(specs)
    cols = 2 if n > 1 else 1
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(6.2 * cols, 3.2 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    values = np.concatenate([np.asarray(s, dtype=float).ravel() for s in specs.values()])
    vmin, vmax = np.percentile(values, [1, 99.9])
    image = None
    for ax, (name, spec) in zip(axes, specs.items()):
        spec = np.asarray(spec)
        extent = (0.0, spec.shape[1] * hop_seconds, 0, spec.shape[0])
        image = ax.imshow(spec, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=vmin, vmax=vmax,
                          interpolation="nearest")
        label = name if not captions or name not in captions else f"{name}\n{captions[name]}"
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("mel band")
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes[:n].tolist(), label="log mel power", shrink=0.9)
    return _finish(fig, title, save)


def confusion_matrix(
    matrix: np.ndarray,
    classes: Sequence[str],
    *,
    normalize: bool = True,
    title: str | None = "Confusion matrix",
    save: str | os.PathLike | None = None,
) -> Figure:
    """Fig. 4: confusion matrix, rows = true class, columns = predicted class.

    Args:
        matrix: ``(C, C)`` counts (e.g. :attr:`ExperimentResult.confusion`).
        classes: class names in index order.
        normalize: divide each row by its total (each row then shows the recall of a true class,
            as the paper's Fig. 4); cells are annotated in percent, with the count below.
    """
    import seaborn as sns

    counts = np.asarray(matrix, dtype=float)
    if counts.shape != (len(classes), len(classes)):
        raise ValueError(f"matrix shape {counts.shape} does not match {len(classes)} classes")
    totals = counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shown = np.where(totals > 0, counts / totals, 0.0) * 100 if normalize else counts
    annot = np.empty(counts.shape, dtype=object)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            annot[i, j] = f"{shown[i, j]:.1f}\n({int(counts[i, j])})" if normalize else f"{int(counts[i, j])}"
    size = 1.0 + 0.85 * len(classes)
    fig = Figure(figsize=(size + 1.5, size), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(shown, annot=annot, fmt="", cmap="Blues", vmin=0, vmax=100 if normalize else None, square=True,
                xticklabels=classes, yticklabels=classes, ax=ax, annot_kws={"fontsize": 8},
                cbar_kws={"label": "% of true class" if normalize else "utterances"})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(axis="x", rotation=45)
    ax.tick_params(axis="y", rotation=0)
    return _finish(fig, title, save)


def _mean_curves(curves: pd.DataFrame, by: str | None, columns: Sequence[str]) -> pd.DataFrame:
    """Mean, min and max of each column over folds and seeds, per ``by`` group and epoch."""
    keys = ([by] if by else []) + ["epoch"]
    present = [c for c in columns if c in curves.columns]
    g = curves.groupby(keys, sort=False)[present]
    out = g.mean().add_suffix("_mean").join(g.min().add_suffix("_min")).join(g.max().add_suffix("_max"))
    return out.reset_index()


def _curve_panel(ax, summary: pd.DataFrame, by: str | None, columns: Mapping[str, str], ylabel: str, percent: bool):
    import seaborn as sns

    groups = list(dict.fromkeys(summary[by])) if by else [None]
    palette = sns.color_palette("tab10", max(len(groups), 1))
    styles = ["-", "--", ":", "-."]
    scale = 100.0 if percent else 1.0
    for gi, group in enumerate(groups):
        part = summary if group is None else summary[summary[by] == group]
        for ci, (col, label) in enumerate(columns.items()):
            if f"{col}_mean" not in part.columns or part[f"{col}_mean"].isna().all():
                continue
            name = label if group is None else f"{group}: {label}"
            ax.plot(part["epoch"], scale * part[f"{col}_mean"], styles[ci % len(styles)], color=palette[gi], label=name, lw=1.4)
            ax.fill_between(part["epoch"], scale * part[f"{col}_min"], scale * part[f"{col}_max"], color=palette[gi], alpha=0.12, lw=0)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=1 if len(groups) < 4 else 2)


def training_curves(
    curves: pd.DataFrame,
    *,
    by: str | None = "model",
    accuracy: Sequence[str] = ("train_acc", "val_wa"),
    loss: Sequence[str] = ("train_loss", "val_loss"),
    title: str | None = "Training curves",
    save: str | os.PathLike | None = None,
) -> Figure:
    """Fig. 5 / Fig. 8: accuracy and loss per epoch, mean over folds and seeds (band: min-max).

    Args:
        curves: per-epoch rows with ``epoch`` and the curve columns of
            :func:`amsnet_lib.train.training.train_model` (``train_acc``, ``train_loss``, ``val_wa``,
            ``val_ua``, ``val_loss``), one group per value of ``by`` (e.g. ``model``).
        by: column naming the curves' groups; ``None`` for a single group.
        accuracy, loss: columns drawn in the accuracy (%) and loss panels.
    """
    if by is not None and by not in curves.columns:
        raise ValueError(f"curves have no column {by!r}")
    summary = _mean_curves(curves, by, list(accuracy) + list(loss))
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    ax_acc, ax_loss = fig.subplots(1, 2)
    _curve_panel(ax_acc, summary, by, {c: {**_ACC_COLUMNS}.get(c, c) for c in accuracy}, "accuracy (%)", percent=True)
    _curve_panel(ax_loss, summary, by, {c: {**_LOSS_COLUMNS}.get(c, c) for c in loss}, "cross-entropy loss", percent=False)
    ax_acc.set_title("(a) accuracy")
    ax_loss.set_title("(b) loss")
    return _finish(fig, title, save)


def study_bars(
    table: pd.DataFrame,
    *,
    x: str,
    y: Sequence[str] | str = ("wa", "ua"),
    hue: str | None = None,
    err: Mapping[str, str] | None = None,
    ylabels: Mapping[str, str] | None = None,
    title: str | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Fig. 6 / Fig. 7 / learning rate: one panel per measure, bars per study value.

    Args:
        table: one row per variant, e.g. columns ``optimizer``, ``batch_size``, ``wa``, ``ua``,
            ``wa_std``, ``loss``.
        x: column on the x axis (kept in table order).
        y: measure column(s), one panel each.
        hue: column splitting the bars within an x value (e.g. ``optimizer``).
        err: measure -> column with its error bar (e.g. ``{"wa": "wa_std"}``).
        ylabels: measure -> axis label.

    A row whose measure is missing (a configuration listed but not trained, e.g.
    :func:`amsnet_lib.report.tables.study_table` with ``planned``) is drawn as the words "not run".
    """
    import seaborn as sns

    ys = [y] if isinstance(y, str) else list(y)
    err = dict(err or {})
    labels = {"wa": "WA (%)", "ua": "UA (%)", "loss": "test loss", **(ylabels or {})}
    xs = list(dict.fromkeys(table[x]))
    hues = list(dict.fromkeys(table[hue])) if hue else [None]
    palette = sns.color_palette("tab10", len(hues))
    panels_width = max(5.0, 1.1 * len(xs) * max(1, len(hues) ** 0.5)) * len(ys) * 0.75 + 1
    legend_width = 1.4 if hue else 0.0  # the legend sits outside the panels and must not narrow them
    fig = Figure(figsize=(panels_width + legend_width, 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(ys), squeeze=False).ravel())
    width = 0.8 / len(hues)
    pos = np.arange(len(xs))
    for ax, measure in zip(axes, ys):
        for hi, h in enumerate(hues):
            part = table if h is None else table[table[hue] == h]
            vals = [part.loc[part[x] == v, measure].mean() if (part[x] == v).any() else np.nan for v in xs]
            errs = None
            if measure in err:
                errs = [part.loc[part[x] == v, err[measure]].mean() if (part[x] == v).any() else np.nan for v in xs]
            at = pos + (hi - (len(hues) - 1) / 2) * width
            ax.bar(at, vals, width, yerr=errs, capsize=2, color=palette[hi], label=None if h is None else str(h))
            # A row the table lists without a value is a configuration not trained: say so where
            # its bar would stand, so an empty slot does not read as zero.
            for xi, v in enumerate(xs):
                if (part[x] == v).any() and np.isnan(vals[xi]):
                    ax.text(at[xi], 0, " not run", rotation=90, ha="center", va="bottom", fontsize=7,
                            color=palette[hi], transform=ax.get_xaxis_transform())
        ax.set_xticks(pos, [str(v) for v in xs])
        ax.set_xlabel(x)
        ax.set_ylabel(labels.get(measure, measure))
        ax.grid(axis="y", alpha=0.3)
    if hue:
        # One legend beside the panels: inside an axis it covered the tallest bars.
        fig.legend(*axes[0].get_legend_handles_labels(), title=hue, fontsize=8, loc="outside right upper")
    return _finish(fig, title, save)


def study_curves(
    curves: pd.DataFrame,
    *,
    by: str = "variant",
    accuracy: str = "val_wa",
    loss: str = "val_loss",
    title: str | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Fig. 6 (curves): one accuracy and one loss curve per study variant, mean over folds."""
    return training_curves(curves, by=by, accuracy=(accuracy,), loss=(loss,), title=title, save=save)


def fusion_weights(
    predictions: pd.DataFrame,
    classes: Sequence[str],
    *,
    title: str | None = "Connection-attention fusion weights",
    save: str | os.PathLike | None = None,
) -> Figure:
    """Which branch AMSNet trusted: the distribution of the fusion weight alpha (eqs 9-12).

    Args:
        predictions: rows with ``alpha_frlm`` (weight of the frame-level branch; the
            utterance-level branch gets ``alpha_urlm = 1 - alpha_frlm``) and ``true`` (class
            index), e.g. :attr:`ExperimentResult.predictions`.
        classes: class names in index order.

    Left: histogram of alpha_FRLM over all test utterances. Right: its spread per true class.
    """
    if "alpha_frlm" not in predictions.columns:
        raise ValueError("predictions have no alpha_frlm column (only AMSNet has fusion weights)")
    df = predictions[["alpha_frlm", "true"]].dropna().copy()
    df["emotion"] = [classes[int(t)] for t in df["true"]]
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    ax_h, ax_b = fig.subplots(1, 2, width_ratios=(1, 1.4))
    ax_h.hist(df["alpha_frlm"], bins=np.linspace(0, 1, 41), color="tab:blue", alpha=0.8)
    ax_h.axvline(0.5, color="k", lw=0.8, ls="--")
    ax_h.set_xlim(0, 1)
    ax_h.set_xlabel(r"$\alpha_{FRLM}$ (weight of the frame-level branch; $\alpha_{URLM} = 1 - \alpha_{FRLM}$)")
    ax_h.set_ylabel("test utterances")
    mean = df["alpha_frlm"].mean()
    ax_h.set_title(f"(a) all utterances: mean alpha_FRLM = {mean:.3f}", fontsize=10)
    order = [c for c in classes if c in set(df["emotion"])]
    ax_b.boxplot([df.loc[df["emotion"] == c, "alpha_frlm"].to_numpy() for c in order], tick_labels=order, widths=0.6,
                 patch_artist=True, boxprops={"facecolor": "tab:blue", "alpha": 0.6}, medianprops={"color": "k"},
                 flierprops={"markersize": 2})
    ax_b.axhline(0.5, color="k", lw=0.8, ls="--")
    ax_b.set_ylim(0, 1)
    ax_b.set_xlabel("true emotion")
    ax_b.set_ylabel(r"$\alpha_{FRLM}$")
    ax_b.set_title("(b) per true class (> 0.5: FRLM trusted more)", fontsize=10)
    ax_b.tick_params(axis="x", rotation=30)
    return _finish(fig, title, save)


def late_fusion_weights(
    curves: pd.DataFrame,
    folds: pd.DataFrame,
    *,
    sweep: pd.DataFrame | None = None,
    title: str | None = "Late fusion: the weight chosen on validation",
    save: str | os.PathLike | None = None,
) -> Figure:
    """How late fusion chose its weight: validation cross-entropy and UA against w, one line per fold.

    Args:
        curves: late fusion's curves (:attr:`ExperimentResult.curves`, stage ``late``): per
            ``seed`` and ``fold``, one row per candidate ``weight`` (w, FRLM's share of the
            probabilities; URLM's is 1 − w) with ``val_loss`` and ``val_ua`` (fraction).
        folds: :attr:`ExperimentResult.folds`; its ``best_epoch`` numbers the chosen candidate.
        sweep: :func:`amsnet_lib.report.significance.late_fusion_sweep` of the same branches (optional): adds a
            third panel, test WA and UA (%, mean over folds) against w, with the range of the
            weights the folds chose shaded and the WA of each fold at its own best w as a line.

    Left: validation cross-entropy (the choice's criterion) with each fold's chosen w marked;
    w = 0 is URLM alone, w = 1 FRLM alone. Middle: validation UA (%). Right (with ``sweep``):
    what every w would have reached on the test folds, measured afterwards, never used to choose.
    """
    c = curves[curves["stage"] == "late"] if "stage" in curves else curves
    fig = Figure(figsize=(11 if sweep is None else 15.5, 4.2), layout="constrained")
    axes = fig.subplots(1, 2 if sweep is None else 3)
    ax_l, ax_u = axes[0], axes[1]
    chosen_w = []
    for i, (key, g) in enumerate(c.groupby(["seed", "fold"], sort=True)):
        g = g.sort_values("weight")
        color = f"C{i % 10}"
        label = f"{key[1]}" if c["seed"].nunique() == 1 else f"seed {key[0]}, {key[1]}"
        ax_l.plot(g["weight"], g["val_loss"], color=color, lw=1.2, label=label)
        ax_u.plot(g["weight"], 100 * g["val_ua"], color=color, lw=1.2)
        best = folds[(folds["seed"] == key[0]) & (folds["fold"] == key[1])]["best_epoch"]
        chosen = g[g["epoch"] == int(best.iloc[0])] if len(best) else g.iloc[:0]
        ax_l.scatter(chosen["weight"], chosen["val_loss"], color=color, s=30, zorder=3)
        ax_u.scatter(chosen["weight"], 100 * chosen["val_ua"], color=color, s=30, zorder=3)
        chosen_w.extend(chosen["weight"].astype(float))
    if sweep is not None:
        ax_t = axes[2]
        curve, bound = sweep[sweep["w_FRLM"].notna()], sweep[sweep["w_FRLM"].isna()]
        ax_t.plot(curve["w_FRLM"], curve["WA (%)"], color="k", lw=1.5, label="WA")
        ax_t.plot(curve["w_FRLM"], curve["UA (%)"], color="k", lw=1.5, ls=":", label="UA")
        for wa in bound["WA (%)"]:  # every fold at its own best w: the ceiling of per-fold weights
            ax_t.axhline(wa, color="C3", lw=1.0, ls="--", label=f"WA, each fold's best w ({wa:.2f})")
        if chosen_w:
            ax_t.axvspan(min(chosen_w), max(chosen_w) + 0.005, color="C0", alpha=0.25, label="w the folds chose")
        ax_t.set_ylabel("test accuracy (%), mean over folds")
        ax_t.set_title("(c) test, every w, measured afterwards", fontsize=10)
        ax_t.legend(fontsize=8)
    for ax in axes:
        ax.axvline(0.5, color="k", lw=0.8, ls="--")
        ax.set_xlim(0, 1)
        ax.set_xlabel(r"$w$ (weight of FRLM's probabilities; 0: URLM alone, 1: FRLM alone)")
        ax.grid(alpha=0.3)
    ax_l.set_ylabel("validation cross-entropy")
    ax_l.set_title("(a) the criterion; dots: each fold's choice", fontsize=10)
    ax_u.set_ylabel("validation UA (%)")
    ax_u.set_title("(b) validation UA", fontsize=10)
    ax_l.legend(fontsize=8, ncol=2)
    return _finish(fig, title, save)


def significance(
    tables: Mapping[str, pd.DataFrame],
    *,
    reference: str = "AMSNet",
    xlabel: str | None = None,
    title: str | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """The differences of :func:`amsnet_lib.report.significance.significance_table` with their 95 % intervals.

    Args:
        tables: panel label (e.g. a protocol tag) -> significance table, one row per model.
        reference: the model the tables compare the others with (for the axis label).
        xlabel: the axis label instead (another comparison, e.g. a recipe without a component).

    One panel per table, ΔWA (circles) and ΔUA (squares) per model, points of percentage;
    a bar that crosses the zero line is a difference the test set cannot resolve. Rows without
    numbers (``not run``) are left out.
    """
    fig = Figure(figsize=(5.5 * len(tables), 0.6 * max(len(t) for t in tables.values()) + 1.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(tables), sharex=True))
    for ax, (label, t) in zip(axes, tables.items()):
        t = t[pd.to_numeric(t["ΔWA (pp)"], errors="coerce").notna()].reset_index(drop=True)
        y = np.arange(len(t))[::-1]
        for offset, metric, marker in ((0.12, "WA", "o"), (-0.12, "UA", "s")):
            delta = t[f"Δ{metric} (pp)"].astype(float).to_numpy()
            low, high = (np.array([float(v.split(" to ")[k]) for v in t[f"Δ{metric} 95 % CI"]]) for k in (0, 1))
            ax.errorbar(delta, y + offset, xerr=[delta - low, high - delta], fmt=marker, capsize=3, label=f"Δ{metric}")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, t["model"])
        ax.set_xlabel(xlabel or f"{reference} − model (points), 95 % interval")
        ax.set_title(label, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].legend(fontsize=8)
    return _finish(fig, title, save)


def ensemble_validation(table: pd.DataFrame, title: str | None = None, save=None) -> Figure:
    """Validation UA (%) of each model's seed ensemble against its number of members, the chosen
    size marked (``table``: :func:`amsnet_lib.report.tables.ensemble_validation_table`)."""
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.subplots()
    for model, t in table.groupby("model", sort=False):
        line, = ax.plot(t["members"], t["val UA (%)"], marker="o", label=model)
        pick = t[t["chosen"] == "yes"]
        ax.plot(pick["members"], pick["val UA (%)"], marker="o", markersize=12, fillstyle="none", color=line.get_color(),
                linestyle="none")
    ax.set_xlabel("members (seeds) averaged")
    ax.set_ylabel("validation UA (%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="ringed: chosen", title_fontsize=8)
    return _finish(fig, title, save)


def recipe_ablation(table: pd.DataFrame, title: str | None = None, save=None) -> Figure | None:
    """Δ WA and Δ UA of the tuned recipe without each component, with their 95 % intervals, one panel per model
    (``table``: :func:`amsnet_lib.report.recipe_ablation.ablation_table`); None when no row has a Δ to draw."""
    if "ΔWA vs all components" not in table:  # no row measured
        return None
    measured = table[pd.to_numeric(table["ΔWA vs all components"], errors="coerce").notna()]
    panels = {}
    for model, t in measured.groupby("model", sort=False):
        seeds = t["seeds"].iloc[0] if t["seeds"].nunique() == 1 else "as in the table"
        panels[f"{model}, seeds {seeds}"] = t.rename(columns={"ΔWA vs all components": "ΔWA (pp)",
                                                              "ΔUA vs all components": "ΔUA (pp)"}).assign(model=t["tuned recipe"])
    if not panels:
        return None
    return significance(panels, xlabel="without the component − all components (points), 95 % interval", title=title,
                        save=save)


def cross_corpus(table: pd.DataFrame, value: str = "UA (%)", chance: float | None = None, title: str | None = None,
                 save=None) -> Figure:
    """Training corpus x test corpus heat maps, one panel per adaptation (beyond the paper); with a
    ``model`` column naming several models, one row of panels per model, in order of appearance.

    Args:
        table: one row per evaluation with columns ``train``, ``test``, ``adapt`` and ``value``
            (e.g. :func:`amsnet_lib.train.cross_corpus.classic_cross_corpus`'s scores); a pair never
            evaluated is left blank.
        value: the column shown, in %.
        chance: the chance level of ``value``, named in the colour bar.
    """
    import seaborn as sns

    corpora = sorted(set(table["train"]) | set(table["test"]))
    modes = list(dict.fromkeys(table["adapt"]))
    models = list(dict.fromkeys(table["model"])) if "model" in table and table["model"].nunique() > 1 else [None]
    fig = Figure(figsize=(1.2 + 3.2 * len(modes), 3.2 * len(models)), layout="constrained")
    axes = np.asarray(fig.subplots(len(models), len(modes), sharey=True, squeeze=False))
    for r, model in enumerate(models):
        rows = table if model is None else table[table["model"] == model]
        for k, (ax, mode) in enumerate(zip(axes[r], modes)):
            grid = (rows[rows["adapt"] == mode].pivot_table(index="train", columns="test", values=value, aggfunc="mean")
                    .reindex(index=corpora, columns=corpora))
            label = value + (f" (chance {chance:g})" if chance is not None else "")
            sns.heatmap(grid.astype(float), annot=True, fmt=".1f", cmap="viridis", vmin=0, vmax=100, square=True, ax=ax,
                        cbar=k == len(modes) - 1, cbar_kws={"label": label}, annot_kws={"fontsize": 9})
            if model is None:
                ax.set_title(f"--adapt {mode}")
            else:
                ax.set_title(f"{model}\n--adapt {mode}", fontsize=9)
            ax.set_xlabel("test corpus")
            ax.set_ylabel("training corpus" if k == 0 else "")
            ax.tick_params(axis="y", rotation=0)
    return _finish(fig, title, save)
