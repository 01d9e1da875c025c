"""Turn the files of `benchmarks/gpu_suite.sh` calls into the report's section on the suite's GPU time.

    python -m scripts.diagnostics.gpu_suite_report FOLDER [FOLDER ...] [--out results] [--cpu-store runs]

Each FOLDER is one call's output (env.txt, suite_calls.txt, suite_<n>.txt, gpu_mem.txt,
runs_suite.tgz); the last holds the run store as it stood at the end. Writes:

- ``results/gpu/suite/``: the raw files (logs without progress bars, the last run store, peak GPU
  memory of each call) and ``units.csv`` (one row per training finished on the GPU, with the
  single-thread CPU seconds the committed run store holds for the same fold);
- ``results/tables/gpu_suite.md``: the calls and their wall times, what finished, and, while the
  suite is unfinished, an estimate of its whole time on that GPU (labelled as such).

The estimate: every training of the suite at its measured GPU seconds where it finished on the GPU,
else at its CPU seconds times the GPU/CPU ratio measured on the trainings of its kind that finished
on both (URLM, which did not: from `results/gpu/units.csv`, the AMSNet run of gpu_session.sh),
the fusion heads at the seconds measured there; their sum divided by the processes that ran side by
side. It assumes the processes stay busy to the end and that a training's GPU/CPU ratio does not
depend on its batch size or optimizer, so it is a rough figure, not a bound.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

from amsnet_lib import studies
from amsnet_lib.report import tables
from amsnet_lib.atomic import atomic_write_text
from amsnet_lib.data.features import Features
from amsnet_lib.train.devices import trained_on_cpu
from amsnet_lib.train.units import fusion_units, stage1_units
from amsnet_lib.train.runstore import RunStore


def _log_lines(path: Path) -> list[str]:
    """A call's log without its progress bars' redraws (the last state of the bar kept)."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", path.read_text().replace("\r", "\n"))
    lines = [ln for ln in text.splitlines() if ln.strip() and "leaked semaphore" not in ln and "warnings.warn" not in ln]
    bars = [ln for ln in lines if ln.startswith("trainings:")]
    return [ln for ln in lines if not ln.startswith("trainings:")] + bars[-1:]


def _calls(folder: Path) -> pd.DataFrame:
    rows = []
    for line in (folder / "suite_calls.txt").read_text().splitlines():
        _, t0, t1, rc = line.split()
        rows.append({"call": len(rows) + 1, "wall_s": int(t1) - int(t0), "exit": int(rc)})
    return pd.DataFrame(rows)


