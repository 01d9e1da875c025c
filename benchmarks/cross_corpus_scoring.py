"""Scoring over the classes the audio can have (issue #38 item 6): the shipped model on RAVDESS.

The shipped model (trained on all of EmoDB, German) is evaluated on RAVDESS (English; never seen) with the
public API (:func:`amsnet_lib.serve.evaluation.evaluate`), its labels mapped by the default map across corpora
(``calm`` and ``surprise`` have no EmoDB class and are left out: 1056 of the 1440 files are evaluated):

  own argmax       the model's 7-way decision (``all_classes=True``, ``--all-classes``): EmoDB's ``boredom``
                   can win although RAVDESS has none
  restricted       the same scores renormalised over the classes evaluated (``evaluate``'s default)
  + --adapt ...    features standardised with each actor's statistics (no label read)

over the six shared classes and over the four that cross-corpus benchmarks use (anger happiness neutral
sadness: ``classes=...``, ``--classes``), each file scored whole (the default ``WindowConfig``) and, for
comparison, as before whole-recording scoring (its first 3 s, untrimmed: ``WindowConfig(pooling="first",
trim_db=None)``).

Each evaluation is run once with ``all_classes=True`` and its per-window scores (``Evaluation.windows``) are
kept; every row is then those window scores restricted to the classes of the row and pooled with the
default pooling, exactly as ``evaluate(classes=...)`` / ``evaluate(...)`` compute it (tests/test_windows.py
checks the equality), so one pass over the corpus serves several rows and the pooling can be re-applied
without scoring again. Four-class rows with adaptation come from their own evaluation of those files only,
since the adaptation statistics then come from those files.

    python -m benchmarks.cross_corpus_scoring [--limit N] [--before] [--cache /tmp/amsnet_ccs]

Writes results/tables/cross_corpus_scoring.{csv,md}. NOTE: the whole-recording default (pooling, trimming)
was chosen on RAVDESS's six shared classes (benchmarks/whole_recordings.py, validation); these rows are on
the same corpus, so they are not an independent test of that choice.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

import amsnet_lib as ams
from amsnet_lib.config import WindowConfig
from amsnet_lib.metrics import unweighted_accuracy, weighted_accuracy
from amsnet_lib.report.tables import markdown_table
from amsnet_lib.serve.windows import allowed_classes, pool, restrict

OUT = ROOT / "results" / "tables" / "cross_corpus_scoring"
FOUR = ["anger", "happiness", "neutral", "sadness"]
SCORING = {"whole recording (default)": WindowConfig(),
           "first 3 s, untrimmed (before)": WindowConfig(pooling="first", trim_db=None)}


def _measures(true, pred, scored: list[str]) -> dict:
    idx = {c: i for i, c in enumerate(scored)}
    y = np.asarray([idx[t] for t in true])
    p = np.asarray([idx.get(q, len(scored)) for q in pred])  # a class outside `scored` is simply wrong
    return {"files": len(y), "WA": round(100 * weighted_accuracy(y, p), 2),
            "UA": round(100 * unweighted_accuracy(y, p, len(scored) + 1), 2)}


def _windows(table, rec, windowing: WindowConfig, adapt: str, classes, cache: Path) -> pd.DataFrame:
    """``evaluate(all_classes=True)``'s per-window scores with ``true`` (cached as CSV)."""
    if cache.is_file():
        return pd.read_csv(cache)
    if classes is not None:
        table = table[table["label"].isin(classes)]
    t0 = time.perf_counter()
    ev = ams.evaluate(table, rec, all_classes=True, adapt=adapt, windowing=windowing, progress=sys.stderr.isatty())
    print(f"  {cache.stem}: {len(ev.predictions)} files, {len(ev.windows)} windows, {time.perf_counter() - t0:.0f} s",
          flush=True)
    from amsnet_lib.atomic import atomic_write_text

    atomic_write_text(cache, ev.windows.to_csv(index=False))
    return ev.windows


