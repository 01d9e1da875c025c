"""The tables of the notebooks and the report: builders (DataFrames) and the writer.

Every table is written twice, atomically, as ``<name>.csv`` (machine-readable) and ``<name>.md``
(Markdown, with a caption naming the protocol) by :func:`write_table`. Numbers are always labelled
with the protocol that produced them: ``[paper]`` is the paper's speaker-dependent stratified
random 5-fold cross-validation, ``[loso]`` leave one speaker out. A value that was not measured
is the string ``"not run"`` (``"not run: corpus not available"`` when the corpus could not be
found), never a number.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import paper
from .. import studies
from ..atomic import atomic_write_text
from ..config import CLASSIC_MODELS, RECIPES, ExperimentConfig


#: The corpora the paper reports on, in its order.
CORPORA = ("iemocap", "emodb")


CORPUS_LABELS = {"emodb": "EmoDB", "iemocap": "IEMOCAP", "ravdess": "RAVDESS"}


#: What each protocol measures, as written next to every number it produced.
PROTOCOL_DESCRIPTIONS = {
    "paper": "speaker-dependent: stratified random 5-fold cross-validation, 80 % train / 20 % test (the paper's protocol)",
    "loso": "speaker-independent: leave one speaker out",
    "loso_session": "speaker-independent: leave one session out",
    "split_file": "folds read from a split file",
    "emobox": ("EmoBox's published folds (Ma et al., Interspeech 2024): RAVDESS 6 speaker-independent folds of "
               "4 actors, EmoDB 5 speaker-dependent folds; validation drawn inside each fold's training part, by "
               "speaker where the folds are speaker-independent"),
    "corpus_folds": ("corpora trained together, each tested on its own speaker-independent folds (EmoDB loso, RAVDESS "
                     "EmoBox's), the others in every training part; validation speakers held out of each corpus"),
}


PROTOCOL_SHORT = {"paper": "paper protocol (speaker-dependent 5-fold)", "loso": "LOSO (leave-one-speaker-out)",
                  "loso_session": "leave-one-session-out", "split_file": "split file", "emobox": "EmoBox folds",
                  "corpus_folds": "each corpus's own folds, the others in training"}


NOT_RUN = "not run"


NOT_AVAILABLE = "not run: corpus not available"


NOT_RERUN = "not re-run"


REPORTED_NOT_RERUN = "reported, not re-run"


NOT_IN_PAPER = "not in the paper"


#: Table 4/5 rows of late fusion (beyond the paper; ``amsnet train --model late [--late-weight 0.5]``).
LATE_FUSION_LABEL = "Late fusion, w on validation (beyond the paper)"


LATE_AVERAGE_LABEL = "Late fusion, average w = 0.5 (beyond the paper)"


_BEYOND_ABLATIONS = (("late", "", LATE_FUSION_LABEL), ("late", "w=0.5", LATE_AVERAGE_LABEL))


#: Tables 2, 4 and 5's rows of the classic baselines (beyond the paper, issue #37;
#: ``amsnet train --model compare-svm``): no network, so one row each, whatever the recipe.
BASELINE_LABELS = {"compare-svm": "ComParE functionals + linear SVM (baseline, beyond the paper)",
                   "egemaps-svm": "eGeMAPS functionals + linear SVM (baseline, beyond the paper)"}


def _baseline_rows(summary, availability, corpus: str, protocols: Sequence[str], reported: Sequence[str]) -> list[dict]:
    """One row per classic baseline of :data:`BASELINE_LABELS`: ours per protocol (their
    ``summary.csv`` rows carry the recipe ``paper``, which means nothing for them), "not run" where
    not measured; ``reported`` names the metrics whose reported and Δ cells say :data:`NOT_IN_PAPER`."""
    rows = []
    for model, label in BASELINE_LABELS.items():
        row = {"model": label}
        for metric in ("WA", "UA"):
            if metric in reported:
                row[f"{metric} reported [paper] (%)"] = NOT_IN_PAPER
            for p in protocols:
                tag = protocol_tag(p)
                row[f"{metric} ours {tag} (%)"] = _ours(summary, availability, corpus, p, model, "", metric.lower())
                if metric in reported:
                    row[f"Δ{metric} {tag}"] = NOT_IN_PAPER
        rows.append(row)
    return rows


#: Appended to a row's model label when the tuned training recipe produced it (docs/RECIPE.md).
TUNED_SUFFIX = ", tuned recipe"


#: Fig. 1 shows these four emotions (the paper: angry, happy, neutral, sad).
FIG1_CLASSES = {"emodb": ("anger", "happiness", "neutral", "sadness"), "iemocap": ("angry", "happy", "neutral", "sad")}

#: The file-name prefix of each study's tables and figures (``results/tables/<prefix><corpus>_<protocol>``)
#: that the report quotes by prefix: the registry's, and the significance tests of notebook 03.
_STUDY_TABLE_PREFIX = {**{n: st.table_prefix for n, st in studies.STUDIES.items() if st.table_prefix},
                       "significance": "significance_"}

def protocol_tag(protocol: str) -> str:
    """The tag every measured number carries: ``[paper]``, ``[loso]``, ..."""
    return f"[{protocol}]"


def _is_missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _fmt(v, column: str = "") -> str:
    if _is_missing(v):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}" if "param" in column.lower() else str(int(v))
    if isinstance(v, (float, np.floating)):
        if column.startswith("Δ"):
            return f"{float(v):+.2f}"
        if column.startswith("p ("):  # a p-value
            return _p_text(float(v))
        if "param" in column.lower():
            return f"{float(v) / 1e6:.2f}M" if abs(v) >= 1e5 else f"{float(v):,.0f}"
        if float(v).is_integer() and abs(v) < 1e6 and column.lower() in ("fold", "seed", "r", "epoch", "batch_size", "hidden_size"):
            return str(int(v))
        return f"{float(v):.2f}" if abs(v) >= 0.01 or v == 0 else f"{float(v):.3g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (floats to 2 decimals, Δ signed)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, c) for v, c in zip(row, cols)) + " |")
    return "\n".join(lines) + "\n"


def write_table(df: pd.DataFrame, stem: str | os.PathLike, caption: str | None = None, notes: Iterable[str] = ()) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.md`` atomically (a reader never sees half a file)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, md = stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".md")
    atomic_write_text(csv, df.to_csv(index=False))
    parts = [f"**{caption}**\n" if caption else "", markdown_table(df)]
    notes = [n for n in notes if n]
    if notes:
        parts.append("\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    atomic_write_text(md, "\n".join(p for p in parts if p))
    return csv, md


def protocol_notes(protocols: Iterable[str], profile: str | None = None, reported: bool = True) -> list[str]:
    """The legend under a table; ``reported=False`` for tables without the paper's values (their Δ
    is defined in their own notes)."""
    notes = [f"{protocol_tag(p)} = {PROTOCOL_DESCRIPTIONS.get(p, p)}." for p in dict.fromkeys(protocols)]
    notes.append(f"'reported' = {paper.REPORTED} (speaker-dependent 5-fold CV), not measured here; Δ = ours − reported, "
                 "percentage points. 'not run' = not measured." if reported else "'not run' = not measured.")
    if profile == "quick":
        notes.append("Profile quick: tiny networks trained for one epoch to check the pipeline; its accuracies mean nothing.")
    return notes


def corpus_facts(table: pd.DataFrame) -> dict:
    """Counts that must not drift: utterances, classes, speakers, per-class counts."""
    classes = list(table.attrs.get("classes") or sorted(table["label"].unique()))
    counts = table["label"].value_counts()
    return {
        "corpus": table.attrs.get("corpus", "custom"),
        "utterances": int(len(table)),
        "classes": len(classes),
        "speakers": int(table["speaker"].nunique()),
        "per class": {c: int(counts.get(c, 0)) for c in classes},
        "skipped files": len(table.attrs.get("skipped") or []),
    }


def class_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Utterances, share and mean duration per class, in the corpus' class order."""
    classes = list(table.attrs.get("classes") or sorted(table["label"].unique()))
    g = table.groupby("label")
    out = pd.DataFrame({"class": classes})
    out["utterances"] = [int(g.size().get(c, 0)) for c in classes]
    out["share (%)"] = (100 * out["utterances"] / max(1, len(table))).round(2)
    out["mean duration (s)"] = [round(float(g["duration"].mean().get(c, np.nan)), 2) for c in classes]
    return out


