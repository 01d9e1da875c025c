"""Inference speed: feature extraction real-time factor, clip latency, streaming latency.

- Feature extraction real-time factor (processing time / audio time; < 1 is faster than real
  time) per stream and for both, in one process on one core: the IS10 frame stream as
  ``features.frame_features`` computes it for the cache, training and inference (one openSMILE
  run) and as the two-run reference does (``opensmile.Smile`` once per level, identical output),
  the log-mel stream, both.
- Latency of one 3-s clip, p50/p95: end to end (file decode, both feature streams,
  normalisation, model), sequential and with openSMILE overlapped with URLM, and with the ONNX
  form run by ONNX Runtime; model only (batch 1, eager PyTorch with 1 and with the default thread
  count, the TorchScript export and the ONNX export under ONNX Runtime, interleaved in one run),
  with the per-branch breakdown.
- Streaming: a long file through ``stream.StreamRecognizer`` (3-s window, 0.5-s hop): latency per
  hop (mean, p95, max) and real-time factor.

Uses the shipped checkpoint (or ``--checkpoint``) when it exists, else a randomly initialised
AMSNet of the full paper size (latency does not depend on the weights) and says so.

    python -m benchmarks.bench_inference [--checkpoint F] [--runs 30] [--json out.json]
    python -m benchmarks.bench_inference report --inference a.json --training b.json --out results/benchmarks.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from amsnet_lib.data.audio import load_audio
from amsnet_lib.data.features import frame_features, log_mel_spectrogram
from amsnet_lib.serve.predict import SHIPPED_CHECKPOINT, Recognizer

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {
    "e2e_p50_ms": 100.0,
    "model_p50_ms": 10.0,
    "stream_rtf": 1.0,
    "urlm_fraction": 0.5,
}


def _load() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _pcts(ts) -> dict:
    a = np.asarray(ts) * 1000.0
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)), "mean_ms": float(a.mean()), "n": len(a)}


def _time(fn, runs: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _emodb_dir() -> Path | None:
    for c in (os.environ.get("AMSNET_EMODB_DIR"), ROOT / "data" / "emodb", ROOT.parent / "shared" / "data" / "emodb"):
        if c and (Path(c) / "wav").is_dir():
            return Path(c)
    return None


def _speech(n_files: int) -> tuple[list[np.ndarray], str]:
    """Real utterances (EmoDB, 16 kHz) or, without EmoDB, synthetic voiced tones."""
    d = _emodb_dir()
    if d is not None:
        files = sorted((d / "wav").glob("*.wav"))
        step = max(1, len(files) // n_files)
        return [load_audio(f) for f in files[::step][:n_files]], f"{n_files} EmoDB utterances from {d}"
    rng = np.random.default_rng(0)
    out = []
    for i in range(n_files):
        n = int(16000 * rng.uniform(1.5, 4.0))
        t = np.arange(n) / 16000
        f0 = 120 + 80 * rng.random() + 20 * np.sin(2 * np.pi * 3 * t)
        ph = 2 * np.pi * np.cumsum(f0) / 16000
        out.append((0.3 * sum(np.sin(k * ph) / k for k in range(1, 6)) + 0.01 * rng.standard_normal(n)).astype(np.float32))
    return out, f"{n_files} synthetic voiced signals (EmoDB not found)"


def _recognizer(checkpoint: str | None) -> tuple[Recognizer, str]:
    path = Path(checkpoint) if checkpoint else SHIPPED_CHECKPOINT
    if path.is_file():
        rec = Recognizer(path)
        return rec, f"trained checkpoint {path}"
    from amsnet_lib.serve.checkpoint import CheckpointInfo
    from amsnet_lib.data.features import Normaliser
    from amsnet_lib.models import build_model
    from amsnet_lib.studies import experiment

    exp = experiment("emodb", "amsnet", "paper", "full")
    torch.manual_seed(0)
    model = build_model("amsnet", 7, frlm=exp.frlm, urlm=exp.urlm, fusion=exp.fusion, n_mels=exp.features.n_mels)
    norm = Normaliser(np.zeros(76, np.float32), np.ones(76, np.float32), np.full(128, -6.0, np.float32), np.full(128, 4.0, np.float32))
    info = CheckpointInfo(None, "amsnet", exp, ("anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"), norm)
    return Recognizer(model=model, info=info), ("randomly initialised AMSNet of the full paper size (no trained checkpoint "
                                                "yet; latency does not depend on the weights)")


# --------------------------------------------------------------------------- measurements


def feature_rtf(signals: list[np.ndarray], config) -> dict:
    audio = sum(len(x) for x in signals) / 16000.0
    two_pass = lambda x: frame_features(x, config, two_pass=True)  # noqa: E731
    one_pass = lambda x: frame_features(x, config)  # noqa: E731
    one_pass(signals[0]), two_pass(signals[0]), log_mel_spectrogram(signals[0], config)  # first-call costs
    out = {}
    # keys kept from the results' first format, when the training path was the two-run one
    for name, fn in (
        ("is10_two_pass", two_pass),
        ("is10_single_pass", one_pass),
        ("log_mel", lambda x: log_mel_spectrogram(x, config)),
        ("both_training_path", lambda x: (two_pass(x), log_mel_spectrogram(x, config))),
        ("both_inference_path", lambda x: (one_pass(x), log_mel_spectrogram(x, config))),
    ):
        t0 = time.perf_counter()
        for x in signals:
            fn(x)
        out[name] = (time.perf_counter() - t0) / audio
    out["audio_seconds"] = audio
    return out


def _interleaved(fns: dict, runs: int, warmup: int = 2) -> dict:
    """p50/p95 of each function, the repeats interleaved (run 1 of each, run 2 of each, ...) so
    that load from other processes hits every contender alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    out = {k: _pcts(v) for k, v in times.items()}
    for k in out:  # CPU time of the process: the work itself, without the waiting for a core
        out[k]["cpu_p50_ms"] = float(np.percentile(np.asarray(cpu[k]) * 1000.0, 50))
    return out


