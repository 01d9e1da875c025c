#!/usr/bin/env python
"""Cross-corpus table and heat map of the classic baseline (beyond the paper, issue #38 item 4):
ComParE 2016 functionals + linear SVM trained on all of EmoDB and tested on RAVDESS, and the reverse,
over the classes the two share and over the four cross-corpus benchmarks use, with each adaptation.

    python -m scripts.cross_corpus                 # -> results/tables/cross_corpus_classic.{csv,md},
                                                   #    results/figures/cross_corpus_classic_{shared,four}.png

The corpora are found as everywhere (``$AMSNET_EMODB_DIR``, ``$AMSNET_RAVDESS_DIR``, ``./data/<corpus>``;
``--emodb``/``--ravdess`` override). The SVM's complexity is chosen by speaker-grouped cross-validation
inside the training corpus; the test corpus is read once per row. Functionals come from the feature
cache (computed once, about 0.15 s per file).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

import amsnet_lib as ams
from amsnet_lib.config import CLASSIC_MODELS
from amsnet_lib.data.functionals import extract_functionals
from amsnet_lib.paths import REPO_ROOT
from amsnet_lib.report import plotting
from amsnet_lib.report.tables import write_table
from amsnet_lib.train.cross_corpus import ADAPT_MODES, FOUR_CLASSES, classic_cross_corpus, shared_classes

MODEL = "compare-svm"
LABEL = "ComParE 2016 functionals + linear SVM"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--emodb", default=None, help="EmoDB folder (default: as load_corpus finds it)")
    p.add_argument("--ravdess", default=None, help="RAVDESS folder (default: as load_corpus finds it)")
    p.add_argument("--results", default=str(REPO_ROOT / "results"), help="results folder (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=None, help="processes for the functionals (default: all cores)")
    args = p.parse_args(argv)

    corpora = {"emodb": ams.load_corpus("emodb", data_dir=args.emodb, download=False),
               "ravdess": ams.load_corpus("ravdess", data_dir=args.ravdess, download=False)}
    x = {c: extract_functionals(t, CLASSIC_MODELS[MODEL], n_jobs=args.jobs) for c, t in corpora.items()}
    rows = []
    for train, test in (("emodb", "ravdess"), ("ravdess", "emodb")):
        shared = shared_classes(corpora[train].attrs["classes"], corpora[test].attrs["classes"])
        for name, classes in (("shared", shared), ("four", [c for c in shared if c in FOUR_CLASSES])):
            for adapt in ADAPT_MODES:
                s = classic_cross_corpus(corpora[train], x[train], corpora[test], x[test], classes, adapt)
                rows.append({"model": LABEL, "train": train, "test": test, "classes": name, "n_classes": len(classes),
                             "adapt": adapt, "WA (%)": round(s.wa, 2), "UA (%)": round(s.ua, 2),
                             "chance UA (%)": round(100 / len(classes), 2), "n_test": s.n_test,
                             "C": s.chosen["C"], "class_weight": s.chosen["class_weight"],
                             "inner UA (%)": round(100 * s.chosen["inner_ua"], 2)})
                print(f"{train} -> {test}, {name} ({len(classes)} classes), --adapt {adapt}: "
                      f"WA {s.wa:.2f} UA {s.ua:.2f} (C {s.chosen['C']:g}, {s.chosen['class_weight']})", flush=True)
    table = pd.DataFrame(rows)
    results = Path(args.results)
    write_table(table, results / "tables" / "cross_corpus_classic",
                caption="Cross-corpus, the classic baseline: trained on all of one corpus, tested on all of the other",
                notes=["shared: the six classes EmoDB and RAVDESS share (anger, disgust, fear, happiness, sadness, "
                       "neutral; chance UA 16.67); four: anger, happiness, neutral, sadness (chance 25).",
                       "adapt: none = the test corpus standardised with the training corpus's statistics; corpus = each "
                       "corpus with its own; speaker = each speaker with their own (no test label is read).",
                       "C and class weighting chosen by speaker-grouped 5-fold cross-validation inside the training "
                       "corpus (inner UA); the test corpus read once per row.",
                       "Written by scripts/cross_corpus.py."])
    for name in ("shared", "four"):
        part = table[table["classes"] == name]
        plotting.cross_corpus(part, chance=float(part["chance UA (%)"].iloc[0]),
                              title=f"{LABEL}, cross-corpus UA, {name} classes",
                              save=results / "figures" / f"cross_corpus_classic_{name}.png")
    print(f"wrote {results / 'tables' / 'cross_corpus_classic.md'} and its figures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
