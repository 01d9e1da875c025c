"""Both feature streams, the cache, and leakage-free normalisation."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from amsnet_lib.config import FeatureConfig
from amsnet_lib.errors import AudioError
from amsnet_lib.data.features import Normaliser, extract_features, frame_features, log_mel_spectrogram, pad_frames


def _tone(seconds, sr=16000, f0=220.0, seed=0):
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _table(tmp_path: Path, specs) -> pd.DataFrame:
    rows = []
    for i, (label, seconds, sr) in enumerate(specs):
        p = tmp_path / f"u{i}.wav"
        sf.write(p, _tone(seconds, sr, f0=150 + 40 * i, seed=i), sr)
        rows.append({"path": str(p), "label": label, "speaker": f"s{i % 2}", "duration": seconds})
    t = pd.DataFrame(rows)
    t.attrs["classes"] = ["a", "b"]
    t.attrs["corpus"] = "test"
    return t


def test_frame_features_are_76_dims_at_10ms():
    x = _tone(1.0)
    f = frame_features(x)
    assert f.shape[1] == 76
    assert 95 <= f.shape[0] <= 101  # 10 ms hop over 1 s
    assert np.isfinite(f).all()
    # the delta half is the derivative of the LLD half: not a copy of it
    assert not np.allclose(f[:, :38], f[:, 38:])


def test_one_opensmile_run_gives_the_two_run_reference_exactly():
    from amsnet_lib.data.features import _frame_features_two_pass, _single_pass

    cfg = FeatureConfig()
    assert _single_pass(cfg.sample_rate) is not None  # the fast path is in use with this opensmile
    # speech-like tones of several lengths (lld_de gives extra frames on some), and silence
    for x in (_tone(1.3, f0=180.0, seed=1), _tone(0.35, f0=260.0, seed=2), np.zeros(1600, np.float32)):
        ref = np.nan_to_num(_frame_features_two_pass(x, cfg), nan=0.0, posinf=0.0, neginf=0.0)
        np.testing.assert_array_equal(frame_features(x, cfg), ref)


@pytest.mark.emodb
def test_one_opensmile_run_equals_the_reference_on_real_speech(emodb_dir):
    from amsnet_lib.data.audio import load_audio
    from amsnet_lib.data.features import _frame_features_two_pass

    for name in sorted(p.name for p in (emodb_dir / "wav").glob("*.wav"))[:2]:
        x = load_audio(emodb_dir / "wav" / name, max_duration=3.05)
        ref = np.nan_to_num(_frame_features_two_pass(x, FeatureConfig()), nan=0.0, posinf=0.0, neginf=0.0)
        np.testing.assert_array_equal(frame_features(x), ref)


def test_spectrogram_shape_follows_the_paper_settings():
    cfg = FeatureConfig(duration=3.0)
    s = log_mel_spectrogram(_tone(1.0), cfg)
    assert s.shape == (128, 121) == (cfg.n_mels, cfg.spec_frames)
    # padded with silence: the last second is at the log floor
    assert np.allclose(s[:, -30:], np.log(cfg.log_offset), atol=1e-3)
    # cut: a longer signal gives the same number of frames
    assert log_mel_spectrogram(_tone(7.0), cfg).shape == (128, 121)


def test_pad_frames_masks_only_valid_frames():
    f = np.ones((5, 76), np.float32)
    out, mask = pad_frames(f, 8)
    assert out.shape == (8, 76) and mask.tolist() == [True] * 5 + [False] * 3
    assert (out[5:] == 0).all()
    out, mask = pad_frames(np.ones((12, 76), np.float32), 8)
    assert mask.all() and out.shape == (8, 76)


def test_extract_features_caches_and_recovers_from_corruption(tmp_path):
    table = _table(tmp_path, [("a", 0.8, 16000), ("b", 1.5, 22050), ("a", 4.0, 8000), ("b", 0.3, 44100)])
    cfg = FeatureConfig(duration=1.0)
    cache = tmp_path / "cache"
    cold = extract_features(table, cfg, cache_dir=cache, n_jobs=1, progress=False)
    assert cold.cache_hits == 0
    assert cold.frames.shape == (4, 100, 76) and cold.spec.shape == (4, 128, 41)
    assert cold.labels.tolist() == [0, 1, 0, 1]
    assert cold.mask[3].sum() < cold.mask[0].sum() < 100 and cold.mask[2].all()
    warm = extract_features(table, cfg, cache_dir=cache, progress=False)
    assert warm.cache_hits == 4
    np.testing.assert_array_equal(warm.frames, cold.frames)
    np.testing.assert_array_equal(warm.spec, cold.spec)
    entries = sorted(cache.rglob("*.npz"))
    assert len(entries) == 4
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # truncated: corrupt
    again = extract_features(table, cfg, cache_dir=cache, progress=False)
    assert again.cache_hits == 3
    np.testing.assert_array_equal(again.frames, cold.frames)
    # another configuration never reads these entries
    other = extract_features(table, FeatureConfig(duration=1.0, n_mels=64), cache_dir=cache, n_jobs=1, progress=False)
    assert other.cache_hits == 0 and other.spec.shape[1] == 64


def test_extract_features_reports_silent_audio(tmp_path):
    table = _table(tmp_path, [("a", 0.5, 16000), ("b", 0.5, 16000)])
    sf.write(table.loc[1, "path"], np.zeros(8000, np.float32), 16000)
    f = extract_features(table, FeatureConfig(duration=0.5), use_cache=False, n_jobs=1, progress=False)
    assert (table.loc[1, "path"], "silent") in f.warnings
    assert np.isfinite(f.frames).all()


def test_extract_features_names_a_missing_file(tmp_path):
    table = _table(tmp_path, [("a", 0.5, 16000), ("b", 0.5, 16000)])
    os.remove(table.loc[0, "path"])
    with pytest.raises(AudioError, match="u0.wav"):
        extract_features(table, FeatureConfig(duration=0.5), cache_dir=tmp_path / "c", n_jobs=1, progress=False,
                         skip_bad=False)
    # by default it is left out and listed, as the corpus loader leaves out what it cannot use (issue 41)
    f = extract_features(table, FeatureConfig(duration=0.5), cache_dir=tmp_path / "c", n_jobs=1, progress=False)
    assert list(f.table["path"]) == [table.loc[1, "path"]] and len(f) == 1
    assert [(p, r) for p, r in f.table.attrs["skipped"]] == [(table.loc[0, "path"], "file does not exist")]


def test_normaliser_is_fitted_on_training_data_only(tmp_path):
    table = _table(tmp_path, [("a", 0.6, 16000), ("b", 0.9, 16000), ("a", 0.7, 16000), ("b", 0.4, 16000)])
    f = extract_features(table, FeatureConfig(duration=1.0), use_cache=False, n_jobs=1, progress=False)
    train = f.subset([0, 1])
    norm = Normaliser.fit(train)
    z = norm.transform(train)
    valid = z.frames[z.mask]
    np.testing.assert_allclose(valid.mean(0), 0, atol=1e-3)
    assert (z.frames[~z.mask] == 0).all()
    # test utterances do not move the statistics
    f2 = f.subset([0, 1])
    f2.frames[:] = f2.frames  # same training data
    assert np.allclose(Normaliser.fit(f2).frames_mean, norm.frames_mean)
    assert not np.allclose(Normaliser.fit(f).frames_mean, norm.frames_mean)
    state = Normaliser.from_state_dict(norm.state_dict())
    np.testing.assert_allclose(state.spec_std, norm.spec_std)


@pytest.mark.emodb
def test_emodb_features_end_to_end(emodb_dir, tmp_path):
    from amsnet_lib.data.corpora import load_corpus

    table = load_corpus("emodb", data_dir=emodb_dir, download=False)
    sub = table.groupby("label", sort=False).head(2)
    sub.attrs.update(table.attrs)
    f = extract_features(sub, FeatureConfig.for_corpus("emodb"), cache_dir=tmp_path, progress=False)
    assert f.frames.shape == (14, 300, 76)
    assert f.spec.shape == (14, 128, 121)
    assert sorted(set(f.labels.tolist())) == list(range(7))


def test_saved_bundle_round_trips_and_float16_halves_it(tmp_path):
    from amsnet_lib.errors import AmsnetError
    from amsnet_lib.data.features import Features

    table = _table(tmp_path, [("a", 0.8, 16000), ("b", 1.5, 16000), ("a", 0.4, 16000)])
    table["session"] = None
    table["speaker"] = ["03", "08", "03"]  # strings that look like numbers stay strings
    f = extract_features(table, FeatureConfig(duration=1.0), use_cache=False, n_jobs=1, progress=False)
    g = Features.load(f.save(tmp_path / "b32.npz"))
    for name in ("frames", "mask", "spec", "labels"):
        np.testing.assert_array_equal(getattr(g, name), getattr(f, name))
        assert getattr(g, name).dtype == getattr(f, name).dtype
    assert g.classes == f.classes and g.config == f.config and g.warnings == f.warnings
    pd.testing.assert_frame_equal(g.table, f.table)
    assert g.table.attrs == f.table.attrs and g.table["speaker"].tolist() == ["03", "08", "03"]
    h = Features.load(f.save(tmp_path / "b16.npz", precision="float16"))
    assert h.frames.dtype == np.float32 and not h.frames[~h.mask].any()
    np.testing.assert_allclose(h.frames, f.frames, rtol=1e-3, atol=1e-4)
    assert (tmp_path / "b16.npz").stat().st_size < 0.7 * (tmp_path / "b32.npz").stat().st_size
    # the rounding is remembered (runs trained on them say so), also through a second save
    assert h.table.attrs["feature_precision"] == "float16" and "feature_precision" not in g.table.attrs
    assert Features.load(h.save(tmp_path / "again.npz")).table.attrs["feature_precision"] == "float16"
    (tmp_path / "bad.npz").write_bytes(b"not a bundle")
    with pytest.raises(AmsnetError, match="bad.npz.*not a readable feature bundle.*Fix"):
        Features.load(tmp_path / "bad.npz")
    with pytest.raises(AmsnetError, match="missing.npz.*does not exist"):
        Features.load(tmp_path / "missing.npz")
