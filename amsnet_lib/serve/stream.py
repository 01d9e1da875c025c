"""Sliding-window emotion recognition on a stream: a long file, raw PCM on stdin, or a microphone.

Audio arrives in blocks, is resampled incrementally to 16 kHz mono (``soxr.ResampleStream``),
and goes into a ring buffer that holds exactly one window. Every ``hop`` seconds, as soon as a
window ``[start, start + window]`` is complete, its features are computed as in training and the
model predicts it; the prediction carries the timestamps and the processing latency of that hop.
Memory is bounded by the window (plus one input block), whatever the length of the input, so
files far larger than memory work.

>>> from amsnet_lib.serve.stream import StreamRecognizer, file_chunks
>>> sr = StreamRecognizer(window=3.0, hop=0.5)                     # doctest: +SKIP
>>> for p in sr.run(file_chunks("long.flac")):                      # doctest: +SKIP
...     print(p.start, p.end, p.label, p.latency_ms)
>>> sr.summary()                                                    # doctest: +SKIP

Windowing: windows end at ``window, window + hop, window + 2 hop, ...`` seconds, so a stream of
D >= window seconds gives ``floor((D - window) / hop) + 1`` windows. A stream shorter than one
window gives one final window over all of it (zero-padded to the model's length, as in
training) when it is at least :data:`amsnet_lib.data.audio.MIN_DURATION` long. Each window is scored
as a recording by :meth:`~amsnet_lib.serve.predict.Recognizer.predict_signal`: its silent edges trimmed
(:class:`~amsnet_lib.config.WindowConfig` ``trim_db``), then one window of the model, zero-padded.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from ..data.audio import MIN_DURATION, audio_info, inspect_audio
from ..errors import AudioError

__all__ = [
    "RingBuffer",
    "SlidingWindow",
    "StreamRecognizer",
    "StreamSummary",
    "WindowPrediction",
    "file_chunks",
    "mic_available",
    "mic_chunks",
    "pcm_chunks",
    "stdin_chunks",
    "stream_predict",
]


# --------------------------------------------------------------------------- buffering


class RingBuffer:
    """Fixed-size float32 ring buffer: keeps the latest ``capacity`` samples.

    Args:
        capacity: samples held; memory use is ``4 * capacity`` bytes, whatever is written.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 sample, got {capacity}")
        self._buf = np.zeros(int(capacity), dtype=np.float32)
        self._pos = 0  # next write position
        self.total = 0  # samples ever written

    @property
    def capacity(self) -> int:
        return len(self._buf)

    @property
    def nbytes(self) -> int:
        return self._buf.nbytes

    def write(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        n, cap = len(x), self.capacity
        self.total += n
        if n >= cap:
            self._buf[:] = x[-cap:]
            self._pos = 0
            return
        first = min(n, cap - self._pos)
        self._buf[self._pos : self._pos + first] = x[:first]
        self._buf[: n - first] = x[first:]
        self._pos = (self._pos + n) % cap

    def latest(self, n: int | None = None) -> np.ndarray:
        """Copy of the last ``n`` samples (default: all held), oldest first."""
        held = min(self.total, self.capacity)
        n = held if n is None else int(n)
        if n > held:
            raise ValueError(f"asked for {n} samples, the buffer holds {held}")
        start = (self._pos - n) % self.capacity
        if start + n <= self.capacity:
            return self._buf[start : start + n].copy()
        return np.concatenate([self._buf[start:], self._buf[: n - (self.capacity - start)]])


class SlidingWindow:
    """Cuts a sample stream into windows of ``window`` samples every ``hop`` samples.

    :meth:`push` takes blocks of any size and returns ``(start_sample, window_samples)`` for
    each window completed by the block, splitting the block at window ends, so the ring
    buffer never needs more than one window.
    """

    def __init__(self, window: int, hop: int):
        if window < 1 or hop < 1:
            raise ValueError(f"window and hop must be positive sample counts, got {window}, {hop}")
        self.window, self.hop = int(window), int(hop)
        self.ring = RingBuffer(self.window)
        self.next_end = self.window
        self.emitted = 0

    @property
    def total(self) -> int:
        return self.ring.total

    def push(self, x: np.ndarray) -> list[tuple[int, np.ndarray]]:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        out, pos = [], 0
        while pos < len(x):
            take = min(self.next_end - self.ring.total, len(x) - pos)
            self.ring.write(x[pos : pos + take])
            pos += take
            if self.ring.total == self.next_end:
                out.append((self.next_end - self.window, self.ring.latest(self.window)))
                self.next_end += self.hop
                self.emitted += 1
        return out

    def flush(self, min_samples: int = 1) -> list[tuple[int, np.ndarray]]:
        """At the end of the stream: one window over everything if none was complete."""
        if self.emitted == 0 and self.ring.total >= min_samples:
            self.emitted += 1
            return [(0, self.ring.latest(self.ring.total))]
        return []


# --------------------------------------------------------------------------- sources


def _resampler(in_rate: int, out_rate: int):
    import soxr

    return soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")


def file_chunks(path: str | os.PathLike, block_seconds: float = 0.5, sample_rate: int = 16000) -> Iterator[np.ndarray]:
    """Blocks of a file, decoded incrementally, mono, resampled incrementally to ``sample_rate``.

    Only one block is in memory at a time, so files larger than memory stream fine.

    Raises:
        AudioError: the file is missing, not audio, empty or shorter than MIN_DURATION.
    """
    _, rate, _ = audio_info(path)  # the AudioError of a missing / undecodable / empty file, raised now
    return _file_blocks(path, rate, block_seconds, sample_rate)


def _file_blocks(path, rate: int, block_seconds: float, sample_rate: int) -> Iterator[np.ndarray]:
    import soundfile as sf

    block = max(1, int(round(block_seconds * rate)))
    rs = None if rate == sample_rate else _resampler(rate, sample_rate)
    try:
        with sf.SoundFile(str(path)) as f:
            for data in f.blocks(blocksize=block, dtype="float32", always_2d=True):
                mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
                if not np.all(np.isfinite(mono)):
                    raise AudioError(path, "contains NaN or infinite samples", "re-export the recording")
                out = mono if rs is None else rs.resample_chunk(mono, last=False)
                if len(out):
                    yield np.ascontiguousarray(out, dtype=np.float32)
    except (sf.SoundFileError, RuntimeError) as error:
        raise AudioError(path, f"cannot be decoded past some point ({error})",
                         "check that the file is complete (re-copy or re-export it)") from error
    if rs is not None:
        tail = rs.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            yield np.ascontiguousarray(tail, dtype=np.float32)


def pcm_chunks(stream: BinaryIO, block_seconds: float = 0.5, sample_rate: int = 16000) -> Iterator[np.ndarray]:
    """Raw 16-bit little-endian mono PCM at ``sample_rate`` from a binary stream (e.g. stdin).

    Blocks are yielded as soon as data arrives (``read1``), so a live pipe is not held back
    waiting for a full block; an odd trailing byte is kept for the next read.
    """
    n_bytes = max(2, 2 * int(round(block_seconds * sample_rate)))
    read = getattr(stream, "read1", None) or stream.read
    carry = b""
    while True:
        data = read(n_bytes)
        if not data:
            break
        data = carry + data
        cut = len(data) - (len(data) % 2)
        carry = data[cut:]
        if cut:
            yield (np.frombuffer(data[:cut], dtype="<i2").astype(np.float32) / 32768.0)


class _Peeked:
    """A binary stream read in blocks as they arrive (``read1``), with bytes already taken put back in front."""

    def __init__(self, stream: BinaryIO, head: bytes = b""):
        self._read = getattr(stream, "read1", None) or stream.read
        self._head = head

    def read_some(self, n: int) -> bytes:
        """Up to ``n`` bytes, as soon as any arrive; ``b""`` at the end."""
        if self._head:
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._read(n)

    read1 = read_some  # what pcm_chunks reads with

    def read_exact(self, n: int) -> bytes:
        """``n`` bytes, fewer only at the end of the stream."""
        parts, got = [], 0
        while got < n:
            part = self.read_some(n - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)


#: Container files recognised on stdin by their first bytes, which cannot be decoded from a pipe
#: (libsndfile needs to seek in them). Bare MP3 frames are not among them: their sync bytes
#: (0xFF 0xE0..0xFF) also begin raw PCM whose first sample is a small negative number.
_CONTAINERS = {b"fLaC": "FLAC", b"OggS": "Ogg (Vorbis or Opus)", b"ID3": "MP3", b"FORM": "AIFF", b".snd": "AU",
               b"caff": "CAF", b"RIFX": "big-endian WAV (RIFX)", b"RF64": "RF64 WAV", b"\x1aE\xdf\xa3": "WebM/Matroska"}

#: WAV format tags streamed from a pipe: integer PCM and IEEE float.
_WAV_PCM, _WAV_FLOAT, _WAV_EXTENSIBLE = 1, 3, 0xFFFE

#: data-chunk sizes that mean "until the end of the stream" (a recorder writing to a pipe
#: cannot go back to fill in the size: arecord writes 0x7FFFFFFF-ish, others 0 or 0xFFFFFFFF).
_OPEN_ENDED = 0x7FFF0000


def _stdin_refusal(what: str) -> AudioError:
    return AudioError("stdin", f"holds {what} audio, not raw PCM: a pipe cannot be decoded in that format",
                      "pass the file as SOURCE (amsnet stream FILE decodes any length incrementally), or pipe WAV or raw "
                      "16 kHz 16-bit mono PCM (e.g. ffmpeg -i FILE -f s16le -ar 16000 -ac 1 - | amsnet stream -)")


def stdin_chunks(stream: BinaryIO, block_seconds: float = 0.5, sample_rate: int = 16000) -> Iterator[np.ndarray]:
    """What arrives on a binary stream (stdin), as blocks of float32 mono at ``sample_rate``.

    Raw 16-bit little-endian mono PCM at ``sample_rate`` (:func:`pcm_chunks`), unless the stream
    begins with a container header (issue 41: a WAV piped in was read as PCM, header and all, at
    the wrong rate, and gave confident wrong labels):

    - WAV (``RIFF....WAVE``: integer PCM 8/16/24/32 bit or float 32/64 bit, any rate and channel
      count; ``arecord``'s default output) is decoded as it arrives: channels averaged, resampled
      incrementally, so a live recording streams with bounded memory;
    - FLAC, Ogg, MP3 (ID3), AIFF, AU, CAF, RF64, WebM: AudioError naming the container and the fix
      (pass the file as SOURCE, or convert to WAV or raw PCM).
    """
    reader = _Peeked(stream)
    head = reader.read_exact(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        yield from _wav_chunks(reader, block_seconds, sample_rate)
        return
    what = next((name for magic, name in _CONTAINERS.items() if head.startswith(magic)), None)
    if what is not None:
        raise _stdin_refusal(what)
    reader._head = head + reader._head
    yield from pcm_chunks(reader, block_seconds, sample_rate)


def _wav_chunks(reader: _Peeked, block_seconds: float, sample_rate: int) -> Iterator[np.ndarray]:
    """The samples of a WAV stream after its 12-byte RIFF header, decoded as they arrive."""
    import struct

    fmt = None
    while True:
        header = reader.read_exact(8)
        if len(header) < 8:
            raise AudioError("stdin", "holds a WAV header without a data chunk (no audio)",
                             "pipe a complete WAV stream, or raw 16 kHz 16-bit mono PCM")
        cid, size = header[:4], struct.unpack("<I", header[4:])[0]
        if cid == b"data":
            break
        body = reader.read_exact(size + (size & 1))  # chunks are padded to even sizes
        if cid == b"fmt " and len(body) >= 16:
            tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _WAV_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID begins with the tag
            fmt = (tag, channels, rate, align, bits)
    if fmt is None:
        raise AudioError("stdin", "holds a WAV stream whose data comes before its format chunk",
                         "pass the file as SOURCE (amsnet stream FILE)")
    tag, channels, rate, align, bits = fmt
    dtype = {(_WAV_PCM, 8): "u1", (_WAV_PCM, 16): "<i2", (_WAV_PCM, 24): "i3", (_WAV_PCM, 32): "<i4",
             (_WAV_FLOAT, 32): "<f4", (_WAV_FLOAT, 64): "<f8"}.get((tag, bits))
    if dtype is None or channels < 1 or rate < 1 or align != channels * bits // 8:
        raise AudioError("stdin", f"holds a WAV stream in a format not decoded from a pipe (format tag {tag:#x}, {bits} "
                         f"bit, {channels} channel(s), block align {align})",
                         "pass the file as SOURCE (amsnet stream FILE), or convert it to 16-bit PCM WAV or raw PCM")
    left = None if size == 0 or size >= _OPEN_ENDED else size
    rs = None if rate == sample_rate else _resampler(rate, sample_rate)
    block = max(align, align * int(round(block_seconds * rate)))
    carry = b""
    while left is None or left > 0:
        data = reader.read_some(block if left is None else min(block, left))
        if not data:
            break
        if left is not None:
            left -= len(data)
        data = carry + data
        cut = len(data) - len(data) % align
        carry = data[cut:]
        if not cut:
            continue
        x = _wav_samples(data[:cut], dtype, bits).reshape(-1, channels)
        mono = x[:, 0] if channels == 1 else x.mean(axis=1, dtype=np.float32)
        if not np.all(np.isfinite(mono)):
            raise AudioError("stdin", "contains NaN or infinite samples", "check the program writing to the pipe")
        out = mono if rs is None else rs.resample_chunk(mono, last=False)
        if len(out):
            yield np.ascontiguousarray(out, dtype=np.float32)
    if rs is not None:
        tail = rs.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            yield np.ascontiguousarray(tail, dtype=np.float32)


def _wav_samples(data: bytes, dtype: str, bits: int) -> np.ndarray:
    """float32 samples in [-1, 1) of WAV sample bytes (8-bit unsigned, 16/24/32-bit signed, float)."""
    if dtype == "u1":
        return (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
    if dtype == "i3":  # 24-bit: three little-endian bytes, sign-extended through the top byte of an int32
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        return ((b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) >> 8).astype(np.float32) / float(1 << 23)
    x = np.frombuffer(data, dtype)
    if x.dtype.kind == "f":
        return x.astype(np.float32)
    return x.astype(np.float32) / float(1 << (bits - 1))


def mic_available() -> bool:
    """True when the optional ``sounddevice`` module is importable (it is not a dependency)."""
    try:
        import sounddevice  # noqa: F401
    except Exception:
        return False
    return True


def mic_chunks(block_seconds: float = 0.5, sample_rate: int = 16000, device=None) -> Iterator[np.ndarray]:
    """Blocks from the default (or given) input device; needs ``pip install sounddevice``."""
    if not mic_available():
        raise AudioError(None, "microphone input needs the optional `sounddevice` module, which is not installed",
                         "pip install sounddevice (and PortAudio), or pipe raw PCM: "
                         "arecord -f S16_LE -r 16000 -c 1 -t raw | amsnet stream -")
    import queue

    import sounddevice as sd

    q: queue.Queue = queue.Queue()
    block = max(1, int(round(block_seconds * sample_rate)))

    def callback(indata, frames, t, status):  # pragma: no cover - needs a sound device
        q.put(indata[:, 0].copy())

    with sd.InputStream(samplerate=sample_rate, channels=1, dtype="float32", blocksize=block, device=device,
                        callback=callback):  # pragma: no cover - needs a sound device
        while True:
            yield q.get()


# --------------------------------------------------------------------------- recognition


@dataclass
class WindowPrediction:
    """The prediction of one window.

    Attributes:
        index: 0-based window number.
        start, end: seconds from the start of the stream.
        label: predicted class.
        probabilities: class -> probability.
        alpha_frlm, alpha_urlm: fusion weights (NaN for models without connection attention).
        latency_ms: processing time of this window (features + model), from the moment its
            last sample arrived until its prediction was ready.
        warnings: ``silent``, ``clipped`` for this window.
        adapted: standardised with the stream's running statistics (``adapt`` past its warm-up).
    """

    index: int
    start: float
    end: float
    label: str
    probabilities: dict
    alpha_frlm: float
    alpha_urlm: float
    latency_ms: float
    warnings: list = field(default_factory=list)
    adapted: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("alpha_frlm", "alpha_urlm"):
            if isinstance(d[k], float) and math.isnan(d[k]):
                d[k] = None
        return d


@dataclass
class StreamSummary:
    """Totals of a stream: windows, audio length, latency statistics and real-time factor.

    ``real_time_factor`` = processing time / audio duration: below 1 the recogniser is faster
    than the audio arrives. ``keeps_up``: every hop's processing fit in the hop. ``adapt``: the
    adaptation mode; ``adapt_warmup_seconds``: audio it waits for before adapting;
    ``adapted_from_seconds``: stream time of the first adapted window (None: never adapted).
    """

    windows: int
    audio_seconds: float
    processing_seconds: float
    mean_latency_ms: float
    p95_latency_ms: float
    max_latency_ms: float
    real_time_factor: float
    hop_seconds: float
    keeps_up: bool
    buffer_samples: int
    adapt: str = "none"
    adapt_warmup_seconds: float = 0.0
    adapted_from_seconds: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class StreamRecognizer:
    """Sliding-window predictions over a stream of audio blocks.

    Args:
        recognizer: a :class:`amsnet_lib.serve.predict.Recognizer` (or anything with
            ``predict_signal(signal) -> dict`` and ``config``); default: load ``checkpoint``.
        checkpoint: checkpoint file when ``recognizer`` is not given (default: the shipped model).
        window: window length in seconds (default: the model's utterance length, 3 s for EmoDB).
        hop: seconds between window starts (default 0.5).
        adapt: ``none``, or ``corpus`` / ``speaker`` (the same here: one stream, one speaker):
            standardise each window with running statistics of the stream so far (every window's
            features; the new audio of a window counts as new_seconds / window utterances), blended
            with the training statistics as :func:`amsnet_lib.serve.adapt.blend`. Windows before the warm-up
            (:data:`amsnet_lib.serve.adapt.MIN_UTTERANCES` utterances' worth of audio, ``warmup_seconds``)
            use the training statistics; the statistics gather from the first window on.
        classes: score over these of the model's classes only (names or ``"a,b,c"``; the others get
            probability 0; :func:`amsnet_lib.serve.windows.restrict`); default all.
    """

    def __init__(self, recognizer=None, *, checkpoint=None, window: float | None = None, hop: float = 0.5,
                 adapt: str = "none", classes=None):
        from .adapt import MIN_UTTERANCES, check_mode

        self.adapt = check_mode(adapt)
        self.classes = classes
        if recognizer is None:
            from .predict import Recognizer

            recognizer = Recognizer(checkpoint)
        self.recognizer = recognizer
        if classes is not None:
            from .windows import allowed_classes

            allowed_classes(classes, recognizer.classes)  # a wrong name fails before any audio
        if hasattr(recognizer, "warmup"):
            recognizer.warmup()  # first-call costs must not count as the first window's latency
        self.sample_rate = int(recognizer.config.sample_rate)
        self.window_seconds = float(window if window is not None else recognizer.config.duration)
        self.hop_seconds = float(hop)
        if not self.window_seconds > 0 or not self.hop_seconds > 0:
            raise ValueError(f"window and hop must be positive seconds, got {window}, {hop}")
        if self.window_seconds < MIN_DURATION:
            raise ValueError(f"window must be at least {MIN_DURATION} s, got {self.window_seconds}")
        self._win = SlidingWindow(round(self.window_seconds * self.sample_rate), round(self.hop_seconds * self.sample_rate))
        self._latencies: list[float] = []
        self._processing = 0.0
        self._index = 0
        self._moments = None
        self._last_end = 0
        self._adapted_from = None
        c = getattr(recognizer, "config", None)
        self.warmup_seconds = (MIN_UTTERANCES[self.adapt] * float(getattr(c, "duration", self.window_seconds))
                               if self.adapt != "none" else 0.0)

    @property
    def buffer_samples(self) -> int:
        """Samples held by the ring buffer: one window, independent of the input length."""
        return self._win.ring.capacity

    @property
    def samples_seen(self) -> int:
        return self._win.total

    def _predict_adapted(self, start: int, signal: np.ndarray) -> tuple[dict, bool]:
        """Features, running statistics updated with this window's, and the prediction (adapted past the warm-up)."""
        from .adapt import FeatureMoments, blend, normalise

        r = self.recognizer
        frames, mask, spec = r.features(signal)
        frames, spec = r.per_utterance(frames, mask, spec)  # as in training (normalisation="utterance"), else as is
        if self._moments is None:
            self._moments = FeatureMoments.empty(frames.shape[-1], spec.shape[0])
        end = start + len(signal)
        new = max(0, end - max(start, self._last_end)) / self.sample_rate  # audio no earlier window held
        self._last_end = max(self._last_end, end)
        self._moments.add(frames, mask, spec, weight=new / max(self.window_seconds, 1e-9))
        adapted = self._last_end / self.sample_rate >= self.warmup_seconds
        norm = blend(r.info.normaliser, self._moments) if adapted else r.info.normaliser
        f, s = normalise(norm, frames, mask, spec)
        proba, alpha = r.infer(f[None], mask[None], s[None], normalised=True)
        if self.classes is not None:
            from .windows import allowed_classes, restrict

            proba = restrict(proba, allowed_classes(self.classes, r.classes))
        if adapted and self._adapted_from is None:
            self._adapted_from = start / self.sample_rate
        return r._record(proba[0], alpha[0]), adapted

    def _predict(self, start: int, signal: np.ndarray) -> WindowPrediction:
        t0 = time.perf_counter()
        if self.adapt != "none":
            rec, adapted = self._predict_adapted(start, signal)
        else:
            extra = {} if self.classes is None else {"classes": self.classes}
            rec, adapted = self.recognizer.predict_signal(signal, **extra), False
        warns = inspect_audio(signal)
        dt = time.perf_counter() - t0
        self._processing += dt
        self._latencies.append(1000.0 * dt)
        p = WindowPrediction(self._index, start / self.sample_rate, (start + len(signal)) / self.sample_rate,
                             rec["label"], rec["probabilities"], rec["alpha_frlm"], rec["alpha_urlm"], 1000.0 * dt, warns,
                             adapted)
        self._index += 1
        return p

    def push(self, samples: np.ndarray) -> list[WindowPrediction]:
        """Add a block of 16 kHz mono samples; predictions of the windows it completed."""
        return [self._predict(s, w) for s, w in self._win.push(samples)]

    def finish(self) -> list[WindowPrediction]:
        """End of stream: the one partial window of a stream shorter than a window, if any."""
        return [self._predict(s, w) for s, w in self._win.flush(int(MIN_DURATION * self.sample_rate))]

    def run(self, chunks: Iterable[np.ndarray]) -> Iterator[WindowPrediction]:
        """Push every block of ``chunks`` and yield predictions as soon as they are ready."""
        for chunk in chunks:
            yield from self.push(chunk)
        yield from self.finish()

    def summary(self) -> StreamSummary:
        lat = np.asarray(self._latencies, dtype=np.float64)
        audio_s = self._win.total / self.sample_rate
        return StreamSummary(
            windows=len(lat),
            audio_seconds=round(audio_s, 3),
            processing_seconds=round(self._processing, 4),
            mean_latency_ms=round(float(lat.mean()), 2) if len(lat) else float("nan"),
            p95_latency_ms=round(float(np.percentile(lat, 95)), 2) if len(lat) else float("nan"),
            max_latency_ms=round(float(lat.max()), 2) if len(lat) else float("nan"),
            real_time_factor=round(self._processing / audio_s, 4) if audio_s else float("nan"),
            hop_seconds=self.hop_seconds,
            keeps_up=bool(len(lat) == 0 or lat.max() < 1000.0 * self.hop_seconds),
            buffer_samples=self.buffer_samples,
            adapt=self.adapt,
            adapt_warmup_seconds=self.warmup_seconds,
            adapted_from_seconds=self._adapted_from,
        )


def stream_predict(source=None, *, checkpoint=None, recognizer=None, window: float | None = None, hop: float = 0.5,
                   block_seconds: float | None = None, mic: bool = False,
                   adapt: str = "none", classes=None) -> tuple[StreamRecognizer, Iterator[WindowPrediction]]:
    """Set up streaming recognition of ``source``.

    Args:
        source: an audio file path; ``"-"`` for stdin: raw 16 kHz 16-bit little-endian mono PCM,
            or a WAV stream (:func:`stdin_chunks`); or a binary file object of either. Ignored
            with ``mic=True``.
        mic: record from the default microphone instead (needs the optional ``sounddevice``).
        checkpoint, recognizer, window, hop, adapt, classes: see :class:`StreamRecognizer`.
        block_seconds: input block size (default: ``hop``).

    Returns:
        ``(stream_recognizer, predictions)``: iterate ``predictions`` for the windows as they
        complete, then call ``stream_recognizer.summary()``.
    """
    sr = StreamRecognizer(recognizer, checkpoint=checkpoint, window=window, hop=hop, adapt=adapt, classes=classes)
    block = block_seconds or hop
    rate = sr.sample_rate
    if mic:
        chunks = mic_chunks(block, rate)
    elif source is None:
        raise ValueError("give a source (file path, '-' for stdin, or a binary stream) or mic=True")
    elif hasattr(source, "read"):
        chunks = stdin_chunks(source, block, rate)
    elif str(source) == "-":
        chunks = stdin_chunks(sys.stdin.buffer, block, rate)
    else:
        chunks = file_chunks(Path(source), block, rate)
    return sr, sr.run(chunks)
