"""What the notebooks call: run the paper's experiments, write tables and figures, build the report.

The notebooks in ``notebooks/`` hold no logic of their own: they open a :class:`Session`
(corpora, protocol, profile, where results go), run the experiments of
:mod:`amsnet_lib.studies` through it, and display what the helpers here return.

Every table is written twice, atomically, as ``results/tables/<name>.csv`` (machine-readable)
and ``results/tables/<name>.md`` (Markdown, with a caption naming the protocol); figures go to
``results/figures/<name>.png``. Every experiment also updates ``results/tables/summary.csv``
(:func:`amsnet_lib.training.update_summary`), from which :func:`build_report` writes
``results/REPORT.md``.

Numbers are always labelled with the protocol that produced them: ``[paper]`` is the paper's
speaker-dependent stratified random 5-fold cross-validation, ``[loso]`` leave one speaker out.
A value that was not measured is the string ``"not run"`` (``"not run: corpus not available"``
when the corpus could not be found), never a number.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import re
import time
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import paper, studies
from .config import LATE_WEIGHTS, RECIPES, ExperimentConfig, PROTOCOLS as _CONFIG_PROTOCOLS
from .metrics import mcnemar, paired_bootstrap, unweighted_accuracy, weighted_accuracy

__all__ = [
    "CORPORA",
    "NOT_AVAILABLE",
    "NOT_RUN",
    "PROTOCOLS",
    "STUDIES",
    "suite_cost",
    "Session",
    "ablation_table",
    "aligned_predictions",
    "branch_table",
    "build_report",
    "class_counts",
    "comparison_table2",
    "corpus_facts",
    "cpu_run_facts",
    "curves_table",
    "environment_info",
    "fold_sizes",
    "fold_table",
    "fusion_weight_table",
    "late_fusion_sweep",
    "late_fusion_table",
    "markdown_table",
    "normalisation_table",
    "parameter_count",
    "protocol_tag",
    "read_timings",
    "record_timing",
    "resolve_corpora",
    "resolve_results_dir",
    "resolve_run_dir",
    "se_ratio_table",
    "setup",
    "significance_table",
    "speaker_counts",
    "spectrogram_examples",
    "study_table",
    "write_table",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The corpora the paper reports on, in its order.
CORPORA = ("iemocap", "emodb")
CORPUS_LABELS = {"emodb": "EmoDB", "iemocap": "IEMOCAP"}

#: What each protocol measures, as written next to every number it produced.
PROTOCOLS = {
    "paper": "speaker-dependent: stratified random 5-fold cross-validation, 80 % train / 20 % test (the paper's protocol)",
    "loso": "speaker-independent: leave one speaker out",
    "loso_session": "speaker-independent: leave one session out",
    "split_file": "folds read from a split file",
}
PROTOCOL_SHORT = {"paper": "paper protocol (speaker-dependent 5-fold)", "loso": "LOSO (leave-one-speaker-out)",
                  "loso_session": "leave-one-session-out", "split_file": "split file"}

NOT_RUN = "not run"
NOT_AVAILABLE = "not run: corpus not available"
NOT_RERUN = "not re-run"
REPORTED_NOT_RERUN = "reported, not re-run"
NOT_IN_PAPER = "not in the paper"
#: Table 4/5 rows of late fusion (beyond the paper; ``amsnet train --model late [--late-weight 0.5]``).
LATE_FUSION_LABEL = "Late fusion, w on validation (beyond the paper)"
LATE_AVERAGE_LABEL = "Late fusion, average w = 0.5 (beyond the paper)"
_BEYOND_ABLATIONS = (("late", "", LATE_FUSION_LABEL), ("late", "w=0.5", LATE_AVERAGE_LABEL))
#: Appended to a row's model label when the tuned training recipe produced it (docs/RECIPE.md).
TUNED_SUFFIX = ", tuned recipe"

#: The studies of :mod:`amsnet_lib.studies` by name (notebook ``03``: the ablations and the study beyond the
#: paper; notebook ``04``: the four hyper-parameter studies).
STUDIES = {"ablations": studies.ablations, **studies.HYPERPARAMETER_STUDIES, **studies.BEYOND_PAPER_STUDIES}

#: The factor each study varies: column name -> how to read it from a configuration.
STUDY_FACTORS = {
    "ablations": {"model": lambda c: c.model},
    "late_fusion": {"model": lambda c: c.model},
    "se_ratio": {"r": lambda c: c.urlm.se_ratio},
    "optimizer_batch": {"optimizer": lambda c: c.branch_train.optimizer, "batch_size": lambda c: c.branch_train.batch_size},
    "hidden_size": {"hidden_size": lambda c: c.frlm.hidden_size},
    "learning_rate": {"lr": lambda c: f"{c.branch_train.lr:g}"},
    "normalisation": {"model": lambda c: c.model, "normalisation": lambda c: c.normalisation},
    "training_seeds": {"model": lambda c: c.model},
    "tuned_recipe": {"model": lambda c: c.model},
}

#: Studies whose configurations fix their own training seeds (a session's ``seeds`` does not replace them).
STUDIES_WITH_OWN_SEEDS = ("training_seeds",)

#: The quick profile (CI) trains only these variants of the hyper-parameter studies: the one that
#: notebooks 01-03 already trained (read back from the run store) and one more, so every code path
#: of notebook 04 runs within the CI time budget. The full profile trains every variant.
QUICK_VARIANTS = {
    "se_ratio": ("r=8", "r=16"),
    "optimizer_batch": ("rmsprop,bs=256", "adam,bs=256"),
    "hidden_size": ("hidden=32", "hidden=64"),
    "learning_rate": ("lr=0.0001", "lr=0.001"),
}

#: Fig. 1 shows these four emotions (the paper: angry, happy, neutral, sad).
FIG1_CLASSES = {"emodb": ("anger", "happiness", "neutral", "sadness"), "iemocap": ("angry", "happy", "neutral", "sad")}


# --------------------------------------------------------------------------- locations


def resolve_results_dir(results_dir: str | os.PathLike | None = None, profile: str = "full") -> Path:
    """Where tables, figures and the report go.

    ``results_dir`` when given (relative paths are taken from the current directory, i.e. the
    notebook's); else ``<repo>/results`` for the ``full`` profile and ``<repo>/.cache/results-quick``
    for ``quick``, so a quick (CI) run never overwrites the committed full results.
    """
    if results_dir is not None:
        return Path(results_dir).expanduser().absolute()
    if profile == "full":
        return REPO_ROOT / "results"
    return REPO_ROOT / ".cache" / f"results-{profile}"


def resolve_run_dir(run_dir: str | os.PathLike | None = None, profile: str = "full") -> Path:
    """The run store: ``run_dir`` > ``$AMSNET_RUN_DIR`` > ``<repo>/runs`` (full) or
    ``<repo>/.cache/runs-quick`` (quick)."""
    if run_dir is not None:
        return Path(run_dir).expanduser().absolute()
    if os.environ.get("AMSNET_RUN_DIR"):
        return Path(os.environ["AMSNET_RUN_DIR"]).expanduser().absolute()
    if profile == "full":
        return REPO_ROOT / "runs"
    return REPO_ROOT / ".cache" / f"runs-{profile}"


def resolve_corpora(corpus: str | Sequence[str]) -> list[str]:
    """``"emodb"``, ``"iemocap"``, ``"both"`` (or a list of those) -> list of corpus names."""
    names = [corpus] if isinstance(corpus, str) else list(corpus)
    out: list[str] = []
    for name in names:
        name = name.lower()
        expanded = ["emodb", "iemocap"] if name == "both" else [name]
        for n in expanded:
            if n not in CORPUS_LABELS:
                raise ValueError(f"corpus must be 'emodb', 'iemocap' or 'both', got {name!r}")
            if n not in out:
                out.append(n)
    return out


def _corpus_status(name: str, data_dir) -> tuple[pd.DataFrame | None, str | None]:
    """Load a named corpus; IEMOCAP that is nowhere to be found is "not available", not an error.

    EmoDB is always loaded (and downloaded when absent and online): a missing EmoDB raises the
    library's :class:`~amsnet_lib.errors.CorpusError`, which says how to fix it. IEMOCAP is
    licensed per user: when ``iemocap_dir`` is not given and neither ``$AMSNET_IEMOCAP_DIR`` nor
    ``<repo>/data/iemocap`` exists, its results are reported as "not run: corpus not available".
    """
    from .corpora import load_corpus, resolve_data_dir

    if name == "iemocap" and not resolve_data_dir("iemocap", data_dir).exists():
        where = resolve_data_dir("iemocap", data_dir)
        return None, f"{NOT_AVAILABLE} (no IEMOCAP at {where}; pass iemocap_dir or set AMSNET_IEMOCAP_DIR)"
    return load_corpus(name, data_dir=data_dir), None


# --------------------------------------------------------------------------- tables: writing


def protocol_tag(protocol: str) -> str:
    """The tag every measured number carries: ``[paper]``, ``[loso]``, ..."""
    return f"[{protocol}]"


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


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
    from ._atomic import atomic_write_text

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


def _protocol_notes(protocols: Iterable[str], profile: str | None = None, reported: bool = True) -> list[str]:
    """The legend under a table; ``reported=False`` for tables without the paper's values (their Δ
    is defined in their own notes)."""
    notes = [f"{protocol_tag(p)} = {PROTOCOLS.get(p, p)}." for p in dict.fromkeys(protocols)]
    notes.append(f"'reported' = {paper.REPORTED} (speaker-dependent 5-fold CV), not measured here; Δ = ours − reported, "
                 "percentage points. 'not run' = not measured." if reported else "'not run' = not measured.")
    if profile == "quick":
        notes.append("Profile quick: tiny networks trained for 2 epochs to check the pipeline; its accuracies mean nothing.")
    return notes


# --------------------------------------------------------------------------- tables: corpus


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
    from .protocols import make_folds, validation_split

    classes = list(table.attrs.get("classes") or sorted(table["label"].unique()))
    labels = np.array([classes.index(l) for l in table["label"]])
    folds = make_folds(table, config.protocol, n_folds=config.n_folds, split_seed=config.split_seed, split_file=config.split_file)
    rows = []
    for f in folds:
        fit, val = validation_split(labels, f.train, config.branch_train.val_fraction, config.seeds[0])
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


# --------------------------------------------------------------------------- tables: results


def fold_table(results: Mapping[str, "object"]) -> pd.DataFrame:
    """Per-fold WA/UA (%) of several models side by side, sizes of each fold, then the mean row.

    Args:
        results: label -> :class:`~amsnet_lib.training.ExperimentResult` (same corpus and protocol).
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


