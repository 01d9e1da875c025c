"""Sliding-window streaming: window count and timestamps, stdin bytes, bounded memory, the CLI."""
from __future__ import annotations

import io
import json
import sys
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from amsnet_lib import cli
from amsnet_lib.config import FeatureConfig
from amsnet_lib.serve.predict import Recognizer
from amsnet_lib.serve.stream import RingBuffer, SlidingWindow, StreamRecognizer, file_chunks, mic_available, pcm_chunks, stream_predict

from signals import tone
SR = 16000



@pytest.fixture(scope="module")
def rec(tiny_ckpt) -> Recognizer:
    return Recognizer(tiny_ckpt)


class StubRecognizer:
    """Instant 'model': label = 'loud' if the window's RMS is high; records window lengths."""

    config = FeatureConfig(duration=1.0)
    classes = ["quiet", "loud"]

    def __init__(self):
        self.lengths = []

    def predict_signal(self, x):
        self.lengths.append(len(x))
        loud = float(np.sqrt(np.mean(x ** 2))) > 0.05
        p = {"quiet": 0.0 if loud else 1.0, "loud": 1.0 if loud else 0.0}
        return {"label": "loud" if loud else "quiet", "probabilities": p, "alpha_frlm": float("nan"), "alpha_urlm": float("nan")}


def n_windows(seconds, window, hop):
    return int(np.floor((seconds - window) / hop + 1e-9)) + 1


# --------------------------------------------------------------------------- buffering


def test_ring_buffer_keeps_the_latest_samples():
    rb = RingBuffer(5)
    rb.write(np.arange(3))
    assert rb.latest().tolist() == [0, 1, 2]
    rb.write(np.arange(3, 7))
    assert rb.latest().tolist() == [2, 3, 4, 5, 6] and rb.latest(2).tolist() == [5, 6]
    rb.write(np.arange(7, 20))  # longer than the capacity
    assert rb.latest().tolist() == [15, 16, 17, 18, 19] and rb.total == 20 and rb.nbytes == 20
    with pytest.raises(ValueError):
        rb.latest(6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sliding_window_cuts_exact_windows_from_any_block_sizes(seed):
    rng = np.random.default_rng(seed)
    x = np.arange(10_000, dtype=np.float32)
    sw = SlidingWindow(window=1000, hop=300)
    got, pos = [], 0
    while pos < len(x):
        n = int(rng.integers(1, 2500))
        got += sw.push(x[pos : pos + n])
        pos += n
    assert len(got) == (10_000 - 1000) // 300 + 1
    for k, (start, w) in enumerate(got):
        assert start == 300 * k
        np.testing.assert_array_equal(w, x[start : start + 1000])
    assert sw.flush() == [] and sw.ring.capacity == 1000


def test_short_stream_gives_one_partial_window():
    sw = SlidingWindow(window=1000, hop=300)
    assert sw.push(np.ones(600, np.float32)) == []
    (start, w), = sw.flush()
    assert start == 0 and len(w) == 600


# --------------------------------------------------------------------------- real model


def test_file_stream_windows_timestamps_and_predictions(rec, tmp_path):
    x = np.concatenate([tone(1.2, 300.0, seed=1), tone(1.3, 110.0, seed=2)])  # 2.5 s
    path = tmp_path / "long.wav"
    sf.write(path, x, SR, subtype="FLOAT")  # exact samples, to compare with x
    sr, preds = stream_predict(path, recognizer=rec, window=1.0, hop=0.5)
    preds = list(preds)
    assert len(preds) == n_windows(2.5, 1.0, 0.5) == 4
    assert [(p.start, p.end) for p in preds] == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0), (1.5, 2.5)]
    assert [p.index for p in preds] == [0, 1, 2, 3]
    for p in preds:
        # each window's prediction is the recogniser's prediction of exactly that slice
        ref = rec.predict_signal(x[int(p.start * SR) : int(p.end * SR)])
        assert p.label == ref["label"]
        for c in rec.classes:
            assert p.probabilities[c] == pytest.approx(ref["probabilities"][c], abs=1e-6)
        assert p.alpha_frlm + p.alpha_urlm == pytest.approx(1.0, abs=1e-5)
        assert p.latency_ms > 0
    s = sr.summary()
    assert s.windows == 4 and s.audio_seconds == pytest.approx(2.5) and s.buffer_samples == SR
    assert s.p95_latency_ms >= s.mean_latency_ms * 0.5 and s.real_time_factor > 0


def test_resampled_stereo_file_gives_the_same_windows(rec, tmp_path):
    x = tone(2.2, 200.0, sr=44100)
    path = tmp_path / "stereo44.flac"
    sf.write(path, np.stack([x, x], 1), 44100)
    chunks = list(file_chunks(path, block_seconds=0.37))
    assert abs(sum(len(c) for c in chunks) - round(2.2 * SR)) <= 2  # incremental resampling keeps the length
    sr, preds = stream_predict(path, recognizer=rec, window=1.0, hop=0.5)
    assert [(p.start, p.end) for p in preds] == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)]


class _Trickle(io.RawIOBase):
    """A pipe-like stream that returns small, odd-sized pieces."""

    def __init__(self, data: bytes, seed: int = 0):
        self._data, self._pos = data, 0
        self._rng = np.random.default_rng(seed)

    def readable(self):
        return True

    def read1(self, n=-1):
        k = min(int(self._rng.integers(1, 3001)), n if n > 0 else 3000)
        out = self._data[self._pos : self._pos + k]
        self._pos += len(out)
        return out

    read = read1


