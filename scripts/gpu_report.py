"""Turn the files of one `benchmarks/gpu_session.sh` run into the report's GPU section.

    python scripts/gpu_report.py FOLDER [--out results]

FOLDER holds what gpu_session.sh wrote (env.txt, peephole_gpu.txt, timings.txt, amsnet_paper.txt,
suite.txt, runs_gpu.tgz). Writes, all measured on that machine:

- ``results/gpu/``: the raw files, and ``units.csv`` (one row per finished training: model, BLSTM
  units, fold, seconds, best epoch, test WA/UA);
- ``results/tables/gpu_session.md``: the wall time of the full 5-fold AMSNet run, its per-fold
  table, the peephole/cuDNN step-time ratio, and what the finished trainings say about the whole
  suite (a lower bound, like the CPU one: the paper configuration's seconds per fold for every
  training of that kind; smaller batches and larger BLSTMs cost more).

`run_all.sh --no-train` (notebook 05) puts the section into REPORT.md.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amsnet_lib import report, studies  # noqa: E402
from amsnet_lib._atomic import atomic_write_text  # noqa: E402
from amsnet_lib.training import SINGLE_STAGE, stage1_units  # noqa: E402

RAW = ("env.txt", "peephole_gpu.txt", "timings.txt", "amsnet_paper.txt", "suite.txt", "runs_gpu.tgz")


def _units(store: Path) -> pd.DataFrame:
    rows = []
    for cfg_path in sorted(store.glob("*/config.json")):
        cfg = json.loads(cfg_path.read_text())
        arch = cfg.get("architecture") if isinstance(cfg.get("architecture"), dict) else {}
        train = cfg.get("train") or {}
        for m_path in sorted(cfg_path.parent.glob("seed*/*/metrics.json")):
            m = json.loads(m_path.read_text())
            rows.append({"run": cfg_path.parent.name, "model": cfg.get("model"), "protocol": cfg.get("protocol", ""),
                         "hidden_size": arch.get("hidden_size", ""), "batch_size": train.get("batch_size", ""),
                         "fold": m["fold"], "seconds": round(m["seconds"], 1),
                         "fusion_seconds": round(m["fusion_seconds"], 1) if "fusion_seconds" in m else "",
                         "best_epoch": m.get("best_epoch"), "wa": round(100 * m["wa"], 2), "ua": round(100 * m["ua"], 2)})
    return pd.DataFrame(rows)


def _stamps(path: Path) -> dict[str, int]:
    out = {}
    for line in path.read_text().splitlines():
        name, _, sec = line.partition(" ")
        out[name] = int(sec)
    return out


def _suite_bound(units: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Per kind: suite trainings, measured seconds per fold (paper configuration, as run side by side)."""
    suite = studies.full_suite("emodb", "full")
    s1 = stage1_units(suite, _emodb_table())  # counted as REPORT.md's CPU table counts them
    fusion_folds = 0
    for exp in suite:
        if exp.model not in SINGLE_STAGE:
            fusion_folds += len(exp.seeds) * (10 if exp.protocol == "loso" else exp.n_folds)
    rows = []
    paper = units[(units["protocol"] == "paper") & (units["batch_size"].astype(str) == "256")]
    for kind in ("frlm", "urlm", "early"):
        n = sum(u.kind == kind for u in s1)
        m = paper[(paper["model"] == kind) & (paper["hidden_size"].astype(str).isin(["128", ""]))]
        rows.append({"kind": kind, "trainings": n, "measured_folds": len(m),
                     "seconds_per_fold": round(float(m["seconds"].mean()), 1) if len(m) else float("nan")})
    return pd.DataFrame(rows), fusion_folds


def _emodb_table() -> pd.DataFrame:
    from amsnet_lib.corpora import load_corpus

    return load_corpus("emodb", download=False)