def speaker_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Utterances per speaker and class (rows: speakers with their gender)."""
    classes = list(table.attrs.get("classes") or sorted(table["label"].unique()))
    ct = pd.crosstab(table["speaker"], table["label"]).reindex(columns=classes, fill_value=0)
    ct.insert(0, "utterances", ct.sum(1))
    gender = table.groupby("speaker")["gender"].first()
    ct.insert(0, "gender", gender.reindex(ct.index))
    return ct.reset_index().rename(columns={"index": "speaker"})


def fold_sizes(table: pd.DataFrame, config: ExperimentConfig) -> pd.DataFrame:
    """Train / validation / test utterances of each fold of ``config``'s protocol (seed 0 split)."""
    from ..data.protocols import make_folds, validation_groups, validation_split

    classes = list(table.attrs.get("classes") or sorted(table["label"].unique()))
    labels = np.array([classes.index(l) for l in table["label"]])
    folds = make_folds(table, config.protocol, n_folds=config.n_folds, split_seed=config.split_seed, split_file=config.split_file)
    rows = []
    for f in folds:
        fit, val = validation_split(labels, f.train, config.branch_train.val_fraction, config.seeds[0],
                                    **validation_groups(table, config.validation))
        rows.append({"fold": f.name, "n_train": len(fit), "n_val": len(val), "n_test": len(f.test),
                     "test speakers": ",".join(sorted(map(str, table["speaker"].iloc[f.test].unique())))})
    return pd.DataFrame(rows)


