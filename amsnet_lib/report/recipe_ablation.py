"""What carries the tuned recipe's gain (beyond the paper): the study ``recipe_ablation``, read back seed by seed.

The study (:func:`amsnet_lib.studies.recipe_ablation_study`: FRLM and AMSNet under the tuned recipe
with each component removed in turn, seeds 0-2, ``[paper]``) costs about 9 CPU-hours of stage-1
trainings, so it is trained a part at a time (``amsnet pretrain --studies recipe_ablation --models
... --seeds ...``). :func:`ablation_results` reports each row over the seeds whose every fold is
finished, against the full recipe of the same model on the same seeds, with the paired bootstrap of
:func:`amsnet_lib.report.significance.significance_table`; :func:`ablation_table` makes the table.
The test folds are read as for every row of the tables: nothing here selects anything (the recipe
was chosen on validation, docs/RECIPE.md).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import pandas as pd

from ..config import ExperimentConfig
from ..errors import AmsnetError
from ..data.features import Features
from .paper import ABLATION_LABELS
from .significance import significance_table
from .tables import NOT_RUN

__all__ = ["CAPTION", "FULL", "NOTES", "SIGNIFICANCE_COLUMNS", "ablation_results", "ablation_table", "component",
           "variant_significance"]

#: The reference row of each model: the tuned recipe with every component.
FULL = "all components"
#: Columns of :func:`~amsnet_lib.report.significance.significance_table` the table keeps (Δ = variant − all components).
SIGNIFICANCE_COLUMNS = ("ΔWA 95 % CI", "ΔUA 95 % CI", "p (UA, bootstrap)")
#: The table's caption and notes (notebook 03 and ``python -m scripts.recipe_ablation`` write the same table).
CAPTION = "The tuned recipe without each of its components"
NOTES = [
    "Trained by `amsnet pretrain --studies recipe_ablation --no-loso --fusion` (`--models` and `--seeds` train a part "
    "of it); reported by notebook 03 or `python -m scripts.recipe_ablation`.",
    "WA, UA: mean over the 5 folds and the seeds of the row (of the study's 0, 1, 2: those whose every fold is finished, "
    "for the row and for its model's full recipe); std over folds and seeds. Δ = variant − all components on the same "
    "seeds and folds, percentage points; its 95 % interval and two-sided p from the paired bootstrap over the test "
    "utterances (10,000 resamples within each fold and seed, `significance.significance_table`): the trained models "
    "held fixed, so the spread between seeds is not in it.",
    "URLM is trained as in the paper in every row (`studies.PAPER_URLM`), as the tuned recipe's URLM was when this "
    "study was measured; the recipe's URLM is now the URLM search's best trial (`studies.TUNED_URLM`), whose "
    "components are not ablated. AMSNet's variants change its FRLM (and, for label smoothing, its head) only.",
]


def component(cfg: ExperimentConfig) -> str:
    """The row label of a configuration of the study: ``all components`` or ``without <component>``."""
    return f"without {cfg.variant.split('without ', 1)[1]}" if "without " in cfg.variant else FULL


def _finished(cfg: ExperimentConfig, features: Features, store, seeds: Iterable[int]):
    """``cfg`` over ``seeds`` read back from the run store: the result, or None when no fold of it is
    there; its ``missing`` lists the folds of ``seeds`` not finished."""
    from ..train.training import run_experiment

    seeds = tuple(seeds)
    if not seeds:
        return None
    try:
        return run_experiment(dataclasses.replace(cfg, seeds=seeds), features, store=store, progress=False,
                              finished_only=True)
    except AmsnetError:  # no fold of it in the run store
        return None


def _finished_seeds(cfg: ExperimentConfig, features: Features, store) -> list[int]:
    """The seeds of ``cfg`` whose every fold is finished in the run store."""
    res = _finished(cfg, features, store, cfg.seeds)
    return [] if res is None else [s for s in cfg.seeds if all(m[0] != s for m in res.missing)]


def variant_significance(variant, full) -> dict:
    """The paired bootstrap of ``variant`` against ``full`` (two :class:`~amsnet_lib.train.training.ExperimentResult`
    over the same seeds and folds): :func:`~amsnet_lib.report.significance.significance_table`'s row,
    Δ = variant − full."""
    return significance_table({"variant": variant, "full": full}, "variant").iloc[0].to_dict()


def ablation_results(configs: Iterable[ExperimentConfig], features: Callable[[ExperimentConfig], Features], store, *,
                     train: bool = False, device=None, progress: bool = False) -> dict:
    """Each configuration of the study over its finished seeds, against its model's full recipe.

    Args:
        configs: the study's configurations (:func:`~amsnet_lib.studies.recipe_ablation_study`),
            each with the seeds to consider; one of each model is its full recipe.
        features: the features of a configuration (``cfg -> Features``; the study shares one set).
        store: the run store.
        train: first train what the run store lacks, every seed of every configuration (about 9
            CPU-hours for the whole study); without it nothing is trained.

    Returns:
        ``{(model, row label): None (no seed finished) or {"summary": ExperimentResult.summary() over
        the row's seeds, "seeds": (...), "reference": the full recipe's summary on those seeds (None
        for the full recipe itself), "significance": variant_significance(...) or None}}``, a row's
        seeds being those finished for it and for its model's full recipe.
    """
    from ..train.training import run_experiment

    done, full = {}, {}
    for cfg in configs:
        feats = features(cfg)
        if train:
            run_experiment(cfg, feats, store=store, device=device, progress=progress)
        label = (cfg.model, component(cfg))
        done[label] = (cfg, feats, _finished_seeds(cfg, feats, store))
        if label[1] == FULL:
            full[cfg.model] = label
    read = {}  # (row label, seeds) -> result: a full recipe over the same seeds is read once for all its variants

    def result(label, seeds):
        if (label, seeds) not in read:
            cfg, feats, _ = done[label]
            read[label, seeds] = _finished(cfg, feats, store, seeds)
        return read[label, seeds]

    out = {}
    for label, (cfg, feats, own) in done.items():
        is_full = label == full[label[0]]
        ref_seeds = done[full[label[0]]][2]
        common = tuple(own if is_full else [s for s in own if s in ref_seeds])
        res = result(label, common)
        ref = None if is_full or res is None else result(full[label[0]], common)
        out[label] = None if res is None else {
            "summary": res.summary(), "seeds": tuple(common), "reference": None if ref is None else ref.summary(),
            "significance": None if ref is None else variant_significance(res, ref)}
    return out


def ablation_table(results: dict) -> pd.DataFrame:
    """One row per (model, row label) of :func:`ablation_results`: WA / UA mean and std (%) over the
    folds and the row's seeds, Δ against the model's full recipe on the same seeds, and that Δ's
    :data:`SIGNIFICANCE_COLUMNS` where the results carry them; ``not run`` for a row without a
    finished seed."""
    rows = []
    for (model, label), r in results.items():
        row = {"model": ABLATION_LABELS.get(model, model), "tuned recipe": label}
        if r is None:
            rows.append({**row, "seeds": "", "WA [paper] (%)": NOT_RUN})
            continue
        s, ref = r["summary"], r["reference"]
        rows.append({**row, "seeds": ", ".join(map(str, r["seeds"])), "WA [paper] (%)": s["wa"], "WA std": s["wa_std"],
                     "UA [paper] (%)": s["ua"], "UA std": s["ua_std"],
                     "ΔWA vs all components": round(s["wa"] - ref["wa"], 2) if ref else None,
                     "ΔUA vs all components": round(s["ua"] - ref["ua"], 2) if ref else None,
                     **{c: (r.get("significance") or {}).get(c) for c in SIGNIFICANCE_COLUMNS},
                     "folds": s["n_folds"]})
    out = pd.DataFrame(rows)
    return out.astype({"folds": "Int64"}) if "folds" in out else out