def parameter_count(config: ExperimentConfig, n_classes: int | None = None) -> int:
    """Trainable and frozen parameters of ``config.model`` as built by :func:`build_model`."""
    from .corpora import CLASSES
    from .models import build_model, count_parameters

    if n_classes is None:
        n_classes = len(CLASSES.get(config.corpus, CLASSES["emodb"]))
    model = build_model(config.model, n_classes, frlm=config.frlm, urlm=config.urlm, fusion=config.fusion, n_mels=config.features.n_mels)
    return int(count_parameters(model))


def _study_factors(study: str, config: ExperimentConfig) -> dict:
    """The columns a study varies (:data:`STUDY_FACTORS`), read from one configuration."""
    return {k: get(config) for k, get in STUDY_FACTORS[study].items()}


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

    by_variant = {res.config.variant: res for res in results}
    listed = {c.variant for c in planned}
    rows = [measured(by_variant[c.variant]) if c.variant in by_variant else not_run(c) for c in planned]
    rows += [measured(res) for res in results if res.config.variant not in listed]
    return pd.DataFrame(rows)


def branch_table(study: str, planned: Sequence[ExperimentConfig], results: Sequence) -> pd.DataFrame:
    """A study that varies both stages (Fig. 6): one row per configuration of ``planned`` (the
    fusion experiments) with what each branch reached beside the fusion, WA/UA (%).

    Args:
        study: key of :data:`STUDY_FACTORS` naming the factor columns.
        planned: the fusion experiments of the study (``Session.configs``).
        results: finished ``ExperimentResult`` of those experiments and of their branches
            (:func:`amsnet_lib.studies.branches_of`); a model without a result leaves its cells
            empty. "trained on" is the fusion's (it names its branches' devices too); before the
            fusion has run it names the finished branches' devices and says the fusion is "not run".
    """
    by_key = {(r.config.model, r.config.variant): r for r in results}
    tag = protocol_tag(planned[0].protocol if planned else "paper")
    rows = []
    for c in planned:
        row = _study_factors(study, c)
        devices = []
        for model in ("frlm", "urlm", c.model):
            res = by_key.get((model, c.variant))
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


def _summary_row(summary: pd.DataFrame | None, corpus, protocol, model, variant="", recipe="paper"):
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
    row = _summary_row(summary, corpus, protocol, model, variant, recipe)
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
                      availability: Mapping[str, str | None] | None = None, corpora: Sequence[str] = CORPORA) -> pd.DataFrame:
    """Table 2: the paper's rows (literature: reported, not re-run) and ours beside AMSNet's.

    Args:
        summary: ``results/tables/summary.csv`` as a DataFrame (or None: nothing measured).
        protocols: our protocols to show, each in its own columns (``[paper]``, ``[loso]``).
        availability: corpus -> None when available, else the reason (``"not run: corpus not
            available ..."``); it fills the cells of corpora we could not run.
        corpora: which of the paper's corpora to list.
    """
    availability = dict(availability or {})
    rows = []
    for r in paper.TABLE2:
        if r.corpus not in corpora:
            continue
        # AMSNet's row once per training recipe of ours (the tuned one: beyond the paper)
        for recipe in (RECIPES if r.amsnet else ("paper",)):
            row = {"model": r.model + ("" if recipe == "paper" else TUNED_SUFFIX), "corpus": CORPUS_LABELS[r.corpus],
                   "source": (f"paper vs ours, {recipe} recipe" if r.amsnet else REPORTED_NOT_RERUN)}
            for metric, reported in (("WA", r.wa), ("UA", r.ua)):
                row[f"{metric} reported [paper] (%)"] = reported
                for p in protocols:
                    tag = protocol_tag(p)
                    if r.amsnet:
                        ours = _ours(summary, availability, r.corpus, p, "amsnet", "", metric.lower(), recipe)
                        row[f"{metric} ours {tag} (%)"] = ours
                        row[f"Δ{metric} {tag}"] = _diff(ours, reported)
                    else:
                        row[f"{metric} ours {tag} (%)"] = NOT_RERUN
                        row[f"Δ{metric} {tag}"] = NOT_RERUN
            rows.append(row)
    return pd.DataFrame(rows)


def ablation_table(summary: pd.DataFrame | None, corpus: str, protocols: Sequence[str] = ("paper",),
                   availability: Mapping[str, str | None] | None = None,
                   recipes: Sequence[str] = RECIPES) -> pd.DataFrame:
    """Tables 4 (IEMOCAP) / 5 (EmoDB): each ablation model, reported vs ours per protocol.

    The paper's five models, then late fusion (beyond the paper: :data:`LATE_FUSION_LABEL`,
    :data:`LATE_AVERAGE_LABEL`) on the same folds and branches, whose reported cells say
    :data:`NOT_IN_PAPER`. Each model once per training recipe of ``recipes``: the paper's, then
    the tuned one (beyond the paper, labelled with :data:`TUNED_SUFFIX`).
    """
    availability = dict(availability or {})
    rows = []
    for model, variant, label in [(m, "", paper.ABLATION_LABELS[m]) for m in studies.ABLATION_MODELS] + list(_BEYOND_ABLATIONS):
        wa, ua = paper.ABLATIONS[corpus].get(model, (None, None))
        for recipe in recipes:  # the tuned recipe's row beside the paper recipe's
            row = {"model": label + ("" if recipe == "paper" else TUNED_SUFFIX)}
            for metric, reported in (("WA", wa), ("UA", ua)):
                row[f"{metric} reported [paper] (%)"] = NOT_IN_PAPER if reported is None else reported
                for p in protocols:
                    tag = protocol_tag(p)
                    ours = _ours(summary, availability, corpus, p, model, variant, metric.lower(), recipe)
                    row[f"{metric} ours {tag} (%)"] = ours
                    row[f"Δ{metric} {tag}"] = NOT_IN_PAPER if reported is None else _diff(ours, reported)
            rows.append(row)
    return pd.DataFrame(rows)


