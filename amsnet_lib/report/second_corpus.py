"""Beyond the paper: AMSNet on a second corpus, RAVDESS on EmoBox's speaker-independent folds.

The paper measures EmoDB and IEMOCAP only; RAVDESS (24 English-speaking actors) tests whether its
ordering (AMSNet above concatenation above either branch) and the tuned recipe, chosen on EmoDB,
hold on speakers and a language it was not built on. Its folds are EmoBox's (Ma et al., Interspeech
2024), so every number here is comparable with EmoBox's leaderboard, whose figures are quoted as
reported (frozen self-supervised speech models with a small head; not re-run here).
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from .. import studies
from .tables import (LATE_AVERAGE_LABEL, LATE_FUSION_LABEL, NOT_RUN, TUNED_SUFFIX, _ours, summary_row)
from . import paper

CORPUS = "ravdess"
PROTOCOL = "emobox"

#: EmoBox's intra-corpus leaderboard on RAVDESS (WA %, its folds), as EmoBox reports it: frozen
#: pre-trained speech models with a small head. Quoted for comparison; not measured here.
EMOBOX_RAVDESS = {"Whisper large v3": 75.87, "WavLM large": 72.22, "HuBERT base": 66.21, "wav2vec 2.0 base": 55.40}
#: The same leaderboard on EmoDB (its 5 speaker-dependent folds).
EMOBOX_EMODB = {"WavLM large": 92.67, "HuBERT base": 87.73, "wav2vec 2.0 base": 83.14}
EMOBOX_CITATION = ("Ma et al., EmoBox: Multilingual Multi-corpus Speech Emotion Recognition Toolkit and Benchmark, "
                   "Interspeech 2024 (intra-corpus leaderboard, {corpus})")

#: The rows: Table 5's models, then late fusion, each under both recipes (model, variant, label).
_ROWS = ([(m, "", paper.ABLATION_LABELS[m]) for m in studies.ABLATION_MODELS]
         + [("late", "", LATE_FUSION_LABEL), ("late", "w=0.5", LATE_AVERAGE_LABEL)])
#: Classic baselines (openSMILE functionals + linear SVM), where the suite has them.
BASELINES = (("compare-svm", "ComParE 2016 functionals + linear SVM"), ("egemaps-svm", "eGeMAPS functionals + linear SVM"))


def ravdess_table(summary: pd.DataFrame | None, availability: Mapping[str, str | None] | None = None) -> pd.DataFrame:
    """Table 5's models (both recipes), late fusion and the classic baselines on RAVDESS [emobox]:
    WA and UA (%, mean over the 6 folds) with their std over folds, then EmoBox's reported figures.

    Returns:
        DataFrame with columns ``model``, ``WA ours [emobox] (%)``, ``UA ours [emobox] (%)``,
        ``WA std``, ``UA std`` (over folds), ``source``; a value we did not measure says "not run".
    """
    availability = dict(availability or {})
    rows = []
    for model, variant, label in _ROWS:
        for recipe in ("paper", "tuned"):
            rows.append(_row(summary, availability, model, variant, recipe,
                             label + ("" if recipe == "paper" else TUNED_SUFFIX)))
    for model, label in BASELINES:
        rows.append(_row(summary, availability, model, "", "paper", f"{label} (classic baseline)"))
    for name, wa in EMOBOX_RAVDESS.items():
        rows.append({"model": f"{name} (frozen, EmoBox)", "WA ours [emobox] (%)": wa, "UA ours [emobox] (%)": "not reported",
                     "WA std": "", "UA std": "", "source": "reported by EmoBox, not measured here"})
    return pd.DataFrame(rows)


def emodb_section(summary: pd.DataFrame | None,
                  availability: Mapping[str, str | None] | None = None) -> tuple[pd.DataFrame, list[str]] | None:
    """REPORT.md's section on EmoDB on EmoBox's folds: :func:`emodb_table` and the notes under it;
    ``None`` while no EmoDB [emobox] row is measured."""
    table = emodb_table(summary, availability)
    if table is None:
        return None
    return table, ["EmoBox's 5 folds of 107 utterances, every speaker in every fold (speaker-dependent, like [paper] but "
                   "EmoBox's partition); validation drawn at random inside each fold's training part; the tuned recipe "
                   "exactly as chosen on EmoDB's [paper] folds (docs/RECIPE.md), whose test folds are other partitions of "
                   "the same utterances, so these rows are no independent test of that recipe.",
                   f"EmoBox rows: {EMOBOX_CITATION.format(corpus='EmoDB')}; WA as reported there, not measured here."]


def emodb_table(summary: pd.DataFrame | None, availability: Mapping[str, str | None] | None = None) -> pd.DataFrame | None:
    """EmoDB on EmoBox's 5 speaker-dependent folds (beyond the paper): the tuned recipe's branches and
    AMSNet and the classic baselines, as :func:`ravdess_table`, then EmoBox's reported figures; ``None``
    while no EmoDB [emobox] row is measured."""
    if summary is None or not len(summary) or not ((summary["corpus"].astype(str) == "emodb")
                                                   & (summary["protocol"].astype(str) == PROTOCOL)).any():
        return None
    availability = dict(availability or {})
    rows = [_row(summary, availability, m, "", "tuned", paper.ABLATION_LABELS[m] + TUNED_SUFFIX, corpus="emodb")
            for m in ("frlm", "urlm", "concat", "amsnet")]
    rows += [_row(summary, availability, m, "", "paper", f"{label} (classic baseline)", corpus="emodb")
             for m, label in BASELINES]
    rows += [{"model": f"{name} (frozen, EmoBox)", "WA ours [emobox] (%)": wa, "UA ours [emobox] (%)": "not reported",
              "WA std": "", "UA std": "", "source": "reported by EmoBox, not measured here"} for name, wa in EMOBOX_EMODB.items()]
    return pd.DataFrame(rows)


def _row(summary, availability, model, variant, recipe, label, corpus=CORPUS) -> dict:
    row = summary_row(summary, corpus, PROTOCOL, model, variant, recipe)
    out = {"model": label}
    for metric in ("wa", "ua"):
        out[f"{metric.upper()} ours [emobox] (%)"] = _ours(summary, availability, corpus, PROTOCOL, model, variant, metric, recipe)
    for metric in ("wa", "ua"):
        value = None if row is None else row.get(f"{metric}_std")
        out[f"{metric.upper()} std"] = "" if value is None or pd.isna(value) or value == "" else float(value)
    out["source"] = "measured here" if isinstance(out["WA ours [emobox] (%)"], float) else NOT_RUN
    return out


def ordering(summary: pd.DataFrame | None, recipe: str) -> list[str]:
    """Plain statements, from the measured UA, on whether the paper's ordering holds on RAVDESS under
    ``recipe``: AMSNet above each branch, above concatenation, above early fusion. Empty when AMSNet
    or all the others are not measured."""
    def ua(model):
        row = summary_row(summary, CORPUS, PROTOCOL, model, "", recipe)
        value = None if row is None else row.get("ua")
        return None if value is None or pd.isna(value) or value == "" else float(value)

    amsnet = ua("amsnet")
    if amsnet is None:
        return []
    out = []
    for model in ("frlm", "urlm", "concat", "early"):
        other = ua(model)
        if other is None:
            continue
        verdict = "above" if amsnet > other else ("level with" if amsnet == other else "below")
        out.append(f"{recipe} recipe: AMSNet (UA {amsnet:.2f}) is {verdict} {paper.ABLATION_LABELS[model]} "
                   f"(UA {other:.2f}), Δ {amsnet - other:+.2f}")
    return out


def table5_cost(summary: pd.DataFrame | None, recipe: str = "tuned") -> str | None:
    """What Table 5's models cost to train on RAVDESS under ``recipe``, from the single-thread seconds
    the run store recorded per fold (``summary.csv``'s ``train_seconds``), each branch counted once (a
    fusion model's seconds include its branches'); ``None`` until every model has all its folds."""
    seconds = {}
    for model in studies.ABLATION_MODELS:
        row = summary_row(summary, CORPUS, PROTOCOL, model, "", recipe)
        if row is None or str(row.get("complete")) != "True" or pd.isna(row.get("train_seconds")):
            return None
        seconds[model] = float(row["train_seconds"])
    branches = seconds["frlm"] + seconds["urlm"]
    heads = sum(seconds[m] - branches for m in ("concat", "amsnet"))
    total = branches + seconds["early"] + heads
    return (f"Cost, {recipe} recipe: Table 5's models on RAVDESS (FRLM, URLM, early fusion, concatenation, AMSNet; 6 "
            f"folds each) took {total / 3600:.1f} CPU hours of single-thread training as the run store recorded it "
            f"(the branches {branches / 3600:.1f} h, counted once; early fusion {seconds['early'] / 3600:.1f} h; the two "
            f"fusion models' own stages {heads / 3600:.1f} h), about {total / 7200:.1f} h of wall with two trainings side "
            "by side on the 2-core CPU (feature extraction not counted; trained across sessions, partly beside other work).")


def section(summary: pd.DataFrame | None, availability: Mapping[str, str | None] | None,
            study_tables: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    """REPORT.md's RAVDESS section: its table and the notes under it (the ordering, the significance
    tables notebook 03 wrote, the leaderboard's source)."""
    table = ravdess_table(summary, availability)
    notes = ["Beyond the paper: RAVDESS's 1440 speech utterances of 24 actors (8 classes), EmoBox's 6 speaker-independent "
             "folds of 4 actors; every choice (epoch, late-fusion weight) made on 2 actors held out of each fold's "
             "training part; the tuned recipe exactly as chosen on EmoDB (docs/RECIPE.md); leading and trailing silence "
             "trimmed at 40 dB before the 3-s window.",
             f"EmoBox rows: {EMOBOX_CITATION.format(corpus='RAVDESS')}; WA as reported there, not measured here."]
    for recipe in ("tuned", "paper"):
        lines = ordering(summary, recipe)
        if lines:
            notes.append("Does the paper's ordering hold here? " + "; ".join(lines) + ".")
    cost = table5_cost(summary)
    if cost:
        notes.append(cost)
    found = sorted(n for n in study_tables if n.endswith(f"_{CORPUS}_{PROTOCOL}") and n.startswith(("significance_", "tuned_recipe_")))
    if found:
        notes.append("Paired significance tests (AMSNet against each model; tuned against paper recipe): "
                     + ", ".join(f"[`{n}`](tables/{n}.md)" for n in found) + ".")
    else:
        notes.append(f"Significance tests: {NOT_RUN}.")
    return table, notes
