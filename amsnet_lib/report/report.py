"""``results/REPORT.md``: assembled from ``summary.csv``, the tables and figures already
written, the timings and the configuration (:func:`build_report`).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from . import paper, second_corpus
from .. import studies

from .tables import _STUDY_TABLE_PREFIX, CORPORA, CORPUS_LABELS, NOT_RUN, PROTOCOL_DESCRIPTIONS, PROTOCOL_SHORT, protocol_notes, summary_row, ablation_table, comparison_table2, markdown_table, normalisation_table, protocol_tag, se_ratio_table, write_table


__all__ = ["build_report", "compact_table", "cpu_run_facts", "cpu_table5_facts", "suite_cost", "training_text"]


def _training_text(t) -> str:
    """One stage's :class:`~amsnet_lib.config.TrainConfig` in words, for the settings table."""
    return (f"{t.optimizer}, lr {t.lr:g}, batch {t.batch_size}, <= {t.epochs} epochs, "
            + (f"patience {t.patience}" if t.patience else "no early stopping") + f" on {t.monitor} (best epoch kept), "
            f"validation {100 * t.val_fraction:g} % of each fold's training part; weight decay {t.weight_decay:g} unless stated above")


def _recipe_text(t) -> str:
    """The tuned-recipe fields of a :class:`~amsnet_lib.config.TrainConfig` that are on, in words."""
    on = [f"{t.schedule} schedule" + (f" (warm-up {t.warmup:g})" if t.warmup else "") if t.schedule != "constant" else "",
          f"gradient clipping {t.grad_clip:g}" if t.grad_clip else "",
          f"label smoothing {t.label_smoothing:g}" if t.label_smoothing else "",
          f"mixup α {t.mixup:g}" if t.mixup else "", f"time mask {t.time_mask:g}" if t.time_mask else "",
          f"frequency mask {t.freq_mask:g}" if t.freq_mask else "", f"noise σ {t.noise_std:g}" if t.noise_std else "",
          f"class weighting {t.class_weighting}" if t.class_weighting != "none" else "",
          {"speed": "speed perturbation (copies at 0.9 and 1.1 times the speed)",
           "pitch": "pitch shifting (copies at -2 and +2 semitones, duration kept)"}.get(t.augment, f"{t.augment} augmentation")
          if t.augment != "none" else ""]
    on = [x for x in on if x]
    return "; " + ", ".join(on) if on else ""


def training_text(t) -> str:
    """One stage's :class:`~amsnet_lib.config.TrainConfig` in words: optimiser, rate, batch, epochs,
    selection, and the tuned recipe's components that are on (model cards, the settings table)."""
    return _training_text(t) + _recipe_text(t)


def table5_cost(summary: pd.DataFrame, corpus: str = "emodb", protocol: str = "paper") -> pd.DataFrame:
    """Training seconds of Table 5's models per recipe (``train_seconds`` of the summary, in minutes),
    and the whole table with each training counted once: FRLM, URLM and early fusion, plus the two
    fusions less the branches they share with the first two."""
    models, recipes = ("frlm", "urlm", "early", "concat", "amsnet"), ("paper", "tuned")
    minutes = {}
    for r in recipes:
        for m in models:
            row = summary_row(summary, corpus, protocol, m, recipe=r)
            minutes[r, m] = pd.to_numeric(row["train_seconds"], errors="coerce") / 60 if row is not None else float("nan")
    rows = [{"model": paper.ABLATION_LABELS.get(m, m), **{f"{r} recipe (min)": round(minutes[r, m], 1) for r in recipes}}
            for m in models]
    total = {}
    for r in recipes:
        branches = minutes[r, "frlm"] + minutes[r, "urlm"]  # counted again in each fusion's own seconds
        heads = (minutes[r, "concat"] - branches) + (minutes[r, "amsnet"] - branches)
        total[f"{r} recipe (min)"] = round(branches + minutes[r, "early"] + heads, 1)
    rows.append({"model": "Table 5, each training once", **total})
    return pd.DataFrame(rows)


