"""Cold and warm feature extraction of a whole corpus, and their ratio.

Cold: an empty cache, every utterance decoded and both streams computed (all cores).
Warm: the same call again, everything read from the cache.
Also the corpus load itself, first and again: EmoDB's first load in a process checks every file
against its manifest (size and SHA-256), a later one only the folder's listing.

    python -m benchmarks.bench_features [--corpus emodb] [--data-dir DIR] [--jobs N] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from amsnet_lib.config import FeatureConfig
from amsnet_lib.data.corpora import load_corpus
from amsnet_lib.data.features import extract_features


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="emodb")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--json", default=None, help="also write the figures here (run_benchmarks.sh puts them in the report)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    table = load_corpus(args.corpus, data_dir=args.data_dir, download=False)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_corpus(args.corpus, data_dir=args.data_dir, download=False)
    t_reload = time.perf_counter() - t0
    config = FeatureConfig.for_corpus(table.attrs.get("corpus", ""))
    audio_s = float(table["duration"].sum())
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        cold = extract_features(table, config, cache_dir=cache, n_jobs=args.jobs, progress=False)
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = extract_features(table, config, cache_dir=cache, n_jobs=args.jobs, progress=False)
        t_warm = time.perf_counter() - t0
    jobs = args.jobs or os.cpu_count()
    print(f"corpus {args.corpus}: {len(table)} utterances, {audio_s / 60:.1f} min of audio, {jobs} worker processes")
    print(f"corpus load: {t_load:.3f} s first (files verified), {t_reload:.3f} s again")
    print(f"cold extraction: {t_cold:.2f} s ({audio_s / t_cold:.1f}x real time, cache hits {cold.cache_hits})")
    print(f"warm extraction: {t_warm:.2f} s (cache hits {warm.cache_hits})")
    print(f"warm / cold: {100 * t_warm / t_cold:.2f} % (target < 5 %)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"corpus": args.corpus, "utterances": len(table), "audio_seconds": audio_s, "jobs": jobs,
                       "load_seconds": t_load, "reload_seconds": t_reload, "cold_seconds": t_cold, "warm_seconds": t_warm, "warm_hits": warm.cache_hits}, f, indent=1)


if __name__ == "__main__":
    main()
