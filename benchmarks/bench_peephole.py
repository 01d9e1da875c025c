"""Training-step time of PeepholeLSTM vs nn.LSTM (bidirectional), same run, same inputs.

One step = forward + backward of a weighted-sum loss, on a padded batch (lengths uniform in
[T/2, T], one of length T). Contenders:
  peephole    PeepholeLSTM (FRLM, ``peephole=True``), stops at the longest sequence;
  nn.LSTM     ``nn.LSTM(bidirectional=True)`` on the whole padded batch: the target (ratio);
  plain       PlainBLSTM (FRLM, ``peephole=False``): two nn.LSTMs, within-length reversal;
  peephole, no CUDA graphs   (on a GPU) the same recurrence launched kernel by kernel;
  packed      (``--packed``) nn.LSTM on a pack_padded_sequence: correct padding, but very
              slow on CPU (why FRLM does not use it).
Warm-up, then the median of several repeats, interleaved so that load from other processes
hits every contender alike; torch's default thread count.

    python -m benchmarks.bench_peephole                  # real size (256, 300, 76, 256) + small
    python -m benchmarks.bench_peephole --sizes 64,100,76,128 --repeats 3
    python -m benchmarks.bench_peephole --allocator       # glibc defaults vs amsnet's settings
    python -m benchmarks.bench_peephole --device cuda --repeats 20   # on a GPU (nn.LSTM is cuDNN)

``--allocator`` times the peephole step at the paper's FRLM size (256, 300, 76, 128) in two fresh
processes, one with glibc's default allocator settings and one with those of
``amsnet_lib/_runtime.py``, alternating, and prints the ratio (see that module for why).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from amsnet_lib.models.frlm import PlainBLSTM
from amsnet_lib.models.peephole import PeepholeLSTM


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # kernels run asynchronously: wait for them before reading the clock
        torch.cuda.synchronize(device)


def _step_times(steps: dict, repeats: int, warmup: int, device: torch.device = torch.device("cpu")) -> dict:
    """Median ms per step function, repeats interleaved across contenders."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            _sync(device)
            t0 = time.perf_counter()
            step()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) * 1000.0 for name, ts in times.items()}


def bench(B: int, T: int, D: int, H: int, repeats: int, warmup: int, packed: bool, device: str = "cpu") -> dict:
    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, D, generator=g)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    lengths[0] = T
    mask = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    w = torch.randn(B, T, 2 * H, generator=g)  # loss weights: every output gets a gradient
    x, mask, w = x.to(device), mask.to(device), w.to(device)  # lengths stay on the CPU (packing)

    peep = PeepholeLSTM(D, H, bidirectional=True).to(device)
    lstm = nn.LSTM(D, H, batch_first=True, bidirectional=True).to(device)  # cuDNN on a GPU
    plain = PlainBLSTM(D, H).to(device)

    def step(module, fn):
        def run():
            module.zero_grad(set_to_none=True)
            (fn() * w).sum().backward()
        return run

    def run_packed():
        p = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(lstm(p)[0], batch_first=True, total_length=T)[0]

    def eager(fn):  # the same recurrence without CUDA graphs, in this run (see models/peephole.py)
        def run():
            before = os.environ.get("AMSNET_CUDA_GRAPHS")
            os.environ["AMSNET_CUDA_GRAPHS"] = "0"
            try:
                return fn()
            finally:
                if before is None:
                    os.environ.pop("AMSNET_CUDA_GRAPHS")
                else:
                    os.environ["AMSNET_CUDA_GRAPHS"] = before
        return run

    steps = {
        "peephole": step(peep, lambda: peep(x, mask)),
        "nn.LSTM": step(lstm, lambda: lstm(x)[0]),
        "plain": step(plain, lambda: plain(x, mask)),
    }
    if device.type == "cuda":
        steps["peephole, no CUDA graphs"] = eager(step(peep, lambda: peep(x, mask)))
    if packed:
        steps["packed"] = step(lstm, run_packed)
    ms = _step_times(steps, repeats, warmup, device)
    ref = ms["nn.LSTM"]
    parts = " | ".join(f"{k} {v:.1f} ms ({v / ref:.2f}x)" for k, v in ms.items())
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"threads={torch.get_num_threads()}"
    print(f"B={B} T={T} D={D} H={H} {where} "
          f"median of {repeats}: {parts}", flush=True)
    return ms


def allocator_ratio(size: str, repeats: int, threads: int) -> None:
    """Peephole step time under glibc's defaults vs amsnet's allocator settings, in fresh processes."""
    # the settings as every amsnet process gets them (run_all.sh: `eval "$(python -m amsnet_lib._runtime)"`)
    words = subprocess.run([sys.executable, "-m", "amsnet_lib._runtime", "--kernel-args"], check=True,
                           capture_output=True, text=True).stdout.split()
    settings = dict(zip(words[1::3], words[2::3]))  # "--env K V" triples
    plain = {k: v for k, v in os.environ.items() if k not in settings}
    code = ("import sys, torch; torch.set_num_threads(int(sys.argv[2])); "
            "from benchmarks.bench_peephole import peephole_step_ms; print(peephole_step_ms(sys.argv[1], int(sys.argv[3])))")
    times: dict[str, list[float]] = {"glibc defaults": [], "amsnet settings": []}
    for _ in range(2):  # alternate, so that load from other processes hits both alike
        for name, env in (("glibc defaults", plain), ("amsnet settings", {**plain, **settings})):
            env["AMSNET_NO_REEXEC"] = "1"
            out = subprocess.run([sys.executable, "-c", code, size, str(threads), str(repeats)], env=env, check=True,
                                 capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            times[name].append(float(out.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"peephole training step B,T,D,H={size}, {threads} thread(s), median ms: "
          f"glibc defaults {med['glibc defaults']:.0f}, amsnet settings {med['amsnet settings']:.0f}: "
          f"{med['glibc defaults'] / med['amsnet settings']:.2f}x faster", flush=True)


def peephole_step_ms(size: str, repeats: int) -> float:
    """Median ms of one PeepholeLSTM forward + backward at ``size`` = "B,T,D,H" (after one warm-up)."""
    B, T, D, H = (int(v) for v in size.split(","))
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(B, T, D, generator=g), torch.randn(B, T, 2 * H, generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    peep = PeepholeLSTM(D, H, bidirectional=True)

    def run():
        peep.zero_grad(set_to_none=True)
        (peep(x, mask) * w).sum().backward()

    return _step_times({"peephole": run}, repeats, warmup=1)["peephole"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", default=["256,300,76,256", "64,100,76,128"],
                    help="B,T,D,H per size")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--packed", action="store_true", help="also time a packed nn.LSTM")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (default: leave torch's default)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (times synchronise with the GPU)")
    ap.add_argument("--allocator", action="store_true",
                    help="time glibc's default allocator settings against amsnet's (FRLM size, fresh processes)")
    args = ap.parse_args()
    if args.allocator:
        allocator_ratio("256,300,76,128", args.repeats, args.threads or 1)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    for size in args.sizes:
        B, T, D, H = (int(v) for v in size.split(","))
        bench(B, T, D, H, args.repeats, args.warmup, args.packed, args.device)


if __name__ == "__main__":
    main()