def _decide(windows: pd.DataFrame, classes: list[str], scored: list[str], restricted: bool, pooling: str):
    """True and predicted class of every file of ``scored`` classes: window scores (restricted) then pooled."""
    index = allowed_classes(scored, classes) if restricted else None
    cols = [f"p_{c}" for c in classes]
    w = windows[windows["true"].isin(scored)].sort_values(["path", "window"])
    true, pred = [], []
    for _, g in w.groupby("path", sort=False):
        true.append(g["true"].iloc[0])
        pred.append(classes[int(np.argmax(pool(restrict(g[cols].to_numpy(), index), pooling)))])
    return true, pred


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="every k-th file only, about N files (a smoke run)")
    ap.add_argument("--before", action="store_true", help="also the scoring before whole recordings (first 3 s, untrimmed)")
    ap.add_argument("--cache", default="/tmp/amsnet_ccs", help="per-window scores of each evaluation (resumable)")
    ap.add_argument("--out", default=str(OUT), help="table path without suffix (default: %(default)s)")
    args = ap.parse_args(argv)
    rec = ams.Recognizer()  # the shipped model
    classes = list(rec.classes)
    table = ams.load_corpus("ravdess", download=False)
    if args.limit:
        table = table.iloc[:: max(1, len(table) // args.limit)]
    tag = f"_limit{args.limit}" if args.limit else ""
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    default = WindowConfig()
    rows = []
    for scoring, windowing in SCORING.items():
        if scoring.endswith("(before)") and not args.before:
            continue
        key = f"hop{windowing.hop:g}_{windowing.pooling if windowing.pooling == 'first' else 'whole'}_trim{windowing.trim_db}"
        pooling = windowing.pooling if windowing.pooling == "first" else default.pooling
        runs = {(mode, sub): _windows(table, rec, windowing, mode, None if sub == "shared" else FOUR,
                                      cache / f"{key}_{mode}_{sub}{tag}.csv")
                for mode, sub in (("none", "shared"), ("speaker", "shared"), ("speaker", "four"))}
        shared = [c for c in classes if c in set(runs[("none", "shared")]["true"])]
        for name, scored in ((f"{len(shared)} shared", shared), ("4 (anger happiness neutral sadness)", FOUR)):
            for mode in ("none", "speaker"):
                w = runs[(mode, "four" if name.startswith("4") and mode != "none" else "shared")]
                for restricted in (False, True):
                    rows.append({"scoring": scoring, "pooling": pooling, "classes": name, "adapt": mode,
                                 "decision": "restricted (default)" if restricted else "own argmax (--all-classes)",
                                 **_measures(*_decide(w, classes, scored, restricted, pooling), scored)})
    df = pd.DataFrame(rows)
    from amsnet_lib.atomic import atomic_write_text

    out = Path(args.out + tag)
    n_shared = int(df["files"].max())
    note = (f"Shipped model (trained on all of EmoDB) on RAVDESS ({len(table)} files; the {len(table) - n_shared} calm and "
            "surprise ones, which have no EmoDB class, left out). Cross-corpus: the model never saw RAVDESS. UA = mean "
            "recall over the classes scored (chance 16.7 % for six, 25 % for four). Whole-recording default: "
            f"{default}; its pooling was chosen on RAVDESS's six classes as validation data "
            "(results/tables/whole_recordings_validation.md), so these rows, on the same corpus, are no independent test "
            "of that choice. `--adapt speaker`: statistics of each actor's files scored (the six classes' files, or the "
            "four classes' for the four-class rows). `python -m benchmarks.cross_corpus_scoring"
            f"{' --before' if args.before else ''}`")
    atomic_write_text(out.with_suffix(".csv"), df.to_csv(index=False))
    atomic_write_text(out.with_suffix(".md"), "# Scoring over the classes the audio can have: shipped model on RAVDESS\n\n"
                      f"{note}\n\n" + markdown_table(df) + "\n")
    print(df.to_string(index=False))
    print(f"wrote {out.with_suffix('.csv')} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
