"""Record `benchmarks/gpu_studies.sh` sessions: raw files into ``results/gpu/studies/``, a table of
what they trained into ``results/tables/gpu_studies.md`` (the report includes it).

    python -m scripts.diagnostics.gpu_studies_report SESSION_FOLDER [SESSION_FOLDER ...] [--out results]

Each SESSION_FOLDER is what one call of gpu_studies.sh wrote (env.txt, timings.txt, <n>_<study>.txt,
runs.tgz). Sessions already recorded under ``results/gpu/studies/`` are kept, so the table covers
every session so far; a folder named again replaces its record. Joining the finished runs to the
run store is a separate, deliberate step (unpack runs.tgz into ``runs/``): the table says which
experiments a session finished whole (only those are worth joining: a fusion fold needs its branch
weights, which come back only with KEEP_WEIGHTS). A tarball that came back split is joined again.
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

ROOT = Path(__file__).resolve().parents[1]

from amsnet_lib.atomic import atomic_path, atomic_write_text


def _clean(text: str) -> str:
    """tqdm's cursor moves and per-epoch lines out; the measured lines stay."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text.replace("\r", "\n"))
    return "\n".join(ln for ln in text.splitlines() if ln.strip()) + "\n"


def record(src: Path, dst: Path) -> None:
    """Copy a session folder to ``dst``: logs cleaned, a tarball that came back split
    (``runs.tgz.part-*``, gpu_studies.sh's SPLIT_MB) joined again into ``runs.tgz``."""
    dst.mkdir(parents=True, exist_ok=True)
    parts = sorted(src.glob("runs.tgz.part-*"))
    for f in sorted(src.iterdir()):
        if f.name.startswith(".") or f in parts:
            continue
        if f.suffix == ".txt":
            atomic_write_text(dst / f.name, _clean(f.read_text()))
        else:
            shutil.copyfile(f, dst / f.name)
    if parts:
        with atomic_path(dst / "runs.tgz") as tmp, open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out)


def _runs(tgz: Path) -> list[dict]:
    """One row per run of the tarball: model, what it varies, finished folds, mean WA/UA, seconds."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(tgz) as tar:
            tar.extractall(tmp, filter="data")
        for cfg_path in sorted(Path(tmp).glob("*/config.json")):
            cfg = json.loads(cfg_path.read_text())
            train = cfg.get("train") or {}
            arch = cfg.get("architecture") if isinstance(cfg.get("architecture"), dict) else {}
            ms = [json.loads(p.read_text()) for p in sorted(cfg_path.parent.glob("seed*/*/metrics.json"))]
            if not ms:
                continue
            rows.append({
                "run": cfg_path.parent.name, "model": cfg.get("model"),
                "optimizer": train.get("optimizer", ""), "lr": train.get("lr", ""), "batch": train.get("batch_size", ""),
                "hidden": arch.get("hidden_size", ""), "folds": len(ms),
                "wa": sum(m["wa"] for m in ms) / len(ms) * 100, "ua": sum(m["ua"] for m in ms) / len(ms) * 100,
                "seconds": sum(m.get("fusion_seconds", m["seconds"]) for m in ms),
                "device": ms[0].get("device", "?"), "precision": ms[0].get("feature_precision", "?"),
            })
    return rows


def _timings(path: Path) -> list[tuple[str, str]]:
    """(group, wall time or why it did not run) from timings.txt."""
    starts, out = {}, []
    for line in path.read_text().splitlines():
        if line.startswith("start "):
            name, sec = line[6:].rsplit(" ", 1)
            starts[name] = int(sec)
        elif line.startswith("end "):
            name, sec = line[4:].rsplit(" ", 1)
            out.append((name, f"{int(sec) - starts.get(name, 0)} s"))
        elif ": not started" in line:
            name, why = line.split(": ", 1)
            out.append((name, why))
    return out


def table(studies_dir: Path) -> str:
    L = ["# GPU sessions that trained studies (`benchmarks/gpu_studies.sh`)", "",
         "Each call of the script (one folder of `results/gpu/studies/`): study groups in priority order, each an `amsnet pretrain --fusion` (branches, then fusion "
         "heads) cut at its deadline. The runs carry `device` and `feature_precision` in their "
         "`metrics.json` (float16: the feature bundle was rounded to fit the transfer limit). The runs of an experiment "
         "finished whole (both branches and the fusion heads on every fold) joined the committed run store, and the "
         "report's study tables name the device of every row; the others are kept here as a record only (a fusion "
         "needs its branches' weights, which stay on the GPU machine). "
         f"Raw files: `results/gpu/studies/`.", ""]
    for d in sorted(p for p in studies_dir.iterdir() if p.is_dir()):
        env = (d / "env.txt").read_text().splitlines() if (d / "env.txt").is_file() else []
        gpu = env[0].split(",")[0] if env else "?"
        versions = env[2].split() if len(env) > 2 else []
        L += [f"## `{d.name}`: {gpu}", "",
              f"{env[1] if len(env) > 1 else '?'} CPU cores" + (f"; Python {versions[0]}, torch {versions[1]}" if len(versions) > 1 else ""), ""]
        if (d / "timings.txt").is_file():
            L += ["| study group | wall time |", "|---|---|"] + [f"| `{g}` | {t} |" for g, t in _timings(d / "timings.txt")] + [""]
        rows = _runs(d / "runs.tgz") if (d / "runs.tgz").is_file() else []
        if rows:
            L += ["Runs it added (folds finished in this call; `seconds`: training time summed over them, a fusion "
                  "run's own head only; processes shared the GPU):", "",
                  "| run | model | optimizer | lr | batch | BLSTM units | folds | WA (%) | UA (%) | seconds | device | features |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
            L += [f"| {r['run']} | {r['model']} | {r['optimizer']} | {r['lr']:g} | {r['batch']} | {r['hidden']} | {r['folds']} | "
                  f"{r['wa']:.2f} | {r['ua']:.2f} | {r['seconds']:.0f} | {r['device']} | {r['precision']} |" for r in rows]
            L += [""]
    return "\n".join(L)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", type=Path, help="gpu_studies.sh output folders (none: rebuild the table)")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--names", nargs="*", default=None, help="a name per folder (default: the folder's name)")
    args = ap.parse_args()
    studies_dir = args.out / "gpu" / "studies"
    names = args.names or [f.name for f in args.folders]
    if len(names) != len(args.folders):
        ap.error("--names: one per folder")
    for f, n in zip(args.folders, names):
        record(f, studies_dir / n)
    if not studies_dir.is_dir():
        print(f"nothing recorded under {studies_dir}", file=sys.stderr)
        return 1
    atomic_write_text(args.out / "tables" / "gpu_studies.md", table(studies_dir) + "\n")
    print(f"wrote {args.out / 'tables' / 'gpu_studies.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