def late_fusion_table(result) -> pd.DataFrame:
    """Beyond the paper: what late fusion chose on each fold, and what it reached.

    One row per (seed, fold) of a late-fusion :class:`~amsnet_lib.training.ExperimentResult`, then
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


def aligned_predictions(results: Mapping[str, "object"]) -> dict[str, pd.DataFrame]:
    """The stored test predictions of several results, row for row on the same utterances.

    Args:
        results: label -> :class:`~amsnet_lib.training.ExperimentResult` (same folds and seeds).

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
        results: label -> :class:`~amsnet_lib.training.ExperimentResult` (same corpus, protocol,
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
                   params: Mapping[int, int] | None = None, profile: str = "full") -> pd.DataFrame:
    """Table 3: SE reduction ratio r -> accuracy (WA, "ACC") per corpus and parameter count.

    Args:
        params: r -> our parameter count (:func:`parameter_count` of the EmoDB configuration of
            ``profile``); ``None`` computes it.
    """
    availability = dict(availability or {})
    if params is None:
        params = {r: parameter_count(c) for r, c in zip(studies.SE_RATIOS, studies.se_ratio_study("emodb", "paper", profile))}
    rows = []
    for r, rep in paper.TABLE3.items():
        row = {"r": r}
        for corpus in corpora:
            label = CORPUS_LABELS[corpus]
            row[f"ACC {label} reported [paper] (%)"] = rep[corpus]
            for p in protocols:
                tag = protocol_tag(p)
                ours = _ours(summary, availability, corpus, p, "amsnet", f"r={r}", "wa")
                row[f"ACC {label} ours {tag} (%)"] = ours
                row[f"ΔACC {label} {tag}"] = _diff(ours, rep[corpus])
        row["params reported"] = rep["params"]
        row[f"params ours (EmoDB, {profile})"] = params.get(r, NOT_RUN)
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- environment, timing


def environment_info() -> dict:
    """Hardware and library versions of this machine, for the report."""
    import importlib.metadata as md

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count()
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # torch missing or broken: say so rather than fail the report
        gpu = "unknown"
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        memory = f"{mem:.1f} GiB"
    except (ValueError, OSError, AttributeError):
        memory = "unknown"
    versions = {}
    for pkg in ("amsnet", "torch", "numpy", "pandas", "scikit-learn", "opensmile", "librosa", "matplotlib", "seaborn", "papermill"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"cpu": cpu, "cores": cores, "memory": memory, "gpu": gpu, "os": platform.platform(),
            "python": platform.python_version(), "versions": versions}


TIMING_COLUMNS = ["notebook", "protocol", "profile", "seconds", "status", "finished_utc"]


