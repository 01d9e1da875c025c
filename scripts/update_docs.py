#!/usr/bin/env python
"""Write the generated blocks of README.md and docs/FINDINGS.md from the measured results (run by
``run_all.sh`` after the report).

    python -m scripts.update_docs                  # results/ -> README.md, docs/FINDINGS.md
    python -m scripts.update_docs --check          # exit 1 if a block is not what results/ gives

README.md's block (between :data:`START` and :data:`END`) is Table 5 (EmoDB: AMSNet, its ablations
and late fusion, both recipes) beside the paper's values, one compact cell per WA / UA.
docs/FINDINGS.md's block (:data:`FINDINGS_START`) is the key figures its prose discusses: each model
under both recipes and protocols, with per-speaker standardisation and over three training seeds.
Both are built from ``results/tables/summary.csv`` with the library's table builders; nothing outside
the markers is touched. Only the full profile's results (``results/``) go there.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from amsnet_lib.atomic import atomic_write_text, locked
from amsnet_lib.report.paper import ABLATION_LABELS
from amsnet_lib.studies import ENSEMBLE_MODELS
from amsnet_lib.paths import REPO_ROOT
from amsnet_lib.report.report import compact_table, cpu_run_facts, cpu_table5_facts
from amsnet_lib.report.tables import (BASELINE_LABELS, CORPUS_LABELS, NOT_AVAILABLE, NOT_RUN, ablation_table, ensemble_variant, markdown_table,
                               protocol_notes, summary_row)
from scripts.cross_corpus import LABEL as CROSS_CORPUS_BASELINE, NETWORKS as CROSS_CORPUS_NETWORKS

START = "<!-- headline: written by scripts/update_docs.py (run_all.sh); do not edit by hand -->"
END = "<!-- /headline -->"
COST_START = "<!-- retraining cost: written by scripts/update_docs.py (run_all.sh); do not edit by hand -->"
COST_END = "<!-- /retraining cost -->"
FINDINGS_START = "<!-- key figures: written by scripts/update_docs.py (run_all.sh); do not edit by hand -->"
FINDINGS_END = "<!-- /key figures -->"
#: Shown under the table when the full run drew them.
FIGURES = ("fig4_confusion_emodb_paper.png", "fig5_curves_emodb_paper.png")


def headline(summary: pd.DataFrame | None, availability: Mapping[str, str | None] | None = None,
             protocols: Sequence[str] = ("paper", "loso"), figures: Sequence[str] = (),
             cross_corpus: pd.DataFrame | None = None) -> str:
    """The README's results block: Table 5 ours vs the paper's, per protocol and recipe; with
    ``cross_corpus`` (``results/tables/cross_corpus.csv``) a line on training and testing across corpora."""
    t = compact_table(_own_gaps(ablation_table(summary, "emodb", protocols, availability)))
    lines = ["Measured by `./run_all.sh` (profile full; every run in the committed run store `runs/`), EmoDB, "
             "mean over folds; 'not run' = not measured yet. All tables: [results/REPORT.md](results/REPORT.md).", "",
             markdown_table(t)]
    lines += [f"- {n}" for n in protocol_notes(protocols, "full")]
    lines += [f"- {n}" for n in baseline_notes(summary, protocols)]
    for corpus in ("ravdess", "emodb"):
        note = emobox_note(summary, corpus)
        if note:
            lines.append(f"- {note}")
    note = cross_corpus_note(cross_corpus)
    if note:
        lines.append(f"- {note}")
    if "loso" in protocols:
        lines.append(f"- {LOSO_GAP}: ours [loso] − ours [paper], percentage points: what leaving the test speaker out "
                     "of training costs our model. The paper reports no speaker-independent figure, so none of "
                     "its figures is compared with a [loso] one.")
    lines.append("- Rows with the tuned recipe or a seed ensemble go beyond the paper; an ensemble row compares N "
                 "networks with the paper's one. The paper-recipe rows are the faithful reproduction.")
    shown = [f for f in FIGURES if f in set(figures)]
    if shown:
        lines.append("")
        lines += [f"![{Path(f).stem}](results/figures/{f})" for f in shown]
    return "\n".join(lines)


def baseline_notes(summary: pd.DataFrame | None, protocols: Sequence[str] = ("paper", "loso")) -> list[str]:
    """Where a classic baseline (``compare-svm``, ``egemaps-svm``) is above every AMSNet row of Table 5
    under a protocol, in WA or UA (EmoDB): one line each, from the summary, so that the headline says so."""
    out = []
    for p in protocols:
        ensemble = ensemble_variant(summary, "emodb", "amsnet", [p])
        candidates = [("paper", "", "paper recipe"), ("tuned", "", "tuned recipe")]
        if ensemble:
            candidates.append(("tuned", ensemble, f"tuned recipe, {ensemble}"))
        amsnet = []
        for recipe, variant, label in candidates:
            r = summary_row(summary, "emodb", p, "amsnet", variant, recipe)
            if r is not None:
                amsnet.append((label, float(r["wa"]), float(r["ua"])))
        if not amsnet:
            continue
        best_wa, best_ua = max(amsnet, key=lambda x: x[1]), max(amsnet, key=lambda x: x[2])
        for model, label in BASELINE_LABELS.items():
            b = summary_row(summary, "emodb", p, model)
            if b is None or not (float(b["wa"]) > best_wa[1] or float(b["ua"]) > best_ua[2]):
                continue
            out.append(f"[{p}]: the classic baseline {label.split(' (')[0]} ({float(b['wa']):.2f} / {float(b['ua']):.2f}) "
                       f"is above every AMSNet row (best WA: {best_wa[0]}, {best_wa[1]:.2f}; best UA: {best_ua[0]}, "
                       f"{best_ua[2]:.2f}).")
    return out


#: EmoBox's folds of each corpus, in words (the headline's lines beyond the paper).
EMOBOX_CORPORA = {"ravdess": ("RAVDESS [emobox] (beyond the paper: 24 English-speaking actors, EmoBox's 6 "
                              "speaker-independent folds)", "REPORT.md's RAVDESS section"),
                  "emodb": ("EmoDB [emobox] (beyond the paper: EmoBox's 5 speaker-dependent folds)",
                            "REPORT.md's section on EmoDB on EmoBox's folds")}


def emobox_note(summary: pd.DataFrame | None, corpus: str = "ravdess") -> str | None:
    """A corpus on EmoBox's folds (beyond the paper) in one line: the tuned AMSNet beside the classic
    baselines measured on the same folds, saying which is above; ``None`` until AMSNet has a row."""
    amsnet = summary_row(summary, corpus, "emobox", "amsnet", "", "tuned")
    if amsnet is None:
        return None
    wa, ua = float(amsnet["wa"]), float(amsnet["ua"])
    parts = []
    for model, label in BASELINE_LABELS.items():
        b = summary_row(summary, corpus, "emobox", model)
        if b is not None:
            bwa, bua = float(b["wa"]), float(b["ua"])
            above = [m for m, x, y in (("WA", bwa, wa), ("UA", bua, ua)) if x > y]
            verdict = "above AMSNet" if len(above) == 2 else f"above AMSNet in {above[0]}" if above else "below AMSNet"
            parts.append(f"{label.split(' (')[0]} {bwa:.2f} / {bua:.2f} ({verdict})")
    what, where = EMOBOX_CORPORA[corpus]
    return (f"{what}: AMSNet, tuned recipe {wa:.2f} / {ua:.2f}"
            + (f"; the classic baseline{'s' if len(parts) > 1 else ''} on the same folds: {'; '.join(parts)}" if parts else "")
            + f". Every row: {where}.")


#: The cross-corpus line's one setting, fixed beforehand (not the best on the test corpus): the four classes
#: cross-corpus benchmarks use, each corpus standardised with its own statistics (no label read).
CROSS_CORPUS_LINE = {"classes": "four", "adapt": "corpus"}


def cross_corpus_note(table: pd.DataFrame | None) -> str | None:
    """Training on one corpus and testing on the other (beyond the paper) in one line: AMSNet's UA in each
    measured direction beside the classic baseline's, at :data:`CROSS_CORPUS_LINE`; ``None`` until AMSNet
    has a measured row."""
    if table is None or not len(table):
        return None
    t = table[(table["classes"] == CROSS_CORPUS_LINE["classes"]) & (table["adapt"] == CROSS_CORPUS_LINE["adapt"])]
    t = t[pd.to_numeric(t["UA (%)"], errors="coerce").notna()]
    baseline = BASELINE_LABELS["compare-svm"].split(" (")[0]
    ams, svm = t[t["model"] == CROSS_CORPUS_NETWORKS["amsnet"]], t[t["model"] == CROSS_CORPUS_BASELINE]
    parts, above = [], []
    for _, a in ams.iterrows():
        b = svm[(svm["train"] == a["train"]) & (svm["test"] == a["test"])]
        ua = float(a["UA (%)"])
        text = (f"{CORPUS_LABELS.get(a['train'], a['train'])} → {CORPUS_LABELS.get(a['test'], a['test'])}: "
                f"AMSNet, tuned recipe {ua:.2f}")
        if len(b):
            bua = float(b["UA (%)"].iloc[0])
            text += f", {baseline} {bua:.2f}"
            above.append(bua > ua)
        parts.append(text)
    if not parts:
        return None
    verdict = ("" if not above else " (the baseline above AMSNet in every direction)" if all(above)
               else " (AMSNet above the baseline in every direction)" if not any(above)
               else " (the baseline above AMSNet in some directions)")
    return ("Across corpora (beyond the paper: trained on all of one corpus, tested on the other; UA over anger, "
            "happiness, neutral and sadness, chance 25, each corpus standardised with its own statistics): "
            + "; ".join(parts) + verdict + ". Every row and adaptation: results/tables/cross_corpus.md.")


#: The headline's column of our own LOSO gap (its WA form; compact_table folds in the UA one).
LOSO_GAP = "LOSO gap"


def _own_gaps(t: pd.DataFrame) -> pd.DataFrame:
    """Table 5 for the headline: the [loso] result set against our own [paper] result (the paper's
    figure is speaker-dependent: subtracting it from a leave-one-speaker-out one compares two
    tasks), and rows beyond the paper saying so in the row."""
    import re

    t = t.copy()
    for m in ("WA", "UA"):
        gaps = []
        for p, l in zip(t[f"{m} ours [paper] (%)"], t[f"{m} ours [loso] (%)"]):
            try:
                gaps.append(f"{float(l) - float(p):+.2f}")
            except (TypeError, ValueError):
                gaps.append(l if isinstance(l, str) else NOT_RUN)
        i = list(t.columns).index(f"Δ{m} [loso]")
        t = t.drop(columns=[f"Δ{m} [loso]"])
        t.insert(i, f"Δ{m} {LOSO_GAP} [loso] − [paper] (ours)", gaps)

    def label(name: str) -> str:
        name = re.sub(r"ensemble of (\d+) seeds", r"ensemble of \1 networks vs the paper's 1", name)
        if ("tuned recipe" in name or "ensemble" in name) and "beyond the paper" not in name:
            name += " (beyond the paper)"
        return name

    t["model"] = [label(str(x)) for x in t["model"]]
    return t


#: The rows of the key figures: (model, variant of the tuned / paper row), label.
KEY_MODELS = (("frlm", "", "FRLM"), ("urlm", "", "URLM"), ("early", "", "Early fusion"), ("concat", "", "Concatenation"),
              ("amsnet", "", "AMSNet"), ("late", "", "Late fusion, w on validation"), ("late", "w=0.5", "Late fusion, w = 0.5"))
#: Stands for the variant of a tuned model's seed-ensemble row (``ensemble of <k> seeds``, k chosen on validation).
ENSEMBLE = "ensemble"
#: Its columns: label, (protocol, recipe, variant of the model's row; None: the row's own variant).
KEY_COLUMNS = (("paper recipe [paper]", ("paper", "paper", None)), ("tuned recipe [paper]", ("paper", "tuned", None)),
               ("paper recipe [loso]", ("loso", "paper", None)), ("tuned recipe [loso]", ("loso", "tuned", None)),
               ("per-speaker standardisation, paper recipe [paper]", ("paper", "paper", "normalisation=speaker")),
               ("per-speaker standardisation, paper recipe [loso]", ("loso", "paper", "normalisation=speaker")),
               ("seeds 0, 1, 2, paper recipe [paper]", ("paper", "paper", "seeds=0,1,2")),
               ("tuned recipe, seed ensemble chosen on validation [paper]", ("paper", "tuned", ENSEMBLE)))


def key_figures(summary: pd.DataFrame | None, chosen: Mapping[str, int] | None = None) -> str:
    """docs/FINDINGS.md's block: WA / UA (%) of each model under each recipe, protocol and variant of
    :data:`KEY_COLUMNS`, EmoDB, mean over folds (and seeds); 'not run' where the summary has no row.
    ``chosen``: the seed-ensemble size validation chose per model (notebook 03's
    ``seed_ensemble_validation`` table); a model that kept one member says so."""
    rows = []
    for model, variant, label in KEY_MODELS:
        row = {"model": label}
        for column, (protocol, recipe, var) in KEY_COLUMNS:
            if var == ENSEMBLE:
                ensembled = not variant and model in ENSEMBLE_MODELS
                var = ensemble_variant(summary, "emodb", model, [protocol]) if ensembled else None
                if var is None:
                    one = ensembled and (chosen or {}).get(model) == 1
                    row[column] = "1 member chosen: the tuned row" if one else (NOT_RUN if ensembled else "")
                    continue
            hit = summary_row(summary, "emodb", protocol, model, variant if var is None else var, recipe)
            row[column] = f"{float(hit['wa']):.2f} / {float(hit['ua']):.2f}" if hit is not None else NOT_RUN
        rows.append(row)
    return ("WA / UA (%), EmoDB, mean over folds (and seeds), from `results/tables/summary.csv`; "
            "'not run' = not measured.\n\n" + markdown_table(pd.DataFrame(rows)))


def replace_block(readme: str | os.PathLike, block: str, start: str = START, end: str = END) -> bool:
    """Replace the text between ``start`` and ``end`` (atomically, under a file lock); False, and
    the file left alone, when the markers are absent."""
    with locked(readme) as path:
        text = path.read_text()
        if start not in text or end not in text:
            return False
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        new = f"{head}{start}\n{block}\n{end}{tail}"
        if new != text:
            atomic_write_text(path, new)
    return True


def _summary(results: Path) -> pd.DataFrame | None:
    path = results / "tables" / "summary.csv"
    return pd.read_csv(path, keep_default_na=False) if path.is_file() else None


def _chosen(results: Path) -> dict[str, int]:
    """The seed-ensemble size chosen on validation per model (EmoDB, [paper]), from notebook 03's table."""
    path = results / "tables" / "seed_ensemble_validation_emodb_paper.csv"
    if not path.is_file():
        return {}
    t = pd.read_csv(path, keep_default_na=False)
    models = {v: k for k, v in ABLATION_LABELS.items()}
    picked = t[t["chosen"] == "yes"]
    return {models.get(m, m): int(k) for m, k in zip(picked["model"], picked["members"])}