from amsnet_lib.serve.predict import inference_threads  # torch AND numpy-BLAS threads, as the predictor sets them


def _no_grad_call(model, args):
    with torch.inference_mode():
        model(*args)


def _onnx_recognizer(rec: Recognizer, tmp: Path) -> Recognizer:
    """The same model in ONNX form under ONNX Runtime: the shipped .onnx beside the shipped
    checkpoint, else exported here (``export_onnx``, checked against the eager model)."""
    from amsnet_lib.serve.export import export_onnx
    from amsnet_lib.serve.predict import SHIPPED_ONNX

    if rec.info.path and Path(rec.info.path).resolve() == SHIPPED_CHECKPOINT.resolve() and SHIPPED_ONNX.is_file():
        return Recognizer(SHIPPED_ONNX)
    return Recognizer(export_onnx((rec.model, rec.info), tmp / "model.onnx"))


def clip_latency(rec: Recognizer, clip_path: Path, runs: int, onnx: Recognizer | None = None) -> dict:
    c = rec.config
    x = rec.load(clip_path)
    f, m, s = rec.normalise(*rec.features(x))
    ft, mt, st = (torch.from_numpy(a)[None] for a in (f, m, s))
    model = rec.model.eval()
    default_threads = torch.get_num_threads()

    # TorchScript (the export): the traced graph without Python overhead per op.
    from amsnet_lib.serve.export import ExportWrapper

    with inference_threads(1), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(ExportWrapper(model, rec.info, normalise=False).eval(), (ft, mt, st), check_trace=False)
        for _ in range(3):  # the profiling executor optimises on the first calls
            traced(ft, mt, st)

    def in_mode(fn, threads):
        def run():
            with torch.inference_mode(), inference_threads(threads):
                fn()
        return run

    with inference_threads(1):  # one torch and one BLAS thread, as the predictor runs
        res = _interleaved({
            "e2e_sequential": lambda: rec.predict_signal(rec.load(clip_path), overlap=False),
            "e2e_overlapped": lambda: rec.predict_signal(rec.load(clip_path), overlap=True),
            "stage_opensmile": lambda: frame_features(x, rec.config),
            "stage_log_mel": lambda: log_mel_spectrogram(x, c),
            "model_eager_1thread": in_mode(lambda: model(ft, mt, st), 1),
            "model_torchscript_1thread": in_mode(lambda: traced(ft, mt, st), 1),
            **({"model_onnxruntime_1thread": lambda: onnx.model(f[None], m[None], s[None]),
                "e2e_onnxruntime": lambda: onnx.predict_signal(onnx.load(clip_path))} if onnx is not None else {}),
            "stage_frlm_1thread": in_mode(lambda: model.frlm.embed(ft, mt), 1),
            "stage_urlm_1thread": in_mode(lambda: model.urlm.embed(st), 1),
        }, runs)
    res.update(_interleaved({"model_eager_default_threads": lambda: _no_grad_call(model, (ft, mt, st))}, max(5, runs // 3)))
    res["default_threads"] = default_threads
    return res


def streaming(rec: Recognizer, signals: list[np.ndarray], seconds: float, tmp: Path) -> dict:
    from amsnet_lib.serve.stream import StreamRecognizer, file_chunks

    x = np.concatenate(signals)
    while len(x) < seconds * 16000:
        x = np.concatenate([x, x])
    path = tmp / "stream.wav"
    sf.write(path, x[: int(seconds * 16000)], 16000)
    sr = StreamRecognizer(rec, window=3.0, hop=0.5)
    for _ in sr.run(file_chunks(path, block_seconds=0.5)):
        pass
    return sr.summary().to_dict()


# --------------------------------------------------------------------------- report


def _ok(value, target, lower_is_better=True) -> str:
    if value is None or target is None:
        return ""
    met = value <= target if lower_is_better else value >= target
    return "met" if met else "**missed**"


def _busy(load: str, cpus: int) -> bool:
    """Whether a load average string "1m/5m/15m" shows other work on the machine."""
    try:
        return float(str(load).split("/")[0]) > 0.5 * cpus
    except ValueError:
        return False


def report(inf: dict, tr: dict | None, out: Path, feat: dict | None = None, alloc: str | None = None,
           peephole: str | None = None, parallel: str | None = None, ray: str | None = None,
           install: dict | None = None) -> str:
    L = []
    ms = lambda d: f"{d['p50_ms']:.1f} / {d['p95_ms']:.1f}"  # noqa: E731
    c = inf["clip"]
    L.append("# Benchmarks\n")
    L.append(f"Written by `benchmarks/run_benchmarks.sh` on {inf['date']}. Machine: {inf['machine']}, "
             f"{inf['cpu_count']} cores, torch {inf['torch']}. Load average (1/5/15 min) before/after the inference "
             f"run: {inf['load_before']} → {inf['load_after']}"
             + (f"; training run: {tr['load_before']} → {tr['load_after']}" if tr else "") + ".")
    L.append(f"\nModel: {inf['model']}. Audio: {inf['audio']}.\n")
    busy = _busy(inf["load_before"], inf["cpu_count"]) or _busy(inf["load_after"], inf["cpu_count"])
    L.append("All figures are measured in this run; the targets are for a 2-core CPU. "
             + ("The machine was shared with other jobs (see the load averages), which inflates every time below.\n"
                if busy else "The machine was otherwise idle (see the load averages).\n"))
    L.append("## Against the targets\n")
    L.append("| figure | measured | target | |")
    L.append("|---|---|---|---|")
    e2e = c["e2e_overlapped"]["p50_ms"]
    cpu = lambda k: f"{c[k]['cpu_p50_ms']:.1f}" if "cpu_p50_ms" in c[k] else "n/a"  # noqa: E731
    L.append(f"| end-to-end latency, one 3-s clip, p50 (file → prediction, features included; `Recognizer.predict_signal`) "
             f"| {e2e:.1f} ms wall (p95 {c['e2e_overlapped']['p95_ms']:.1f}); CPU time of the sequential path {cpu('e2e_sequential')} ms "
             f"| ≤ {TARGETS['e2e_p50_ms']:.0f} ms | {_ok(e2e, TARGETS['e2e_p50_ms'])} |")
    eager, ts = c["model_eager_1thread"], c["model_torchscript_1thread"]
    ort = c.get("model_onnxruntime_1thread")
    L.append(f"| model-only latency, batch 1, p50: eager (the predictor) / TorchScript export"
             + (" / ONNX Runtime (the ONNX export)" if ort else "") + f" | {eager['p50_ms']:.1f} / {ts['p50_ms']:.1f}"
             + (f" / {ort['p50_ms']:.1f}" if ort else "") + f" ms wall; CPU {cpu('model_eager_1thread')} / "
             f"{cpu('model_torchscript_1thread')}" + (f" / {cpu('model_onnxruntime_1thread')}" if ort else "") + " ms "
             f"| ≤ {TARGETS['model_p50_ms']:.0f} ms | {_ok(min(eager['p50_ms'], ts['p50_ms']), TARGETS['model_p50_ms'])} |")
    if ort:
        L.append(f"| ONNX Runtime model-only p50 at or below TorchScript's, same run | {ort['p50_ms']:.1f} vs {ts['p50_ms']:.1f} "
                 f"ms wall (CPU {cpu('model_onnxruntime_1thread')} vs {cpu('model_torchscript_1thread')} ms) | ≤ | "
                 f"{_ok(ort['p50_ms'], ts['p50_ms'])} |")
    s = inf["stream"]
    L.append(f"| streaming, 3-s window every 0.5 s: real-time factor (processing / audio) | {s['real_time_factor']:.3f} "
             f"(max latency per hop {s['max_latency_ms']:.0f} ms vs 500 ms hop) | < 1, every hop within 0.5 s | "
             f"{'met' if s['keeps_up'] and s['real_time_factor'] < 1 else '**missed**'} |")
    if tr:
        f = tr["urlm_fraction_of_matmul"]
        L.append(f"| URLM training, achieved FLOP/s / matmul FLOP/s | {100 * f:.0f} % ({tr['urlm']['achieved_flops'] / 1e9:.1f} "
                 f"of {tr['matmul_flops'] / 1e9:.1f} GFLOP/s) | ≥ 50 % | {_ok(f, TARGETS['urlm_fraction'], False)} |")
    if feat:
        L.append(f"| feature cache, all of {feat['corpus']} ({feat['utterances']} utterances, {feat['audio_seconds'] / 60:.1f} min): "
                 f"warm / cold extraction time | {100 * feat['warm_seconds'] / feat['cold_seconds']:.2f} % "
                 f"({feat['warm_seconds']:.2f} s / {feat['cold_seconds']:.1f} s, {feat['jobs']} worker processes) | < 5 % | "
                 f"{_ok(feat['warm_seconds'] / feat['cold_seconds'], 0.05)} |")
    if peephole:
        L.append(f"\nPeephole BLSTM training step vs `nn.LSTM` of the same size, same run (`bench_peephole.py`; target: "
                 f"at most 2x on CPU):\n\n" + "\n".join(f"    {line}" for line in peephole.splitlines()) + "\n")
    if alloc:
        L.append(f"\nAllocator settings of `amsnet_lib/_runtime.py` (`bench_peephole.py --allocator`): {alloc}\n")
    if parallel:
        L.append("\nProcesses vs threads for training on a CPU (`bench_parallel.py`; why `amsnet pretrain` and "
                 "`run_all.sh --jobs` train one fold per process with one thread each):\n\n"
                 + "\n".join(f"    {line}" for line in parallel.splitlines()) + "\n")
    if ray:
        L.append("\n## Ray engine (`bench_ray.py`)\n")
        L.append("What Ray costs `amsnet pretrain` / `run_all.sh` (`amsnet_lib/train/engine.py`: every fold a Ray task, a local "
                 "Ray on 127.0.0.1 started and stopped by the command), and 5-fold AMSNet through Ray against the serial "
                 "path (the same task function one unit after another in process), both in the same run. Read the wall times "
                 "with the load averages: above the number of cores, the runs shared the cores with other work, which "
                 "leaves Ray's tasks no idle core to run side by side on:\n\n"
                 + "\n".join(f"    {line}" for line in ray.splitlines()) + "\n")
    if install:
        L.extend(install_section(install))
    L.append("\n## Feature extraction (one process, one core)\n")
    L.append("Real-time factor = processing time / audio duration (lower is faster; 0.05 = 20× faster than real time).\n")
    L.append("| stream | real-time factor | × real time |")
    L.append("|---|---|---|")
    fr = inf["features"]
    names = {"is10_two_pass": "IS10 frame stream, two-run reference (`opensmile.Smile` per level)",
             "is10_single_pass": "IS10 frame stream, `frame_features` (one openSMILE run, identical output)",
             "log_mel": "log-mel spectrogram", "both_training_path": "both streams, two-run reference",
             "both_inference_path": "both streams, `frame_features` + log-mel (cache, training, inference)"}
    for k, label in names.items():
        L.append(f"| {label} | {fr[k]:.4f} | {1 / fr[k]:.1f} |")
    L.append(f"\n(over {fr['audio_seconds']:.1f} s of audio; the extraction of a corpus runs one such process per core.)\n")
    L.append("## Latency of one 3-s clip (p50 / p95, ms)\n")
    L.append("Wall-clock p50 / p95, and the p50 of the process's CPU time (the work itself; on a busy machine the "
             "wall time adds the waiting for a core, and with openSMILE overlapped the CPU time counts both threads).\n")
    L.append("| path | wall p50 / p95 | CPU p50 |")
    L.append("|---|---|---|")
    rows = [("end to end, sequential (decode, openSMILE, log-mel, normalise, model)", "e2e_sequential"),
            ("end to end, openSMILE overlapped with log-mel + URLM (default of `Recognizer.predict_signal`)", "e2e_overlapped"),
            ("stage: openSMILE IS10, single pass", "stage_opensmile"), ("stage: log-mel", "stage_log_mel"),
            ("model only, eager, 1 thread (the predictor's setting)", "model_eager_1thread"),
            (f"model only, eager, {c['default_threads']} threads (torch default)", "model_eager_default_threads"),
            ("model only, TorchScript export, 1 thread", "model_torchscript_1thread"),
            ("model only, ONNX export under ONNX Runtime, 1 thread", "model_onnxruntime_1thread"),
            ("end to end with the ONNX form (ONNX Runtime, sequential path; what an install without torch runs)",
             "e2e_onnxruntime"),
            ("stage: FRLM embedding (300-step peephole BLSTM), 1 thread", "stage_frlm_1thread"),
            ("stage: URLM embedding, 1 thread", "stage_urlm_1thread")]
    for label, k in rows:
        if k not in c:
            continue
        cpu = c[k].get("cpu_p50_ms")
        L.append(f"| {label} | {ms(c[k])} | {'' if cpu is None else f'{cpu:.1f}'} |")
    L.append("\n## Streaming (file, 3-s window, 0.5-s hop)\n")
    L.append(f"{s['windows']} windows over {s['audio_seconds']:.1f} s: latency per hop mean {s['mean_latency_ms']:.1f} ms, "
             f"p95 {s['p95_latency_ms']:.1f} ms, max {s['max_latency_ms']:.1f} ms; real-time factor {s['real_time_factor']:.3f}; "
             f"ring buffer {s['buffer_samples']} samples ({'keeps up with' if s['keeps_up'] else 'falls behind'} real time).\n")
    if tr:
        L.append(f"## Training throughput (batch {tr['batch']}, {tr['threads']} torch threads, full paper size)\n")
        L.append("| stage | utterances/s |")
        L.append("|---|---|")
        labels = {"frlm_peephole": "FRLM with peepholes (paper)", "frlm_no_peephole": "FRLM without peepholes (nn.LSTM)",
                  "urlm": "URLM", "fusion_embeddings": "fusion stage: frozen-branch embeddings (once per fold)",
                  "fusion_head": "fusion stage: connection-attention head on embeddings (per epoch)"}
        for k, label in labels.items():
            v = tr["throughput"][k]
            L.append(f"| {label} | {v:.1f} |" if v < 1000 else f"| {label} | {v:,.0f} |")
        u = tr["urlm"]
        L.append(f"\nURLM: {u['flops_per_step'] / 1e9:.1f} GFLOP per training step of {tr['batch']} (FlopCounterMode), "
                 f"{u['step_seconds']:.2f} s per step → {u['achieved_flops'] / 1e9:.1f} GFLOP/s; fp32 matmul 2048² "
                 f"{tr['matmul_flops'] / 1e9:.1f} GFLOP/s on the same threads.\n")
    if inf.get("notes"):
        L.append("## Notes\n")
        L.extend(f"- {n}" for n in inf["notes"])
        L.append("")
    text = "\n".join(L) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def install_section(r: dict) -> list[str]:
    """``bench_install.py``'s figures: the inference install against the full one."""
    mib = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
    L = ["\n## Inference install against the full install (`bench_install.py`)\n",
         f"Two fresh virtual environments, non-editable installs of this clone, measured {r['date']} (load average "
         f"{r['load_before']}); times are the median of {r['runs']} fresh processes, outside the clone.\n",
         "| | inference install | full install |", "|---|---|---|"]
    a, b = r["light"], r["full"]
    L.append(f"| command | `{a['install']}` | `{b['install']}` |")
    L.append(f"| PyTorch installed | {'yes' if a['has']['torch'] else 'no'} | {'yes' if b['has']['torch'] else 'no'} |")
    L.append(f"| size of site-packages | {mib(a['site_packages_bytes'])} | {mib(b['site_packages_bytes'])} |")
    for key, label in (("import_predict", "`import amsnet_lib.serve.predict`"),
                       ("load_default_model", "`Recognizer()`: imports and the default shipped model"),
                       ("cli_predict_one_file", "`amsnet predict` on one 3-s file (new process)")):
        L.append(f"| {label} | {a[key]['median_s']:.2f} s | {b[key]['median_s']:.2f} s |")
    L.append(f"\nThe inference install takes {100 * r['size_ratio']:.1f} % of the full install's size (target: at most 25 %). "
             "The default model is the shipped ONNX file where PyTorch is absent, the checkpoint where it is installed.\n")
    return L


NOTES = [
    "The CPU-time columns are what the work costs; on a busy machine the wall time adds the waiting for a core.",
    "Threads: the predictor runs with 1 torch thread and 1 numpy-BLAS thread (`Recognizer(num_threads=1)`): compare "
    "the two eager model rows above. During development, numpy's OpenBLAS threads left spinning after librosa's mel "
    "product also slowed the model that ran next, and one BLAS thread made the log-mel itself faster.",
    "openSMILE: `opensmile.Smile` computes one feature level per run, so LLDs and deltas would take two runs of the "
    "IS10 configuration per utterance; `features.frame_features` attaches a sink to both levels of one run and gets "
    "the identical array (tested element for element) at half the cost (compare the two IS10 rows above). The "
    "feature cache, training and inference all use it.",
    "Model-only latency is dominated by FRLM (compare its stage row with URLM's): the 300-step bidirectional "
    "peephole LSTM is sequential, each step reads the recurrent weights and runs ~10 small ops, whose per-op "
    "overhead the TorchScript export reduces.",
]


def main(argv=None) -> dict | None:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "report":
        ap = argparse.ArgumentParser(prog="bench_inference.py report")
        ap.add_argument("--inference", required=True)
        ap.add_argument("--training", default=None)
        ap.add_argument("--features", default=None, help="bench_features.py --json output")
        ap.add_argument("--allocator", default=None, help="file with the line bench_peephole.py --allocator printed")
        ap.add_argument("--peephole", default=None, help="file with the lines bench_peephole.py printed")
        ap.add_argument("--parallel", default=None, help="file with the line bench_parallel.py printed")
        ap.add_argument("--ray", default=None, help="file with the lines bench_ray.py printed")
        ap.add_argument("--install", default=None, help="bench_install.py --json output")
        ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks.md"))
        a = ap.parse_args(argv[1:])
        read = lambda f: json.loads(Path(f).read_text()) if f and Path(f).is_file() else None  # noqa: E731
        text = lambda f: Path(f).read_text().strip() if f and Path(f).is_file() else None  # noqa: E731
        print(report(read(a.inference), read(a.training), Path(a.out), read(a.features), text(a.allocator), text(a.peephole),
                     text(a.parallel), text(a.ray), read(a.install)))
        return None
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--files", type=int, default=20, help="utterances for the feature real-time factor")
    ap.add_argument("--stream-seconds", type=float, default=30.0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-onnx", action="store_true", help="leave out the ONNX Runtime rows")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    res = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": f"{platform.processor() or platform.machine()} "
           f"({_cpu_name()})", "cpu_count": os.cpu_count(), "torch": torch.__version__, "load_before": _load()}
    rec, res["model"] = _recognizer(args.checkpoint)
    rec.warmup()
    print(f"model: {res['model']}\nload average: {res['load_before']}")
    signals, res["audio"] = _speech(args.files)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # the 3-s clip: the longest utterance cut to exactly 3 s, decoded from a WAV file each time
        longest = max(signals, key=len)
        clip = np.zeros(48000, np.float32)
        clip[: min(48000, len(longest))] = longest[:48000]
        clip_path = tmp / "clip3s.wav"
        sf.write(clip_path, clip, 16000, subtype="PCM_16")
        with inference_threads(1):  # per core: one torch and one BLAS thread
            res["features"] = feature_rtf(signals, rec.config)
        for k, v in res["features"].items():
            if k != "audio_seconds":
                print(f"  feature RTF {k:<20} {v:.4f} ({1 / v:.1f}x real time)")
        onnx = None if args.no_onnx else _onnx_recognizer(rec, tmp)
        if onnx is not None:
            onnx.warmup()
            res["onnx_model"] = str(onnx.info.path)
        res["clip"] = clip_latency(rec, clip_path, args.runs, onnx)
        for k, v in res["clip"].items():
            if isinstance(v, dict):
                print(f"  {k:<28} p50 {v['p50_ms']:7.1f} ms  p95 {v['p95_ms']:7.1f} ms  (CPU p50 {v.get('cpu_p50_ms', float('nan')):6.1f} ms)")
        res["stream"] = streaming(rec, signals, args.stream_seconds, tmp)
        s = res["stream"]
        print(f"  streaming: {s['windows']} windows, latency mean {s['mean_latency_ms']:.1f} ms p95 {s['p95_latency_ms']:.1f} ms, "
              f"RTF {s['real_time_factor']:.3f}, keeps up: {s['keeps_up']}")
    res["load_after"] = _load()
    res["notes"] = NOTES
    print(f"load average after: {res['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return res


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