def spectrogram_examples(features, classes: Sequence[str] | None = None) -> tuple[dict, dict]:
    """Fig. 1's utterances: one per emotion, from the same speaker and sentence when the corpus has
    one speaker and text spoken in all of them (EmoDB does), else the first of each class.

    Returns:
        ``(specs, captions)``: emotion -> ``(n_mels, T)`` log-mel spectrogram, emotion -> caption.
    """
    t = features.table
    corpus = t.attrs.get("corpus", "")
    classes = [c for c in (classes or FIG1_CLASSES.get(corpus, features.classes[:4])) if c in features.classes]
    pick: dict[str, int] = {}
    if "text" in t.columns and t["text"].notna().any():
        sub = t[t["label"].isin(classes)]
        for (_, _), g in sub.groupby(["speaker", "text"], sort=True):
            if set(classes) <= set(g["label"]):
                pick = {c: int(g.index[g["label"] == c][0]) for c in classes}
                break
    for c in classes:
        if c not in pick:
            pick[c] = int(np.flatnonzero(t["label"].to_numpy() == c)[0])
    specs = {c: features.spec[i] for c, i in pick.items()}
    captions = {c: f"{Path(str(t['path'].iloc[i])).name} (speaker {t['speaker'].iloc[i]})" for c, i in pick.items()}
    return specs, captions


def fold_table(results: Mapping[str, "object"]) -> pd.DataFrame:
    """Per-fold WA/UA (%) of several models side by side, sizes of each fold, then the mean row.

    Args:
        results: label -> :class:`~amsnet_lib.train.training.ExperimentResult` (same corpus and protocol).
    """
    merged = None
    for label, res in results.items():
        f = res.folds
        part = pd.DataFrame({"seed": f["seed"], "fold": f["fold"].astype(str)})
        if merged is None:
            for k in ("n_train", "n_val", "n_test"):
                if k in f.columns:
                    part[k] = f[k].astype(int)
        part[f"{label} WA (%)"] = (100 * f["wa"]).round(2)
        part[f"{label} UA (%)"] = (100 * f["ua"]).round(2)
        if "best_epoch" in f.columns:
            part[f"{label} best epoch"] = f["best_epoch"].astype(int)
        merged = part if merged is None else merged.merge(part, on=["seed", "fold"], how="outer")
    if merged is None:
        return pd.DataFrame()
    mean = {c: (round(float(merged[c].mean()), 2) if c.endswith("(%)") else "") for c in merged.columns}
    mean.update(seed="", fold="mean")
    merged = merged.astype({c: object for c in merged.columns if not c.endswith("(%)")})
    return pd.concat([merged, pd.DataFrame([mean])], ignore_index=True)