def record_timing(path: str | os.PathLike, notebook: str, protocol: str, profile: str, seconds: float, status: str = "ok") -> pd.DataFrame:
    """Insert or replace a notebook's wall time in ``timings.csv`` (atomic write, under
    :func:`~amsnet_lib._atomic.locked`: notebooks finishing at once each keep their row)."""
    from ._atomic import atomic_write_text, locked

    row = {"notebook": notebook, "protocol": protocol, "profile": profile, "seconds": f"{float(seconds):.1f}", "status": status,
           "finished_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    with locked(path) as path:
        old = pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else pd.DataFrame(columns=TIMING_COLUMNS)
        if len(old):
            old = old[~((old["notebook"] == notebook) & (old["protocol"] == protocol) & (old["profile"] == profile))]
        new = pd.concat([old, pd.DataFrame([row])], ignore_index=True)
        atomic_write_text(path, new[TIMING_COLUMNS].to_csv(index=False))
    return new


def read_timings(path: str | os.PathLike) -> pd.DataFrame | None:
    path = Path(path)
    if not path.is_file():
        return None
    t = pd.read_csv(path, keep_default_na=False)
    t["seconds"] = pd.to_numeric(t["seconds"], errors="coerce")
    return t


# --------------------------------------------------------------------------- the report


def _settings_table(profile: str) -> pd.DataFrame:
    """The choices behind the numbers (where the paper is silent), from :mod:`amsnet_lib.studies`."""
    rows = []
    for corpus in ("emodb", "iemocap"):
        c = studies.experiment(corpus, "amsnet", "paper", profile)
        f = c.features
        rows += [
            (corpus, "features", f"{f.sample_rate} Hz, {f.duration:g} s fixed length, Hann {f.win_length}, n_fft {f.n_fft}, hop {f.hop_length}, "
                                 f"{f.n_mels} mel bands (paper: not given), log power; IS10 76-d frames, q = {f.q}"),
            (corpus, "FRLM", f"peephole BLSTM {c.frlm.hidden_size} units/direction (paper: not given; Fig. 7: 128-512), "
                             f"peephole={c.frlm.peephole}, dropout {c.frlm.dropout} (paper: not given), embedding {c.frlm.embedding_dim}"
                             + (f"; trained with weight decay {c.stage_train('frlm').weight_decay:g} (paper: not given; dropout and "
                                "weight decay chosen on validation, results/tables/frlm_tuning.md)"
                                if c.stage_train("frlm") != c.branch_train else "")),
            (corpus, "URLM", f"temporal conv filters {c.urlm.filters}, kernels {c.urlm.kernels}, SE r = {c.urlm.se_ratio}, "
                             f"dropout {c.urlm.dropout}, embedding {c.urlm.embedding_dim}"),
            (corpus, "fusion head", f"FC {c.fusion.hidden}, dropout {c.fusion.dropout}"),
            (corpus, "training (both stages)", f"{c.branch_train.optimizer}, lr {c.branch_train.lr:g}, batch {c.branch_train.batch_size}, "
                                               f"<= {c.branch_train.epochs} epochs, patience {c.branch_train.patience} on {getattr(c.branch_train, 'monitor', 'val_ua')}, "
                                               f"validation {100 * c.branch_train.val_fraction:g} % of each fold's training part; "
                                               f"weight decay {c.branch_train.weight_decay:g} unless stated above"),
        ]
    rows.append(("both", "early fusion (paper: not defined)",
                 "spectrogram frames mapped onto the 10 ms IS10 grid and concatenated per frame (76 + n_mels), one attention BLSTM of FRLM's architecture and training settings, "
                 "trained end to end (docs/DESIGN.md)"))
    return pd.DataFrame(rows, columns=["corpus", "setting", f"value (profile {profile})"])


def build_report(
    summary: pd.DataFrame | None,
    *,
    profile: str,
    protocols: Sequence[str] = ("paper", "loso"),
    availability: Mapping[str, str | None] | None = None,
    study_tables: Mapping[str, pd.DataFrame] | None = None,
    figures: Sequence[str] = (),
    timings: pd.DataFrame | None = None,
    environment: Mapping | None = None,
    se_params: Mapping[int, int] | None = None,
    tables_out: str | os.PathLike | None = None,
    diagnostics: Mapping[str, str] | None = None,
    suite: pd.DataFrame | None = None,
    gpu: str | Sequence[str] | None = None,
    cpu_run: str | None = None,
) -> str:
    """The reproduction report (Markdown): every paper table beside ours, figures, hardware, time.

    Args:
        summary: ``summary.csv`` (one row per corpus, protocol, model, variant; WA/UA in %).
        profile: ``full`` or ``quick`` (quick results are flagged as meaningless).
        protocols: our protocols, each in its own columns, the paper's first.
        availability: corpus -> None (available) or why not (fills "not run: ..." cells).
        study_tables: name -> table of a figure-only study (``fig6_optimizer_batch_emodb_paper``...),
            as written by notebook 04.
        figures: file names under ``figures/`` to link.
        timings: ``timings.csv`` written by ``run_all.sh`` (per notebook wall time).
        environment: :func:`environment_info`.
        se_params: r -> our parameter count for Table 3 (default: computed).
        tables_out: folder to also write the report's comparison tables to (CSV + Markdown).
        diagnostics: name -> Markdown of a diagnostic beyond the paper (first line its ``# title``),
            e.g. ``frame_feature_check`` and ``frlm_tuning`` written by the scripts of those names.
        suite: :func:`suite_cost` of the corpus the report is about (what the whole suite trains).
        gpu: Markdown of the GPU measurements, or several (``tables/gpu_session.md``, written by
            ``scripts/gpu_report.py`` from a ``benchmarks/gpu_session.sh`` run, and
            ``tables/gpu_suite.md`` by ``scripts/gpu_suite_report.py``, ``tables/gpu_studies.md`` by
            ``scripts/gpu_studies_report.py``); each's first line is its
            ``# title``, its ``## `` sections go one level below it.
        cpu_run: the text of ``cpu_amsnet_run.txt`` (``benchmarks/cpu_amsnet_run.sh``: the full 5-fold
            AMSNet run on the CPU from an empty run store); see :func:`cpu_run_facts`.
    """
    availability = dict(availability or {})
    study_tables = dict(study_tables or {})
    env = dict(environment or {})
    notes = _protocol_notes(protocols, profile)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# AMSNet reproduction report", ""]
    out.append(f"Generated {now} by `notebooks/05_report.ipynb`, profile **{profile}**. Source of the reported numbers: {paper.CITATION}.")
    out.append("")
    if profile == "quick":
        out += ["> **Profile quick.** Tiny networks trained for 2 epochs, a smoke test of the pipeline: the accuracies below mean "
                "nothing. `./run_all.sh` (profile full) produces the real numbers.", ""]
    out += ["## Protocols", ""]
    for p in dict.fromkeys(["paper", *protocols]):
        out.append(f"- `{protocol_tag(p)}` {PROTOCOL_SHORT.get(p, p)}: {PROTOCOLS.get(p, p)}.")
    out += ["- Every value of the paper was obtained with `[paper]`; our `[loso]` columns measure what the paper does not "
            "(accuracy on speakers never seen in training), and are compared with the paper's `[paper]` number only to show the gap.",
            "- WA = overall accuracy (eq 15); UA = mean per-class recall (eq 16). Ours: mean over folds and seeds.",
            "- 'not run' marks a value we did not measure; 'not run: corpus not available' a corpus that could not be found "
            "(IEMOCAP is licensed per user).", ""]
    corpora_status = []
    for c in CORPORA:
        reason = availability.get(c)
        measured = summary is not None and len(summary) and (summary["corpus"].astype(str) == c).any()
        corpora_status.append({"corpus": CORPUS_LABELS[c], "status": "measured" if measured else (reason or NOT_RUN)})
    out += ["## Corpora", "", markdown_table(pd.DataFrame(corpora_status))]

    def emit(title, df, name, extra_notes=()):
        out.extend([f"## {title}", "", markdown_table(df)])
        out.extend(f"- {n}" for n in list(extra_notes))
        if extra_notes:
            out.append("")
        if tables_out is not None:
            legend = notes if _holds_paper_values(df) else _protocol_notes(protocols, profile, reported=False)
            write_table(df, Path(tables_out) / name, title, list(extra_notes) + legend)

    emit("Table 2: comparison with the literature", comparison_table2(summary, protocols, availability), "report_table2",
         ["Literature rows are quoted by the paper (reported, not re-run, here or there)."])
    # Table 3: the paper's protocol, plus any other protocol the SE study was actually run under
    se_protocols = [p for p in protocols if p == "paper" or (summary is not None and len(summary) and (
        (summary["protocol"].astype(str) == p) & summary["variant"].astype(str).str.startswith("r=")).any())]
    emit("Table 3: SE reduction ratio r", se_ratio_table(summary, se_protocols, availability, params=se_params, profile=profile),
         "report_table3", ["ACC = accuracy (WA). Params: the paper's model vs ours as built by `build_model` "
                           "(the paper's dense layer sizes are not given, so counts differ)."])
    late_note = ("Late fusion: not a model of the paper. The pre-trained FRLM and URLM of the rows above, their class "
                 "probabilities averaged, w·p_FRLM + (1 − w)·p_URLM, with one weight per fold chosen on the fold's "
                 "validation split (lowest cross-entropy among 0, 0.05, ..., 1; `amsnet train --model late`) or fixed at "
                 "0.5 (`--late-weight 0.5`); nothing else is trained.")
    emit("Table 4: ablations on IEMOCAP", ablation_table(summary, "iemocap", protocols, availability), "report_table4_iemocap",
         [late_note])
    emit("Table 5: ablations on EmoDB", ablation_table(summary, "emodb", protocols, availability), "report_table5_emodb",
         ["Early fusion is not defined by the paper; ours: per-frame concatenation of both input streams into one attention "
          "BLSTM (docs/DESIGN.md).", late_note])

    for c in CORPORA:
        if availability.get(c):  # a corpus we could not run has no study beyond the paper to show
            continue
        emit(f"Beyond the paper: per-speaker feature standardisation, {CORPUS_LABELS[c]}",
             normalisation_table(summary, c, protocols, availability), f"report_normalisation_{c}",
             ["`corpus`: the paper's setting, each fold standardised with the statistics of its training part (the rows of "
              f"Table {4 if c == 'iemocap' else 5}). `speaker`: each speaker's utterances first standardised with that "
              "speaker's own statistics (no labels, the test speaker's utterances included), then as `corpus`. Not in the "
              "paper: it needs every speaker's recordings in advance (`amsnet train --normalisation speaker`).",
              "Δ = speaker − corpus, in points; the folds, seeds and every other setting are the same."])

    def beyond(title, study, intro, caption=""):
        """A study beyond the paper: its tables as notebook 03 wrote them, or 'not run'."""
        out.extend([f"## Beyond the paper: {title}", "", intro, ""])
        found = {n: t for n, t in study_tables.items() if n.startswith(_STUDY_TABLE_PREFIX[study])}
        if not found:
            out.extend([f"Ours: {NOT_RUN}.", ""])
        for n, t in sorted(found.items()):
            out.extend([f"Ours, `{n}`{caption}:", "", markdown_table(t)])

    beyond("are the differences of the ablation table larger than the test set's noise?", "significance",
           "Each model (late fusion too) against AMSNet on the same test utterances, from their stored predictions "
           "(notebook 03, `report.significance_table`): Δ = AMSNet − model as in the table above, a 95 % interval and a "
           "two-sided p from a paired bootstrap (10,000 resamples of the test utterances within each fold), and "
           "McNemar's exact test on the utterances only one of the two gets right. The trained models and folds are "
           "held fixed; the training-seed study below shows how much retraining moves them. No correction for the "
           "number of comparisons: of twelve p-values per table, one in twenty would fall below 0.05 by chance.")
    beyond("training seeds", "training_seeds",
           "The paper gives one number per model. FRLM, URLM, Concat and AMSNet trained again with other seeds on the "
           "same folds (`amsnet train --seeds 0 1 2`; notebook 03): the seed changes the initial weights, the "
           "validation split and the batch order. Seed 0 is the run of the tables above.",
           " (mean over the folds per seed; then over the seeds)")
    beyond("late fusion", "late_fusion",
           "The weight w of FRLM's class probabilities (URLM's: 1 − w) that each fold chose on its validation split, "
           "among 0, 0.05, ..., 1, by the fused cross-entropy; beside it the validation cross-entropy of URLM alone "
           "(w = 0), of the plain average and of FRLM alone, and the test accuracy (notebook 03). Then "
           "(`late_fusion_sweep_*`) every w on the test folds, computed afterwards from the branches' stored test "
           "probabilities: the row marked 'best on test' is chosen on the test folds, so it is the most any single "
           "weight, however chosen, could reach with these branches; the last row lets each fold take its own best w, "
           "the ceiling of any per-fold choice. Upper bounds, not results.")

    out += ["## Studies the paper shows only as figures", ""]
    for key, label in (("optimizer_batch", "Fig. 6: optimizer and batch size"), ("hidden_size", "Fig. 7: BLSTM hidden size"),
                       ("learning_rate", "Learning rate (Sec. 4.5)")):
        out += [f"### {label}", "", f"Paper ({paper.REPORTED}, no numbers): {paper.FINDINGS[key]}", ""]
        found = {n: t for n, t in study_tables.items() if n.startswith(_STUDY_TABLE_PREFIX[key])}
        if not found:
            out += [f"Ours: {NOT_RUN}.", ""]
        # the study's own tables first, then those derived from them (``<study>_branches_<corpus>_<protocol>``)
        prefix = _STUDY_TABLE_PREFIX[key]
        for n, t in sorted(found.items(), key=lambda kv: (kv[0][len(prefix):].startswith("branches_"), kv[0])):
            out += [f"Ours, `{n}`:", "", markdown_table(t)]
            if _mixes_devices(t):
                out += [f"*{MIXED_DEVICES_NOTE}*", ""]
            if _has_unrun_rows(t):
                out += [f"*{NOT_RUN_ROWS_NOTE}*", ""]

    if diagnostics:
        out += ["## Diagnostics beyond the paper", "",
                "Measured by the scripts named in each section, on the same folds, to locate the gap to the paper.", ""]
        for name, text in diagnostics.items():
            lines = text.strip().splitlines()
            title = lines[0].lstrip("# ").strip() if lines and lines[0].startswith("#") else name
            body = lines[1:] if lines and lines[0].startswith("#") else lines
            out += [f"### {title}", *body, ""]

    out += ["## Figures", ""]
    if figures:
        for f in figures:
            out.append(f"- [{f}](figures/{f})")
        out.append("")
        for key in ("fig4_confusion_emodb_paper", "fig1_spectrograms_emodb"):
            if f"{key}.png" in figures:
                out += [f"![{key}](figures/{key}.png)", ""]
    else:
        out += [f"{NOT_RUN}: no figures found.", ""]

    out += ["## Settings (the paper's open choices)", "", markdown_table(_settings_table(profile)),
            "Every setting is a parameter of `amsnet_lib.config`; `amsnet_lib/studies.py` defines the profiles.", ""]

    out += ["## Hardware, software, time", ""]
    if env:
        out += [f"- CPU: {env.get('cpu')} ({env.get('cores')} cores available), memory {env.get('memory')}",
                f"- GPU: {env.get('gpu')}",
                f"- OS: {env.get('os')}; Python {env.get('python')}",
                "- Libraries: " + ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items()), ""]
    if timings is not None and len(timings):
        t = timings.copy()
        out += ["Wall time per notebook (from `timings.csv`, written by `run_all.sh`):", "", markdown_table(t)]
        ok = t[t["profile"].astype(str) == profile] if "profile" in t else t
        out += [f"Total: {float(ok['seconds'].sum()) / 60:.1f} min.", ""]
    else:
        out += ["Wall time per notebook: not recorded (`timings.csv` is written by `run_all.sh` when it trains; "
                "`run_all.sh --no-train` builds the report from the run store without training). The training time "
                "of each experiment, measured when its folds were trained, follows.", ""]
    if summary is not None and len(summary) and "train_seconds" in summary:
        out += ["Training time per experiment (`train_seconds` of `summary.csv`; branches shared between experiments "
                "are counted in each):", ""]
        cols = [c for c in ("corpus", "protocol", "model", "variant", "n_folds", "n_seeds", "wa", "ua", "wa_std", "ua_std", "train_seconds", "trained_on") if c in summary]
        out += [markdown_table(summary[cols]), ""]
    if suite is not None and len(suite):
        out += ["The whole suite (every study under `[paper]`, the training-seed study beyond the paper included; the "
                "ablations, the per-speaker standardisation and the late-fusion studies beyond the paper under the speaker-independent "
                "protocol too), "
                "counted in stage-1 trainings (one fold of one branch; a branch shared by several experiments counts "
                "once) and fusion heads. `cpu_hours_all` and `cpu_hours_left` are single-thread compute, a lower bound "
                "from the measured seconds per fold of the paper configuration (smaller batches and larger BLSTMs cost "
                "more per fold); two trainings run side by side on a 2-core machine. `finished`: folds in the run "
                "store.", "", markdown_table(suite), ""]
        hours = suite.set_index("kind").get("cpu_hours_all", pd.Series(dtype=float)).get("total", float("nan"))
        if hours == hours:  # measured
            out += [f"At least {hours:.1f} CPU hours: about {hours / 2:.1f} h of wall time on the 2-core CPU with two "
                    "trainings side by side (the project's target for the whole EmoDB suite: 3 h on a 2-core CPU).", ""]
        t = suite.set_index("kind")
        if "cpu_hours_measured" in t and t.loc["total", "finished"]:
            measured, on_gpu = t.loc["total", "cpu_hours_measured"], int(t.loc["total", "finished_on_gpu"])
            out += [f"Measured (`cpu_hours_measured`: the `seconds` the run store's finished folds recorded, single-thread, "
                    f"those trained on this CPU): {measured:.1f} CPU hours for {int(t.loc['total', 'finished']) - on_gpu} "
                    f"trainings and heads, about {measured / 2:.1f} h of wall time with two side by side, spread over "
                    f"sessions; the {on_gpu} trained on a GPU (`finished_on_gpu`) are not in it, so the whole suite on this CPU "
                    "takes longer still.", ""]
    if cpu_run:
        facts = cpu_run_facts(cpu_run)
        same = {True: "identical to", False: "different from", None: "not compared with"}[facts["identical"]]
        out += ["### Measured on this CPU: the full 5-fold AMSNet run", "",
                f"`benchmarks/cpu_amsnet_run.sh` ({facts['host']}; raw output: `results/cpu_amsnet_run.txt`): "
                "`amsnet train --model amsnet --protocol paper --workers N` from an empty run store (features from "
                "the cache), both branches on every fold, then the five fusion heads.", "",
                f"- **{facts['wall_s'] / 60:.1f} min of wall time** ({facts['wall_s']:.0f} s), "
                f"{facts['cpu_s']:.0f} CPU seconds (user + system, {facts['cpu_s'] / facts['wall_s']:.2f} cores busy on "
                f"average), peak memory {facts['max_rss_gib']:.1f} GiB.",
                f"- Per-fold WA / UA {same} the committed run store's (same seed, same code): mean "
                f"{facts['wa']} / {facts['ua']} `[paper]`.", *[f"- Note: {n}." for n in facts["notes"]], ""]
    for text in [gpu] if isinstance(gpu, str) else (gpu or []):
        lines = text.strip().splitlines()
        out += [f"### {lines[0].lstrip('# ').strip()}", *[f"##{ln}" if ln.startswith("## ") else ln for ln in lines[1:]], ""]
    out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


