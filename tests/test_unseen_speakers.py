"""Issue #38 item 2, what unseen speakers need: pitch-shift augmentation (copies that change the voice,
kept out of validation and test). Built and tested; not yet chosen on validation speakers."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from amsnet_lib.data.protocols import Fold
from signals import TINY_FEATURES, tone


# --------------------------------------------------------------------------- pitch shifting


def test_pitch_shift_moves_the_pitch_and_keeps_the_duration():
    from amsnet_lib.data.channels import PITCH_SEMITONES, pitch_shift

    assert PITCH_SEMITONES == (-2.0, 2.0)
    x = (0.5 * np.sin(2 * np.pi * 200.0 * np.arange(16000) / 16000)).astype(np.float32)
    for steps in PITCH_SEMITONES:
        y = pitch_shift(x, steps)
        assert y.dtype == np.float32 and y.shape == x.shape
        middle = y[1000:-1000]
        peak = np.fft.rfftfreq(len(middle), 1 / 16000)[np.argmax(np.abs(np.fft.rfft(middle)))]
        assert abs(peak - 200.0 * 2 ** (steps / 12)) < 3, (steps, peak)
    with pytest.raises(ValueError, match="finite number of semitones"):
        pitch_shift(x, float("nan"))


def test_pitch_copies_are_cached_keep_their_duration_and_never_validate_or_test(tmp_path):
    from amsnet_lib.data.channels import augmented_features
    from amsnet_lib.data.corpora import load_corpus
    from amsnet_lib.data.features import extract_features
    from amsnet_lib.data.splits import _without_augmented_leaks, fold_data

    for i in range(3):
        for label, f0 in (("high", 320.0), ("low", 110.0)):
            p = tmp_path / "c" / label / f"{label}{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, tone(0.5 + 0.1 * i, f0, seed=i), 16000)
    table = load_corpus(tmp_path / "c")
    feats = extract_features(table, TINY_FEATURES, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    aug = augmented_features(feats, "pitch", audio_dir=tmp_path / "aug", feature_cache=tmp_path / "cache", progress=False)
    assert len(aug) == 18 and list(aug.table["channel"][6:]) == ["pitch -2 semitones"] * 6 + ["pitch +2 semitones"] * 6
    assert list(aug.table["augment"]) == ["none"] * 6 + ["pitch"] * 12
    assert list(aug.table["source"][6:]) == list(table["path"]) * 2 and list(aug.labels[6:]) == list(feats.labels) * 2
    for copy, source in zip(aug.table["path"][6:], aug.table["source"][6:]):
        assert "/pitch/" in copy and sf.info(copy).frames == sf.info(source).frames  # the duration kept
    np.testing.assert_array_equal(aug.mask[6:12], feats.mask)  # so the frame stream's length too
    again = augmented_features(feats, "pitch", audio_dir=tmp_path / "aug", feature_cache=tmp_path / "cache", progress=False)
    assert again.cache_hits == feats.cache_hits + 12 and np.array_equal(again.spec, aug.spec)  # made once, then read
    # fit part 0-3, validation 4, test 5: both copies of every fit original train, none of 4 or 5 anywhere
    fit, val, fold = _without_augmented_leaks(aug, np.array([0, 1, 2, 3, 10]), np.array([4, 16]),
                                              Fold("f", np.arange(18), np.array([5, 11, 17])), "pitch")
    assert list(fit) == [0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15] and list(val) == [4] and list(fold.test) == [5]
    fd = fold_data(aug, Fold("f", np.arange(5), np.array([5])), 0.2, 0, "cpu", augment="pitch")
    assert fd.sizes["n_train"] == 3 * (5 - fd.sizes["n_val"]) and fd.sizes["n_test"] == 1
    np.testing.assert_array_equal(fd.test["frames"].numpy(), fd.sizes["normaliser"].transform(aug).frames[[5]])