def _elapsed(text: str, bar: str) -> float:
    """Seconds of the last tqdm line of ``bar`` ("amsnet paper: 100%|...| 5/5 [00:34<00:00, ...")."""
    line = [ln for ln in text.replace("\r", "\n").splitlines() if ln.startswith(bar) and "[" in ln][-1]
    mm, ss = line.split("[", 1)[1].split("<", 1)[0].split(":")[-2:]
    return 60 * int(mm) + int(ss)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--workers", type=int, default=10, help="processes of the AMSNet run (gpu_session.sh WORKERS)")
    args = ap.parse_args()
    raw = args.out / "gpu"
    raw.mkdir(parents=True, exist_ok=True)
    for name in RAW:
        src = args.folder / name
        if not src.is_file():
            continue
        if name.endswith(".txt"):  # tqdm's cursor moves and blank lines out; the measured lines stay
            text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", src.read_text().replace("\r", "\n"))
            atomic_write_text(raw / name, "\n".join(ln for ln in text.splitlines() if ln.strip()) + "\n")
        else:
            shutil.copyfile(src, raw / name)
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(raw / "runs_gpu.tgz") as tar:
            tar.extractall(tmp, filter="data")
        store = next(p for p in Path(tmp).iterdir() if p.is_dir())
        units = _units(store)
    units.to_csv(raw / "units.csv", index=False)

    env = (raw / "env.txt").read_text().splitlines()
    gpu = env[1].split(",")[0] if len(env) > 1 else "GPU"
    stamps = _stamps(raw / "timings.txt")
    amsnet_s = stamps["amsnet_end"] - stamps["amsnet_start"]
    paper_lines = [ln for ln in (raw / "amsnet_paper.txt").read_text().splitlines()
                   if ln.startswith(("seed", "   0", "      mean", "mean WA"))]
    amsnet = units[units["model"] == "amsnet"]
    peephole = [ln.strip() for ln in (raw / "peephole_gpu.txt").read_text().splitlines() if ln.startswith("B=")]
    bound, fusion_folds = _suite_bound(units)
    workers = args.workers + 4
    stage1 = float((bound["trainings"] * bound["seconds_per_fold"]).sum()) / workers
    # the fusion phase as the AMSNet run measured it (branch weights read, embeddings, head), per fold
    fusion_per_fold = _elapsed((raw / "amsnet_paper.txt").read_text(), "amsnet paper:") / max(len(amsnet), 1)
    stage2 = fusion_folds * fusion_per_fold
    suite_s = stamps.get("suite_end", 0) - stamps.get("suite_start", 0)
    finished_in_suite = len(units) - len(amsnet) - 10  # the AMSNet run's 10 branch folds came first

    versions = dict(zip(("Python", "torch", "numpy", "pandas"), env[3].split()[:4])) if len(env) > 3 else {}
    L = [f"# Measured on a GPU ({gpu})", "",
         f"One session of `benchmarks/gpu_session.sh` on {gpu} ({env[2] if len(env) > 2 else '?'} CPU cores; "
         f"{', '.join(f'{k} {v}' for k, v in versions.items())}), from a feature bundle written here by "
         "`amsnet features --save --precision float16` (the GPU machine has no openSMILE or librosa; the features are "
         "rounded to float16 for the transfer, so these accuracies are a replication on slightly different inputs and "
         "hardware, kept apart from the CPU run store). Raw files: `results/gpu/`.", "",
         f"- **Full 5-fold AMSNet run `[paper]` from nothing (both branches and the fusion heads): {amsnet_s} s wall "
         f"({amsnet_s / 60:.1f} min)**, the 10 branch folds in {args.workers} processes sharing the GPU, then the 5 fusion "
         "heads in one process (`amsnet train --model amsnet --workers 10 --device cuda`).",
         "", "```", *paper_lines, "```", "",
         "- Peephole BLSTM training step (forward + backward, batch 256, 300 frames) vs cuDNN `nn.LSTM` of the same "
         "size, same run (`bench_peephole.py --device cuda`):",
         "", "```", *peephole, "```", "",
         "  The peephole recurrence is a Python loop of ~16 small kernels per time step (launch-bound on a GPU, where "
         "cuDNN fuses the whole sequence); the 2x target holds on the CPU (results/benchmarks.md), not on this GPU.",
         f"- The whole suite: not run to the end on the GPU. In the {suite_s} s left after the AMSNet run, "
         f"`amsnet pretrain` ({workers} processes) finished {finished_in_suite} stage-1 trainings (the longest first: "
         "hidden 512 and 256, early fusion). Lower bound for the suite from the measured seconds per fold of the paper "
         f"configuration (run {args.workers}-{workers} side by side, so the bound divides by {workers}):", "",
         report.markdown_table(bound), "",
         f"  Stage 1: at least {stage1 / 60:.1f} min; the {fusion_folds} fusion-head folds, one after another at "
         f"{fusion_per_fold:.1f} s each as measured: {stage2 / 60:.1f} min; together at least "
         f"{(stage1 + stage2) / 60:.1f} min against the project's 20-min target on one H100 (smaller batches of Fig. 6 "
         "and larger BLSTMs of Fig. 7 cost more per fold, so the real figure is higher).", ""]
    per_kind = units[units["model"] != "amsnet"].groupby(["model", "hidden_size"])["seconds"].agg(["count", "mean"]).round(1)
    L += ["Seconds per finished training on the GPU (side by side with the others):", "",
          report.markdown_table(per_kind.reset_index()), ""]
    out = args.out / "tables" / "gpu_session.md"
    atomic_write_text(out, "\n".join(L))
    print("\n".join(L))
    print(f"wrote {out} and {raw}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
