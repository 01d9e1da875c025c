"""Training throughput of each stage at the paper's size, and URLM's achieved FLOP/s.

Measured through the real training loop (``training.train_model``: forward, cross-entropy,
backward, RMSprop step) on synthetic inputs of EmoDB's shapes (q = 300 frames of 76 dims with
lengths uniform in [150, 300]; 128 x 121 log-mel), batch 256 as in the paper, full-size
networks (``studies.experiment("emodb", ..., "full")``). Weights and data values do not change
the cost of a step.

- utterances/s of FRLM with peepholes (the paper), FRLM without (nn.LSTM), URLM, and the
  fusion stage (the head trained on frozen 128-d embeddings, plus the one-off embedding pass);
- URLM's achieved FLOP/s (FLOPs of one training step counted by
  ``torch.utils.flop_counter.FlopCounterMode``, divided by its median time) as a fraction of
  this machine's fp32 matmul FLOP/s (2048 x 2048, same thread count), measured in the same run.

    python -m benchmarks.bench_training [--threads N] [--utterances 256] [--json out.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from amsnet_lib.models import build_model
from amsnet_lib.studies import experiment
from amsnet_lib.train.training import train_model

N_CLASSES = 7


def _load() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def synthetic(n: int, q: int = 300, n_mels: int = 128, t_spec: int = 121, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(q // 2, q + 1, (n,), generator=g)
    mask = torch.arange(q).unsqueeze(0) < lengths.unsqueeze(1)
    frames = torch.randn(n, q, 76, generator=g).masked_fill(~mask.unsqueeze(-1), 0.0)
    return {"frames": frames, "mask": mask, "spec": torch.randn(n, n_mels, t_spec, generator=g),
            "labels": torch.randint(0, N_CLASSES, (n,), generator=g)}


def _epoch_seconds(model, data: dict, batch: int, repeats: int) -> float:
    """Median seconds of one training epoch over ``data`` (after one warm-up step)."""
    exp = experiment("emodb", "amsnet", "paper", "full")
    cfg = dataclasses.replace(exp.branch_train, epochs=1, batch_size=batch, patience=0)
    warm = {k: v[:batch] for k, v in data.items()}
    train_model(model, warm, None, dataclasses.replace(cfg, epochs=1), N_CLASSES, progress=False)
    times = [train_model(model, data, None, cfg, N_CLASSES, progress=False).seconds for _ in range(repeats)]
    return statistics.median(times)


def matmul_flops(n: int = 2048, repeats: int = 7) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def urlm_flops(batch: int, repeats: int) -> dict:
    exp = experiment("emodb", "urlm", "paper", "full")
    model = build_model("urlm", N_CLASSES, frlm=exp.frlm, urlm=exp.urlm, fusion=exp.fusion, n_mels=128)
    data = synthetic(batch, seed=1)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-4)

    def step():
        loss = F.cross_entropy(model(data["spec"]), data["labels"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    step()
    t = statistics.median(_timed(step) for _ in range(repeats))
    return {"flops_per_step": flops, "step_seconds": t, "achieved_flops": flops / t}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    ap.add_argument("--utterances", type=int, default=256, help="utterances per timed epoch")
    ap.add_argument("--batch", type=int, default=256, help="batch size (paper: 256 on EmoDB)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    res = {"threads": threads, "cpu_count": os.cpu_count(), "batch": args.batch, "utterances": args.utterances,
           "load_before": _load(), "torch": torch.__version__}
    print(f"training throughput, batch {args.batch}, {threads} torch thread(s), {os.cpu_count()} cores, "
          f"load average {res['load_before']}")

    exp = experiment("emodb", "amsnet", "paper", "full")
    data = synthetic(args.utterances)
    rows = {}
    for name, model in (
        ("frlm_peephole", build_model("frlm", N_CLASSES, frlm=exp.frlm)),
        ("frlm_no_peephole", build_model("frlm", N_CLASSES, frlm=dataclasses.replace(exp.frlm, peephole=False))),
        ("urlm", build_model("urlm", N_CLASSES, urlm=exp.urlm, n_mels=128)),
    ):
        sec = _epoch_seconds(model, data, args.batch, args.repeats)
        rows[name] = args.utterances / sec
        print(f"  {name:<18} {rows[name]:8.1f} utterances/s ({sec:.2f} s per {args.utterances})")

    # Fusion stage: embeddings of both frozen branches once, then the head on (B, 128) pairs.
    full = build_model("amsnet", N_CLASSES, frlm=exp.frlm, urlm=exp.urlm, fusion=exp.fusion, n_mels=128).eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        h1 = torch.cat([full.frlm.embed(data["frames"][s:s + 256], data["mask"][s:s + 256]) for s in range(0, args.utterances, 256)])
        h2 = torch.cat([full.urlm.embed(data["spec"][s:s + 256]) for s in range(0, args.utterances, 256)])
    emb_s = time.perf_counter() - t0
    rows["fusion_embeddings"] = args.utterances / emb_s
    emb = {"h1": h1.repeat(8, 1), "h2": h2.repeat(8, 1), "labels": data["labels"].repeat(8)}
    sec = _epoch_seconds(full.head, emb, args.batch, max(args.repeats, 3))
    rows["fusion_head"] = len(emb["labels"]) / sec
    print(f"  {'fusion_embeddings':<18} {rows['fusion_embeddings']:8.1f} utterances/s (frozen FRLM + URLM forward, once per fold)")
    print(f"  {'fusion_head':<18} {rows['fusion_head']:8.0f} utterances/s (connection-attention head on embeddings)")
    res["throughput"] = rows

    mm = matmul_flops()
    u = urlm_flops(args.batch, args.repeats + 1)
    frac = u["achieved_flops"] / mm
    res.update(matmul_flops=mm, urlm=u, urlm_fraction_of_matmul=frac, load_after=_load())
    print(f"  matmul (2048^2 fp32): {mm / 1e9:.1f} GFLOP/s")
    print(f"  URLM training step: {u['flops_per_step'] / 1e9:.1f} GFLOP in {u['step_seconds']:.2f} s = "
          f"{u['achieved_flops'] / 1e9:.1f} GFLOP/s = {100 * frac:.0f} % of matmul (target >= 50 %)")
    print(f"  load average after: {res['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