def retraining_cost(cpu_run: str | None, cpu_table5: str | None, gpu_suite: str | None) -> str:
    """The README's retraining cost, from the timed runs' own files (``results/cpu_amsnet_run.txt``,
    ``results/cpu_table5_run.txt``: ``benchmarks/cpu_*_run.sh``; ``results/tables/gpu_suite.md``)."""
    parts = []
    for text, name, what in ((cpu_run, "cpu_amsnet_run.txt", "5-fold AMSNet [paper] (paper recipe)"),
                             (cpu_table5, "cpu_table5_run.txt", "the tuned recipe's Table 5 (EmoDB, [paper])")):
        if not text:
            parts.append(f"{what}: {NOT_RUN}")
            continue
        facts = (cpu_run_facts if name == "cpu_amsnet_run.txt" else cpu_table5_facts)(text)
        # wall time only: GNU time's CPU figure misses Ray's workers where the run trained through Ray
        parts.append(f"{what} {facts['wall_s'] / 60:.0f} min of wall on a {facts['host'].split(',')[0].replace(' cores', '-core')} "
                     f"CPU ([results/{name}](results/{name}))")
    measured = next((line for line in (gpu_suite or "").splitlines() if line.startswith("- **Measured:")), None)
    gpu = (measured.split("**")[1].removeprefix("Measured: ").strip() + ", the rest not measured"
           if measured else NOT_RUN)
    return (f"Measured from an empty run store: {parts[0]}; {parts[1]}; the whole suite on one GPU: {gpu} "
            "([results/tables/gpu_suite.md](results/tables/gpu_suite.md)).")


