"""Emotion recognition on new audio with a trained checkpoint.

>>> from amsnet_lib.serve.predict import Recognizer, predict
>>> df = predict(["clip.wav", "folder/"])                   # doctest: +SKIP  (shipped model)
>>> rec = Recognizer("my_model.pt")                          # doctest: +SKIP  (load once...)
>>> rec.predict("a.wav"); rec.predict("manifest.csv")        # doctest: +SKIP  (...use many times)

Every file is scored whole (:mod:`amsnet_lib.serve.windows`, :class:`~amsnet_lib.config.WindowConfig`):
decoded to 16 kHz mono, its leading and trailing silence trimmed, cut into the model's windows
(``duration`` seconds every ``hop``; one window, zero-padded, for a recording no longer than that),
and each window goes through the feature path of training (``amsnet_lib.data.features``): IS10 frame
features cut/padded to q frames with :func:`~amsnet_lib.data.features.pad_frames`, the log-mel
spectrogram of the window, standardised as in training (a checkpoint trained with
``normalisation="utterance"`` first standardises each window with its own statistics,
:func:`~amsnet_lib.data.features.standardise_utterance`; then every checkpoint's normaliser),
then batched through the model in inference mode; the windows' probabilities are pooled into the
file's. The IS10 frames come from :func:`~amsnet_lib.data.features.frame_features`, the function
the feature cache uses.

One bad input never stops a batch: it gets a row with ``error`` set and no label.
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.audio import AUDIO_EXTENSIONS, audio_info, inspect_audio, load_audio
from .checkpoint import CheckpointInfo, load_checkpoint
from .onnx_model import OnnxModel, is_onnx
from ..config import FeatureConfig, WindowConfig
from ..errors import AmsnetError, CheckpointError
from ..data.features import frame_features, log_mel_spectrogram, pad_frames, standardise_utterance
from .inputs import collect_items
from .windows import allowed_classes, cut_windows, effective_trim_db, pool, pool_files, restrict

__all__ = [
    "AUDIO_EXTENSIONS",
    "SHIPPED_CHECKPOINT",
    "SHIPPED_MODELS",
    "SHIPPED_ONNX",
    "Recognizer",
    "checkpoint_path",
    "inference_threads",
    "predict",
    "shipped_checkpoint",
]

#: The model shipped with the package (trained on all of EmoDB by scripts/train_shipped_model.py).
SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[1] / "pretrained" / "amsnet_emodb.pt"
#: The same model in ONNX form (``amsnet export --format onnx``), run by ONNX Runtime without torch.
SHIPPED_ONNX = SHIPPED_CHECKPOINT.with_suffix(".onnx")
#: The shipped models by the corpora they were trained on, the name ``--checkpoint`` takes: EmoDB's (the
#: default) and the model of both corpora (scripts/train_two_corpus_model.py; its card beside it says
#: which network it is and when to prefer it).
SHIPPED_MODELS = {"emodb": SHIPPED_CHECKPOINT, "emodb+ravdess": SHIPPED_CHECKPOINT.parent / "emodb+ravdess.pt"}
_MAKERS = {"emodb": "python -m scripts.train_shipped_model --recipe tuned",
           "emodb+ravdess": "python -m scripts.train_two_corpus_model"}

#: Extra audio read beyond ``duration``, exactly as the training feature path reads it.
_READ_MARGIN_S = 0.05


def _torch_installed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def shipped_checkpoint(name: str = "emodb") -> Path:
    """Path of the shipped model ``name`` (a key of :data:`SHIPPED_MODELS`); CheckpointError telling how
    to make it when absent.

    The checkpoint (``.pt``) where PyTorch is installed, else its ONNX form (``.onnx``; the
    inference install leaves torch out). Both give the same logits within 1e-4 (tested).
    """
    if name not in SHIPPED_MODELS:
        raise CheckpointError(name, f"is not a shipped model (those are {', '.join(SHIPPED_MODELS)})",
                              "name one of them, or give a checkpoint file")
    checkpoint = SHIPPED_MODELS[name]
    if not _torch_installed() and checkpoint.with_suffix(".onnx").is_file():
        return checkpoint.with_suffix(".onnx")
    if not checkpoint.is_file():
        raise CheckpointError(
            checkpoint, f"the shipped model {name!r} has not been trained yet (the file does not exist)",
            f"train it with `{_MAKERS[name]}` (hours on CPU), or pass your own checkpoint (--checkpoint FILE / "
            "checkpoint=...)")
    return checkpoint


def checkpoint_path(checkpoint: str | os.PathLike | None) -> Path:
    """The file ``checkpoint`` means: the default shipped model for None, a shipped model by its name
    (``"emodb+ravdess"``; a file of that name in the working folder wins), else the path as given."""
    if checkpoint is None:
        return shipped_checkpoint()
    path = Path(checkpoint).expanduser()
    if str(checkpoint) in SHIPPED_MODELS and not path.exists():
        return shipped_checkpoint(str(checkpoint))
    return path


# --------------------------------------------------------------------------- recognizer


class Recognizer:
    """A loaded model, ready for repeated predictions (load once, predict many times).

    Args:
        checkpoint: a ``.pt`` written by :func:`amsnet_lib.serve.checkpoint.save_checkpoint`, or
            a ``.onnx`` written by :func:`amsnet_lib.serve.export.export_onnx` (run by ONNX Runtime,
            no torch needed); default the shipped EmoDB model (:func:`shipped_checkpoint`).
        device: ``cpu`` (default) or ``cuda``.
        num_threads: torch intra-op threads used while predicting (default 1; the previous
            setting is restored after each call). One thread is the fast choice for the small
            matrices of inference: on a loaded machine, OpenMP threads waiting for a busy core
            made a batch-1 forward pass 100x slower with 2 threads than with 1 (measured:
            1.5 s vs 11 ms on the 2-core CI machine). Pass 0 to keep torch's setting. For an
            ONNX model: ONNX Runtime's intra-op threads.
        windowing: how a recording longer than the model's window is scored (hop, pooling, trimming);
            default :class:`~amsnet_lib.config.WindowConfig`'s.

    Attributes:
        model, info: the model (eval mode) and its :class:`~amsnet_lib.serve.checkpoint.CheckpointInfo`.
        config: the feature configuration of the checkpoint.
        classes: class names in output order.
        utterance_normalised: the checkpoint was trained with ``normalisation="utterance"`` (its
            experiment configuration says so, in a ``.pt`` and in an ONNX file's metadata alike): every
            window is standardised with its own statistics before the normaliser (:meth:`per_utterance`).
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None, device: str = "cpu",
                 num_threads: int | None = 1, *, model: torch.nn.Module | None = None,
                 info: CheckpointInfo | None = None, windowing: WindowConfig | None = None):
        self.num_threads = int(num_threads or 0)
        self.windowing = windowing if windowing is not None else WindowConfig()
        if model is not None and info is not None:
            self.model, self.info = model.to(device).eval(), info
        else:
            path = checkpoint_path(checkpoint)
            if is_onnx(path):  # ONNX Runtime: numpy in, numpy out, torch never imported
                self.model = OnnxModel(path, self.num_threads)
                self.info = self.model.info
            else:
                self.model, self.info = load_checkpoint(path, device)
        #: ``torch`` for a checkpoint, ``onnxruntime`` for an ONNX file
        self.runtime = getattr(self.model, "runtime", "torch")
        self.device = device
        self.config: FeatureConfig = self.info.features
        self.classes: list[str] = list(self.info.classes)
        self.has_alpha = self.info.model_name in ("amsnet", "late")
        self.inputs = tuple(getattr(self.model, "inputs", ("frames", "mask", "spec")))
        self.utterance_normalised = self.info.experiment.normalisation == "utterance"
        n = self.info.normaliser
        self._norm = [np.asarray(a, np.float32) for a in (n.frames_mean, n.frames_std, n.spec_mean, n.spec_std)]
        self._pool = None

    def warmup(self) -> "Recognizer":
        """Run one synthetic utterance through features and model (first-call costs: numpy's FFT and BLAS, openSMILE)."""
        c = self.config
        t = np.arange(c.n_samples, dtype=np.float32) / c.sample_rate
        self.predict_signal((0.1 * np.sin(2 * np.pi * 200.0 * t)).astype(np.float32))
        return self

    # ---- features

    @property
    def read_seconds(self) -> float:
        """Seconds read from the start of a file, as the training feature path reads them."""
        c = self.config
        return max(c.duration, c.q * c.frame_hop_ms / 1000.0) + _READ_MARGIN_S

    def load(self, path: str | os.PathLike, warnings: list[str] | None = None) -> np.ndarray:
        """Decode the part of a file the features use (16 kHz mono); AudioError if unusable;
        ``warnings`` receives the file's (:func:`~amsnet_lib.data.audio.load_audio`)."""
        return load_audio(path, sample_rate=self.config.sample_rate, max_duration=self.read_seconds, warnings=warnings)

    def features(self, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unnormalised ``frames (q, 76)``, ``mask (q,)``, ``spec (n_mels, T)`` of a signal, as in training."""
        c = self.config
        frames, mask = pad_frames(frame_features(signal, c)[: c.q], c.q)
        spec = log_mel_spectrogram(signal, c)
        return frames, mask, spec

    def per_utterance(self, frames: np.ndarray, mask: np.ndarray, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The label-free step before the normaliser, on raw arrays (single or batched): for a checkpoint
        trained with ``normalisation="utterance"``, each window standardised with its own statistics
        (:func:`~amsnet_lib.data.features.standardise_utterance`, the function training used); otherwise
        ``(frames, spec)`` unchanged. Adaptation (``--adapt``) starts from its output."""
        if not self.utterance_normalised:
            return frames, spec
        return standardise_utterance(frames, mask, spec, self.config)

    def normalise(self, frames: np.ndarray, mask: np.ndarray, spec: np.ndarray):
        """Raw arrays (single or batched) standardised as in training: :meth:`per_utterance`, then the
        checkpoint's :class:`~amsnet_lib.data.features.Normaliser`."""
        frames, spec = self.per_utterance(frames, mask, spec)
        fm, fs, sm, ss = self._norm
        f = (frames - fm) / fs
        f = np.where(mask[..., None], f, 0.0).astype(np.float32)
        s = ((spec - sm[:, None]) / ss[:, None]).astype(np.float32)
        return f, mask, s

    # ---- model

    def infer(self, frames: np.ndarray, mask: np.ndarray, spec: np.ndarray, normalised: bool = False):
        """Class probabilities ``(B, C)`` and fusion weights ``(B, 2)`` (NaN without fusion) of a batch."""
        if not normalised:
            frames, mask, spec = self.normalise(frames, mask, spec)
        if self.runtime == "onnxruntime":
            with inference_threads(self.num_threads):
                logits, alpha = self.model(frames, mask, spec)
            e = np.exp(logits - logits.max(axis=-1, keepdims=True))
            return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32), alpha.astype(np.float32)
        import torch

        batch = {"frames": torch.from_numpy(np.ascontiguousarray(frames)), "mask": torch.from_numpy(np.ascontiguousarray(mask)),
                 "spec": torch.from_numpy(np.ascontiguousarray(spec))}
        with torch.inference_mode(), inference_threads(self.num_threads):
            out = self.model(*(batch[k].to(self.device) for k in self.inputs))
            logits, alpha = out if isinstance(out, tuple) else (out, None)
            proba = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            alpha = np.full((len(proba), 2), np.nan, np.float32) if alpha is None else alpha.float().cpu().numpy()
        return proba, alpha

    def predict_signal(self, signal: np.ndarray, sample_rate: int | None = None, overlap: bool = True,
                       classes=None) -> dict:
        """Prediction for one recording: ``label``, ``probabilities`` (dict), ``alpha_frlm``, ``alpha_urlm``
        (means over the windows), ``windows`` (how many were pooled).

        The recording is scored whole, as :meth:`predict` scores a file (trimmed, the model's windows
        pooled; :attr:`windowing`). ``classes``: score over these of the model's classes only
        (:func:`~amsnet_lib.serve.windows.allowed_classes`; the others get probability 0).

        With ``overlap`` (default), a recording of one window and a two-branch model (AMSNet, concatenation, late fusion), openSMILE runs
        in a worker thread while this thread computes the spectrogram and URLM's embedding; then
        FRLM and the fusion head run. The result is the same as the model's ``forward`` (which
        is ``head(frlm.embed(...), urlm.embed(...))``), only sooner: openSMILE is the largest
        part of the latency and releases the GIL while it works.
        """
        signal = np.asarray(signal, dtype=np.float32).reshape(-1)
        if sample_rate is not None and sample_rate != self.config.sample_rate:
            import soxr

            signal = soxr.resample(signal, sample_rate, self.config.sample_rate, quality="HQ").astype(np.float32)
        index = allowed_classes(classes, self.classes)
        windows = cut_windows(signal, self.config, self.windowing)
        with inference_threads(self.num_threads):
            if overlap and self._two_branch and len(windows.segments) == 1:
                proba, alpha = self._infer_overlapped(windows.segments[0])
            else:
                f, m, s = (np.stack(a) for a in zip(*(self.features(w) for w in windows.segments)))
                proba, alpha = self.infer(f, m, s)
        proba = restrict(proba, index)
        out = self._record(pool(proba, self.windowing.pooling), alpha.mean(axis=0))
        out["windows"] = len(windows.segments)
        return out

    @property
    def _two_branch(self) -> bool:
        m = self.model
        return all(hasattr(m, k) for k in ("frlm", "urlm", "head")) and self.inputs == ("frames", "mask", "spec")

    def _infer_overlapped(self, signal: np.ndarray):
        from concurrent.futures import ThreadPoolExecutor

        import torch

        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amsnet-opensmile")
        c = self.config
        future = self._pool.submit(frame_features, signal, self.config)
        fm, fs, sm, ss = self._norm
        spec = log_mel_spectrogram(signal, c)
        with torch.inference_mode(), inference_threads(self.num_threads):
            if self.utterance_normalised:  # the spectrogram's statistics need the frames' count: wait for them
                frames, mask = pad_frames(future.result()[: c.q], c.q)
                frames, mask, spec = self.normalise(frames, mask, spec)
                h2 = self.model.urlm.embed(torch.from_numpy(spec)[None].to(self.device))
            else:
                spec = ((spec - sm[:, None]) / ss[:, None]).astype(np.float32)
                h2 = self.model.urlm.embed(torch.from_numpy(spec)[None].to(self.device))
                frames, mask = pad_frames(future.result()[: c.q], c.q)
                frames = np.where(mask[:, None], (frames - fm) / fs, 0.0).astype(np.float32)
            h1 = self.model.frlm.embed(torch.from_numpy(frames)[None].to(self.device), torch.from_numpy(mask)[None].to(self.device))
            out = self.model.head(h1, h2)
            logits, alpha = out if isinstance(out, tuple) else (out, None)
            proba = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            alpha = np.full((len(proba), 2), np.nan, np.float32) if alpha is None else alpha.float().cpu().numpy()
        return proba, alpha

    def _record(self, p: np.ndarray, a: np.ndarray) -> dict:
        return {
            "label": self.classes[int(np.argmax(p))],
            "probabilities": {c: float(v) for c, v in zip(self.classes, p)},
            "alpha_frlm": float(a[0]),
            "alpha_urlm": float(a[1]),
        }

    # ---- files

    def columns(self) -> list[str]:
        return (["path", "label"] + [f"p_{c}" for c in self.classes]
                + ["alpha_frlm", "alpha_urlm", "duration", "windows", "warnings", "error"])

    def window_columns(self) -> list[str]:
        return ["path", "window", "start", "end", "label"] + [f"p_{c}" for c in self.classes] + ["alpha_frlm", "alpha_urlm"]

    def predict(self, paths_or_manifest, batch_size: int = 32, progress: bool = True, adapt: str = "none",
                speakers: str | None = None, classes=None, return_windows: bool = False, data_dir=None):
        """Predict every file of files, folders, CSV manifests and named corpora; see :func:`predict`."""
        from tqdm.auto import tqdm

        from .adapt import adapt_features, check_mode, too_little_audio

        check_mode(adapt)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        index = allowed_classes(classes, self.classes)
        passed: list[tuple[str, str]] = []
        items = collect_items(paths_or_manifest, passed, data_dir)
        if speakers is not None:  # --speaker NAME: one speaker said all of it
            items = [dataclasses.replace(it, speaker=str(speakers)) for it in items]
        rows = [self._empty_row(p.path, p.error) for p in items]
        spans: dict[int, tuple[list, list]] = {}  # file -> (window starts, ends) in seconds
        scores: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # (file, window) -> (proba, alpha)
        pending: list[tuple[int, int, tuple]] = []
        adapted = {"mode": adapt, "groups": {}, "warnings": []}

        def flush():
            if not pending:
                return
            f = np.stack([x[2][0] for x in pending])
            m = np.stack([x[2][1] for x in pending])
            s = np.stack([x[2][2] for x in pending])
            try:
                if adapt == "none":
                    proba, alpha = self.infer(f, m, s)
                else:  # every window's features are in: statistics of all of them (or each speaker's)
                    spk = [items[i].speaker for i, _, _ in pending] if adapt == "speaker" else None
                    f, s = self.per_utterance(f, m, s)  # as in training; adaptation then blends the statistics
                    f, s, adapted["groups"] = adapt_features(self.info.normaliser, f, m, s, adapt, spk)
                    parts = [self.infer(f[k:k + batch_size], m[k:k + batch_size], s[k:k + batch_size], normalised=True)
                             for k in range(0, len(f), batch_size)]
                    proba, alpha = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            except ValueError:
                raise  # e.g. adapt='speaker' without speakers: the caller's to fix
            except Exception as error:  # pragma: no cover - a model failure is reported per file
                for i, _, _ in pending:
                    rows[i]["error"] = f"model failed: {type(error).__name__}: {error}"
                    spans.pop(i, None)
                pending.clear()
                return
            for (i, k, _), p, a in zip(pending, restrict(proba, index), alpha):
                if not np.all(np.isfinite(p)):  # never a label with NaN probabilities
                    rows[i]["error"] = ("the model gave non-finite probabilities (NaN or infinite). Fix: check the "
                                        "checkpoint (amsnet evaluate on audio it was trained for) and this file's features")
                    continue  # a window without scores: pool_files leaves the file's row with this error
                scores[(i, k)] = (p, a)
            pending.clear()

        if adapt == "speaker" and not any(it.speaker for it in items if not it.error):
            raise ValueError("adapt='speaker' needs to know who speaks: none of the inputs has a speaker. Fix: add a "
                             "`speaker` column to the manifest or table, pass speakers=NAME / --speaker NAME for audio "
                             "of one speaker, or use adapt='corpus'")
        bar = tqdm(total=len(items), desc="predict", unit="file", disable=not progress)
        try:
            with inference_threads(self.num_threads):
                # adaptation needs every window's features before the first prediction: one batch of all
                self._predict_items([(it.path, it.error) for it in items], rows, spans, pending, flush, bar,
                                    batch_size if adapt == "none" else None)
        finally:
            bar.close()
        window_rows = pool_files(rows, spans, scores, self.classes, self.windowing.pooling)
        adapted["warnings"] = too_little_audio(adapt, adapted["groups"])
        df = pd.DataFrame(rows, columns=self.columns())
        df.attrs["adapt"] = adapted
        df.attrs["classes"] = list(self.classes)
        df.attrs["scored_classes"] = list(self.classes) if index is None else [self.classes[i] for i in index]
        df.attrs["windowing"] = dataclasses.asdict(self.windowing) | {
            "trim_db": effective_trim_db(self.config, self.windowing), "window": self.config.duration}
        df.attrs["checkpoint"] = self.info.path
        df.attrs["failed"] = [(r["path"], r["error"]) for r in rows if r["error"]]
        df.attrs["skipped"] = passed
        if not return_windows:
            return df
        return df, pd.DataFrame(window_rows, columns=self.window_columns())

    def _predict_items(self, items, rows, spans, pending, flush, bar, batch_size) -> None:
        """Each file's windows' features into ``pending`` (flushed every ``batch_size`` windows; ``None``: at the end)."""
        read = (self.read_seconds if self.windowing.pooling == "first"
                and not effective_trim_db(self.config, self.windowing) else None)  # else the whole file
        for i, (path, err) in enumerate(items):
            if not err:
                try:
                    duration = audio_info(path)[0]
                    warns: list[str] = []
                    signal = load_audio(path, sample_rate=self.config.sample_rate, max_duration=read, warnings=warns)
                    warns += inspect_audio(signal)
                    windows = cut_windows(signal, self.config, self.windowing)
                    if self.windowing.pooling == "first" and duration > windows.ends[0] + _READ_MARGIN_S:
                        warns.append(f"truncated: only {windows.starts[0]:.2f}-{windows.ends[0]:.2f} s of "
                                     f"{duration:.1f} s are used (pooling 'first')")
                    feats = [self.features(w) for w in windows.segments]
                    rows[i]["duration"] = duration
                    rows[i]["warnings"] = "; ".join(warns)
                    spans[i] = (windows.starts, windows.ends)
                    pending.extend((i, k, f) for k, f in enumerate(feats))
                except AmsnetError as error:
                    rows[i]["error"] = f"{error.problem}. Fix: {error.fix}"
                except Exception as error:  # any other failure stays with its file
                    rows[i]["error"] = f"{type(error).__name__}: {error}"
            if batch_size is not None and len(pending) >= batch_size:
                flush()
            bar.update()
        flush()

    def _empty_row(self, path: str, error: str = "") -> dict:
        row = {"path": path, "label": None}
        row.update({f"p_{c}": math.nan for c in self.classes})
        row.update(alpha_frlm=math.nan, alpha_urlm=math.nan, duration=math.nan, windows=0, warnings="", error=error)
        return row


