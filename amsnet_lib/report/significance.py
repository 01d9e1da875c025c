"""Statistics shared by the CLI and the notebooks: paired significance tests between models
and the late-fusion weight sweep, on predictions aligned utterance by utterance.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..config import LATE_WEIGHTS
from ..metrics import mcnemar, paired_bootstrap, unweighted_accuracy, weighted_accuracy

from .tables import _BEYOND_ABLATIONS, NOT_RUN


def aligned_predictions(results: Mapping[str, "object"]) -> dict[str, pd.DataFrame]:
    """The stored test predictions of several results, row for row on the same utterances.

    Args:
        results: label -> :class:`~amsnet_lib.train.training.ExperimentResult` (same folds and seeds).

    Returns:
        label -> its ``predictions`` indexed by ``(seed, fold, path)`` and sorted, so that the
        rows of every label are the same utterances in the same order.

    Raises:
        ValueError: two results were not evaluated on the same test utterances (folds, seeds).
    """
    out = {label: res.predictions.set_index(["seed", "fold", "path"]).sort_index() for label, res in results.items()}
    (first, ref), *rest = out.items()
    for label, p in rest:
        if not p.index.equals(ref.index):
            raise ValueError(f"{label} and {first} were not evaluated on the same test utterances (folds, seeds)")
    return out


#: Column of :func:`late_fusion_sweep` marking the weight of the highest test WA: chosen on the test
#: folds, so an upper bound of what any one weight could reach, never a result.
TEST_BEST_COLUMN = "best on test (upper bound)"


#: :func:`late_fusion_sweep`'s last row: every fold at its own best w on the test fold (the bound of
#: any per-fold choice of the weight, cross-fitted ones included).
PER_FOLD_BEST = "each fold's own best w"


def late_fusion_sweep(frlm, urlm, weights: Sequence[float] = LATE_WEIGHTS, late=None) -> pd.DataFrame:
    """Beyond the paper: test WA and UA of late fusion at every weight, after the fact.

    From the two branches' stored test probabilities (:attr:`ExperimentResult.predictions`, the
    same folds and seeds), ``p = w·p_FRLM + (1 − w)·p_URLM`` for each ``w`` of ``weights``, WA and UA
    (%) per fold, then the mean over folds and seeds as the tables give them. The row of the
    highest WA is marked in :data:`TEST_BEST_COLUMN`: it is chosen on the test folds, so it bounds
    what any single weight, however it is chosen, could reach with these branches; it is not a
    result. A last row (:data:`PER_FOLD_BEST`, no w) lets each fold take its own best w on its test
    fold: the bound of any way of choosing one weight per fold. ``late``: a late-fusion result
    over the same branches; adds its validation cross-entropy at each candidate (mean over folds
    and seeds), the criterion that chose its weight.

    Returns:
        One row per weight: ``w_FRLM``, ``val loss`` (with ``late``), ``WA (%)``, ``UA (%)``,
        :data:`TEST_BEST_COLUMN` (``yes`` or empty); then, with more than one weight, the
        per-fold bound.
    """
    cols = [f"p_{c}" for c in frlm.classes]
    if list(urlm.classes) != list(frlm.classes):
        raise ValueError(f"the branches have different classes: {frlm.classes} and {urlm.classes}")
    f, u = aligned_predictions({"FRLM": frlm, "URLM": urlm}).values()
    pf, pu = f[cols].to_numpy(dtype=float), u[cols].to_numpy(dtype=float)
    y = f["true"].to_numpy(dtype=int)
    parts = list(f.groupby(level=["seed", "fold"], sort=False).indices.values())  # positions of each fold's utterances
    val = None
    if late is not None:
        c = late.curves[late.curves["stage"] == "late"]
        val = c.groupby("weight")["val_loss"].mean()
    rows, per_fold = [], []  # per_fold: (WA, UA) of every fold at every w
    for w in weights:
        pred = (w * pf + (1 - w) * pu).argmax(1)
        row = {"w_FRLM": float(w)}
        if val is not None:
            hit = val.index[np.isclose(val.index.to_numpy(dtype=float), w)]
            row["val loss"] = float(val.loc[hit[0]]) if len(hit) else float("nan")
        folds = [(weighted_accuracy(y[i], pred[i]), unweighted_accuracy(y[i], pred[i], len(cols))) for i in parts]
        per_fold.append(folds)
        row["WA (%)"] = 100 * float(np.mean([f[0] for f in folds]))
        row["UA (%)"] = 100 * float(np.mean([f[1] for f in folds]))
        rows.append(row)
    t = pd.DataFrame(rows)
    t[TEST_BEST_COLUMN] = ""
    t.loc[t["WA (%)"].idxmax(), TEST_BEST_COLUMN] = "yes"
    if len(weights) > 1:  # each fold's own best w (highest WA; ties: the first): the bound of per-fold weights
        best = [max(range(len(weights)), key=lambda k: (per_fold[k][j][0], -k)) for j in range(len(parts))]
        bound = {"w_FRLM": float("nan"), "val loss": float("nan"),
                 "WA (%)": 100 * float(np.mean([per_fold[k][j][0] for j, k in enumerate(best)])),
                 "UA (%)": 100 * float(np.mean([per_fold[k][j][1] for j, k in enumerate(best)])),
                 TEST_BEST_COLUMN: PER_FOLD_BEST}
        t.loc[len(t)] = [bound[c] for c in t.columns]
    return t.round({"w_FRLM": 2, "val loss": 4, "WA (%)": 2, "UA (%)": 2})


def significance_table(results: Mapping[str, "object"], reference: str, *, n_resamples: int = 10000,
                       seed: int = 0) -> pd.DataFrame:
    """Beyond the paper: is each model's difference to ``reference`` larger than the test set's noise?

    Every model is compared with the reference on the same test utterances (their stored
    predictions, the same folds and seeds): the WA and UA differences as the tables give them
    (mean over folds of the per-fold difference), a 95 % interval and a two-sided p from
    :func:`~amsnet_lib.metrics.paired_bootstrap` (utterances resampled within each fold), and
    :func:`~amsnet_lib.metrics.mcnemar`'s exact test on the utterances one model gets right and
    the other wrong. The folds and the trained models are held fixed: the seed study measures
    how much retraining moves them.

    Args:
        results: label -> :class:`~amsnet_lib.train.training.ExperimentResult` (same corpus, protocol,
            folds and seeds), the reference among them.
        reference: the label of the model the others are compared with.
        n_resamples, seed: of the bootstrap.

    Returns:
        One row per other model: ``model``, ``ΔWA (pp)``, its ``95 % CI``, ``ΔUA (pp)``, its
        ``95 % CI``, ``p (UA, bootstrap)``, ``reference only`` / ``model only`` (utterances
        only one of the two gets right), ``p (WA, McNemar)``. Δ = reference − model.
    """
    if results[reference].missing:
        return pd.DataFrame([{"model": label, "ΔWA (pp)": f"{NOT_RUN}: {reference} has unfinished folds"}
                             for label in results if label != reference])
    unfinished = [label for label, res in results.items() if res.missing]
    preds = aligned_predictions({reference: results[reference],
                                 **{label: res for label, res in results.items() if label != reference and not res.missing}})
    ref = preds.pop(reference)
    y, a = ref["true"].to_numpy(dtype=int), ref["pred"].to_numpy(dtype=int)
    parts = np.asarray([f"{s}/{f}" for s, f in ref.index.droplevel("path")])
    n_classes = len(results[reference].classes)
    rows = []
    for label in results:
        if label == reference:
            continue
        if label in unfinished:
            rows.append({"model": label, "ΔWA (pp)": f"{NOT_RUN}: unfinished folds"})
            continue
        b = preds[label]["pred"].to_numpy(dtype=int)
        boot = paired_bootstrap(y, a, b, n_classes, parts, n_resamples=n_resamples, seed=seed)
        mc = mcnemar(y, a, b)
        rows.append({"model": label,
                     "ΔWA (pp)": round(boot["wa"]["delta"], 2), "ΔWA 95 % CI": f"{boot['wa']['low']:.2f} to {boot['wa']['high']:.2f}",
                     "ΔUA (pp)": round(boot["ua"]["delta"], 2), "ΔUA 95 % CI": f"{boot['ua']['low']:.2f} to {boot['ua']['high']:.2f}",
                     "p (UA, bootstrap)": round(boot["ua"]["p"], 6),
                     f"{reference} only": mc["a_only"], "model only": mc["b_only"], "p (WA, McNemar)": round(mc["p"], 6)})
    return pd.DataFrame(rows)



def recipe_significance_table(paper_results: Sequence, tuned_results: Sequence, *, n_resamples: int = 10000,
                              seed: int = 0) -> pd.DataFrame:
    """Beyond the paper: the tuned recipe against the paper recipe, model by model, on the same test utterances.

    Each tuned result is paired with the paper-recipe result of the same model and variant (the
    same corpus, protocol, folds and seeds) and compared as :func:`significance_table` compares two
    models: Δ = tuned − paper (percentage points), 95 % intervals and p from the paired bootstrap,
    McNemar's exact test.

    Args:
        paper_results, tuned_results: :class:`~amsnet_lib.train.training.ExperimentResult` of each recipe
            (e.g. the ablations and late fusion, and the ``tuned_recipe`` study).

    Returns:
        One row per model both recipes have: ``model`` (the paper's ablation label, the variant
        beside it), then :func:`significance_table`'s columns with ``tuned only`` / ``paper only``
        (test utterances only that recipe gets right). A model whose tuned run is the paper run
        (a stage the tuned recipe left at the paper's training) says so.
    """
    from .paper import ABLATION_LABELS
    from ..train.runstore import branch_key
    from ..train.training import SINGLE_STAGE

    labels = {(m, v): label for m, v, label in _BEYOND_ABLATIONS}
    paper = {(r.config.model, r.config.variant): r for r in paper_results}
    rows = []
    for r in tuned_results:
        key = (r.config.model, r.config.variant)
        if key not in paper:
            continue
        label = labels.get(key) or ABLATION_LABELS.get(r.config.model, r.config.model) + (f" ({r.config.variant})" if r.config.variant else "")
        n = r.predictions["path"].nunique()  # the corpus' utterances: every one is tested once per seed
        if r.config.model in SINGLE_STAGE and branch_key(r.config.model, r.config, n) == branch_key(r.config.model, paper[key].config, n):
            rows.append({"model": label, "ΔWA (pp)": "the same run: the tuned recipe keeps this model's paper training"})
            continue
        t = significance_table({"tuned": r, "paper": paper[key]}, "tuned", n_resamples=n_resamples, seed=seed)
        rows.append({"model": label, **t.iloc[0].drop("model").to_dict()})
    out = pd.DataFrame(rows).rename(columns={"model only": "paper only"})
    counts = [c for c in ("tuned only", "paper only") if c in out]
    return out.astype({c: "Int64" for c in counts})  # counts stay integers beside a row without them


def variant_significance_table(base_results: Sequence, variant_results: Sequence, *, base_label: str, variant_label: str,
                               validation: Mapping[str, tuple[float, float]] | None = None, n_resamples: int = 10000,
                               seed: int = 0) -> pd.DataFrame:
    """Beyond the paper: each result of a variant study against the same model's base row, on the same test utterances.

    Each result of ``variant_results`` is paired with the result of ``base_results`` of the same model
    (one per model; the same corpus, protocol, folds and seeds), e.g. the tuned recipe's rows against
    the same models with URLM paper-trained.

    Args:
        validation: model -> (base, variant) mean validation UA (%), the figure a choice between the
            two may be made on (e.g. :meth:`amsnet_lib.report.session.Session.validation_ua`); adds those
            columns and which one validation prefers (a tie: the base).

    Returns:
        One row per paired model: ``model``, WA / UA (%) of both (columns named with ``base_label``
        and ``variant_label``), then :func:`significance_table`'s columns, Δ = variant − base.
    """
    from .paper import ABLATION_LABELS

    base = {}
    for r in base_results:
        if base.setdefault(r.config.model, r) is not r:
            raise ValueError(f"two base results of {r.config.model}: pass one per model")
    rows = []
    for r in variant_results:
        if r.config.model not in base:
            continue
        b = base[r.config.model]
        t = significance_table({"variant": r, "base": b}, "variant", n_resamples=n_resamples, seed=seed)
        sb, sv = b.summary(), r.summary()
        val = {}
        if validation and r.config.model in validation:
            vb, vv = validation[r.config.model]
            val = {f"val UA, {base_label} (%)": round(vb, 2), f"val UA, {variant_label} (%)": round(vv, 2),
                   "validation prefers": variant_label if vv > vb else base_label}
        rows.append({"model": {**ABLATION_LABELS, "late": "Late fusion"}.get(r.config.model, r.config.model), **val,
                     f"WA, {base_label} (%)": sb["wa"], f"UA, {base_label} (%)": sb["ua"],
                     f"WA, {variant_label} (%)": sv["wa"], f"UA, {variant_label} (%)": sv["ua"],
                     **t.iloc[0].drop("model").rename({"variant only": f"{variant_label} only",
                                                        "model only": f"{base_label} only"}).to_dict()})
    return pd.DataFrame(rows)
