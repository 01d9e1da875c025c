"""Whole recordings (issue #38 item 3): the pooling of window scores and the silence trimming, chosen on VALIDATION data.

The shipped model (trained on all of EmoDB) is scored on RAVDESS, which it never saw, over the six classes
the two corpora share (anger disgust fear happiness sadness neutral; scores renormalised over them, as
``amsnet evaluate`` does by default). RAVDESS is the held-out VALIDATION corpus of these choices: EmoDB is
the model's training data, so it cannot choose anything, and no figure here is a test result. Two sets:

  files       RAVDESS's 1056 utterances of those classes as they are (about 3.5 s, up to a second of
              silence first): trimming at 40 dB against none, every pooling rule.
  recordings  longer recordings made from them: the utterances of one actor, emotion and intensity
              (4 each: two statements, two repetitions) concatenated in file-name order, silences
              kept (264 recordings of 12-16 s); trimmed at 40 dB, every pooling rule.

Windows are the model's 3 s every ``WindowConfig.hop`` (1 s); each window is scored once (public API:
``Recognizer.predict(..., return_windows=True)``) and every pooling rule is applied to the same window
scores (:func:`amsnet_lib.serve.windows.pool`), so the rules differ only in the pooling.

    python -m benchmarks.whole_recordings [--cache /tmp/amsnet_whole] [--limit N]

Writes results/tables/whole_recordings_validation.{csv,md}. The per-window scores are kept in ``--cache``
(resumable; never committed). ``--limit`` scores only the first N items of each set (a smoke run).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

import amsnet_lib as ams
from amsnet_lib.config import POOLINGS, WindowConfig
from amsnet_lib.data.corpora.labels import match_labels
from amsnet_lib.metrics import paired_bootstrap, unweighted_accuracy, weighted_accuracy
from amsnet_lib.report.tables import markdown_table
from amsnet_lib.serve.windows import allowed_classes, pool, restrict

OUT = ROOT / "results" / "tables" / "whole_recordings_validation"
TRIMS = {"40 dB": 40.0, "none": None}


def _shared(table: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """The utterances whose label is a class of the model, with ``true`` (the model's name)."""
    to_class = match_labels(table["label"], classes)
    out = table.assign(true=table["label"].map(to_class))
    return out[out["true"].notna()].reset_index(drop=True)


def _recordings(table: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """One recording per (actor, emotion, intensity): the utterances concatenated (16 kHz, 16-bit WAV)."""
    import soundfile as sf

    from amsnet_lib.atomic import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for (speaker, true, intensity), g in table.groupby(["speaker", "true", "intensity"], sort=True):
        path = folder / f"{speaker}_{true}_{intensity}.wav"
        if not path.is_file():
            audio = np.concatenate([ams.load_audio(p, sample_rate=16000) for p in sorted(g["path"])])
            with atomic_path(path) as tmp:
                sf.write(tmp, audio, 16000, subtype="PCM_16", format="WAV")
        rows.append({"path": str(path), "speaker": speaker, "true": true, "parts": len(g)})
    return pd.DataFrame(rows)


def _window_scores(rec, items: pd.DataFrame, windowing: WindowConfig, cache: Path) -> pd.DataFrame:
    """Per-window probabilities over all the model's classes (cached as CSV)."""
    if cache.is_file():
        return pd.read_csv(cache)
    t0 = time.perf_counter()
    rec.windowing = windowing
    files, windows = rec.predict(items[["path"]], progress=sys.stderr.isatty(), return_windows=True)
    failed = files[files["error"] != ""]
    if len(failed):
        raise SystemExit(f"{len(failed)} file(s) failed, e.g. {failed.iloc[0]['path']}: {failed.iloc[0]['error']}")
    print(f"  {len(files)} files, {len(windows)} windows in {time.perf_counter() - t0:.0f} s", flush=True)
    from amsnet_lib.atomic import atomic_write_text

    atomic_write_text(cache, windows.to_csv(index=False))
    return windows


def _predict(windows: pd.DataFrame, items: pd.DataFrame, classes: list[str], scored: list[str], pooling: str):
    """Truth and prediction (class indices) of every item: its windows' scores restricted to ``scored``, then pooled."""
    index = allowed_classes(scored, classes)
    cols = [f"p_{c}" for c in classes]
    by_path = {p: g[cols].to_numpy() for p, g in windows.sort_values(["path", "window"]).groupby("path", sort=False)}
    pred = np.asarray([int(np.argmax(pool(restrict(by_path[p], index), pooling))) for p in items["path"]])
    idx = {c: i for i, c in enumerate(classes)}
    return items["true"].map(idx).to_numpy(), pred


def _score(y, pred, n_classes: int, reference=None) -> dict:
    """WA/UA (%), and UA's difference from ``reference`` predictions with its paired-bootstrap 95 % interval."""
    out = {"WA": round(100 * weighted_accuracy(y, pred), 2), "UA": round(100 * unweighted_accuracy(y, pred, n_classes), 2)}
    if reference is not None:
        d = paired_bootstrap(y, pred, reference, n_classes, n_resamples=2000)["ua"]
        out.update({"UA - reference": round(d["delta"], 2), "95 % CI": f"[{d['low']:.2f}, {d['high']:.2f}]"})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default="/tmp/amsnet_whole", help="per-window scores and the concatenated recordings")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N items of each set (smoke run)")
    ap.add_argument("--out", default=str(OUT), help="table path without suffix (default: %(default)s)")
    args = ap.parse_args(argv)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rec = ams.Recognizer()  # the shipped model
    classes = list(rec.classes)
    files = _shared(ams.load_corpus("ravdess", download=False), classes)
    scored = [c for c in classes if c in set(files["true"])]
    recordings = _recordings(files, cache / "recordings")
    if args.limit:
        files, recordings = files.iloc[:: max(1, len(files) // args.limit)], recordings.iloc[:: max(1, len(recordings) // args.limit)]
    tag = f"_limit{args.limit}" if args.limit else ""
    base = WindowConfig()
    sets = [("files", files, trim) for trim in TRIMS] + [("recordings", recordings, "40 dB")]
    rows, reference = [], {}
    for name, items, trim in sets:
        windowing = dataclasses.replace(base, trim_db=TRIMS[trim])
        print(f"{name}, trimming {trim}: {len(items)} items", flush=True)
        windows = _window_scores(rec, items, windowing, cache / f"{name}_trim{TRIMS[trim]}{tag}.csv")
        n_windows = windows.groupby("path").size()
        # how varied the model's window decisions are (over the classes scored): pooling only matters if they vary
        top = windows[[f"p_{c}" for c in scored]].idxmax(axis=1).str[2:].value_counts(normalize=True)
        for pooling in POOLINGS:
            y, pred = _predict(windows, items, classes, scored, pooling)
            # the reference of each set: its first row (trimmed at 40 dB, mean of probabilities)
            reference.setdefault(name, pred)
            rows.append({"set": name, "trim": trim, "pooling": pooling, "items": len(items),
                         "multi-window items": int((n_windows > 1).sum()), "windows": len(windows),
                         "windows' commonest label": f"{top.index[0]} {100 * top.iloc[0]:.0f} %",
                         **_score(y, pred, len(classes), reference[name])})
    table = pd.DataFrame(rows)
    from amsnet_lib.atomic import atomic_write_text

    out = Path(args.out + tag)
    note = (f"Shipped model (EmoDB), RAVDESS as VALIDATION data (never trained on; no test figure), {len(scored)} shared "
            f"classes ({', '.join(scored)}), scores renormalised over them; window {rec.config.duration:g} s, hop "
            f"{base.hop:g} s. UA: mean recall over the {len(scored)} classes (chance {100 / len(scored):.1f} %); "
            "UA - reference: the difference from the set's first row (40 dB, mean_proba) on the same items, with its "
            "paired-bootstrap 95 % interval (2000 resamples). "
            "`python -m benchmarks.whole_recordings`")
    atomic_write_text(out.with_suffix(".csv"), table.to_csv(index=False))
    atomic_write_text(out.with_suffix(".md"), f"# Whole recordings: pooling and trimming on validation data\n\n{note}\n\n"
                      + markdown_table(table) + "\n")
    print(table.to_string(index=False))
    print(f"wrote {out.with_suffix('.csv')} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