def suite_cost(summary: pd.DataFrame | None, table: pd.DataFrame, *, corpus: str = "emodb", store=None,
               loso: bool = True) -> pd.DataFrame:
    """What the whole suite trains, and a lower bound of its CPU time from measured per-fold times.

    Every experiment of :func:`~amsnet_lib.studies.full_suite` is broken into its stage-1
    trainings (FRLM, URLM, early fusion) per fold and seed; a branch shared between experiments
    (same run key) counts once, as the run store trains it once. The fusion heads cost seconds and
    are left out.

    Args:
        summary: ``summary.csv``; a kind's seconds per fold are its paper-configuration row's
            ``train_seconds / (n_folds · n_seeds)``, measured when it trained.
        table: the corpus table (its size is part of every run key; its folds are the protocols').
        store: a :class:`~amsnet_lib.training.RunStore` to count the folds already finished.

    Returns:
        One row per kind (``frlm``, ``urlm``, ``early``) and a total: ``trainings``, ``finished``,
        ``seconds_per_fold`` (measured), ``cpu_hours_all`` and ``cpu_hours_left`` (lower bounds:
        smaller batches, larger hidden sizes and other learning rates cost more per fold than
        the paper configuration).
    """
    from .training import SINGLE_STAGE, _fusion_dirs, fusion_units, stage1_units

    suite = studies.full_suite(corpus, "full", loso=loso)
    units = stage1_units(suite, table)
    rows = []
    for kind in SINGLE_STAGE:
        mine = [u for u in units if u.kind == kind]
        dirs = [] if store is None else [store.fold_dir(kind, u.key, u.seed, u.fold.name) for u in mine]
        per_fold = float("nan")
        r = _summary_row(summary, corpus, "paper", kind)
        if r is not None:
            per_fold = float(r["train_seconds"]) / (int(r["n_folds"]) * int(r.get("n_seeds", 1) or 1))
        total, measured = len(mine), _finished_folds(dirs, "seconds")
        rows.append({"kind": kind, "trainings": total, "finished": measured["finished"], "seconds_per_fold": per_fold,
                     "cpu_hours_all": total * per_fold / 3600,
                     "cpu_hours_left": (total - measured["finished"]) * per_fold / 3600, **measured})
    if store is not None:  # the heads: seconds each on the paper configuration, more at small batches
        heads = fusion_units(suite, table)
        dirs = [_fusion_dirs(h.exp, len(table), h.seed, h.fold.name, store)[0] for h in heads]
        measured = _finished_folds(dirs, "fusion_seconds")
        rows.append({"kind": "fusion heads", "trainings": len(heads), "finished": measured["finished"],
                     "seconds_per_fold": float("nan"), "cpu_hours_all": float("nan"), "cpu_hours_left": float("nan"),
                     **measured})
    df = pd.DataFrame(rows)
    bound = df[df["kind"].isin(SINGLE_STAGE)]
    total = {"kind": "total", "trainings": int(df["trainings"].sum()), "finished": int(df["finished"].sum()),
             "seconds_per_fold": float("nan"), "cpu_hours_all": bound["cpu_hours_all"].sum(min_count=len(bound)),
             "cpu_hours_left": bound["cpu_hours_left"].sum(min_count=len(bound))}
    if store is not None:
        total.update(finished_on_gpu=int(df["finished_on_gpu"].sum()), cpu_hours_measured=df["cpu_hours_measured"].sum())
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True).round(
        {"seconds_per_fold": 0, "cpu_hours_all": 1, "cpu_hours_left": 1, "cpu_hours_measured": 1})


