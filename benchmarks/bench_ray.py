"""What Ray costs the engine on this machine, and 5-fold AMSNet through Ray against the serial path.

Measured in one run (`amsnet_lib.train.engine`, a local Ray of ``--cpus`` CPUs on 127.0.0.1):

  start-up    ``ray.init`` of a local Ray as ``amsnet pretrain`` starts it, and its shutdown
              (median of ``--starts``; each a fresh Ray)
  first task  a task's round trip on a fresh worker that imports amsnet's engine (torch included),
              as a unit's first task pays it
  per task    round trip of an empty task declaring 1 CPU, one after another (median of ``--tasks``),
              and the throughput of ``--tasks`` empty tasks submitted at once
  object store ``ray.put`` of EmoDB's features (the one copy every task reads)
  suite       every unit of ``experiment("emodb", "amsnet", "paper", PROFILE)`` (FRLM, URLM and the
              head on 5 folds), serially in this process (``EngineConfig(serial=True)``) and as Ray
              tasks, each into an empty run store, wall time of each, and whether the two stores
              hold the same numbers. ``--epochs N`` caps every stage at N epochs (a reduced
              configuration when the full one does not fit the time).

    python -m benchmarks.bench_ray                             # quick profile suite
    python -m benchmarks.bench_ray --profile full --epochs 4   # full-size models, 4 epochs a stage

Prints its lines; ``run_benchmarks.sh`` keeps them in results/benchmarks_ray.txt for the report.
Needs EmoDB (``AMSNET_EMODB_DIR``) for the object-store and suite lines; the feature cache
(``AMSNET_CACHE_DIR``) makes them cheap.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path



def _load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def _import_engine() -> int:
    import amsnet_lib.train.engine  # noqa: F401  (what a unit's task imports first)

    return os.getpid()


def _noop() -> None:
    return None


def startup(cpus: int, starts: int) -> str:
    import ray

    from amsnet_lib.train.engine import EngineConfig, ray_session

    up, down = [], []
    for _ in range(starts):
        t0 = time.perf_counter()
        session = ray_session(EngineConfig(num_cpus=cpus))
        session.__enter__()
        up.append(time.perf_counter() - t0)
        assert ray.is_initialized()
        t0 = time.perf_counter()
        session.__exit__(None, None, None)
        down.append(time.perf_counter() - t0)
    return (f"start-up of a local Ray ({cpus} CPUs, 127.0.0.1, no dashboard): median {statistics.median(up):.2f} s "
            f"(runs {', '.join(f'{t:.2f}' for t in up)}); shutdown {statistics.median(down):.2f} s")


def overhead(cpus: int, tasks: int, features) -> list[str]:
    import ray

    from amsnet_lib.train.engine import EngineConfig, ray_session

    lines = []
    with ray_session(EngineConfig(num_cpus=cpus)):
        t0 = time.perf_counter()
        ray.get(ray.remote(num_cpus=1)(_import_engine).remote())
        lines.append(f"first task (a fresh worker imports amsnet_lib.train.engine and torch): {time.perf_counter() - t0:.2f} s")
        noop = ray.remote(num_cpus=1)(_noop)
        ray.get([noop.remote() for _ in range(2 * cpus)])  # every worker warm
        trips = []
        for _ in range(tasks):
            t0 = time.perf_counter()
            ray.get(noop.remote())
            trips.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ray.get([noop.remote() for _ in range(tasks)])
        wall = time.perf_counter() - t0
        q = statistics.quantiles(trips, n=20)
        lines.append(f"per task, empty, 1 CPU declared: round trip median {1e3 * statistics.median(trips):.1f} ms "
                     f"(p95 {1e3 * q[-1]:.1f} ms, {tasks} one after another); {tasks} at once: {tasks / wall:.0f} tasks/s")
        if features is not None:
            nbytes = features.frames.nbytes + features.mask.nbytes + features.spec.nbytes
            t0 = time.perf_counter()
            ray.put(features)  # the reference is dropped at once: only the copy into the store is timed
            put = time.perf_counter() - t0
            lines.append(f"ray.put of EmoDB's features ({len(features)} utterances, {nbytes / 1e6:.0f} MB of arrays): {put:.2f} s, once per run")
    return lines


def suite(cpus: int, profile: str, epochs: int | None, features) -> list[str]:
    from amsnet_lib.train.engine import EngineConfig, run_units
    from amsnet_lib.studies import experiment
    from amsnet_lib.train.units import fusion_units, stage1_units

    exp = dataclasses.replace(experiment("emodb", "amsnet", "paper", profile), features=features.config)
    if epochs:
        cap = {f: dataclasses.replace(getattr(exp, f), epochs=min(epochs, getattr(exp, f).epochs))
               for f in ("branch_train", "fusion_train", "frlm_train") if getattr(exp, f) is not None}
        exp = dataclasses.replace(exp, **cap)
    units = stage1_units([exp], features.table) + fusion_units([exp], features.table)
    walls, stores = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        for name, engine in (("serial", EngineConfig(serial=True)), ("ray", EngineConfig(num_cpus=cpus))):
            stores[name] = Path(tmp) / name
            load = _load()
            t0 = time.perf_counter()
            n = run_units(units, features, stores[name], device="cpu", engine=engine, progress=False)
            walls[name] = (time.perf_counter() - t0, n, load, _load())
        same = _same_numbers(stores["serial"], stores["ray"])
    what = f"profile {profile}" + (f", every stage capped at {epochs} epochs" if epochs else "")
    s, r = walls["serial"], walls["ray"]
    return [f"5-fold AMSNet on EmoDB ({what}; {s[1]} units: FRLM, URLM, head x 5 folds), same run: "
            f"serial in process {s[0]:.1f} s (load {s[2]} -> {s[3]}) | Ray, {cpus} CPUs, 1 thread a task, Ray's "
            f"start-up included {r[0]:.1f} s (load {r[2]} -> {r[3]}) | serial / Ray {s[0] / r[0]:.2f}x | "
            f"same numbers in both run stores: {'yes' if same else 'NO'}"]


def _same_numbers(a: Path, b: Path) -> bool:
    import json

    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    if fa != sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()):
        return False
    for rel in fa:
        x, y = (a / rel), (b / rel)
        if rel.name == "metrics.json":
            drop = ("seconds", "fusion_seconds")
            if {k: v for k, v in json.loads(x.read_text()).items() if k not in drop} != \
               {k: v for k, v in json.loads(y.read_text()).items() if k not in drop}:
                return False
        elif rel.name in ("curves.csv", "predictions.csv") and x.read_bytes() != y.read_bytes():
            return False
    return True


def _features():
    from amsnet_lib.config import FeatureConfig
    from amsnet_lib.data.corpora import load_corpus
    from amsnet_lib.data.features import extract_features

    try:
        table = load_corpus("emodb", download=False)
    except Exception as e:  # no EmoDB here: the lines that need it are left out, and say so
        print(f"EmoDB not available ({e}): object-store and suite lines skipped", file=sys.stderr)
        return None
    return extract_features(table, FeatureConfig.for_corpus("emodb"), progress=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs of the local Ray (default: all cores)")
    ap.add_argument("--starts", type=int, default=3, help="Ray start-ups timed")
    ap.add_argument("--tasks", type=int, default=200, help="empty tasks timed")
    ap.add_argument("--profile", default="quick", choices=["quick", "full"], help="of the 5-fold AMSNet")
    ap.add_argument("--epochs", type=int, default=None, help="cap every stage of the suite at this many epochs")
    ap.add_argument("--no-suite", action="store_true", help="overheads only")
    a = ap.parse_args(argv)
    import ray
    import torch

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{when}, {os.cpu_count()} cores, ray {ray.__version__}, torch {torch.__version__}, load average before {_load()}",
          flush=True)
    print(startup(a.cpus, a.starts), flush=True)
    features = _features()
    for line in overhead(a.cpus, a.tasks, features):
        print(line, flush=True)
    if features is not None and not a.no_suite:
        for line in suite(a.cpus, a.profile, a.epochs, features):
            print(line, flush=True)
    print(f"load average after {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