def compact_table(df: pd.DataFrame) -> pd.DataFrame:
    """A wide paper-vs-ours table with its WA and UA columns folded into one ``WA / UA`` column each.

    ``WA reported [paper] (%)`` and ``UA reported [paper] (%)`` become ``WA / UA reported [paper] (%)``
    with cells like ``81.12 / 80.62``; a cell whose two values say the same thing (``not run``) says
    it once. Other columns stay as they are, in their order.
    """
    from .tables import _fmt

    cols, out = list(df.columns), {}
    for c in cols:
        name = str(c)
        if name.startswith(("UA ", "ΔUA")) and name.replace("UA", "WA", 1) in cols:
            continue  # folded into its WA column
        twin = name.replace("WA", "UA", 1) if name.startswith(("WA ", "ΔWA")) else None
        if twin not in cols:
            out[name] = df[c]
            continue
        merged = []
        for a, b in zip(df[c], df[twin]):
            fa, fb = _fmt(a, name), _fmt(b, twin)
            merged.append(fa if fa == fb and not isinstance(a, (int, float)) else f"{fa} / {fb}")
        out["WA / UA " + name[len("WA "):] if name.startswith("WA ") else name.replace("ΔWA", "Δ WA / UA", 1)] = merged
    return pd.DataFrame(out)


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
            *[(corpus, f"training, {stage_label}", _training_text(c.stage_train(stage)))
              for stage, stage_label in (("urlm", "stage 1 (FRLM, URLM, early fusion)"), ("fusion", "stage 2 (fusion head)"))],
        ]
    tuned = studies.tuned(studies.experiment("emodb", "amsnet", "paper", profile), quick=profile == "quick")
    paper_exp = studies.experiment("emodb", "amsnet", "paper", profile)
    for stage, label in (("frlm", "FRLM (and early fusion)"), ("urlm", "URLM"), ("fusion", "fusion head")):
        t = tuned.stage_train(stage)
        same = t == paper_exp.stage_train(stage)
        rows.append(("emodb", f"tuned recipe, {label}", "the paper recipe's (kept on validation)" if same else
                     training_text(t) + (f"; {tuned.frlm.frame_stack} frames per recurrent step" if stage == "frlm" else "")))
    if tuned.finetune is not None:
        rows.append(("emodb", "tuned recipe, end-to-end fine-tuning", training_text(tuned.finetune)))
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
    se_params: Mapping[tuple[str, int], int] | None = None,
    tables_out: str | os.PathLike | None = None,
    diagnostics: Mapping[str, str] | None = None,
    suite: pd.DataFrame | None = None,
    gpu: str | Sequence[str] | None = None,
    cpu_run: str | None = None,
    cpu_table5: str | None = None,
    searches: Sequence[str] = (),
    unheard: Mapping[str, str] | None = None,
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
        se_params: (recipe, r) -> our parameter count for Table 3 (default: computed).
        tables_out: folder to also write the report's comparison tables to (CSV + Markdown).
        diagnostics: name -> Markdown of a diagnostic beyond the paper (first line its ``# title``),
            e.g. ``frame_feature_check`` and ``frlm_tuning`` written by the scripts of those names.
        suite: :func:`suite_cost` of the corpus the report is about (what the whole suite trains).
        gpu: Markdown of the GPU measurements, or several (``tables/gpu_session.md``, written by
            ``scripts/diagnostics/gpu_report.py`` from a ``benchmarks/gpu_session.sh`` run, and
            ``tables/gpu_suite.md`` by ``scripts/diagnostics/gpu_suite_report.py``, ``tables/gpu_studies.md`` by
            ``scripts/diagnostics/gpu_studies_report.py``); each's first line is its
            ``# title``, its ``## `` sections go one level below it.
        cpu_run: the text of ``cpu_amsnet_run.txt`` (``benchmarks/cpu_amsnet_run.sh``: the full 5-fold
            AMSNet run on the CPU from an empty run store); see :func:`cpu_run_facts`.
        cpu_table5: the text of ``cpu_table5_run.txt`` (``benchmarks/cpu_table5_run.sh``: the tuned
            recipe's Table 5 on the CPU from an empty run store); see :func:`cpu_table5_facts`.
        searches: names of the tables ``amsnet search`` wrote (``recipe_search_*``): how the tuned
            recipe was chosen, linked after its tables.
        unheard: name -> Markdown of a table beyond the paper on corpora and voices a model never heard
            (``tables/<name>.md``: the cross-corpus table, scoring over a corpus's classes, whole recordings;
            written by ``scripts/cross_corpus.py`` and ``benchmarks/``), shown whole in their own section with
            the figures named after them.
    """
    availability = dict(availability or {})
    study_tables = dict(study_tables or {})
    env = dict(environment or {})
    notes = protocol_notes(protocols, profile)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# AMSNet reproduction report", ""]
    out.append(f"Generated {now} by `notebooks/05_report.ipynb`, profile **{profile}**. Source of the reported numbers: {paper.CITATION}.")
    out.append("")
    if profile == "quick":
        out += ["> **Profile quick.** Tiny networks trained for one epoch, a smoke test of the pipeline: the accuracies below mean "
                "nothing. `./run_all.sh` (profile full) produces the real numbers.", ""]
    out += ["## Protocols", ""]
    # beyond the paper: EmoBox's folds, where the second corpus's section has a measured row
    second = ([second_corpus.PROTOCOL] if summary is not None and len(summary)
              and (summary["protocol"].astype(str) == second_corpus.PROTOCOL).any() else [])
    for p in dict.fromkeys(["paper", *protocols, *second]):
        out.append(f"- `{protocol_tag(p)}` {PROTOCOL_SHORT.get(p, p)}: {PROTOCOL_DESCRIPTIONS.get(p, p)}.")
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
    if second:
        corpora_status.append({"corpus": "RAVDESS (beyond the paper)", "status": "measured"})
    out += ["## Corpora", "", markdown_table(pd.DataFrame(corpora_status))]

    def emit(title, df, name, extra_notes=()):
        out.extend([f"## {title}", "", markdown_table(compact_table(df))])
        if tables_out is not None:
            out.extend([f"Every column apart (CSV and Markdown): [`tables/{name}.md`](tables/{name}.md).", ""])
        out.extend(f"- {n}" for n in list(extra_notes))
        if extra_notes:
            out.append("")
        if tables_out is not None:
            legend = notes if _holds_paper_values(df) else protocol_notes(protocols, profile, reported=False)
            write_table(df, Path(tables_out) / name, title, list(extra_notes) + legend)

    emit("Table 2: comparison with the literature", comparison_table2(summary, protocols, availability), "report_table2",
         ["Literature rows are quoted by the paper (reported, not re-run, here or there)."])
    # Table 3: the paper's protocol, plus any other protocol the SE study was actually run under
    se_protocols = [p for p in protocols if p == "paper" or (summary is not None and len(summary) and (
        (summary["protocol"].astype(str) == p) & summary["variant"].astype(str).str.startswith("r=")).any())]
    emit("Table 3: SE reduction ratio r", se_ratio_table(summary, se_protocols, availability, params=se_params, profile=profile),
         "report_table3", ["ACC = accuracy (WA). Params: the paper's model vs ours as built by `build_model` "
                           "(the paper's dense layer sizes are not given, so counts differ).",
                           "recipe: our training recipe (`tuned`: beyond the paper, docs/RECIPE.md; its frame "
                           "stacking widens FRLM's input, hence its larger counts). The paper reports one figure per r."])
    late_note = ("Late fusion: not a model of the paper. The pre-trained FRLM and URLM of the rows above, their class "
                 "probabilities averaged, w·p_FRLM + (1 − w)·p_URLM, with one weight per fold chosen on the fold's "
                 "validation split (lowest cross-entropy among 0, 0.05, ..., 1; `amsnet train --model late`) or fixed at "
                 "0.5 (`--late-weight 0.5`); nothing else is trained.")
    emit("Table 4: ablations on IEMOCAP", ablation_table(summary, "iemocap", protocols, availability), "report_table4_iemocap",
         [late_note])
    emit("Table 5: ablations on EmoDB", ablation_table(summary, "emodb", protocols, availability), "report_table5_emodb",
         ["Early fusion is not defined by the paper; ours: per-frame concatenation of both input streams into one attention "
          "BLSTM (docs/DESIGN.md).", late_note])

    ravdess, ravdess_notes = second_corpus.section(summary, availability, study_tables)
    emit("Beyond the paper: a second corpus, RAVDESS on EmoBox's folds", ravdess, "report_ravdess_emobox", ravdess_notes)
    emodb_emobox = second_corpus.emodb_section(summary, availability)
    if emodb_emobox is not None:
        emobox_table, emobox_notes = emodb_emobox
        emit("Beyond the paper: EmoDB on EmoBox's folds", emobox_table, "report_emodb_emobox", emobox_notes)

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
        if found:
            out.extend([f"Ours{caption}:", "", *[f"- [`{n}`](tables/{n}.md)" for n in sorted(found)], ""])

    beyond("are the differences of the ablation table larger than the test set's noise?", "significance",
           "Each model (late fusion too) against AMSNet on the same test utterances, from their stored predictions "
           "(notebook 03, `report.significance_table`): Δ = AMSNet − model as in the table above, a 95 % interval and a "
           "two-sided p from a paired bootstrap (10,000 resamples of the test utterances within each fold), and "
           "McNemar's exact test on the utterances only one of the two gets right. The trained models and folds are "
           "held fixed; the training-seed study below shows how much retraining moves them. No correction for the "
           "number of comparisons: of twelve p-values per table, one in twenty would fall below 0.05 by chance.")
    beyond("the tuned recipe against the paper recipe", "tuned_recipe",
           "Each model trained with the tuned recipe (docs/RECIPE.md; its rows in the tables above) against the same model "
           "trained with the paper recipe, on the same test utterances (notebook 03, "
           "`significance.recipe_significance_table`): Δ = tuned − paper, a 95 % interval and p from the paired bootstrap, "
           "McNemar's exact test. A model the tuned recipe trains as the paper does is the same run.")
    out.extend(["## Beyond the paper: how the tuned recipe was chosen", "",
                "`amsnet search` (docs/RECIPE.md): each trial scored by the mean validation UA over the folds' "
                "validation splits, drawn from their training parts; no trial evaluated a test fold. The tuned recipe "
                "holds each stage's best trial (`amsnet_lib/studies.py`); each table says whether its best row passed "
                "the reference it names.", ""])
    out.extend([f"- [`{n}`](tables/{n}.md)" for n in sorted(searches)] or [f"Ours: {NOT_RUN}."])
    out.append("")
    beyond("the tuned recipe's URLM training against the paper's", "paper_urlm",
           "The tuned recipe's URLM is the URLM search's best trial (`studies.TUNED_URLM`, chosen on the validation "
           "splits: [recipe_search_emodb_urlm.md](tables/recipe_search_emodb_urlm.md)); until that trial had finished, "
           "validation kept URLM's paper training. URLM, concatenation, AMSNet and late fusion of the tuned recipe against "
           "the same models with URLM paper-trained, on the same test utterances (notebook 03, "
           "`significance.variant_significance_table`): Δ = tuned − URLM paper-trained, a 95 % interval and p from the "
           "paired bootstrap, beside both models' validation UA, the figure the choice between them was made on.")
    beyond("speed perturbation of the tuned recipe's URLM", "urlm_without_speed",
           "The tuned recipe's URLM trains on its fit part and copies of it at 0.9 and 1.1 times the speed (Ko et al. 2015), "
           "chosen on the validation splits ([recipe_search_emodb_urlm_speed.md](tables/recipe_search_emodb_urlm_speed.md)); "
           "FRLM and the heads train without the copies. URLM, concatenation, AMSNet and late fusion of the tuned recipe against "
           "the same models with URLM trained without the copies, on the same test utterances (notebook 03, "
           "`significance.variant_significance_table`): Δ = tuned − without speed, beside both models' validation UA.")
    beyond("seed ensembles of the tuned recipe", "seed_ensemble",
           "Each tuned model trained again with other seeds on the same folds and validation splits, the members' class "
           "probabilities averaged (`amsnet_lib.train.ensemble`, notebook 03). How many members is chosen on the validation "
           "splits, with no test fold (`seed_ensemble_validation_*`); the test folds are then read for that size only "
           "(`seed_ensemble_*`). The paper's protocol only: a leave-one-speaker-out member costs twice as much.")
    beyond("what carries the tuned recipe's gain", "recipe_ablation",
           "FRLM and AMSNet under the tuned recipe with each of its components removed in turn, against the full recipe "
           "on the same folds and seeds (`studies.recipe_ablation_study`; its stage-1 trainings by `amsnet pretrain "
           "--studies recipe_ablation`; the table and its figure by notebook 03 or `python -m scripts.recipe_ablation`, each row over "
           "the seeds finished, named in it), with each Δ's 95 % interval from the paired bootstrap of the test utterances.")
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
        ordered = sorted(found.items(), key=lambda kv: (kv[0][len(prefix):].startswith("branches_"), kv[0]))
        if ordered:
            out += ["Ours:", "", *[f"- [`{n}`](tables/{n}.md)" for n, _ in ordered], ""]
        if any(_mixes_devices(t) for _, t in ordered):
            out += [f"*{MIXED_DEVICES_NOTE}*", ""]
        if any(_has_unrun_rows(t) for _, t in ordered):
            out += [f"*{NOT_RUN_ROWS_NOTE}*", ""]

    if diagnostics:
        out += ["## Diagnostics beyond the paper", "",
                "Measured by the scripts named in each section, on the same folds, to locate the gap to the paper.", ""]
        for name, text in diagnostics.items():
            lines = text.strip().splitlines()
            title = lines[0].lstrip("# ").strip() if lines and lines[0].startswith("#") else name
            out.append(f"- {title}: [`tables/{name}.md`](tables/{name}.md)")
        out.append("")

    if unheard:
        out += ["## Beyond the paper: corpora and voices the model never heard", "",
                "Each table as its script wrote it (the command is in the table's text); models trained on one corpus, "
                "scored on another it never saw.", ""]
        for name, text in unheard.items():
            lines = text.strip().splitlines()
            title = lines[0].strip("#* ").strip() if lines else name
            body = [line for line in lines[1:] if not line.startswith("# ")]
            body = [line for k, line in enumerate(body) if line.strip() or (k and body[k - 1].strip())]  # no blank runs
            out += [f"### {title}", "", *body, "", f"As a file: [`tables/{name}.md`](tables/{name}.md).", ""]
            out += [f"![{f[:-4]}](figures/{f})" for f in figures if f.endswith(".png") and _owner(f[:-4], unheard) == name]
            out.append("")

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
        out += ["Training time of every experiment: `train_seconds` of [`tables/summary.csv`](tables/summary.csv) (one row "
                "per corpus, protocol, recipe, model and variant; single-thread seconds summed over folds and seeds, the "
                "branches a fusion stands on counted in it). Table 5 on EmoDB `[paper]`, per recipe:", "",
                markdown_table(table5_cost(summary)), ""]
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
    if cpu_table5:
        out += _cpu_table5_section(cpu_table5_facts(cpu_table5))
    for text in [gpu] if isinstance(gpu, str) else (gpu or []):
        lines = text.strip().splitlines()
        out += [f"### {lines[0].lstrip('# ').strip()}", *[f"##{ln}" if ln.startswith("## ") else ln for ln in lines[1:]], ""]
    out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


#: The issue's target for the tuned Table 5 (five models, `[paper]`) on the 2-core CPU, minutes.
TABLE5_TARGET_MIN = 60


def _cpu_table5_section(facts: dict) -> list[str]:
    wall_min = facts["wall_s"] / 60
    same = {True: "identical", False: "different", None: "not compared"}
    rows = [f"| {paper.ABLATION_LABELS.get(m, m)} | {v['wa']} | {v['ua']} | {same[v['identical']]} |"
            for m, v in facts["models"].items()]
    return ["### Measured on this CPU: the tuned recipe's Table 5", "",
            f"`benchmarks/cpu_table5_run.sh` ({facts['host']}; raw output: `results/cpu_table5_run.txt`): "
            "`amsnet pretrain --studies tuned_recipe --recipe tuned --models frlm urlm early concat amsnet --fusion` "
            "from an empty run store (features and URLM's speed-perturbed copies from the cache): every fold of the five "
            "models, each training once, the fusion heads on the branches trained in the same run.", "",
            f"- **{wall_min:.1f} min of wall time** ({facts['wall_s']:.0f} s), "
            f"{'within' if wall_min <= TABLE5_TARGET_MIN else 'over'} the target of {TABLE5_TARGET_MIN} min "
            "(the trainings run as Ray tasks, whose CPU time and memory GNU time does not see: only the wall time "
            "is quoted).", *[f"- Note: {n}." for n in facts["notes"]], "",
            "| model | WA `[paper]`, tuned (%) | UA `[paper]`, tuned (%) | per fold, against the committed run store |",
            "|---|---|---|---|", *rows, ""]


def _owner(figure: str, names) -> str | None:
    """The table a figure belongs to: the longest name it is, or starts with followed by ``_``
    (``cross_corpus_classic_four`` is ``cross_corpus_classic``'s, not ``cross_corpus``'s)."""
    mine = [n for n in names if figure == n or figure.startswith(n + "_")]
    return max(mine, key=len) if mine else None


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
        store: a :class:`~amsnet_lib.train.runstore.RunStore` to count the folds already finished.

    Returns:
        One row per kind (``frlm``, ``urlm``, ``early``) and a total: ``trainings``, ``finished``,
        ``seconds_per_fold`` (measured), ``cpu_hours_all`` and ``cpu_hours_left`` (lower bounds:
        smaller batches, larger hidden sizes and other learning rates cost more per fold than
        the paper configuration).
    """
    from ..train.training import SINGLE_STAGE
    from ..train.units import fusion_units, stage1_units
    from ..train.runstore import fusion_dirs, n_utterances

    suite = studies.full_suite(corpus, "full", loso=loso)
    units = stage1_units(suite, table)
    rows = []
    for kind in SINGLE_STAGE:
        mine = [u for u in units if u.kind == kind]
        dirs = [] if store is None else [store.fold_dir(kind, u.key, u.seed, u.fold.name) for u in mine]
        per_fold = float("nan")
        r = summary_row(summary, corpus, "paper", kind)
        if r is not None:
            per_fold = float(r["train_seconds"]) / (int(r["n_folds"]) * int(r.get("n_seeds", 1) or 1))
        total, measured = len(mine), _finished_folds(dirs, "seconds")
        rows.append({"kind": kind, "trainings": total, "finished": measured["finished"], "seconds_per_fold": per_fold,
                     "cpu_hours_all": total * per_fold / 3600,
                     "cpu_hours_left": (total - measured["finished"]) * per_fold / 3600, **measured})
    if store is not None:  # the heads: seconds each on the paper configuration, more at small batches
        heads = fusion_units(suite, table)
        dirs = [fusion_dirs(h.exp, n_utterances(table, h.exp), h.seed, h.fold.name, store)[0] for h in heads]
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
    from ..train.devices import trained_on_cpu

    if not dirs:
        return {"finished": 0}
    done = [json.loads((d / "metrics.json").read_text()) for d in dirs if (d / "metrics.json").is_file()]
    cpu = [m for m in done if trained_on_cpu(m)]
    return {"finished": len(done), "finished_on_gpu": len(done) - len(cpu),
            "cpu_hours_measured": sum(float(m.get(key, 0.0)) for m in cpu) / 3600}


def _gnu_time(text: str, name: str, script: str) -> dict:
    """``host``, ``wall_s``, ``cpu_s`` (user + system) and ``max_rss_gib`` of a timed run's output file."""
    def field(label):
        m = re.search(rf"^\s*{re.escape(label)}: (.+)$", text, re.M)
        if not m:
            raise ValueError(f"{name}: no {label!r} line; the run did not finish. Fix: run {script} again.")
        return m.group(1).strip()

    clock = [float(x) for x in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")]
    return {"host": field("host"), "wall_s": sum(v * 60 ** i for i, v in enumerate(reversed(clock))),
            "cpu_s": float(field("User time (seconds)")) + float(field("System time (seconds)")),
            "max_rss_gib": float(field("Maximum resident set size (kbytes)")) / 2 ** 20}


_FOLD_ROW = r"^\s+\d+ fold\S+ +[\d.]+ +[\d.]+$"
_MEAN_ROW = r"^\s+mean +([\d.]+) +([\d.]+)$"


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
    timed = _gnu_time(text, "cpu_amsnet_run.txt", "benchmarks/cpu_amsnet_run.sh")
    run, _, committed = text.partition("## the committed run store")
    tables = [re.findall(_FOLD_ROW, part, re.M) for part in (run, committed)]
    mean = re.search(_MEAN_ROW, run, re.M)
    if not tables[0] or not mean:
        raise ValueError("cpu_amsnet_run.txt: no per-fold table of the run. Fix: run benchmarks/cpu_amsnet_run.sh again.")
    second = re.search(r"^\s+\d+ fold", committed, re.M) is not None
    return {**timed, "wa": mean.group(1), "ua": mean.group(2),
            "identical": (tables[0] == tables[1][:len(tables[0])]) if second else None,
            "notes": re.findall(r"^note: (.+)$", text, re.M)}


def cpu_table5_facts(text: str) -> dict:
    """What ``benchmarks/cpu_table5_run.sh`` measured (the tuned Table 5 from an empty run store).

    Returns:
        :func:`cpu_run_facts`' ``host``, ``wall_s``, ``cpu_s``, ``max_rss_gib`` and ``notes``, and
        ``models``: model -> ``{"wa", "ua", "identical"}``, the run's mean (%, as printed) and whether
        its per-fold table equals the committed run store's (``None`` when that one has none).

    Raises:
        ValueError: the text lacks GNU time's figures or a model's table (an interrupted run).
    """
    timed = _gnu_time(text, "cpu_table5_run.txt", "benchmarks/cpu_table5_run.sh")
    blocks = re.split(r"^(\w+), run store .+:$", text.partition("## each model")[2], flags=re.M)
    runs: dict[str, list[str]] = {}
    for model, block in zip(blocks[1::2], blocks[2::2]):
        runs.setdefault(model, []).append(block)
    models = {}
    for model, (run, *committed) in runs.items():
        mean = re.search(_MEAN_ROW, run, re.M)
        if not mean:
            raise ValueError(f"cpu_table5_run.txt: no per-fold table of {model}. Fix: run benchmarks/cpu_table5_run.sh again.")
        theirs = re.findall(_FOLD_ROW, committed[0], re.M) if committed else []
        models[model] = {"wa": mean.group(1), "ua": mean.group(2),
                         "identical": re.findall(_FOLD_ROW, run, re.M) == theirs if theirs else None}
    if not models:
        raise ValueError("cpu_table5_run.txt: no model's table. Fix: run benchmarks/cpu_table5_run.sh again.")
    return {**timed, "models": models, "notes": re.findall(r"^note: (.+)$", text, re.M)}


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


