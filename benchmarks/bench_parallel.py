"""Throughput of FRLM training on a CPU: one process with all cores as threads vs one process per core.

Why ``amsnet pretrain`` / ``run_all.sh --jobs`` train the branch folds in separate one-thread
processes: the peephole recurrence runs ~10 small ops per time step, which a second intra-op
thread barely speeds up, while separate folds share nothing. Measured here in the same run, on
the paper's FRLM (batch 256, 300 frames, 76 dims, 128 units; forward, backward, RMSprop step on
random data):

  threads    one process, ``cores`` intra-op threads: steps per second
  processes  ``cores`` processes of one thread each, running at once: steps per second, all together
  alone      one process, one thread, the machine otherwise idle (what each process would do alone)

    python -m benchmarks.bench_parallel              # 6 steps per process after 2 warm-up steps
    python -m benchmarks.bench_parallel --steps 10 --cores 4

Prints one line; ``run_benchmarks.sh`` keeps it in results/benchmarks_parallel.txt for the report.
Run it on an otherwise idle machine: other load hits the contenders unequally.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _worker(threads: int, steps: int, warmup: int) -> None:
    """Train FRLM for ``warmup + steps`` steps; print the seconds of the last ``steps``."""
    import torch

    from amsnet_lib.models import build_model
    from amsnet_lib.studies import experiment

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    exp = experiment("emodb", "frlm", "paper", "full")
    model = build_model("frlm", frlm=exp.frlm, urlm=exp.urlm, fusion=exp.fusion, n_classes=7)
    opt = torch.optim.RMSprop(model.parameters(), lr=exp.branch_train.lr)
    B, T = exp.branch_train.batch_size, exp.features.q
    frames = torch.randn(B, T, exp.frlm.input_dim)
    lengths = torch.randint(T // 2, T + 1, (B,))
    lengths[0] = T
    mask = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    labels = torch.randint(0, 7, (B,))

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(frames, mask), labels)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    print(f"{time.perf_counter() - t0:.6f}", flush=True)


def _spawn(threads: int, steps: int, warmup: int, n: int) -> tuple[float, list[float]]:
    """Start ``n`` workers at once; (wall seconds of the slowest, each worker's timed seconds)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=ROOT)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(threads), str(steps), str(warmup)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(n)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a worker failed: {[p.returncode for p in procs]}")
    secs = [float(o.strip().splitlines()[-1]) for o in outs]
    return max(secs), secs


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--worker":
        _worker(int(argv[1]), int(argv[2]), int(argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores to use (default: all)")
    ap.add_argument("--steps", type=int, default=6, help="timed training steps per process")
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args(argv)
    c = a.cores
    alone, _ = _spawn(1, a.steps, a.warmup, 1)
    threads, _ = _spawn(c, a.steps, a.warmup, 1)
    processes, each = _spawn(1, a.steps, a.warmup, c)
    rate = {"alone": a.steps / alone, "threads": a.steps / threads, "processes": c * a.steps / processes}
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{when}, FRLM training (batch 256, 300 frames, 128 units), {c} cores, {a.steps} steps each: "
          f"one process x {c} threads {rate['threads']:.3f} steps/s ({rate['threads'] / rate['alone']:.2f}x one thread) | "
          f"{c} processes x 1 thread {rate['processes']:.3f} steps/s ({rate['processes'] / rate['alone']:.2f}x one thread; "
          f"each process at {min(each) / alone:.2f}-{max(each) / alone:.2f}x the time it takes alone) | "
          f"processes / threads: {rate['processes'] / rate['threads']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