def _metrics(root: Path, d: Path) -> dict | None:
    p = root / d / "metrics.json"
    return json.loads(p.read_text()) if p.is_file() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--cpu-store", type=Path, default=ROOT / "runs", help="the committed run store (CPU seconds)")
    ap.add_argument("--bundle", type=Path, default=ROOT / ".dev" / "emodb16.npz",
                    help="the feature bundle the GPU trained from (the suite's run keys)")
    args = ap.parse_args()
    last = args.folders[-1]
    raw = args.out / "gpu" / "suite"
    raw.mkdir(parents=True, exist_ok=True)
    env = (last / "env.txt").read_text().splitlines()
    gpu = env[0].split(",")[0]
    versions = ", ".join(f"{k} {v}" for k, v in zip(("Python", "torch", "numpy", "pandas"), env[2].split()))
    calls = _calls(last)
    calls["processes"] = [int(next(ln for ln in (f / "env.txt").read_text().splitlines() if ln.startswith("workers")).split()[1])
                          for f in args.folders]
    calls["peak_gpu_mib"] = [max((int(v) for v in (f / "gpu_mem.txt").read_text().split()), default=0) for f in args.folders]
    for i, f in enumerate(args.folders, 1):
        atomic_write_text(raw / f"suite_{i}.txt", "\n".join(_log_lines(f / f"suite_{i}.txt")) + "\n")
    shutil.copyfile(last / "env.txt", raw / "env.txt")
    shutil.copyfile(last / "suite_calls.txt", raw / "suite_calls.txt")
    shutil.copyfile(last / "runs_suite.tgz", raw / "runs_suite.tgz")

    feats = Features.load(args.bundle)
    suite = [dataclasses.replace(e, features=feats.config) for e in studies.full_suite("emodb", "full", loso=True)]
    s1, heads = stage1_units(suite, feats.table), fusion_units(suite, feats.table)
    cpu = RunStore(args.cpu_store)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(raw / "runs_suite.tgz") as tar:
            tar.extractall(tmp, filter="data")
        gpu_store = RunStore(tmp)
        for u in s1:
            d = gpu_store.fold_dir(u.kind, u.key, u.seed, u.fold.name).relative_to(tmp)
            g, c = _metrics(Path(tmp), d), _metrics(cpu.root, d)
            on_cpu = c is not None and trained_on_cpu(c)
            rows.append({"run": d.parts[0], "kind": u.kind, "seed": u.seed, "fold": u.fold.name,
                         "gpu_seconds": round(g["seconds"], 1) if g else None,
                         "cpu_seconds": round(c["seconds"], 1) if on_cpu else None})
    units = pd.DataFrame(rows)
    units[units["gpu_seconds"].notna()].to_csv(raw / "units.csv", index=False)
    done = units[units["gpu_seconds"].notna()]
    both = done[done["cpu_seconds"].notna()]
    ratio = (both.groupby("kind")["gpu_seconds"].sum() / both.groupby("kind")["cpu_seconds"].sum()).to_dict()
    earlier = pd.read_csv(ROOT / "results" / "gpu" / "units.csv")
    head_s = float(earlier[earlier["model"] == "amsnet"]["fusion_seconds"].mean())
    if "urlm" not in ratio:  # the AMSNet run of gpu_session.sh: the paper's URLM folds, alone on the GPU with 9 others
        u_gpu = earlier[(earlier["model"] == "urlm")].groupby("fold")["seconds"].mean()
        u_cpu = units[(units["kind"] == "urlm") & units["cpu_seconds"].notna() & units["run"].isin(
            earlier[earlier["model"] == "urlm"]["run"])].groupby("fold")["cpu_seconds"].mean()
        if len(u_cpu):
            ratio["urlm"] = float(u_gpu.reindex(u_cpu.index).sum() / u_cpu.sum())
    est = units["gpu_seconds"].copy()
    todo = est.isna()
    est[todo] = units.loc[todo, "cpu_seconds"] * units.loc[todo, "kind"].map(ratio)
    est = est.fillna(units.assign(e=est).groupby("kind")["e"].transform("mean"))  # folds without CPU seconds
    n_proc = int(calls["processes"].iloc[-1])
    stage1_s, heads_s = float(est.sum()), head_s * len(heads)
    total_wall = int(calls["wall_s"].sum())
    per_kind = units.assign(est=est).groupby("kind").agg(
        trainings=("run", "size"), finished_on_gpu=("gpu_seconds", "count"),
        gpu_seconds_per_fold=("gpu_seconds", "mean"), gpu_cpu_ratio=("kind", lambda k: ratio.get(k.iloc[0], float("nan"))),
        estimated_gpu_seconds=("est", "sum")).round(3).reset_index()

    L = [f"# The whole suite on a GPU ({gpu})", "",
         f"`benchmarks/gpu_suite.sh` on {gpu} ({env[1]} CPU cores; {versions}): every "
         f"training `run_all.sh` does on EmoDB (`amsnet pretrain --fusion`, all studies, leave-one-speaker-out included: "
         f"{len(s1)} stage-1 trainings and {len(heads)} fusion heads) from an empty run store, from a float16 feature "
         "bundle, in calls of at most 10 minutes that resume one another. Raw files: `results/gpu/suite/`.", "",
         tables.markdown_table(calls), "",
         f"- **Measured: {total_wall} s of wall ({total_wall / 60:.1f} min) for {len(done)} of the {len(s1) + len(heads)} "
         f"trainings** ({len(done)} of {len(s1)} stage-1 trainings, the longest first; no fusion head yet). "
         "The suite did not finish within this session's device time; its time on this GPU is not measured."]
    oom = re.findall(r"has ([0-9.]+) GiB memory in use", (raw / "suite_1.txt").read_text())
    if len(calls) > 1 and calls["exit"].iloc[0] == 1 and oom:
        L += [f"- The first call ran {calls['processes'].iloc[0]} processes, as `run_all.sh` then chose from "
              "4.5 GB of GPU memory per process: it ran out of GPU memory after "
              f"{calls['wall_s'].iloc[0]} s (peak {calls['peak_gpu_mib'].iloc[0]} MiB; the largest process held "
              f"{max(map(float, oom)):.2f} GiB, the error in `suite_1.txt` lists each; the first trainings are FRLM with "
              f"512 and 256 BLSTM units). The later calls ran {n_proc}, chosen by hand "
              "after the failure; `amsnet_lib.train.engine` now gives each training 10 GiB's share of a GPU (its Ray task's "
              "`num_gpus`), which packs the same 7 onto an 80 GB GPU, `run_all.sh` and `amsnet pretrain` use it, and an "
              "out-of-memory failure says to give each more (fewer at once)."]
    L += ["", "Per kind (seconds per fold as run side by side; the ratio is GPU seconds over single-thread CPU seconds "
          "of the same folds in the committed run store):", "", tables.markdown_table(per_kind), "",
          f"- **Estimate, not a measurement**: stage 1 {stage1_s / n_proc / 60:.1f} min and the fusion heads "
          f"{heads_s / n_proc / 60:.1f} min ({len(heads)} at {head_s:.1f} s each, the `fusion_seconds` of gpu_session.sh's AMSNet heads), {n_proc} processes side by side: "
          f"about **{(stage1_s + heads_s) / n_proc / 60:.0f} minutes** for the whole suite on this GPU, against the "
          "project's 20-minute target (method in `scripts/diagnostics/gpu_suite_report.py`: perfect packing and one GPU/CPU ratio "
          "per kind, so a rough figure). It replaces the earlier estimate of 8.4 minutes, which assumed 14 processes "
          "(they do not fit an 80 GB GPU) and the paper configuration's seconds per fold for every training.", ""]
    out = args.out / "tables" / "gpu_suite.md"
    atomic_write_text(out, "\n".join(L))
    print("\n".join(L))
    return 0


if __name__ == "__main__":
    sys.exit(main())