def block_from_results(results: Path, protocols: Sequence[str] = ("paper", "loso")) -> str:
    """:func:`headline` of a results folder (``summary.csv`` and ``figures/``)."""
    summary = _summary(results)
    measured = set(summary["corpus"].astype(str)) if summary is not None and len(summary) else set()
    availability = {c: None if c in measured else NOT_AVAILABLE for c in ("emodb", "iemocap")}
    figures = sorted(f.name for f in (results / "figures").glob("*.png"))
    cross = results / "tables" / "cross_corpus.csv"
    cross_corpus = pd.read_csv(cross, keep_default_na=False) if cross.is_file() else None
    return headline(summary, availability, protocols, figures, cross_corpus)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=str(REPO_ROOT / "results"), help="results folder of the full run")
    p.add_argument("--readme", default=str(REPO_ROOT / "README.md"))
    p.add_argument("--findings", default=str(REPO_ROOT / "docs" / "FINDINGS.md"))
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is out of date")
    args = p.parse_args(argv)
    results = Path(args.results)
    read = lambda p: p.read_text() if p.is_file() else None  # noqa: E731
    cost = retraining_cost(read(results / "cpu_amsnet_run.txt"), read(results / "cpu_table5_run.txt"),
                           read(results / "tables" / "gpu_suite.md"))
    blocks = [(Path(args.readme), block_from_results(results), START, END),
              (Path(args.readme), cost, COST_START, COST_END),
              (Path(args.findings), key_figures(_summary(results), _chosen(results)), FINDINGS_START, FINDINGS_END)]
    status = 0
    for path, block, start, end in blocks:
        text = path.read_text() if path.is_file() else ""
        if start not in text or end not in text:
            print(f"{path}: no generated-block markers ({start} ... {end}); nothing written", file=sys.stderr)
            status = 1
        elif args.check:
            ok = text.split(start, 1)[1].split(end, 1)[0].strip("\n") == block.strip("\n")
            print(f"{path.name}: up to date" if ok else f"{path.name}: out of date: run python -m scripts.update_docs")
            status = status or (0 if ok else 1)
        else:
            replace_block(path, block, start, end)
            print(f"{path.name}: generated block written from {results}")
    return status


if __name__ == "__main__":
    sys.exit(main())
