"""AMSNet's two input streams (paper §4.2), a content-addressed cache, and normalisation.

- Frame level: openSMILE IS10 low-level descriptors (38) and their deltas (38) = 76 dims per
  10 ms frame, padded or cut to q frames, with a mask of the valid ones.
- Utterance level: log-mel spectrogram of the utterance padded with silence or cut to a fixed
  duration (16 kHz, Hann 800, STFT 800, hop 400).

Each utterance is computed once per (audio content, feature configuration, library versions)
and stored in an on-disk cache; see :func:`extract_features`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import signal
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path, check_writable
from .._procs import die_with_parent
from .audio import inspect_audio, load_audio
from .normalisation import (UTTERANCE_STD_FLOOR, Normaliser, speech_spec_frames, standardise_per_speaker,
                            standardise_per_utterance, standardise_utterance)
from .spectral import log_mel_spectrogram, silence_span, trim_silence
from ..errors import AudioError
from ..config import FRAME_DIM, FeatureConfig, identity
from ..paths import default_cache_dir

__all__ = [
    "Features",
    "Normaliser",
    "extract_features",
    "frame_features",
    "log_mel_spectrogram",
    "silence_span",
    "trim_silence",
    "standardise_per_speaker",
    "standardise_per_utterance",
    "standardise_utterance",
    "speech_spec_frames",
    "UTTERANCE_STD_FLOOR",
    "default_cache_dir",
]

_CACHE_FORMAT = 1
_BUNDLE_FORMAT = 1


def _json_default(o):
    if isinstance(o, np.generic):  # numpy scalars in a table's attrs
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def frame_features(signal: np.ndarray, config: FeatureConfig = FeatureConfig(), *, two_pass: bool = False) -> np.ndarray:
    """IS10 frame-level features of one utterance.

    Args:
        signal: mono audio at ``config.sample_rate``, float32 ``(n_samples,)``.
        config: feature configuration; only the sample rate is used here.
        two_pass: the reference path, ``opensmile.Smile`` once per level (what the one run below
            is checked and timed against).

    Returns:
        float32 ``(n_frames, 76)``: 38 LLDs then their 38 deltas, one row per 10 ms frame,
        uncut and unpadded (see :func:`pad_frames`); NaN and inf (openSMILE's output for
        audio shorter than one frame) become 0.

    One openSMILE run fills both levels: ``opensmile.Smile`` would need two runs (one per
    ``feature_level``) although the IS10 configuration computes LLDs and deltas in every run.
    The result equals the two-run one element for element (tested); on an opensmile whose
    internals differ, the two-run path is used.
    """
    extractor = None if two_pass else _single_pass(config.sample_rate)
    with _sigint_deferred():
        out = extractor(signal) if extractor is not None else _frame_features_two_pass(signal, config)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


@contextlib.contextmanager
def _sigint_deferred():
    """Hold Ctrl-C back while openSMILE runs, and deliver it as soon as openSMILE returns.

    openSMILE calls back into Python (ctypes) with every frame. A KeyboardInterrupt raised inside
    such a callback cannot propagate: ctypes prints "Exception ignored", the frame is dropped and
    extraction goes on, so a Ctrl-C gave a run that finished with exit 0 and wrong features
    (issue 41). Here SIGINT only records that it came; when the run is over the previous handler
    gets it (Python's raises KeyboardInterrupt; an ignored SIGINT stays ignored). One utterance's
    run takes milliseconds, so Ctrl-C still stops at once. Signals reach only the main thread's
    handler, so elsewhere (a worker thread) there is nothing to defer.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):
        yield
        return
    caught = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            if callable(previous):
                previous(signal.SIGINT, caught[0])
            else:  # SIG_DFL: end the process as the signal would have
                signal.raise_signal(signal.SIGINT)


