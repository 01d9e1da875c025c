"""Channel simulation: the benchmark's fixed conditions, random training channels, augmented features, no leaks."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from amsnet_lib.data.channels import CONDITIONS, apply_channel, augmented_features, random_channel
from amsnet_lib.errors import AmsnetError
from amsnet_lib.data.protocols import Fold

from signals import TINY_FEATURES, tone


def _band_energy(x, lo, hi, sr=16000):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return spec[(f >= lo) & (f < hi)].sum()


def test_fixed_conditions_do_what_they_say():
    x = (0.1 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32)
    out = {c: apply_channel(x, c, seed=1) for c in CONDITIONS}
    assert all(y.shape == x.shape and y.dtype == np.float32 for y in out.values())
    assert np.array_equal(out["clean"], x)
    np.testing.assert_allclose(out["gain-20dB"], x * 0.1, rtol=1e-5)
    tel = out["telephone"]  # nothing left above the 3.4 kHz band edge, little below 300 Hz
    assert _band_energy(tel, 4200, 8000) < 1e-4 * _band_energy(x, 4200, 8000)
    assert _band_energy(tel, 0, 150) < 0.05 * _band_energy(x, 0, 150)
    for c, snr in (("snr20", 20), ("snr10", 10)):
        noise = out[c].astype(np.float64) - x
        assert 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise ** 2)) == pytest.approx(snr, abs=0.2)
    tilt = out["eq-tilt"]  # a dull microphone: highs lose about 12 dB, lows none
    assert 10 * np.log10(_band_energy(tilt, 7000, 7900) / _band_energy(x, 7000, 7900)) == pytest.approx(-11.5, abs=1.5)
    assert 10 * np.log10(_band_energy(tilt, 50, 90) / _band_energy(x, 50, 90)) == pytest.approx(0.0, abs=0.5)
    assert np.sqrt(np.mean(out["reverb"] ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2)), rel=1e-3)
    assert np.array_equal(apply_channel(x, "snr10", seed=1), out["snr10"])  # seeded: the same audio every run
    with pytest.raises(ValueError, match="unknown channel condition 'phone'"):
        apply_channel(x, "phone")


def test_random_channels_are_seeded_bounded_and_varied():
    x = tone(1.0, 200.0, amp=0.9)
    a, what_a = random_channel(x, 16000, np.random.default_rng(3))
    b, what_b = random_channel(x, 16000, np.random.default_rng(3))
    assert np.array_equal(a, b) and what_a == what_b and a.shape == x.shape
    descriptions = {random_channel(x, 16000, np.random.default_rng(s))[1] for s in range(20)}
    assert len(descriptions) > 10  # different channels, not one
    assert all(np.max(np.abs(random_channel(x, 16000, np.random.default_rng(s))[0])) <= 0.99 + 1e-6 for s in range(20))


def test_augmented_features_add_cached_copies_that_train_only_with_their_originals(tmp_path):
    from amsnet_lib.data.corpora import load_corpus
    from amsnet_lib.data.features import extract_features
    from amsnet_lib.data.splits import _without_augmented_leaks

    for i in range(3):
        for label, f0 in (("high", 320.0), ("low", 110.0)):
            p = tmp_path / "c" / label / f"{label}{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, tone(0.8, f0, seed=i), 16000)
    table = load_corpus(tmp_path / "c")
    feats = extract_features(table, TINY_FEATURES, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    aug = augmented_features(feats, "channels", audio_dir=tmp_path / "aug", feature_cache=tmp_path / "cache", progress=False)
    assert len(aug) == 12 and list(aug.labels[:6]) == list(aug.labels[6:]) == list(feats.labels)
    assert (aug.table["source"][:6] == "").all() and list(aug.table["source"][6:]) == list(table["path"])
    np.testing.assert_array_equal(aug.frames[:6], feats.frames)
    # a copy's features are those of its derived file, through the cache like any other file
    again = extract_features(aug.table.iloc[6:].reset_index(drop=True).assign(label=list(table["label"])), TINY_FEATURES,
                             cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert again.cache_hits == 6 and np.array_equal(again.spec, aug.spec[6:])
    same = augmented_features(feats, "channels", audio_dir=tmp_path / "aug", feature_cache=tmp_path / "cache", progress=False)
    assert list(same.table["channel"]) == list(aug.table["channel"])  # resumable and reproducible
    # fit part 0-3, validation 4, test 5: every copy of a fit original trains (wherever the split put it), no other
    fit, val, fold = _without_augmented_leaks(aug, np.array([0, 1, 2, 3, 6, 7, 10]), np.array([4, 9]),
                                              Fold("f", np.arange(12), np.array([5, 11])), "channels")
    assert list(fit) == [0, 1, 2, 3, 6, 7, 8, 9] and list(val) == [4] and list(fold.test) == [5]
    # a stage that trains without them drops every copy; one that asks for copies the features lack is refused
    fit, val, fold = _without_augmented_leaks(aug, np.array([0, 1, 2, 3, 6, 7, 10]), np.array([4, 9]),
                                              Fold("f", np.arange(12), np.array([5, 11])), "none")
    assert list(fit) == [0, 1, 2, 3] and list(val) == [4] and list(fold.test) == [5]
    with pytest.raises(AmsnetError, match="carry no speed copies"):
        _without_augmented_leaks(aug, np.array([0, 1]), np.array([4]), Fold("f", np.arange(6), np.array([5])), "speed")
    assert list(aug.table["augment"]) == ["none"] * 6 + ["channels"] * 6
    with pytest.raises(ValueError, match="augment must be one of none, channels, speed, pitch"):
        augmented_features(feats, "vtlp", audio_dir=tmp_path / "aug")
    assert augmented_features(feats, "none", audio_dir=tmp_path / "aug") is feats
    # speed perturbation: two copies of each, at 0.9 and 1.1, the second run reading the first's files
    fast = augmented_features(feats, "speed", audio_dir=tmp_path / "aug", feature_cache=tmp_path / "cache", progress=False)
    assert len(fast) == 18 and list(fast.table["channel"][6:]) == ["speed 0.9"] * 6 + ["speed 1.1"] * 6
    assert list(fast.table["source"][6:]) == list(table["path"]) * 2 and list(fast.labels[12:]) == list(feats.labels)
    assert not np.array_equal(fast.spec[6:12], fast.spec[12:])


def test_speed_perturbation_scales_duration_and_pitch_together():
    from amsnet_lib.data.channels import speed_perturb

    x = np.sin(2 * np.pi * 400.0 * np.arange(16000) / 16000).astype(np.float32)
    for factor in (0.9, 1.1):
        y = speed_perturb(x, factor)
        assert y.dtype == np.float32 and abs(len(y) - 16000 / factor) <= 2
        middle = y[200:-200]  # away from the resampler's edges
        peak = np.fft.rfftfreq(len(middle), 1 / 16000)[np.argmax(np.abs(np.fft.rfft(middle)))]
        assert abs(peak - 400.0 * factor) < 3  # the tone moves with the speed
    with pytest.raises(ValueError, match="speed factor"):
        speed_perturb(x, 0.0)


def test_predictions_name_the_originals_relative_to_the_corpus_wherever_the_copies_sit():
    from amsnet_lib.train.training import _prediction_frame

    table = pd.DataFrame({"path": ["/aug/a.0.wav", "/c/x/a.wav", "/c/y/b.wav"], "source": ["/c/x/a.wav", "", ""]})
    ev = {"pred": np.array([0, 1]), "true": np.array([0, 1]), "proba": np.array([[0.9, 0.1], [0.2, 0.8]]), "alpha": None}
    df = _prediction_frame(table, np.array([1, 2]), ev, ["p", "q"], 0, "f0")
    assert list(df["path"]) == ["x/a.wav", "y/b.wav"]


def test_folds_of_augmented_features_are_the_originals_folds_and_hold_no_copy():
    from amsnet_lib.data.protocols import make_folds

    n = 40
    originals = pd.DataFrame({"path": [f"/c/{i:02d}.wav" for i in range(n)], "label": ["a", "b"] * (n // 2),
                              "speaker": [f"{10 + i % 4}" for i in range(n)]})
    copies = originals.assign(source=originals["path"], path=[f"/aug/{i:02d}.0.wav" for i in range(n)])
    table = pd.concat([originals.assign(source=""), copies], ignore_index=True)
    for protocol in ("paper", "loso"):
        plain, aug = make_folds(originals, protocol), make_folds(table, protocol)
        assert [f.name for f in aug] == [f.name for f in plain]
        for p, a in zip(plain, aug):  # the originals sit first: the same positions
            np.testing.assert_array_equal(p.train, a.train)
            np.testing.assert_array_equal(p.test, a.test)
            assert a.train.max() < n and a.test.max() < n


def test_one_stage_trains_on_the_copies_and_the_others_as_without_them(tmp_path):
    """Per-stage augmentation (TrainConfig.augment): URLM trains on its speed copies, FRLM on the
    originals alone, with the run key and the numbers of FRLM trained on features without copies;
    the fusion over both is standardised with the originals' statistics, as each branch was."""
    from amsnet_lib.data.corpora import load_corpus
    from amsnet_lib.data.features import extract_features
    from amsnet_lib.train.runstore import branch_key, n_utterances
    from amsnet_lib.studies import experiment
    from amsnet_lib.train.training import run_experiment

    table = load_corpus(_tone_corpus(tmp_path / "c", 5, seed=70))
    feats = extract_features(table, TINY_FEATURES, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    fast = augmented_features(feats, "speed", audio_dir=tmp_path / "aug", feature_cache=tmp_path / "cache", progress=False)
    base = experiment("custom", "amsnet", "paper", "quick", features=TINY_FEATURES, n_folds=2)
    exp = dataclasses.replace(base, branch_train=dataclasses.replace(base.branch_train, augment="speed"),
                              frlm_train=base.branch_train)
    assert exp.audio_augment == "speed" and exp.stage_augment("frlm") == "none" and exp.stage_augment("fusion") == "none"
    assert n_utterances(fast, exp) == n_utterances(feats, exp) == 10
    assert branch_key("frlm", exp, 10) == branch_key("frlm", base, 10) != branch_key("urlm", exp, 10)
    with pytest.raises(AmsnetError, match="carry no speed copies"):
        run_experiment(dataclasses.replace(exp, model="urlm"), feats, store=tmp_path / "refused", progress=False)
    res = run_experiment(exp, fast, store=tmp_path / "runs", progress=False)
    plain = run_experiment(dataclasses.replace(base, model="frlm"), feats, store=tmp_path / "plain", progress=False)
    frlm = run_experiment(dataclasses.replace(exp, model="frlm"), fast, store=tmp_path / "runs", progress=False)
    urlm = run_experiment(dataclasses.replace(exp, model="urlm"), fast, store=tmp_path / "runs", progress=False)
    for f in range(2):
        m_plain, m_frlm = plain.folds.iloc[f], frlm.folds.iloc[f]
        assert m_frlm["n_train"] == m_plain["n_train"] and m_frlm["wa"] == m_plain["wa"] and m_frlm["loss"] == m_plain["loss"]
        assert urlm.folds.iloc[f]["n_train"] == 3 * m_plain["n_train"]  # its fit part and both speeds of it
        assert res.folds.iloc[f]["n_train"] == m_plain["n_train"]  # the head: the originals
    assert len(res.predictions) == len(urlm.predictions) == 10  # every original tested once, no copy
    # a trained model is scored on validation without the copies (a read-back session makes none)
    from amsnet_lib.train.ensemble import validation_scores

    urlm_exp = dataclasses.replace(exp, model="urlm")
    with_copies = validation_scores(urlm_exp, fast, 1, store=tmp_path / "runs", train=False)
    kept = list((tmp_path / "runs").glob("ensemble-*/seed0/*/validation.csv"))
    assert len(kept) == 2
    for path in kept:
        path.unlink()  # scored again, from the weights
    without = validation_scores(urlm_exp, feats, 1, store=tmp_path / "runs", train=False)
    assert not without.attrs["missing"] and len(without) == 2
    assert list(without["val_ua"]) == list(with_copies["val_ua"]) and list(without["val_loss"]) == list(with_copies["val_loss"])


def _tone_corpus(root, per_class: int, seed: int):
    """A folder corpus of 1-s tones, ``per_class`` of each of two labels (high, low)."""
    for i in range(per_class):
        for label, f0 in (("high", 320.0), ("low", 110.0)):
            (root / label).mkdir(parents=True, exist_ok=True)
            sf.write(root / label / f"{label}{i}.wav", tone(1.0, f0 * (1 + 0.03 * i), seed=seed + i), 16000)
    return root


def test_cli_fit_augment_trains_on_copies_and_records_the_originals(tmp_path, capsys):
    import torch

    from amsnet_lib import cli
    from amsnet_lib.serve.checkpoint import file_digest, read_checkpoint_info

    train = _tone_corpus(tmp_path / "train", 4, seed=40)
    out = tmp_path / "aug.pt"
    threads = torch.get_num_threads()
    try:
        assert cli.main(["fit", "--corpus", str(train), "--duration", "1.0", "--profile", "quick", "--out", str(out),
                         "--run-dir", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache" / "features"),
                         "--jobs", "1", "--threads", "1", "--augment", "channels", "--model", "urlm"]) == 0
    finally:
        torch.set_num_threads(threads)
    info = read_checkpoint_info(out)
    assert info.experiment.augment == "channels" and info.meta["n_utterances"] == 8
    assert info.meta["training_sha256"] == sorted(file_digest(p) for p in train.rglob("*.wav"))
    assert len(list((tmp_path / "cache" / "augmented" / "channels").glob("*.wav"))) == 8


def test_cli_train_augment_cross_validates_on_the_originals_with_its_own_summary_row(tmp_path, capsys):
    import torch

    from amsnet_lib import cli

    corpus = _tone_corpus(tmp_path / "c", 6, seed=60)
    threads = torch.get_num_threads()
    try:
        assert cli.main(["train", "--corpus", str(corpus), "--duration", "1.0", "--profile", "full", "--model", "urlm",
                         "--epochs", "2", "--folds", "3", "--run-dir", str(tmp_path / "runs"),
                         "--cache-dir", str(tmp_path / "cache" / "features"), "--jobs", "1", "--threads", "1",
                         "--summary", str(tmp_path / "summary.csv"), "--augment", "speed"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "(3 fold runs)" in out and len(list((tmp_path / "cache" / "augmented" / "speed").glob("*.wav"))) == 24
    row = pd.read_csv(tmp_path / "summary.csv").iloc[0]
    assert row["variant"] == "epochs=2, augment=speed" and row["model"] == "urlm"
    preds = pd.concat(pd.read_csv(p) for p in (tmp_path / "runs").rglob("predictions.csv"))
    assert len(preds) == 12 and not preds["path"].str.contains("augmented").any()  # the originals, each tested once


def test_channel_shift_benchmark_reuses_a_cached_model_only_for_its_configuration(tiny_ckpt):
    """The benchmark's cache is named by model and recipe; a recipe whose values changed (the tuned
    recipe's URLM did) must not be scored with the model its old values trained."""
    import dataclasses

    from amsnet_lib.serve.checkpoint import load_checkpoint
    from benchmarks import channel_shift

    exp = load_checkpoint(tiny_ckpt)[1].experiment
    assert channel_shift._trained_as(tiny_ckpt, exp)
    changed = dataclasses.replace(exp, branch_train=dataclasses.replace(exp.branch_train, lr=exp.branch_train.lr * 3))
    assert not channel_shift._trained_as(tiny_ckpt, changed)
    # scores are kept per checkpoint file: another file, another folder
    assert channel_shift.checkpoint_digest(tiny_ckpt) == channel_shift.checkpoint_digest(tiny_ckpt)
    assert len(channel_shift.checkpoint_digest(tiny_ckpt)) == 12