def curves_table(results: Mapping[str, "object"], by: str = "model") -> pd.DataFrame:
    """All per-epoch curves of several results, with a ``by`` column naming each result."""
    parts = [res.curves.assign(**{by: label}) for label, res in results.items()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def fusion_weight_table(result) -> pd.DataFrame:
    """How much AMSNet trusted each branch: alpha_FRLM per true class (alpha_URLM = 1 - it)."""
    p = result.predictions
    if "alpha_frlm" not in p.columns:
        raise ValueError("only AMSNet predictions carry fusion weights (alpha_frlm)")
    df = p[["true", "alpha_frlm"]].dropna()
    rows = []
    groups = [(c, df[df["true"] == i]) for i, c in enumerate(result.classes)] + [("all", df)]
    for name, g in groups:
        a = g["alpha_frlm"]
        rows.append({"class": name, "utterances": int(len(g)), "mean alpha_FRLM": round(float(a.mean()), 4) if len(a) else np.nan,
                     "median alpha_FRLM": round(float(a.median()), 4) if len(a) else np.nan,
                     "mean alpha_URLM": round(float(1 - a.mean()), 4) if len(a) else np.nan,
                     "share FRLM trusted more (%)": round(float(100 * (a > 0.5).mean()), 2) if len(a) else np.nan})
    return pd.DataFrame(rows)


def parameter_count(config: ExperimentConfig, n_classes: int | None = None) -> int | None:
    """Trainable and frozen parameters of ``config.model`` as built by :func:`build_model`; None for a
    classic baseline (an SVM's size is its support vectors, a number of the fitted fold, not of the model)."""
    from ..data.corpora import CLASSES
    from ..models import build_model, count_parameters

    if config.model in CLASSIC_MODELS:
        return None
    if n_classes is None:
        n_classes = len(CLASSES.get(config.corpus, CLASSES["emodb"]))
    model = build_model(config.model, n_classes, frlm=config.frlm, urlm=config.urlm, fusion=config.fusion, n_mels=config.features.n_mels)
    return int(count_parameters(model))


def _study_factors(study: str, config: ExperimentConfig) -> dict:
    """The columns a study varies (its :attr:`~amsnet_lib.studies.Study.factors`), read from one configuration."""
    return {k: get(config) for k, get in studies.STUDIES[study].factors.items()}


def study_table(results: Sequence, study: str, planned: Sequence[ExperimentConfig] = ()) -> pd.DataFrame:
    """One row per variant of a study: its factor(s), WA/UA mean and std (%), test loss, params.

    Args:
        results: the study's finished experiments (``ExperimentResult``).
        planned: the study's configurations (``Session.configs``); each one without a result gets
            a row of its own, its factors and parameter count filled in, its measured cells empty
            and "trained on" saying "not run", so that a reader sees what the study lacks. Rows
            follow ``planned``'s order, then any result it does not list.
    """
    protocol = results[0].config.protocol if results else (planned[0].protocol if planned else "paper")
    tag = protocol_tag(protocol)
    metric_cols = [f"WA {tag} (%)", f"WA std {tag}", f"UA {tag} (%)", f"UA std {tag}", f"test loss {tag}", "best epoch (mean)"]

    def measured(res) -> dict:
        s = res.summary()
        return {**_study_factors(study, res.config), **dict(zip(metric_cols, (
            s["wa"], s["wa_std"], s["ua"], s["ua_std"],
            round(float(res.folds["loss"].mean()), 4) if "loss" in res.folds else np.nan,
            round(float(res.folds["best_epoch"].mean()), 1) if "best_epoch" in res.folds else np.nan))),
            "params": parameter_count(res.config, len(res.classes)),
            "folds": s["n_folds"], "seeds": s["n_seeds"], "trained on": s["trained_on"]}

    def not_run(c) -> dict:
        return {**_study_factors(study, c), **{col: np.nan for col in metric_cols},
                "params": parameter_count(c), "folds": 0, "seeds": 0, "trained on": NOT_RUN}

    by_identity = {_identity(res.config): res for res in results}
    listed = {_identity(c) for c in planned}
    rows = [measured(by_identity[_identity(c)]) if _identity(c) in by_identity else not_run(c) for c in planned]
    rows += [measured(res) for res in results if _identity(res.config) not in listed]
    return pd.DataFrame(rows)


def _identity(c: ExperimentConfig, model: str | None = None) -> tuple[str, str, str]:
    """What tells a study's results apart: a variant label is unique within one model and recipe
    only (Table 3 holds "r=8" under both recipes). ``model`` looks up another model of ``c``'s
    variant, e.g. its branches."""
    return model or c.model, c.recipe, c.variant


def branch_table(study: str, planned: Sequence[ExperimentConfig], results: Sequence) -> pd.DataFrame:
    """A study that varies both stages (Fig. 6): one row per configuration of ``planned`` (the
    fusion experiments) with what each branch reached beside the fusion, WA/UA (%).

    Args:
        study: name of a study of :data:`amsnet_lib.studies.STUDIES` (its factors name the columns).
        planned: the fusion experiments of the study (``Session.configs``).
        results: finished ``ExperimentResult`` of those experiments and of their branches
            (:func:`amsnet_lib.studies.branches_of`); a model without a result leaves its cells
            empty. "trained on" is the fusion's (it names its branches' devices too); before the
            fusion has run it names the finished branches' devices and says the fusion is "not run".
    """
    by_key = {_identity(r.config): r for r in results}
    tag = protocol_tag(planned[0].protocol if planned else "paper")
    rows = []
    for c in planned:
        row = _study_factors(study, c)
        devices = []
        for model in ("frlm", "urlm", c.model):
            res = by_key.get(_identity(c, model))
            s = res.summary() if res is not None else {"wa": np.nan, "ua": np.nan, "trained_on": NOT_RUN}
            label = paper.ABLATION_LABELS.get(model, model)
            row.update({f"{label} WA {tag} (%)": s["wa"], f"{label} UA {tag} (%)": s["ua"]})
            devices.append(s["trained_on"])
        branch_devices = [d for d in dict.fromkeys(devices[:2]) if d != NOT_RUN]
        fusion_label = paper.ABLATION_LABELS.get(c.model, c.model)
        row["trained on"] = (devices[-1] if devices[-1] != NOT_RUN or not branch_devices
                             else f"{' / '.join(branch_devices)}; {fusion_label}: {NOT_RUN}")
        rows.append(row)
    return pd.DataFrame(rows)


def seed_table(results: Sequence) -> pd.DataFrame:
    """The seed study: one row per model with its mean over the folds for each training seed, the
    mean and standard deviation of those over the seeds, and their range (WA, UA in %)."""
    rows = []
    for res in results:
        tag = protocol_tag(res.config.protocol)
        per_seed = res.folds.groupby("seed")[["wa", "ua"]].mean() * 100
        row = {"model": paper.ABLATION_LABELS.get(res.config.model, res.config.model), "seeds": len(per_seed),
               "folds": int(res.folds["fold"].nunique())}
        for m in ("wa", "ua"):
            v = per_seed[m]
            row.update({f"{m.upper()} seed {seed} {tag} (%)": round(float(x), 2) for seed, x in v.items()})
            row.update({f"{m.upper()} mean {tag} (%)": round(float(v.mean()), 2),
                        f"{m.upper()} std over seeds": round(float(v.std(ddof=0)), 2),
                        f"{m.upper()} range": f"{v.min():.2f}-{v.max():.2f}"})
        row["trained on"] = res.summary()["trained_on"]
        rows.append(row)
    return pd.DataFrame(rows)


def seed_points(results: Sequence) -> pd.DataFrame:
    """The seed study in long form for a figure: model, seed, ``wa``, ``ua`` (mean over folds, %)."""
    rows = []
    for res in results:
        per_seed = res.folds.groupby("seed")[["wa", "ua"]].mean() * 100
        for seed, r in per_seed.iterrows():
            rows.append({"model": paper.ABLATION_LABELS.get(res.config.model, res.config.model), "seed": f"seed {seed}",
                         "wa": round(float(r["wa"]), 2), "ua": round(float(r["ua"]), 2)})
    return pd.DataFrame(rows)


def summary_row(summary: pd.DataFrame | None, corpus, protocol, model, variant="", recipe="paper"):
    """The ``summary.csv`` row of one experiment (corpus, protocol, recipe, model, variant), or None."""
    if summary is None or not len(summary):
        return None
    s = summary
    # a summary from before the tuned recipe has no recipe column: every row is the paper recipe's
    recipes = (s["recipe"].fillna("paper").astype(str).replace({"nan": "paper", "": "paper"}).to_numpy() if "recipe" in s
               else np.full(len(s), "paper"))
    hit = s[(s["corpus"].astype(str) == corpus) & (s["protocol"].astype(str) == protocol)
            & (s["model"].astype(str) == model) & (s["variant"].astype(str).replace("nan", "") == variant)
            & (recipes == recipe)]
    return None if hit.empty else hit.iloc[-1]


def _ours(summary, availability: Mapping[str, str | None], corpus, protocol, model, variant, metric, recipe="paper"):
    """Our measured value (float, %) under ``recipe``, or why there is none ("not run ...")."""
    row = summary_row(summary, corpus, protocol, model, variant, recipe)
    if row is not None and not _is_missing(row.get(metric)) and str(row.get(metric)) != "":
        return float(row[metric])
    reason = availability.get(corpus)
    if not reason:
        return NOT_RUN
    # the cell says what; where it was looked for is in the report's "Corpora" section
    return NOT_AVAILABLE if reason.startswith(NOT_AVAILABLE) else reason


def _diff(ours, reported):
    return round(ours - reported, 2) if isinstance(ours, float) and reported is not None else NOT_RUN


def comparison_table2(summary: pd.DataFrame | None, protocols: Sequence[str] = ("paper",),
                      availability: Mapping[str, str | None] | None = None, corpora: Sequence[str] = CORPORA,
                      ensembles: bool = True) -> pd.DataFrame:
    """Table 2: the paper's rows (literature: reported, not re-run) and ours beside AMSNet's.

    Args:
        summary: ``results/tables/summary.csv`` as a DataFrame (or None: nothing measured).
        protocols: our protocols to show, each in its own columns (``[paper]``, ``[loso]``).
        availability: corpus -> None when available, else the reason (``"not run: corpus not
            available ..."``); it fills the cells of corpora we could not run.
        corpora: which of the paper's corpora to list.
        ensembles: also the tuned AMSNet's seed ensemble, where ``summary`` holds one. Notebook 02,
            which runs before notebook 03 chooses the ensembles, leaves it out, so that its table
            does not depend on whether an earlier run left one in ``summary``.
    """
    availability = dict(availability or {})
    rows = []
    for r in paper.TABLE2:
        if r.corpus not in corpora:
            continue
        # ours: AMSNet's rows; a literature row once, as reported
        lines = _recipe_lines(summary, r.corpus, "amsnet", r.model, protocols,
                              RECIPES if r.amsnet else ("paper",), ensembles=ensembles)
        for recipe, variant, text in lines:
            row = {"model": text, "corpus": CORPUS_LABELS[r.corpus],
                   "source": (f"paper vs ours, {recipe} recipe" if r.amsnet else REPORTED_NOT_RERUN)}
            for metric, reported in (("WA", r.wa), ("UA", r.ua)):
                row[f"{metric} reported [paper] (%)"] = reported
                for p in protocols:
                    tag = protocol_tag(p)
                    if r.amsnet:
                        ours = _ours(summary, availability, r.corpus, p, "amsnet", variant, metric.lower(), recipe)
                        row[f"{metric} ours {tag} (%)"] = ours
                        row[f"Δ{metric} {tag}"] = _diff(ours, reported)
                    else:
                        row[f"{metric} ours {tag} (%)"] = NOT_RERUN
                        row[f"Δ{metric} {tag}"] = NOT_RERUN
            rows.append(row)
        if r.amsnet:  # what practitioners would use instead, measured on the same folds
            rows += [{**b, "corpus": CORPUS_LABELS[r.corpus], "source": "measured here, not in the paper"}
                     for b in _baseline_rows(summary, availability, r.corpus, protocols, ("WA", "UA"))]
    return pd.DataFrame(rows)


def ablation_table(summary: pd.DataFrame | None, corpus: str, protocols: Sequence[str] = ("paper",),
                   availability: Mapping[str, str | None] | None = None,
                   recipes: Sequence[str] = RECIPES, ensembles: bool = True) -> pd.DataFrame:
    """Tables 4 (IEMOCAP) / 5 (EmoDB): each ablation model, reported vs ours per protocol.

    The paper's five models, then late fusion (beyond the paper: :data:`LATE_FUSION_LABEL`,
    :data:`LATE_AVERAGE_LABEL`) on the same folds and branches, whose reported cells say
    :data:`NOT_IN_PAPER`. Each model once per training recipe of ``recipes``: the paper's, then
    the tuned one (beyond the paper, labelled with :data:`TUNED_SUFFIX`), and with ``ensembles`` the
    tuned model's seed ensemble where ``summary`` holds one (as :func:`comparison_table2`).
    """
    availability = dict(availability or {})
    rows = []
    for model, variant, label in [(m, "", paper.ABLATION_LABELS[m]) for m in studies.ABLATION_MODELS] + list(_BEYOND_ABLATIONS):
        wa, ua = paper.ABLATIONS.get(corpus, {}).get(model, (None, None))  # RAVDESS: not in the paper
        lines = _recipe_lines(summary, corpus, model, label, protocols, recipes, variant, ensembles)
        for recipe, variant, text in lines:  # the tuned recipe's row beside the paper recipe's
            row = {"model": text}
            for metric, reported in (("WA", wa), ("UA", ua)):
                row[f"{metric} reported [paper] (%)"] = NOT_IN_PAPER if reported is None else reported
                for p in protocols:
                    tag = protocol_tag(p)
                    ours = _ours(summary, availability, corpus, p, model, variant, metric.lower(), recipe)
                    row[f"{metric} ours {tag} (%)"] = ours
                    row[f"Δ{metric} {tag}"] = NOT_IN_PAPER if reported is None else _diff(ours, reported)
            rows.append(row)
    rows += _baseline_rows(summary, availability, corpus, protocols, ("WA", "UA"))
    return pd.DataFrame(rows)


def _recipe_lines(summary: pd.DataFrame | None, corpus: str, model: str, label: str, protocols: Sequence[str],
                  recipes: Sequence[str] = RECIPES, variant: str = "", ensembles: bool = True) -> list[tuple[str, str, str]]:
    """``(recipe, variant, row label)`` of one model's rows in Tables 2, 4 and 5: once per training
    recipe of ``recipes`` (the tuned one labelled with :data:`TUNED_SUFFIX`), then, with ``ensembles``,
    the tuned recipe's seed ensemble where notebook 03 chose one on validation."""
    lines = [(recipe, variant, label + ("" if recipe == "paper" else TUNED_SUFFIX)) for recipe in recipes]
    ens = ensemble_variant(summary, corpus, model, protocols) if ensembles and "tuned" in recipes and not variant else None
    if ens:
        lines.append(("tuned", ens, f"{label}{TUNED_SUFFIX}, {ens}"))
    return lines


def ensemble_variant(summary: pd.DataFrame | None, corpus: str, model: str, protocols: Sequence[str]) -> str | None:
    """The variant of the tuned ``model``'s seed-ensemble row in ``summary`` (``ensemble of <k> seeds``)
    under one of ``protocols``, if any."""
    from ..train.ensemble import ENSEMBLE_VARIANT

    if summary is None or not len(summary) or "recipe" not in summary:
        return None
    v = summary["variant"].astype(str)
    hit = summary[(summary["corpus"].astype(str) == corpus) & (summary["model"].astype(str) == model)
                  & summary["protocol"].astype(str).isin(list(protocols))
                  & (summary["recipe"].astype(str) == "tuned") & v.str.match(ENSEMBLE_VARIANT)]
    return None if hit.empty else str(hit["variant"].iloc[-1])


def late_fusion_table(result) -> pd.DataFrame:
    """Beyond the paper: what late fusion chose on each fold, and what it reached.

    One row per (seed, fold) of a late-fusion :class:`~amsnet_lib.train.training.ExperimentResult`, then
    the mean: the weight w of FRLM's probabilities chosen on the validation split (URLM's is
    1 − w), the validation cross-entropy there and at the candidates that are a branch alone
    (w = 0: URLM, w = 1: FRLM) and the plain average (w = 0.5), then the test WA and UA (%).
    """
    own = result.curves[result.curves["stage"] == "late"]
    rows = []
    for _, f in result.folds.iterrows():
        c = own[(own["seed"] == f["seed"]) & (own["fold"] == f["fold"])].set_index("weight")
        chosen = c[c["epoch"] == f["best_epoch"]]
        if chosen.empty:
            raise ValueError(f"fold {f['fold']} (seed {f['seed']}): its curves lack the chosen candidate")

        def val_loss(w):
            hit = c.index[np.isclose(c.index.to_numpy(dtype=float), w)]
            return float(c.loc[hit[0], "val_loss"]) if len(hit) else float("nan")

        rows.append({"seed": f["seed"], "fold": f["fold"], "w_FRLM": float(chosen.index[0]),
                     "val loss (chosen w)": float(chosen["val_loss"].iloc[0]), "val loss (URLM, w=0)": val_loss(0.0),
                     "val loss (average, w=0.5)": val_loss(0.5), "val loss (FRLM, w=1)": val_loss(1.0),
                     "WA (%)": 100 * float(f["wa"]), "UA (%)": 100 * float(f["ua"])})
    t = pd.DataFrame(rows)
    mean = {"seed": "", "fold": "mean", **t.drop(columns=["seed", "fold"]).mean().to_dict()}
    return pd.concat([t, pd.DataFrame([mean])], ignore_index=True).round(
        {"w_FRLM": 2, "val loss (chosen w)": 4, "val loss (URLM, w=0)": 4, "val loss (average, w=0.5)": 4,
         "val loss (FRLM, w=1)": 4, "WA (%)": 2, "UA (%)": 2})


def _p_text(p: float) -> str:
    """A p-value as tables print it: 4 decimals, or ``< 0.0001``."""
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def normalisation_table(summary: pd.DataFrame | None, corpus: str, protocols: Sequence[str] = ("paper",),
                        availability: Mapping[str, str | None] | None = None) -> pd.DataFrame:
    """Beyond the paper: each model with corpus vs per-speaker standardisation, per protocol.

    One row per model of :data:`~amsnet_lib.studies.NORMALISATION_MODELS`; for each protocol the
    WA and UA (%) with the paper's corpus standardisation, with per-speaker standardisation, and
    the difference (speaker − corpus, points).
    """
    availability = dict(availability or {})
    rows = []
    for model in studies.NORMALISATION_MODELS:
        row = {"model": paper.ABLATION_LABELS[model]}
        for p in protocols:
            tag = protocol_tag(p)
            for metric in ("WA", "UA"):
                corpus_norm = _ours(summary, availability, corpus, p, model, "", metric.lower())
                speaker_norm = _ours(summary, availability, corpus, p, model, "normalisation=speaker", metric.lower())
                row[f"{metric} corpus {tag} (%)"] = corpus_norm
                row[f"{metric} speaker {tag} (%)"] = speaker_norm
                row[f"Δ{metric} {tag}"] = (round(speaker_norm - corpus_norm, 2)
                                           if isinstance(speaker_norm, float) and isinstance(corpus_norm, float) else NOT_RUN)
        rows.append(row)
    return pd.DataFrame(rows)


def se_ratio_table(summary: pd.DataFrame | None, protocols: Sequence[str] = ("paper",),
                   availability: Mapping[str, str | None] | None = None, corpora: Sequence[str] = CORPORA,
                   params: Mapping[tuple[str, int], int] | None = None, profile: str = "full",
                   recipes: Sequence[str] = RECIPES) -> pd.DataFrame:
    """Table 3: SE reduction ratio r -> accuracy (WA, "ACC") per corpus and parameter count, one row
    per r and training recipe (the paper's, then the tuned one, beyond the paper).

    Args:
        params: ``(recipe, r)`` -> our parameter count (:func:`parameter_count` of the EmoDB
            configuration of ``profile``; the tuned recipe's frame stacking widens FRLM's input);
            ``None`` computes it.
    """
    availability = dict(availability or {})
    if params is None:
        params = {(c.recipe, c.urlm.se_ratio): parameter_count(c) for c in studies.se_ratio_study("emodb", "paper", profile)}
    rows = []
    for r, rep in paper.TABLE3.items():
        for recipe in recipes:
            row = {"r": r, "recipe": recipe}
            for corpus in corpora:
                label = CORPUS_LABELS[corpus]
                row[f"ACC {label} reported [paper] (%)"] = rep[corpus]
                for p in protocols:
                    tag = protocol_tag(p)
                    ours = _ours(summary, availability, corpus, p, "amsnet", f"r={r}", "wa", recipe)
                    row[f"ACC {label} ours {tag} (%)"] = ours
                    row[f"ΔACC {label} {tag}"] = _diff(ours, rep[corpus])
            row["params reported"] = rep["params"]
            row[f"params ours (EmoDB, {profile})"] = params.get((recipe, r), NOT_RUN)
            rows.append(row)
    return pd.DataFrame(rows)


def ensemble_validation_table(validation: pd.DataFrame, chosen: Mapping[str, int]) -> pd.DataFrame:
    """Seed ensembles on validation (:func:`amsnet_lib.train.ensemble.validation_scores` of each model,
    a ``model`` column added): one row per model and ensemble size, mean and std over the folds of
    the validation WA, UA (%) and loss, and which size was chosen. No test figure."""
    g = validation.groupby(["model", "members"], sort=False)
    t = g[["val_wa", "val_ua", "val_loss"]].mean().round(2).join(g["val_ua"].std(ddof=0).round(2).rename("val UA std"))
    t = t.reset_index().rename(columns={"val_wa": "val WA (%)", "val_ua": "val UA (%)", "val_loss": "val loss"})
    t["chosen"] = ["yes" if chosen.get(m) == k else "" for m, k in zip(t["model"], t["members"])]
    t["model"] = t["model"].map(lambda m: paper.ABLATION_LABELS.get(m, m))
    return t[["model", "members", "val WA (%)", "val UA (%)", "val UA std", "val loss", "chosen"]]


def ensemble_table(summary: pd.DataFrame | None, corpus: str, protocol: str, chosen: Mapping[str, int],
                   members: int) -> pd.DataFrame:
    """Seed ensembles on the test folds, from ``summary.csv``: per model (tuned recipe), the single
    model (member 0: the tuned row), the mean of its ``members`` single members, the ensemble of the
    size chosen on validation, and the ensemble's gain over the single model (WA, UA in %)."""
    from ..train.ensemble import ensemble_label

    tag = protocol_tag(protocol)
    rows = []
    for model, k in chosen.items():
        single = [summary_row(summary, corpus, protocol, model, "" if m == 0 else f"member {m}", "tuned") for m in range(members)]
        ens = summary_row(summary, corpus, protocol, model, ensemble_label(k), "tuned") if k > 1 else single[0]
        row = {"model": paper.ABLATION_LABELS.get(model, model), "members chosen": k}
        for m in ("wa", "ua"):
            M = m.upper()
            row[f"{M} single {tag} (%)"] = NOT_RUN if single[0] is None else round(float(single[0][m]), 2)
            done = [float(r[m]) for r in single if r is not None]
            row[f"{M} members' mean {tag} (%)"] = round(float(np.mean(done)), 2) if len(done) == members else NOT_RUN
            row[f"{M} ensemble {tag} (%)"] = NOT_RUN if ens is None else round(float(ens[m]), 2)
            row[f"Δ{M} (pp)"] = (NOT_RUN if ens is None or single[0] is None
                                 else round(float(ens[m]) - float(single[0][m]), 2))
        rows.append(row)
    return pd.DataFrame(rows)