def _frame_features_two_pass(signal: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The reference: ``opensmile.Smile`` once per level, aligned on frame start time."""
    lld, lld_de = _smile("lld"), _smile("lld_de")
    with warnings.catch_warnings():
        # opensmile warns and returns NaN rows for segments shorter than one frame; load_audio
        # already refuses audio that short, and any NaN left is zeroed by the caller.
        warnings.simplefilter("ignore", UserWarning)
        a = lld.process_signal(signal, config.sample_rate)
        d = lld_de.process_signal(signal, config.sample_rate)
    # lld_de may end with an extra frame or two at the same start time: align on start time.
    a = a.droplevel("end")
    d = d.droplevel("end")
    d = d[~d.index.duplicated(keep="first")].reindex(a.index)
    return np.concatenate([a.to_numpy(np.float32), d.to_numpy(np.float32)], axis=1)


def pad_frames(frames: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad or cut ``(n, 76)`` frames to ``(q, 76)``; returns them and the bool mask ``(q,)``."""
    out = np.zeros((q, frames.shape[1]), dtype=np.float32)
    n = min(q, len(frames))
    out[:n] = frames[:n]
    mask = np.zeros(q, dtype=bool)
    mask[: max(n, 1)] = True  # at least one valid frame keeps attention pooling defined
    return out, mask


@dataclass
class Features:
    """Both streams of a corpus, index-aligned with its table.

    Attributes:
        frames: float32 ``(N, q, 76)``, zero on padded frames.
        mask: bool ``(N, q)``, True on valid frames.
        spec: float32 ``(N, n_mels, T)``.
        labels: int64 ``(N,)`` indices into ``classes``.
        classes: class names in the corpus' fixed order.
        table: the corpus table (see :func:`amsnet_lib.load_corpus`).
        config: the feature configuration used.
        cache_hits: utterances read from the cache rather than computed.
        warnings: ``(path, warning)`` pairs, e.g. silent or clipped audio.
    """

    frames: np.ndarray
    mask: np.ndarray
    spec: np.ndarray
    labels: np.ndarray
    classes: list[str]
    table: pd.DataFrame
    config: FeatureConfig
    cache_hits: int = 0
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def without_streams(cls, table: pd.DataFrame, config: FeatureConfig | None = None) -> "Features":
        """A corpus's table and labels with empty streams (``frames (N, 0, 76)``, ``spec (N, n_mels, 0)``):
        for what reads the audio itself (the classic baselines' functionals,
        :mod:`amsnet_lib.data.functionals`), so that no AMSNet stream is extracted for nothing."""
        config = config or FeatureConfig.for_corpus(table.attrs.get("corpus", ""))
        classes, labels = _class_labels(table)
        n = len(table)
        return cls(frames=np.zeros((n, 0, FRAME_DIM), np.float32), mask=np.zeros((n, 0), bool),
                   spec=np.zeros((n, config.n_mels, 0), np.float32), labels=labels, classes=classes,
                   table=table.reset_index(drop=True), config=config)

    def subset(self, index) -> "Features":
        """The utterances at positional ``index`` (array of ints or bool mask)."""
        index = np.asarray(index)
        return dataclasses.replace(
            self,
            frames=self.frames[index],
            mask=self.mask[index],
            spec=self.spec[index],
            labels=self.labels[index],
            table=self.table.iloc[index].reset_index(drop=True),
        )

    def save(self, path: str | os.PathLike, *, precision: str = "float32") -> Path:
        """Write both streams, labels and the corpus table to one ``.npz`` file (atomically).

        A saved bundle trains without the audio or openSMILE (:meth:`load`, and
        ``amsnet train --features FILE``): extract once, train on another machine (a GPU
        server, a cluster node).

        Args:
            path: the file to write (``.npz``).
            precision: ``"float32"`` (lossless; about 60 MB for EmoDB) or ``"float16"``
                (half the size, values rounded to 11 significant bits, ~3 decimal digits: for
                moving a corpus where size matters; a model trained on it is not trained on
                exactly the same numbers).

        Returns:
            The path written. Padded frames are not stored (the mask restores them).
        """
        if precision not in ("float32", "float16"):
            raise ValueError(f"precision must be 'float32' or 'float16', got {precision!r}")
        table = self.table.reset_index(drop=True)
        meta = {
            "format": _BUNDLE_FORMAT,
            "precision": precision,
            "classes": list(self.classes),
            "config": dataclasses.asdict(self.config),
            # column by column, so strings stay strings (speaker "03") and None stays None
            "table": {c: table[c].tolist() for c in table.columns},
            "dtypes": {c: str(table[c].dtype) for c in table.columns},
            "attrs": table.attrs,
            "warnings": [list(w) for w in self.warnings],
        }
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                frames=self.frames[self.mask].astype(precision),
                mask=self.mask,
                spec=self.spec.astype(precision),
                labels=self.labels,
                meta=np.array(json.dumps(meta, default=_json_default)),
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Features":
        """A bundle written by :meth:`save`, as float32 arrays.

        Raises:
            AmsnetError: the file is missing, not a bundle, or from another format version;
                the message names the file and the fix.
        """
        from ..errors import AmsnetError

        path = Path(path)
        fix = "write it again with `amsnet features --save FILE` (Features.save) from the corpus"
        if not path.is_file():
            raise AmsnetError(path, "does not exist (no saved feature bundle there)", fix)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                valid, mask, spec, labels = z["frames"], z["mask"], z["spec"], z["labels"]
        except Exception as e:  # a truncated or foreign file
            raise AmsnetError(path, f"is not a readable feature bundle ({type(e).__name__}: {e})", fix) from e
        if meta.get("format") != _BUNDLE_FORMAT:
            raise AmsnetError(path, f"is a feature bundle of format {meta.get('format')!r}, this amsnet reads {_BUNDLE_FORMAT}", fix)
        frames = np.zeros(mask.shape + (valid.shape[1],), dtype=np.float32)
        frames[mask] = valid
        dtypes = meta.get("dtypes", {})
        table = pd.DataFrame({c: pd.Series(v, dtype=object if dtypes.get(c) == "object" else None)
                              for c, v in meta["table"].items()})
        table.attrs.update(meta["attrs"])
        if meta.get("precision", "float32") != "float32":  # rounded: runs trained on them record it (training.py)
            table.attrs["feature_precision"] = meta["precision"]
        return cls(
            frames=frames,
            mask=mask,
            spec=spec.astype(np.float32),
            labels=labels.astype(np.int64),
            classes=list(meta["classes"]),
            table=table,
            config=FeatureConfig(**meta["config"]),
            cache_hits=0,
            warnings=[tuple(w) for w in meta["warnings"]],
        )

    def summary(self) -> dict:
        """Counts and shapes, as printed by ``amsnet features``."""
        t = self.table
        return {
            "utterances": len(self),
            "classes": {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)},
            "speakers": {str(k): int(v) for k, v in t["speaker"].value_counts().sort_index().items()},
            "total_duration_s": float(t["duration"].sum()),
            "frames_shape": list(self.frames.shape),
            "frame_dims": int(self.frames.shape[2]),
            "spec_shape": list(self.spec.shape),
            "cache_hits": int(self.cache_hits),
        }