def test_stdin_bytes_give_the_same_windows_as_the_file(rec, tmp_path):
    x = tone(2.0, 150.0, seed=5)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    path = tmp_path / "same.wav"
    sf.write(path, pcm, SR, subtype="PCM_16")
    chunks = list(pcm_chunks(_Trickle(pcm.tobytes())))
    np.testing.assert_array_equal(np.concatenate(chunks), pcm.astype(np.float32) / 32768.0)
    _, from_file = stream_predict(path, recognizer=rec, window=1.0, hop=0.25)
    _, from_pipe = stream_predict(_Trickle(pcm.tobytes(), seed=3), recognizer=rec, window=1.0, hop=0.25)
    a, b = list(from_file), list(from_pipe)
    assert len(a) == len(b) == n_windows(2.0, 1.0, 0.25) == 5
    for p, q in zip(a, b):
        assert (p.start, p.end, p.label) == (q.start, q.end, q.label)
        assert p.probabilities["high"] == pytest.approx(q.probabilities["high"], abs=1e-6)


def test_short_stream_is_predicted_once_padded(rec):
    x = tone(0.6, 300.0)
    sr = StreamRecognizer(rec, window=1.0, hop=0.5)
    preds = list(sr.run([x]))
    assert len(preds) == 1 and (preds[0].start, preds[0].end) == (0.0, 0.6)
    assert list(StreamRecognizer(rec, window=1.0, hop=0.5).run([np.zeros(800, np.float32)])) == []  # < 0.1 s: nothing


# --------------------------------------------------------------------------- bounded memory


def _long_signal(seconds: float, block: float = 0.25, rate: int = SR):
    """Alternating loud/quiet seconds, generated block by block (never all in memory)."""
    n = int(block * rate)
    for k in range(int(seconds / block)):
        t0 = k * block
        amp = 0.5 if int(t0) % 2 == 0 else 0.0
        yield (amp * np.sin(2 * np.pi * 200 * (t0 + np.arange(n) / rate))).astype(np.float32)


def test_memory_is_bounded_whatever_the_input_length():
    peaks, buffers = [], []
    for seconds in (60, 600):
        stub = StubRecognizer()
        sr = StreamRecognizer(stub, window=1.0, hop=0.5)
        tracemalloc.start()
        count = sum(1 for _ in sr.run(_long_signal(seconds)))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert count == n_windows(seconds, 1.0, 0.5)
        assert set(stub.lengths) == {SR}
        buffers.append(sr.buffer_samples)
    assert buffers == [SR, SR]  # the ring buffer is one window, for 1 min as for 10 min
    assert peaks[1] < 2 * peaks[0] + 200_000  # 10x the audio, not 10x the memory
    assert peaks[1] < 2_000_000  # 10 min of float32 audio would be 38 MB


def test_large_file_is_read_incrementally(tmp_path):
    path = tmp_path / "big.flac"
    with sf.SoundFile(path, "w", samplerate=22050, channels=2, format="FLAC") as f:
        for block in _long_signal(300, rate=22050):  # 5 min, stereo, 22.05 kHz
            f.write(np.repeat(block[:, None], 2, 1))
    stub = StubRecognizer()
    sr = StreamRecognizer(stub, window=1.0, hop=1.0)
    tracemalloc.start()
    preds = list(sr.run(file_chunks(path)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert abs(sr.samples_seen - sf.info(str(path)).frames * SR / 22050) <= 2  # resampled incrementally, no drift
    assert len(preds) == n_windows(sr.samples_seen / SR, 1.0, 1.0) == 299
    assert peak < 3_000_000  # the decoded file would be 300 s * 22050 * 2 ch * 4 B = 53 MB
    # loud and quiet seconds alternate: the windows follow the content
    assert [p.label for p in preds[:4]] == ["loud", "quiet", "loud", "quiet"]


# --------------------------------------------------------------------------- CLI


def test_cli_stream_file_jsonl(tiny_ckpt, tmp_path, capsys):
    path = tmp_path / "s.wav"
    sf.write(path, tone(2.0, 200.0), SR)
    assert cli.main(["stream", str(path), "--checkpoint", str(tiny_ckpt), "--window", "1", "--hop", "0.5", "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    windows, summary = lines[:-1], lines[-1]["summary"]
    assert [(w["start"], w["end"]) for w in windows] == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)]
    assert set(windows[0]["probabilities"]) == {"high", "low"} and windows[0]["latency_ms"] > 0
    assert summary["windows"] == 3 and "p95_latency_ms" in summary and "real_time_factor" in summary


def test_cli_stream_stdin_table(tiny_ckpt, monkeypatch, capsys):
    pcm = (tone(1.5, 200.0) * 32767).astype("<i2").tobytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(pcm)))
    assert cli.main(["stream", "-", "--checkpoint", str(tiny_ckpt), "--window", "1", "--hop", "0.5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and "0.00-    1.00 s" in out[0] and "0.50-    1.50 s" in out[1]
    assert out[-1].startswith("2 windows over 1.50 s") and "real-time factor" in out[-1]


@pytest.mark.skipif(mic_available(), reason="sounddevice is installed here")
def test_cli_mic_without_sounddevice_says_so(capsys):
    assert cli.main(["stream", "--mic"]) == 2
    assert "sounddevice" in capsys.readouterr().err


def test_cli_stream_missing_file(tiny_ckpt, tmp_path, capsys):
    assert cli.main(["stream", str(tmp_path / "gone.wav"), "--checkpoint", str(tiny_ckpt)]) == 2
    assert "gone.wav" in capsys.readouterr().err
