"""Model-only latency of AMSNet under the paper and the tuned recipe, measured in the same run.

The recipes share every architecture except FRLM's frame stacking (``FRLMConfig.frame_stack``,
docs/RECIPE.md), which shortens the 300-step peephole recurrence that dominates model-only latency.
One 3-s clip at batch 1, eager PyTorch on one thread, weights as initialised (latency does not
depend on their values); the two models are timed in alternation so that a busy machine slows both
alike, and the ratio is the figure to quote.

    python -m benchmarks.bench_recipe_latency [--runs 50] [--out results/recipe_latency.txt]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from amsnet_lib import studies
from amsnet_lib.models import build_model


def _model(recipe: str):
    exp = studies.experiment("emodb", "amsnet", "paper", "full", recipe=recipe)
    torch.manual_seed(0)
    model = build_model("amsnet", 7, frlm=exp.frlm, urlm=exp.urlm, fusion=exp.fusion, n_mels=exp.features.n_mels).eval()
    inputs = (torch.randn(1, exp.features.q, exp.frlm.input_dim), torch.ones(1, exp.features.q, dtype=torch.bool),
              torch.randn(1, exp.features.n_mels, exp.features.spec_frames))
    return model, inputs, exp.frlm.frame_stack


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", default=None, help="also write the lines to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    models = {r: _model(r) for r in ("paper", "tuned")}
    times: dict[str, list[float]] = {r: [] for r in models}
    with torch.inference_mode():
        for model, inputs, _ in models.values():  # warm-up
            for _ in range(3):
                model(*inputs)
        for _ in range(args.runs):
            for r, (model, inputs, _) in models.items():
                t0 = time.perf_counter()
                model(*inputs)
                times[r].append(time.perf_counter() - t0)
    p50 = {r: 1000 * float(np.median(t)) for r, t in times.items()}
    p95 = {r: 1000 * float(np.percentile(t, 95)) for r, t in times.items()}
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [f"model-only latency, AMSNet, one 3-s clip, batch 1, eager, 1 thread, {args.runs} runs each, alternated "
             f"(load average {load}; `python -m benchmarks.bench_recipe_latency`)"]
    for r, (_, _, k) in models.items():
        lines.append(f"{r} recipe (frame_stack {k}): p50 {p50[r]:.1f} ms, p95 {p95[r]:.1f} ms")
    lines.append(f"tuned / paper p50 ratio: {p50['tuned'] / p50['paper']:.2f} (target of the tuned model: p50 <= 10 ms)")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        from amsnet_lib.atomic import atomic_write_text

        atomic_write_text(args.out, text)
    return text


if __name__ == "__main__":
    main()