# --------------------------------------------------------------------------- cache


#: The spectrogram's reference: :mod:`.spectral` returns librosa 0.11.0's numbers bit for bit
#: (tests/test_spectral.py), so the cache key keeps naming it and every entry made with it stays valid.
_SPECTROGRAM_REFERENCE = "0.11.0"


def _versions() -> dict:
    import opensmile

    return {"opensmile": opensmile.__version__, "librosa": _SPECTROGRAM_REFERENCE, "format": _CACHE_FORMAT}


def _cache_namespace(config: FeatureConfig) -> str:
    """Cache key part shared by all utterances: configuration (its identity: a field added at its
    default leaves every existing entry valid) and library versions."""
    payload = json.dumps({"config": identity(config), "versions": _versions()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _content_hash(path: str) -> str:
    import stat

    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read forever; load_audio names it
        raise OSError(f"{path} is not a regular file")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _array_digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _read_entry(path: Path, key: str, names: tuple[str, ...] = ("frames", "spec")) -> tuple | None:
    """A cached entry: its arrays ``names`` then its warnings, or None when it is absent, corrupt or
    stale (written for another key)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = tuple(z[n] for n in names)
            meta = json.loads(str(z["meta"]))
        if meta.get("key") != key or meta.get("digest") != _array_digest(*arrays):
            return None
        return (*arrays, list(meta.get("warnings", [])))
    except Exception:  # truncated zip, bad json, missing array: recompute
        return None


def _write_entry(path: Path, key: str, arrays: dict[str, np.ndarray], warns: list[str]) -> None:
    """Atomic write: a reader sees the old entry or the complete new one, never a partial file.

    A folder where the entry belongs is a corrupt entry like any other (:func:`_read_entry`
    found nothing there): it is removed, or every run would fail to replace it.
    """
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    # the digest covers the arrays in their order (frames, spec), as entries written before did
    meta = json.dumps({"key": key, "digest": _array_digest(*arrays.values()), "warnings": warns})
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays, meta=np.array(meta))


_SMILES: dict = {}


def _smile(level: str):
    """One openSMILE extractor per process and level (building it parses the config files)."""
    if level not in _SMILES:
        import opensmile

        _SMILES[level] = opensmile.Smile(feature_set=opensmile.FeatureSet.IS10, feature_level=level)
    return _SMILES[level]


_SINGLE_PASS: dict = {}


def _single_pass(sample_rate: int) -> "_SinglePassIS10 | None":
    """One single-run extractor per process and sample rate; None where it cannot be built."""
    if sample_rate not in _SINGLE_PASS:
        extractor = _SinglePassIS10(sample_rate)
        _SINGLE_PASS[sample_rate] = extractor if extractor.options is not None else None
    return _SINGLE_PASS[sample_rate]


class _SinglePassIS10:
    """IS10 LLDs and deltas from ONE openSMILE run: a sink on each level of the same run.

    Built from the options ``opensmile.Smile`` itself uses, with its external audio source
    and a multi-level external sink; ``options`` stays None when this opensmile lays out its
    configuration differently, and :func:`frame_features` then runs ``Smile`` twice.
    Thread-safe: every call builds its own openSMILE instance.
    """

    def __init__(self, sample_rate: int):
        self.options = None
        try:
            from opensmile.core.config import config as oc
            from opensmile.core.lib import OpenSMILE  # noqa: F401

            ref = _smile("lld")
            root = ref.default_config_root
            opts = dict(ref.options)
            opts.update({
                "sink": os.path.join(root, oc.EXTERNAL_OUTPUT_MULTI_CONFIG),
                "sinkLevelLLD": "lld",
                "sinkLevelFunc": "lld_de",
                "bufferModeRbConf": os.path.join(root, "shared/BufferModeRb.conf.inc"),
                "frameModeFunctionalsConf": opts.get("frameModeFunctionalsConf")
                or os.path.join(root, "shared/FrameModeFunctionals.conf.inc"),
                "source": os.path.join(root, oc.EXTERNAL_INPUT_CONFIG),
                "sampleRate": int(sample_rate),
                "nBits": 16,
            })
            if not all(os.path.exists(opts[k]) for k in ("sink", "bufferModeRbConf", "source")):
                raise FileNotFoundError("openSMILE configuration files not found")
            self._config_path = ref.config_path
            self._loglevel, self._logfile, self._verbose = ref.loglevel, ref.logfile, ref.verbose
            self._source, self._sinks = oc.EXTERNAL_SOURCE_COMPONENT, ("extsinklld", "extsinkfunc")
            self.options = opts
        except Exception:  # pragma: no cover - other opensmile layouts: the two-run path
            self.options = None

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        """float32 ``(n_frames, 76)``, NaN where a delta frame is missing (as the two-run path)."""
        from opensmile.core.lib import OpenSMILE

        # The conversion opensmile.Smile.process_signal applies (float * 32768 -> int16).
        x = np.array(signal, dtype=np.float32, copy=True).reshape(-1)
        x *= 32768
        pcm = x.astype(np.int16)
        lld, t_lld, de, t_de = [], [], [], []
        smile = OpenSMILE()
        smile.initialize(config_file=self._config_path, options=self.options, loglevel=self._loglevel,
                         log_file=self._logfile, debug=self._verbose)
        try:
            smile.external_sink_set_callback_ex(self._sinks[0], lambda d, m: (lld.append(d.copy()), t_lld.append(m.time)))
            smile.external_sink_set_callback_ex(self._sinks[1], lambda d, m: (de.append(d.copy()), t_de.append(m.time)))
            smile.external_audio_source_write_data(self._source, bytes(pcm))
            smile.external_audio_source_set_eoi(self._source)
            smile.run()
        finally:
            smile.free()
        if not lld:  # shorter than one frame: Smile gives one all-NaN row
            return np.full((1, FRAME_DIM), np.nan, dtype=np.float32)
        a = np.vstack(lld).astype(np.float32)
        # lld_de may end with an extra frame or two at the same start time: align on start
        # time (first occurrence), as the two-run path does.
        by_time = {}
        for t, row in zip(t_de, de):
            by_time.setdefault(round(float(t), 6), row)
        nan = np.full(a.shape[1], np.nan, dtype=np.float32)
        d = np.vstack([by_time.get(round(float(t), 6), nan).reshape(-1) for t in t_lld]).astype(np.float32)
        return np.concatenate([a.reshape(len(t_lld), -1), d], axis=1)


# One BLAS thread for extraction, in this process and in every worker: the mel filterbank's
# matrix product is a float32 reduction whose rounding may depend on how BLAS splits it over
# threads (about 1e-6 on some machines, none measured on the 2-core development one), and the
# cache keeps whichever process computed an entry first. Pinned, the cache holds the same bits
# whoever fills it; the product is small, so one thread costs nothing measurable.
_EXTRACTION_THREADS = 1


def _pin_extraction_threads():
    """Limit every BLAS and OpenMP library of this process to :data:`_EXTRACTION_THREADS` threads.

    Returns threadpoolctl's limiter (a context manager that restores the previous limits).
    A library loaded after the call would keep its own thread count, and numpy and scipy load
    their OpenBLAS copies on first use: one tiny spectrogram is
    computed first, once per process, so that every library extraction uses is loaded.
    """
    from threadpoolctl import threadpool_limits

    global _LIBRARIES_LOADED
    if not _LIBRARIES_LOADED:
        log_mel_spectrogram(np.zeros(1600, dtype=np.float32), FeatureConfig(duration=0.1))
        _LIBRARIES_LOADED = True
    return threadpool_limits(limits=_EXTRACTION_THREADS)


_LIBRARIES_LOADED = False


def _extraction_worker_init() -> None:
    """Initializer of the extraction pool's workers: they stop with their parent (a killed
    ``amsnet features`` or ``train`` would otherwise leave them waiting forever on the pool's
    pipe), leave Ctrl-C to their parent (which stops them: :func:`_stop_pool`; a worker's own
    KeyboardInterrupt would only fail its current utterance and go on to the next) and compute
    with :data:`_EXTRACTION_THREADS` BLAS threads."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _WORKER_LIMITS
    _WORKER_LIMITS = _pin_extraction_threads()  # kept for the worker's lifetime


_WORKER_LIMITS = None


def _compute_streams(path: str, config: FeatureConfig, skip_bad: bool = True) -> tuple:
    """Both AMSNet streams of one file: ``(frames (n<=q, 76), spec (n_mels, T), warnings)``, or
    ``(None, None, reason)`` for a file that cannot be used (``skip_bad``; else its AudioError is raised)."""
    # Only the first `duration` seconds are ever used by either stream (the frame stream is cut
    # to q frames of the same span), so longer files are never read whole.
    span = max(config.duration, config.q * config.frame_hop_ms / 1000.0)
    warns: list[str] = []
    try:
        # with trimming the window starts where the speech does: the whole file is read
        signal = load_audio(path, sample_rate=config.sample_rate, max_duration=None if config.trim_db else span + 0.05,
                            warnings=warns)
    except AudioError as error:
        if not skip_bad:
            raise
        return None, None, error.problem
    warns += inspect_audio(signal)
    signal = trim_silence(signal, config)
    return frame_features(signal, config)[: config.q], log_mel_spectrogram(signal, config), warns


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop an extraction pool at once: queued utterances cancelled, workers terminated.

    ``shutdown`` alone waits for every utterance already handed to the workers (``map`` hands
    them all out at once), which kept an interrupted ``amsnet features`` running to the end.
    """
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join(timeout=10)


def _compute_one(args) -> tuple:
    """One file's entry computed (and written to the cache when it has a place there); an unusable
    file (``compute`` gave ``None`` arrays and its reason) is not cached."""
    compute, path, names, entry_path, key = args
    *arrays, warns = compute(path)
    if arrays[0] is None:
        return (*arrays, warns)
    if entry_path is not None:
        _write_entry(Path(entry_path), key, dict(zip(names, arrays)), warns)
    return (*arrays, warns)


def cached_per_file(paths: list[str], namespace: str, compute, names: tuple[str, ...], *,
                    cache_dir: str | os.PathLike | None = None, use_cache: bool = True, n_jobs: int | None = None,
                    progress: bool = True, desc: str = "features") -> tuple[list[tuple], int]:
    """``compute(path)`` for every file, through the content-addressed feature cache.

    The cache's one mechanism, shared by :func:`extract_features` and
    :func:`amsnet_lib.data.functionals.extract_functionals`: an entry lives at
    ``<cache>/<namespace>/<sha[:2]>/<sha>.npz``, ``sha`` the SHA-256 of the file's bytes, so a
    renamed or moved file is still found and an edited one is computed again; ``namespace`` hashes
    everything else that decides the numbers (configuration, library versions). Entries are written
    atomically by whichever process computed them, so an interrupted run (Ctrl-C) keeps every
    finished entry and the next run computes only the rest.

    Args:
        paths: audio files.
        namespace: the cache folder of this kind of entry.
        compute: ``compute(path) -> (*arrays, warnings)``, picklable (a module-level function or a
            ``functools.partial`` of one): it runs in the worker processes.
        names: the names of the arrays ``compute`` returns, in order.
        cache_dir: default :func:`default_cache_dir`.
        use_cache: read and write the cache.
        n_jobs: worker processes for the files not in the cache; default all cores. Each computes
            with one BLAS thread, so the numbers do not depend on it.
        progress: a tqdm bar named ``desc``.

    Returns:
        ``(results, hits)``: ``results[i] = (*arrays, warnings)`` of ``paths[i]``; ``hits`` the files
        read from the cache.

    Raises:
        AmsnetError: files to compute and a cache folder that cannot be written, before any is computed.
    """
    from tqdm.auto import tqdm

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    results: list = [None] * len(paths)
    todo = []
    hits = 0
    for i, p in enumerate(paths):
        entry = key = None
        if use_cache:
            try:
                digest = _content_hash(p)
            except OSError:
                digest = None  # load_audio in the worker raises the proper AudioError
            if digest is not None:
                key = f"{namespace}/{digest}"
                entry = root / namespace / digest[:2] / f"{digest}.npz"
                cached = _read_entry(entry, key, names)
                if cached is not None:
                    results[i] = cached
                    hits += 1
                    continue
        todo.append((i, (compute, p, names, None if entry is None else str(entry), key)))

    if todo:
        if use_cache:  # found now, not after the first computed entry fails to be written
            check_writable(root, "feature cache", "pass --cache-dir (or set AMSNET_CACHE_DIR) to a folder you can "
                           "write, or turn the cache off (use_cache=False)", folder=True)
        jobs = n_jobs or os.cpu_count() or 1
        bar = tqdm(total=len(todo), desc=desc, unit="utt", disable=not progress)
        if jobs == 1 or len(todo) < 4:
            with _pin_extraction_threads():
                for i, args in todo:
                    results[i] = _compute_one(args)
                    bar.update()
        else:
            pool = ProcessPoolExecutor(max_workers=jobs, initializer=_extraction_worker_init)
            try:
                chunks = max(1, len(todo) // (jobs * 8))
                for (i, _), res in zip(todo, pool.map(_compute_one, [a for _, a in todo], chunksize=chunks)):
                    results[i] = res
                    bar.update()
            except BaseException:
                _stop_pool(pool)  # Ctrl-C or an error: now, not after every utterance still queued
                raise
            pool.shutdown()
        bar.close()
    return results, hits


def _class_labels(table: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """The corpus's classes (``attrs["classes"]``, else the sorted labels) and int64 ``(N,)`` labels."""
    classes = list(table.attrs.get("classes") or sorted(table["label"].unique()))
    unknown = sorted(set(table["label"]) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the classes {classes}")
    return classes, np.array([classes.index(lab) for lab in table["label"]], dtype=np.int64)


def extract_features(
    table: pd.DataFrame,
    config: FeatureConfig | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    n_jobs: int | None = None,
    progress: bool = True,
    skip_bad: bool = True,
) -> Features:
    """Both AMSNet streams for every utterance of a corpus table.

    Args:
        table: corpus table (``path`` and ``label`` columns; ``attrs["classes"]`` gives the class
            order, else the sorted labels).
        config: feature configuration; default :meth:`FeatureConfig.for_corpus` of the table's
            corpus.
        cache_dir: where entries live; default :func:`default_cache_dir`.
        use_cache: read and write the cache.
        n_jobs: worker processes for the utterances not in the cache; default all cores. The
            numbers do not depend on it: extraction always computes with one BLAS thread.
        progress: show a tqdm progress bar.
        skip_bad: leave out a file that turns out unusable only when decoded (NaN samples, a
            decoding error past its header), as :func:`~amsnet_lib.data.corpora.load_corpus` leaves
            out the files whose header is unusable: the features' table lacks its row and
            ``attrs["skipped"]`` lists it with the reason, after the loader's. ``predict`` and
            ``evaluate`` report such a file as failed and go on: one rule for every command.
            ``False``: its AudioError is raised.

    Returns:
        :class:`Features` aligned with their ``table``: ``table`` without the files left out.

    Raises:
        AudioError: a file that cannot be decoded, with ``skip_bad=False``, naming it.
        AmsnetError: utterances to compute and a cache folder that cannot be written, before
            any is computed.
    """
    if config is None:
        config = FeatureConfig.for_corpus(table.attrs.get("corpus", ""))
    classes, labels = _class_labels(table)
    paths = [str(p) for p in table["path"]]
    results, hits = cached_per_file(paths, _cache_namespace(config),
                                    functools.partial(_compute_streams, config=config, skip_bad=skip_bad),
                                    ("frames", "spec"), cache_dir=cache_dir, use_cache=use_cache, n_jobs=n_jobs,
                                    progress=progress, desc="features")

    unusable = [(paths[i], r[2]) for i, r in enumerate(results) if r[0] is None]
    if unusable:
        keep = [i for i, r in enumerate(results) if r[0] is not None]
        attrs = dict(table.attrs)
        attrs["skipped"] = [tuple(s) for s in attrs.get("skipped") or []] + unusable
        table = table.iloc[keep].reset_index(drop=True)
        table.attrs = attrs
        results, paths, labels = [results[i] for i in keep], [paths[i] for i in keep], labels[keep]
    q = config.q
    frames = np.zeros((len(paths), q, FRAME_DIM), dtype=np.float32)
    mask = np.zeros((len(paths), q), dtype=bool)
    spec = np.stack([r[1] for r in results]) if results else np.zeros((0, config.n_mels, config.spec_frames), np.float32)
    warns = []
    for i, (f, _, w) in enumerate(results):
        frames[i], mask[i] = pad_frames(f, q)
        warns.extend((paths[i], x) for x in w)
    return Features(
        frames=frames,
        mask=mask,
        spec=spec,
        labels=labels,
        classes=classes,
        table=table.reset_index(drop=True),
        config=config,
        cache_hits=hits,
        warnings=warns,
    )