_BLAS = None


def _blas_controller():
    """threadpoolctl's controller of numpy's BLAS (threadpoolctl comes with scikit-learn); None if absent."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except Exception:  # pragma: no cover - threadpoolctl missing or broken: leave BLAS alone
            _BLAS = False
    return _BLAS or None


class inference_threads:
    """Temporarily set torch's intra-op threads AND numpy's BLAS threads to ``n`` (0: leave them).

    Both matter for inference on a small, shared machine: numpy's OpenBLAS (the mel filterbank
    product of the log-mel) keeps its worker threads spinning after a call, which took a core from
    the model that ran next (measured: model 79 ms after the log-mel vs 42 ms with one BLAS
    thread; the log-mel itself 11 ms vs 2.6 ms).
    """

    def __init__(self, n: int):
        self.n, self.old, self.blas = n, None, None

    def __enter__(self):
        if not self.n:
            return self
        # torch's threads only where torch is loaded (an ONNX model runs without it)
        torch = sys.modules.get("torch")
        if torch is not None and torch.get_num_threads() != self.n:
            self.old = torch.get_num_threads()
            torch.set_num_threads(self.n)
        ctl = _blas_controller()
        if ctl is not None:
            self.blas = ctl.limit(limits=self.n, user_api="blas")
        return self

    def __exit__(self, *exc):
        if self.blas is not None:
            self.blas.restore_original_limits()
            self.blas = None
        if self.old is not None:
            sys.modules["torch"].set_num_threads(self.old)
            self.old = None
        return False


_CACHE: dict = {}


def _cached_recognizer(checkpoint) -> Recognizer:
    """One Recognizer per checkpoint file (and modification time) per process."""
    path = checkpoint_path(checkpoint)
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return Recognizer(path)  # raises the CheckpointError naming the problem
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = Recognizer(path)
    return _CACHE[key]


def _with_windowing(rec: Recognizer, windowing: WindowConfig | None) -> Recognizer:
    """``rec``, or a shallow copy scoring recordings with ``windowing`` (the model is shared)."""
    if windowing is None or windowing == rec.windowing:
        return rec
    import copy

    out = copy.copy(rec)
    out.windowing = windowing
    return out


def predict(paths_or_manifest, checkpoint: str | os.PathLike | Recognizer | None = None, batch_size: int = 32,
            progress: bool = True, adapt: str = "none", speakers: str | None = None, *, classes=None,
            windowing: WindowConfig | None = None, return_windows: bool = False, data_dir=None):
    """Emotion of every audio file in files, folders, CSV manifests and named corpora, each scored whole.

    Args:
        paths_or_manifest: a path or a list of paths: audio files (any sample rate or channel
            count libsndfile reads; resampled to 16 kHz mono), folders (searched recursively for
            the files named as audio, :data:`~amsnet_lib.data.audio.AUDIO_EXTENSIONS`), CSV manifests
            with a ``path`` column (relative paths are relative to the manifest), or a named corpus
            (``"emodb"``, ``"ravdess"``, ``"iemocap"``: every utterance, with its speaker; ``data_dir`` its
            folder); or a DataFrame with a ``path`` column (a corpus table).
        checkpoint: checkpoint file or a :class:`Recognizer`; default the shipped EmoDB model.
            The loaded model is kept for the next call with the same file.
        batch_size: utterances per forward pass.
        progress: tqdm progress bar over files.
        adapt: unsupervised adaptation (:mod:`amsnet_lib.serve.adapt`): ``none`` (the training
            statistics), ``corpus`` (standardise with the statistics of all the files given,
            blended with the training statistics by n / (n + 10)), ``speaker`` (each speaker's files
            with their own statistics). No label is read. For a checkpoint trained with
            ``normalisation="utterance"`` each window is first standardised with its own statistics
            (:meth:`Recognizer.per_utterance`) and adaptation blends the statistics of the result,
            which leaves it little to change (:mod:`amsnet_lib.serve.adapt`).
        speakers: for ``speaker``: the one speaker of all the files; default the ``speaker`` column of a
            manifest or DataFrame.
        classes: score over these of the model's classes only (names or ``"a,b,c"``): each window's
            probabilities are renormalised over them, the others set to 0 (the audio is known to hold
            none of those). Default: all the model's classes.
        windowing: hop, pooling and trimming of whole recordings (:class:`~amsnet_lib.config.WindowConfig`);
            default the recogniser's (``WindowConfig()``).
        return_windows: also return the per-window table.
        data_dir: folder of a named corpus.

    Returns:
        One row per file, in input order: ``path``, ``label`` (None on error), ``p_<class>``
        for every class (pooled over the file's windows), ``alpha_frlm``, ``alpha_urlm`` (fusion weights,
        mean over the windows: AMSNet's α, late fusion's fixed w and 1 − w; NaN for the other models),
        ``duration`` (s, the whole file), ``windows`` (how many were pooled), ``warnings`` (``silent``,
        ``clipped``, ``over full scale ...``, ``truncated file ...``, ``truncated: ...``; ``; ``-separated),
        ``error`` (empty when fine).
        ``df.attrs["failed"]`` lists ``(path, error)`` of the files that failed;
        ``df.attrs["skipped"]`` ``(path, reason)`` of the files folder scans passed over (not named as audio);
        ``df.attrs["adapt"]``: ``mode``, ``groups`` (statistics group -> windows) and ``warnings``
        (groups with less audio than adaptation was measured to need); ``df.attrs["windowing"]``: the
        hop, pooling, trimming level and window length used; ``df.attrs["scored_classes"]``.
        With ``return_windows``: ``(files, windows)``, ``windows`` one row per window: ``path``,
        ``window`` (0-based), ``start``, ``end`` (s in the file), ``label``, ``p_<class>``, ``alpha_*``.

    Raises:
        CheckpointError: the checkpoint is missing or invalid (the shipped one: how to train it).
        ValueError: ``adapt`` is unknown, or ``speaker`` without any speaker.
    """
    rec = checkpoint if isinstance(checkpoint, Recognizer) else _cached_recognizer(checkpoint)
    return _with_windowing(rec, windowing).predict(paths_or_manifest, batch_size=batch_size, progress=progress,
                                                   adapt=adapt, speakers=speakers, classes=classes,
                                                   return_windows=return_windows, data_dir=data_dir)