def _finished_folds(dirs, key: str) -> dict:
    """Of the fold directories ``dirs``: how many finished, how many of those a GPU trained, and the
    CPU's measured hours (``key`` seconds of the rest, single-thread). Without directories (no run
    store) only ``finished``, 0."""
    from .training import trained_on_cpu

    if not dirs:
        return {"finished": 0}
    done = [json.loads((d / "metrics.json").read_text()) for d in dirs if (d / "metrics.json").is_file()]
    cpu = [m for m in done if trained_on_cpu(m)]
    return {"finished": len(done), "finished_on_gpu": len(done) - len(cpu),
            "cpu_hours_measured": sum(float(m.get(key, 0.0)) for m in cpu) / 3600}


def cpu_run_facts(text: str) -> dict:
    """What ``benchmarks/cpu_amsnet_run.sh`` measured, from its output file.

    Returns:
        ``host``; ``wall_s`` and ``cpu_s`` (user + system), seconds, and ``max_rss_gib`` from GNU
        time's figures; ``wa`` and ``ua``, the run's mean (%, as printed); ``identical``: whether its
        per-fold table equals the committed run store's (``None`` when the file has no second table);
        ``notes``: the file's ``note:`` lines.

    Raises:
        ValueError: the text lacks GNU time's figures or the run's table (an interrupted run).
    """
    def field(label):
        m = re.search(rf"^\s*{re.escape(label)}: (.+)$", text, re.M)
        if not m:
            raise ValueError(f"cpu_amsnet_run.txt: no {label!r} line; the run did not finish. "
                             "Fix: run benchmarks/cpu_amsnet_run.sh again.")
        return m.group(1).strip()

    clock = [float(x) for x in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")]
    wall = sum(v * 60 ** i for i, v in enumerate(reversed(clock)))
    run, _, committed = text.partition("## the committed run store")
    tables = [re.findall(r"^\s+\d+ fold\S+ +[\d.]+ +[\d.]+$", part, re.M) for part in (run, committed)]
    mean = re.search(r"^\s+mean +([\d.]+) +([\d.]+)$", run, re.M)
    if not tables[0] or not mean:
        raise ValueError("cpu_amsnet_run.txt: no per-fold table of the run. Fix: run benchmarks/cpu_amsnet_run.sh again.")
    second = re.search(r"^\s+\d+ fold", committed, re.M) is not None
    return {"host": field("host"), "wall_s": wall,
            "cpu_s": float(field("User time (seconds)")) + float(field("System time (seconds)")),
            "max_rss_gib": float(field("Maximum resident set size (kbytes)")) / 2 ** 20,
            "wa": mean.group(1), "ua": mean.group(2),
            "identical": (tables[0] == tables[1][:len(tables[0])]) if second else None,
            "notes": re.findall(r"^note: (.+)$", text, re.M)}


MIXED_DEVICES_NOTE = (
    "'trained on': the rows were trained on different devices (the CPU run store; GPU sessions, whose features were "
    "rounded to float16 for the transfer, `results/gpu/`). Rows then differ by float rounding and batch order too: "
    "the size of that difference is what the paper's AMSNet configuration measured on the CPU (Table 2) and on an "
    "H100 (`results/tables/gpu_session.md`) shows.")
NOT_RUN_ROWS_NOTE = (
    "Rows whose 'trained on' says \"not run\": configurations of the study not trained yet (`./run_all.sh` trains "
    "them); their measured cells are empty, never estimated. A row whose fusion alone is \"not run\" shows the branches "
    "that finished.")


def _mixes_devices(table: pd.DataFrame) -> bool:
    """Whether a study table's measured rows come from more than one device."""
    if "trained on" not in table:
        return False
    trained = table["trained on"].astype(str).str.split("; ").str[0]  # a partly trained row: its branches' device
    return trained[trained != NOT_RUN].nunique() > 1


def _holds_paper_values(table: pd.DataFrame) -> bool:
    """Whether a table quotes the paper (a column "... reported ..."): its legend then defines 'reported' and Δ."""
    return any("reported" in str(col) for col in table.columns)


def _has_unrun_rows(table: pd.DataFrame) -> bool:
    return "trained on" in table and table["trained on"].astype(str).str.endswith(NOT_RUN).any()

#: Diagnostic tables (``results/tables/<name>.md``, written by ``scripts/<name>.py``) the report includes when present.
DIAGNOSTICS = ("frame_feature_check", "frlm_tuning", "head_seeds", "test_selection", "stage_lr")

_STUDY_TABLE_PREFIX = {"optimizer_batch": "fig6_optimizer_batch_", "hidden_size": "fig7_hidden_size_", "learning_rate": "learning_rate_",
                       "training_seeds": "training_seeds_", "late_fusion": "late_fusion_", "significance": "significance_"}


# --------------------------------------------------------------------------- the session


class Session:
    """A notebook's context: corpora, protocol, profile, seeds, device and where results go.

    Create it with :func:`setup` from the notebook's parameters. It loads each corpus once,
    extracts (or reads from the cache) its features once, runs experiments through the run
    store (finished folds are never retrained), records each in ``summary.csv``, and names and
    writes tables and figures.
    """

    def __init__(self, corpus="emodb", *, emodb_dir=None, iemocap_dir=None, protocol="paper", profile="full", seeds=(0,),
                 device=None, results_dir=None, run_dir=None, cache_dir=None, progress=False, train=True):
        from .training import RunStore

        if profile not in studies.PROFILES:
            raise ValueError(f"profile must be one of {studies.PROFILES}, got {profile!r}")
        if protocol not in _CONFIG_PROTOCOLS or protocol == "split_file":
            raise ValueError(f"protocol must be 'paper', 'loso' or 'loso_session', got {protocol!r}")
        self.corpora = resolve_corpora(corpus)
        self.protocol = protocol
        self.profile = profile
        self.seeds = tuple(int(s) for s in (seeds if isinstance(seeds, (list, tuple)) else [seeds]))
        self.device = device
        self.progress = bool(progress)
        self.train = bool(train)
        self.cache_dir = cache_dir
        self.results_dir = resolve_results_dir(results_dir, profile)
        self.tables_dir = self.results_dir / "tables"
        self.figures_dir = self.results_dir / "figures"
        self.store = RunStore(resolve_run_dir(run_dir, profile))
        self.data_dirs = {"emodb": emodb_dir, "iemocap": iemocap_dir}
        self.tables: dict[str, pd.DataFrame] = {}
        self.unavailable: dict[str, str] = {}
        for c in self.corpora:
            table, reason = _corpus_status(c, self.data_dirs[c])
            if table is None:
                self.unavailable[c] = reason
            else:
                self.tables[c] = table
        self._features: dict = {}

    # ---- what and where
    @property
    def available(self) -> list[str]:
        """Requested corpora that were found."""
        return [c for c in self.corpora if c in self.tables]

    @property
    def availability(self) -> dict[str, str | None]:
        """Corpus -> None (available) or the reason it is not, for every corpus of the paper."""
        out = {c: None for c in self.tables}
        for c in CORPORA:
            if c not in self.tables:
                out[c] = self.unavailable.get(c) or _corpus_status_quiet(c, self.data_dirs.get(c))
        return out

    @property
    def summary_path(self) -> Path:
        return self.tables_dir / "summary.csv"

    def describe(self) -> pd.DataFrame:
        """The session's settings, for display."""
        rows = [("corpora", ", ".join(self.corpora)), ("protocol", f"{self.protocol}: {PROTOCOL_SHORT[self.protocol]}"),
                ("profile", self.profile + (" (smoke test: accuracies mean nothing)" if self.profile == "quick" else "")),
                ("seeds", ", ".join(map(str, self.seeds))), ("device", str(self.device or _default_device_name())),
                ("training", "yes: unfinished folds are trained" if self.train else
                 "no: only folds the run store already holds are reported; the rest say 'not run'"),
                ("results", _short(self.results_dir)), ("run store", _short(self.store.root))]
        for c in self.corpora:
            rows.append((f"corpus {c}", f"{len(self.tables[c])} utterances" if c in self.tables else self.unavailable[c]))
        return pd.DataFrame(rows, columns=["setting", "value"])

    def _protocol(self, protocol: bool | str) -> str | None:
        if isinstance(protocol, str):
            return protocol
        return self.protocol if protocol else None

    def name(self, base: str, corpus: str | None = None, protocol: bool | str = True) -> str:
        """File stem ``<base>[_<corpus>][_<protocol>]`` (``protocol``: True = the session's, or a name)."""
        p = self._protocol(protocol)
        return "_".join([base] + ([corpus] if corpus else []) + ([p] if p else []))

    def title(self, text: str, corpus: str | None = None, protocol: bool | str = True) -> str:
        """Figure title naming the corpus, the protocol and (when quick) the profile."""
        bits = [CORPUS_LABELS.get(corpus, corpus)] if corpus else []
        p = self._protocol(protocol)
        if p:
            bits.append(PROTOCOL_SHORT[p])
        if self.profile != "full":
            bits.append(f"profile {self.profile}")
        return f"{text}\n({'; '.join(bits)})" if bits else text

    # ---- data
    def table(self, corpus: str) -> pd.DataFrame:
        return self.tables[corpus]

    def features(self, corpus: str, config=None):
        """Both feature streams of ``corpus`` (profile's feature configuration), cached."""
        from .features import extract_features

        config = config or self.experiment(corpus).features
        key = (corpus, config)
        if key not in self._features:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto in Jupyter without ipywidgets
                self._features[key] = extract_features(self.tables[corpus], config, cache_dir=self.cache_dir, progress=self.progress)
        return self._features[key]

    # ---- experiments
    def experiment(self, corpus: str, model: str = "amsnet", protocol: str | None = None, **overrides) -> ExperimentConfig:
        """:func:`amsnet_lib.studies.experiment` under the session's protocol (or ``protocol``), profile and seeds."""
        return studies.experiment(corpus, model, protocol or self.protocol, self.profile, **{"seeds": self.seeds, **overrides})

    def configs(self, study: str, corpus: str, all_variants: bool = False) -> list[ExperimentConfig]:
        """The configurations of a study of :data:`STUDIES` with the session's seeds.

        In the quick profile only the variants of :data:`QUICK_VARIANTS` (unless ``all_variants``).
        """
        out = [c if study in STUDIES_WITH_OWN_SEEDS else dataclasses.replace(c, seeds=self.seeds)
               for c in STUDIES[study](corpus, self.protocol, self.profile)]
        if self.profile == "quick" and study in QUICK_VARIANTS and not all_variants:
            out = [c for c in out if c.variant in QUICK_VARIANTS[study]]
        return out

    def run(self, configs: Iterable[ExperimentConfig]) -> list:
        """Run (or read back from the run store) each experiment; record it in ``summary.csv``.

        With ``train=False`` nothing is trained: an experiment whose folds are not all in the
        run store is left out of the returned list (and of ``summary.csv``), with a line saying so.
        """
        from .errors import AmsnetError
        from .training import run_experiment, update_summary

        out = []
        for cfg in configs:
            t0 = time.perf_counter()
            label = f"{cfg.model}" + (f" {cfg.variant}" if cfg.variant else "")
            with warnings.catch_warnings():
                # tqdm.auto warns inside Jupyter without ipywidgets even when its bars are disabled
                warnings.filterwarnings("ignore", message="IProgress not found")
                features = self.features(cfg.corpus, cfg.features)  # its errors are never "not run"
                try:
                    res = run_experiment(cfg, features, store=self.store, device=self.device, progress=self.progress,
                                         finished_only=not self.train)
                except AmsnetError:  # finished_only and the run store holds no fold of it
                    if self.train:
                        raise
                    print(f"{cfg.corpus} {label} {protocol_tag(cfg.protocol)}: {NOT_RUN} (no finished fold in the run store)")
                    continue
            if res.missing:
                print(f"{cfg.corpus} {label} {protocol_tag(cfg.protocol)}: {NOT_RUN} (incomplete: {len(res.missing)} of "
                      f"{len(res.missing) + len(res.folds)} fold runs not finished)")
                continue
            update_summary(res, self.summary_path)
            s = res.summary()
            print(f"{cfg.corpus} {label} {protocol_tag(cfg.protocol)}: WA {s['wa']:.2f} UA {s['ua']:.2f} "
                  f"({s['n_folds']} folds x {s['n_seeds']} seed(s), {time.perf_counter() - t0:.1f} s)", flush=True)
            out.append(res)
        return out

    def run_models(self, models: Sequence[str]) -> dict[str, dict]:
        """Each model on each available corpus: ``{corpus: {model: ExperimentResult}}``.

        Corpora on which not every model could be run (``train=False``) are left out.
        """
        out = {}
        for c in self.available:
            done = {r.config.model: r for r in self.run(self.experiment(c, m) for m in models)}
            if set(done) == set(models):
                out[c] = done
        return out

    def run_study(self, study: str, selected: Iterable[str] | None = None) -> dict[str, list]:
        """A study of :data:`STUDIES` on each available corpus: ``{corpus: [ExperimentResult]}``.

        With ``selected`` (the notebook's ``studies`` parameter) a study not listed there is not
        run: it says so and returns ``{}``.
        """
        if study not in STUDIES:
            raise ValueError(f"unknown study {study!r}; choose from {list(STUDIES)}")
        if selected is not None and study not in list(selected):
            print(f"{study}: {NOT_RUN} (not in the notebook's `studies` parameter)")
            return {}
        if self.profile == "quick" and study in QUICK_VARIANTS:
            n = len(STUDIES[study]("emodb", self.protocol, self.profile))
            print(f"profile quick: {len(QUICK_VARIANTS[study])} of {n} variants ({', '.join(QUICK_VARIANTS[study])}); "
                  f"the full profile runs all {n}")
        out = {c: self.run(self.configs(study, c)) for c in self.available}
        return {c: res for c, res in out.items() if res}  # train=False: only what finished

    def report_unavailable(self) -> None:
        """Say which requested corpora are not run, and why."""
        for c, reason in self.unavailable.items():
            print(f"{c}: {reason}")
        if not self.unavailable:
            print("all requested corpora available: " + ", ".join(self.corpora))

    def read_summary(self) -> pd.DataFrame | None:
        """``summary.csv`` (every experiment recorded so far under these results), or None."""
        if not self.summary_path.is_file():
            return None
        summary = pd.read_csv(self.summary_path, keep_default_na=False)
        for col in ("wa", "ua", "wa_std", "ua_std", "train_seconds"):
            if col in summary:
                summary[col] = pd.to_numeric(summary[col], errors="coerce")
        return summary

    def parameter_counts(self, models: Sequence[str] | None = None, study: str | None = None) -> pd.DataFrame:
        """Parameter counts of models (or of a study's variants) under the session's profile."""
        rows = []
        for c in self.corpora:
            cfgs = self.configs(study, c, all_variants=True) if study else [self.experiment(c, m) for m in (models or [])]
            for cfg in cfgs:
                rows.append({"corpus": c, "model": cfg.model, "variant": cfg.variant, "params": parameter_count(cfg)})
        return pd.DataFrame(rows)

    # ---- output
    def save_table(self, df: pd.DataFrame, base: str, corpus: str | None = None, caption: str | None = None,
                   protocol: bool | str = True, notes: Iterable[str] = (), reported: bool | None = None) -> pd.DataFrame:
        """Write ``tables/<name>.csv`` and ``.md`` (caption and protocol legend); returns ``df``.

        ``reported``: whether the table holds values of the paper, so that its legend defines
        'reported' and Δ; ``None`` (default) decides from the columns (one named "... reported ...").
        """
        name = self.name(base, corpus, protocol)
        p = self._protocol(protocol)
        if reported is None:
            reported = _holds_paper_values(df)
        legend = _protocol_notes([p], self.profile, reported) if p else []
        if _mixes_devices(df):
            legend.append(MIXED_DEVICES_NOTE)
        if _has_unrun_rows(df):
            legend.append(NOT_RUN_ROWS_NOTE)
        write_table(df, self.tables_dir / name, caption or name, list(notes) + legend)
        return df

    def save_figure(self, fig, base: str, corpus: str | None = None, protocol: bool | str = True):
        """Write ``figures/<name>.png`` atomically and return it for display (an IPython Image)."""
        from . import plotting

        path = plotting.save_figure(fig, self.figures_dir / f"{self.name(base, corpus, protocol)}.png")
        try:
            from IPython.display import Image
        except ImportError:  # outside IPython: the path is what there is to show
            return path
        return Image(filename=str(path))

    def write_report(self, protocols: Sequence[str] | None = None) -> Path:
        """Build ``REPORT.md`` from ``summary.csv``, the study tables, figures and ``timings.csv``."""
        from ._atomic import atomic_write_text

        protocols = list(dict.fromkeys(protocols or [self.protocol]))
        summary = self.read_summary()
        study_tables = {}
        for p in protocols:
            for prefix in _STUDY_TABLE_PREFIX.values():
                for f in sorted(self.tables_dir.glob(f"{prefix}*_{p}.csv")):
                    study_tables[f.stem] = pd.read_csv(f)
        figures = sorted(f.name for f in self.figures_dir.glob("*.png")) if self.figures_dir.is_dir() else []
        text = build_report(summary, profile=self.profile, protocols=protocols, availability=self.availability,
                            study_tables=study_tables, figures=figures, timings=read_timings(self.results_dir / "timings.csv"),
                            environment=environment_info(), tables_out=self.tables_dir,
                            diagnostics={f.stem: f.read_text() for f in (self.tables_dir / f"{n}.md" for n in DIAGNOSTICS)
                                         if f.is_file()},
                            suite=self._suite_cost(summary),
                            gpu=[t for t in (_read_if_exists(self.tables_dir / f"{n}.md") for n in ("gpu_session", "gpu_suite", "gpu_studies"))
                                 if t] if self.profile == "full" else None,
                            cpu_run=_read_if_exists(self.results_dir / "cpu_amsnet_run.txt") if self.profile == "full" else None)
        path = self.results_dir / "REPORT.md"
        atomic_write_text(path, text)
        return path

    def _suite_cost(self, summary: pd.DataFrame | None) -> pd.DataFrame | None:
        """:func:`suite_cost` of the first available corpus (full profile only: quick runs' times say nothing)."""
        if not self.available or self.profile != "full":
            return None
        corpus = self.available[0]
        return suite_cost(summary, self.tables[corpus], corpus=corpus, store=self.store)

    def update_readme(self, protocols: Sequence[str] | None = None) -> str:
        """Write the headline results into the repository's README (full profile, default results only)."""
        if self.profile != "full" or self.results_dir != REPO_ROOT / "results":
            return f"README not updated: profile {self.profile}, results in {_short(self.results_dir)} (only the full run's go there)"
        protocols = list(dict.fromkeys(protocols or [self.protocol]))
        figures = sorted(f.name for f in self.figures_dir.glob("*.png")) if self.figures_dir.is_dir() else []
        block = readme_headline(self.read_summary(), self.availability, protocols, figures)
        if not update_readme_block(REPO_ROOT / "README.md", block):
            return "README not updated: its headline markers are missing"
        return "README headline updated"


README_START = "<!-- headline: written by notebooks/05_report.ipynb (Session.update_readme); do not edit by hand -->"
README_END = "<!-- /headline -->"


def readme_headline(summary: pd.DataFrame | None, availability: Mapping[str, str | None] | None = None,
                    protocols: Sequence[str] = ("paper", "loso"), figures: Sequence[str] = ()) -> str:
    """The README's results block: Table 5 (EmoDB: AMSNet and its ablations) ours vs the paper, per protocol."""
    t = ablation_table(summary, "emodb", protocols, availability)
    lines = ["Measured by `./run_all.sh` (profile full; every run in the committed run store `runs/`), EmoDB, "
             "mean over folds; 'not run' = not measured yet. All tables: [results/REPORT.md](results/REPORT.md).", "",
             markdown_table(t)]
    lines += [f"- {n}" for n in _protocol_notes(protocols, "full")]
    shown = [f for f in ("fig4_confusion_emodb_paper.png", "fig5_curves_emodb_paper.png") if f in set(figures)]
    if shown:
        lines.append("")
        lines += [f"![{Path(f).stem}](results/figures/{f})" for f in shown]
    return "\n".join(lines)


def update_readme_block(readme: str | os.PathLike, block: str) -> bool:
    """Replace the text between :data:`README_START` and :data:`README_END` (atomic, under
    :func:`~amsnet_lib._atomic.locked`); False if absent."""
    from ._atomic import atomic_write_text, locked

    with locked(readme) as path:
        text = path.read_text()
        if README_START not in text or README_END not in text:
            return False
        head, rest = text.split(README_START, 1)
        _, tail = rest.split(README_END, 1)
        atomic_write_text(path, f"{head}{README_START}\n{block}\n{README_END}{tail}")
    return True


def _corpus_status_quiet(corpus: str, data_dir) -> str | None:
    """Availability of a corpus the session did not load, without loading it (None = present)."""
    from .corpora import resolve_data_dir

    d = resolve_data_dir(corpus, data_dir)
    marker = d / "wav" if corpus == "emodb" else d
    return None if marker.exists() else f"{NOT_AVAILABLE} (not found at {d})"


def _default_device_name() -> str:
    try:
        from .training import default_device

        return str(default_device())
    except Exception:
        return "cpu"


def _read_if_exists(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def _short(path: Path) -> str:
    try:
        return str(Path(path).relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def setup(corpus="emodb", emodb_dir=None, iemocap_dir=None, protocol="paper", profile="full", seeds=(0,), device=None,
          results_dir=None, run_dir=None, cache_dir=None, progress=False, train=True) -> Session:
    """A :class:`Session` from a notebook's parameters (see the notebooks' ``parameters`` cell).

    ``train=False`` trains nothing and reports what the run store holds (``run_all.sh --no-train``).
    """
    return Session(corpus, emodb_dir=emodb_dir, iemocap_dir=iemocap_dir, protocol=protocol, profile=profile, seeds=seeds,
                   device=device, results_dir=results_dir, run_dir=run_dir, cache_dir=cache_dir, progress=progress, train=train)


def print_facts(facts: Mapping, indent: str = "") -> None:
    """Print a nested dict as ``key: value`` lines (for the notebooks' checked cells)."""
    for k, v in facts.items():
        if isinstance(v, Mapping):
            print(f"{indent}{k}:")
            print_facts(v, indent + "  ")
        else:
            print(f"{indent}{k}: {v}")
