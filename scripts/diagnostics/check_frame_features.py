#!/usr/bin/env python
"""Are the frame-level features informative? A linear reference on the FRLM input.

    python -m scripts.diagnostics.check_frame_features                 # EmoDB from $AMSNET_EMODB_DIR / ../shared
    python -m scripts.diagnostics.check_frame_features --protocols paper

FRLM (the attention BLSTM over IS10 frames) lands far below the paper's Table 5 on our folds.
This script separates "the features are poor" from "the BLSTM does not learn from them": it
summarises each utterance's valid frames (the same cached, q-frame arrays FRLM reads) by their
mean, standard deviation and 10th/50th/90th percentiles per dimension (76 x 5 = 380 values),
then fits an L2 logistic regression on each fold's training part, its strength chosen by a
stratified 3-fold search inside that training part (the test fold is only predicted). Same folds
(``protocols.make_folds``, split seed 0) and the same WA / UA as the engine.

Two normalisations:
  - ``corpus``: standardised with the statistics of the fold's training part (as the engine);
  - ``speaker``: each speaker's utterances standardised with that speaker's own statistics
    (speaker normalisation, common in SER; it uses the unlabelled utterances of the test speaker,
    so it assumes the speaker is known at test time).

This is a diagnostic, not a model of the paper. Writes ``results/tables/frame_feature_check.csv``
and ``.md``; prints the table.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

from amsnet_lib.atomic import atomic_write_text
from amsnet_lib.data.corpora import load_corpus
from amsnet_lib.data.features import extract_features
from amsnet_lib.metrics import unweighted_accuracy, weighted_accuracy
from amsnet_lib.data.protocols import make_folds
from amsnet_lib.studies import experiment

PERCENTILES = (10, 50, 90)


def utterance_statistics(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """frames (N, q, D), mask (N, q) -> (N, 5·D): mean, std, 10/50/90th percentile over valid frames."""
    rows = []
    for x, m in zip(frames, mask):
        v = x[m]
        rows.append(np.concatenate([v.mean(0), v.std(0), np.percentile(v, PERCENTILES, axis=0).ravel()]))
    return np.asarray(rows, dtype=np.float64)


def speaker_standardised(x: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for s in np.unique(speakers):
        i = speakers == s
        out[i] = (x[i] - x[i].mean(0)) / (x[i].std(0) + 1e-6)
    return out


def evaluate(x: np.ndarray, y: np.ndarray, folds, n_classes: int, seed: int = 0) -> tuple[float, float, float, float]:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    wa, ua = [], []
    for fold in folds:
        clf = make_pipeline(
            StandardScaler(),
            LogisticRegressionCV(Cs=np.logspace(-3, 1, 9), cv=StratifiedKFold(3, shuffle=True, random_state=seed),
                                 max_iter=5000),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(x[fold.train], y[fold.train])
        pred = clf.predict(x[fold.test])
        wa.append(100 * weighted_accuracy(y[fold.test], pred))
        ua.append(100 * unweighted_accuracy(y[fold.test], pred, n_classes))
    return float(np.mean(wa)), float(np.mean(ua)), float(np.std(wa)), float(np.std(ua))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="EmoDB root (default: $AMSNET_EMODB_DIR or ../shared/data/emodb)")
    ap.add_argument("--protocols", nargs="+", default=["paper", "loso"], choices=["paper", "loso"])
    ap.add_argument("--out", default=str(ROOT / "results" / "tables" / "frame_feature_check"),
                    help="output path without extension (.csv and .md are written)")
    a = ap.parse_args(argv)

    table = load_corpus("emodb", a.data_dir, download=False)
    exp = experiment("emodb", "frlm", "paper", "full")
    feats = extract_features(table, exp.features)
    x = utterance_statistics(feats.frames, feats.mask)
    speakers = table["speaker"].astype(str).to_numpy()
    inputs = {"corpus": x, "speaker": speaker_standardised(x, speakers)}
    rows = []
    for protocol in a.protocols:
        folds = make_folds(table, protocol, split_seed=exp.split_seed)
        for norm, xx in inputs.items():
            wa, ua, wa_std, ua_std = evaluate(xx, feats.labels, folds, len(feats.classes))
            rows.append({"corpus": "emodb", "protocol": protocol, "normalisation": norm,
                         "model": "IS10 frame statistics + logistic regression", "n_folds": len(folds),
                         "wa": round(wa, 2), "ua": round(ua, 2), "wa_std": round(wa_std, 2), "ua_std": round(ua_std, 2)})
            print(f"[{protocol}] {norm:8s} WA {wa:6.2f} ± {wa_std:5.2f}  UA {ua:6.2f} ± {ua_std:5.2f}", flush=True)
    df = pd.DataFrame(rows)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out.with_suffix(".csv"), df.to_csv(index=False))
    lines = [
        "# Frame-feature check: IS10 frame statistics + logistic regression (diagnostic, not in the paper)",
        "",
        "Written by `scripts/diagnostics/check_frame_features.py` (see its docstring): the FRLM input arrays summarised per "
        "utterance (mean, std, 10/50/90th percentiles of each of the 76 dimensions over valid frames), L2 logistic "
        "regression with its strength chosen inside each fold's training part. WA / UA in %, mean ± std over folds; "
        "`[paper]` = stratified random 5-fold (speaker-dependent), `[loso]` = leave-one-speaker-out. `speaker` "
        "normalisation standardises each speaker with their own statistics (the test speaker's unlabelled "
        "utterances included).",
        "",
        "| protocol | normalisation | WA | UA |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| [{r['protocol']}] | {r['normalisation']} | {r['wa']:.2f} ± {r['wa_std']:.2f} | "
                     f"{r['ua']:.2f} ± {r['ua_std']:.2f} |")
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
