"""Issue #38 item 2, what unseen speakers need: per-utterance normalisation (training, fit_final and
inference alike, ONNX and TorchScript included) and pitch-shift augmentation (copies that change the
voice, kept out of validation and test). Options built and tested; not yet chosen on validation speakers."""
from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from amsnet_lib import cli
from amsnet_lib.config import AUGMENTATIONS, NORMALISATIONS, FeatureConfig, TrainConfig
from amsnet_lib.data import normalisation as norm_mod
from amsnet_lib.data.features import (UTTERANCE_STD_FLOOR, Features, Normaliser, frame_features, log_mel_spectrogram,
                                      pad_frames, speech_spec_frames, standardise_per_utterance, standardise_utterance)
from amsnet_lib.data.protocols import Fold
from signals import TINY_FEATURES, tone

SYNTH = FeatureConfig(duration=0.2, n_mels=8, max_frames=20)  # q = 20 frames, 9 spectrogram frames


def _raw(lengths=(20, 10, 3, 15, 1, 20), seed=0) -> Features:
    """Unnormalised synthetic streams: every utterance at its own level and scale, padded as extraction pads."""
    rng = np.random.default_rng(seed)
    n, q, t = len(lengths), SYNTH.q, SYNTH.spec_frames
    frames = rng.normal(rng.uniform(-50, 50, (n, 1, 76)), rng.uniform(0.1, 20, (n, 1, 76)), (n, q, 76))
    mask = np.arange(q)[None, :] < np.asarray(lengths)[:, None]
    frames[~mask] = 0
    spec = rng.normal(rng.uniform(-8, -2, (n, SYNTH.n_mels, 1)), 2.0, (n, SYNTH.n_mels, t))
    held = speech_spec_frames(mask.sum(1), SYNTH)
    padding = np.broadcast_to(np.arange(t)[None, None, :] >= held[:, None, None], spec.shape)
    spec[padding] = np.log(SYNTH.log_offset)  # the zero-padding's frames
    table = pd.DataFrame({"path": [f"/x/u{i}.wav" for i in range(n)], "label": ["a", "b"] * (n // 2),
                          "speaker": [f"s{i % 3}" for i in range(n)], "duration": 0.2})
    return Features(frames.astype(np.float32), mask, spec.astype(np.float32), (np.arange(n) % 2).astype(np.int64),
                    ["a", "b"], table, SYNTH)


# --------------------------------------------------------------------------- the transform


def test_each_utterance_is_standardised_over_its_own_valid_frames_and_speech_frames():
    raw = _raw()
    out = standardise_per_utterance(raw)
    assert out.frames.dtype == out.spec.dtype == np.float32 and out.frames.shape == raw.frames.shape
    held = speech_spec_frames(raw.mask.sum(1), SYNTH)
    assert list(held) == [9, 5, 2, 7, 1, 9]  # 1 + n·160 // 400, every frame for a full mask
    for i in range(len(raw)):
        valid = out.frames[i][raw.mask[i]].astype(np.float64)
        if len(valid) > 1:
            np.testing.assert_allclose(valid.mean(0), 0, atol=1e-5)
            np.testing.assert_allclose(valid.std(0), 1, atol=1e-4)
        else:  # one frame: nothing to scale, and no NaN
            assert (valid == 0).all()
        assert (out.frames[i][~raw.mask[i]] == 0).all()  # padding untouched
        speech = out.spec[i][:, : held[i]].astype(np.float64)
        np.testing.assert_allclose(speech.mean(1), 0, atol=1e-5)
        if held[i] > 1:
            np.testing.assert_allclose(speech.std(1), 1, atol=1e-4)
        rest = out.spec[i][:, held[i]:]  # the padding's frames: transformed with the speech's statistics, not in them
        if rest.size:
            assert (rest == rest[:, :1]).all() and np.isfinite(rest).all()
    # one implementation: the single-window form (inference) gives the same numbers as the corpus form (training)
    for i in range(len(raw)):
        f, s = standardise_utterance(raw.frames[i], raw.mask[i], raw.spec[i], SYNTH)
        np.testing.assert_array_equal(f, out.frames[i])
        np.testing.assert_array_equal(s, out.spec[i])


def test_constant_features_become_zero_not_nan(monkeypatch):
    raw = _raw()
    raw.frames[raw.mask] = 3.0  # every valid frame alike: std 0
    raw.frames[0, :, 5] = 3.0 + 1e-6  # a dimension constant up to rounding: held at the floor, not blown up
    raw.spec[:] = np.log(SYNTH.log_offset)  # digital silence
    out = standardise_per_utterance(raw)
    assert np.isfinite(out.frames).all() and np.isfinite(out.spec).all()
    assert np.abs(out.frames).max() < 1e-2 and (out.spec == 0).all()
    assert UTTERANCE_STD_FLOOR == 1e-3
    # the large-corpus chunking changes nothing
    whole = standardise_per_utterance(_raw())
    monkeypatch.setattr(norm_mod, "_UTTERANCE_CHUNK", 2)
    chunked = standardise_per_utterance(_raw())
    np.testing.assert_array_equal(chunked.frames, whole.frames)
    np.testing.assert_array_equal(chunked.spec, whole.spec)


def test_the_speech_frames_of_a_real_window_are_those_before_the_zero_padding():
    """From the mask alone (what training and inference both have), the log-mel frames that hold audio."""
    c = FeatureConfig()  # 3-s window: q 300, 121 spectrogram frames, hop 400
    for seconds in (0.5, 1.0, 2.2):
        x = tone(seconds, 180.0, seed=3)
        _, mask = pad_frames(frame_features(x, c)[: c.q], c.q)
        spec = log_mel_spectrogram(x, c)
        k = int(speech_spec_frames(mask.sum(), c))
        pure_padding = int(np.ceil((len(x) + c.n_fft / 2) / c.hop_length))  # first frame whose window holds no sample
        assert pure_padding - 3 <= k <= pure_padding
        assert (spec[:, pure_padding:] == np.float32(np.log(c.log_offset))).all()
        assert (spec[:, :k].mean(0) > np.log(c.log_offset) + 3).all()  # every frame counted holds the tone
    long = tone(3.5, 180.0)
    _, mask = pad_frames(frame_features(long, c)[: c.q], c.q)
    assert mask.all() and speech_spec_frames(mask.sum(), c) == c.spec_frames


def test_fold_data_standardises_each_utterance_before_the_fit_part_statistics():
    from amsnet_lib.data.protocols import validation_split
    from amsnet_lib.data.splits import fold_data

    raw = _raw(lengths=(20, 10, 3, 15, 12, 20, 8, 17, 20, 5))
    fold = Fold("f", np.arange(8), np.array([8, 9]))
    fd = fold_data(raw, fold, 0.25, 0, "cpu", normalisation="utterance")
    fit_idx, _ = validation_split(raw.labels, fold.train, 0.25, 0)
    per_utt = standardise_per_utterance(raw)
    want = Normaliser.fit(per_utt.subset(fit_idx)).transform(per_utt)
    np.testing.assert_allclose(fd.test["frames"].numpy(), want.frames[[8, 9]], rtol=0, atol=1e-6)
    np.testing.assert_allclose(fd.test["spec"].numpy(), want.spec[[8, 9]], rtol=0, atol=1e-6)
    plain = fold_data(raw, fold, 0.25, 0, "cpu")
    assert not np.allclose(plain.test["frames"].numpy(), fd.test["frames"].numpy())


# --------------------------------------------------------------------------- configuration, keys, CLI


def test_the_options_are_declared_and_a_corpus_experiments_keys_are_unchanged(tmp_path):
    from amsnet_lib.studies import experiment
    from amsnet_lib.train.like import experiment_dir_name, experiment_like
    from amsnet_lib.train.runstore import _branch_identity, _describe, branch_key
    from amsnet_lib.train.training import summary_variant

    assert "utterance" in NORMALISATIONS and "pitch" in AUGMENTATIONS
    assert TrainConfig(augment="pitch").augment == "pitch"
    # computed before either option existed: the keys of corpus-normalised, unaugmented runs stay as they were
    # (the quick profile as it was then: 2 epochs on 3-s features; it trains 1 on the first second since)
    def then(model):
        return dataclasses.replace(experiment("emodb", model, "loso", "quick").with_training(epochs=2),
                                   features=FeatureConfig.for_corpus("emodb"))

    for model, key in (("frlm", "db24c01e9f27"), ("urlm", "8eebb0d7eac0"), ("early", "e55577024732")):
        assert branch_key(model, then(model), 535) == key
    assert experiment_dir_name(then("amsnet"), 535) == "amsnet-710a2728fd26"
    assert experiment_dir_name(then("late"), 535) == "late-e5de4178b492"
    assert experiment_dir_name(experiment("emodb", "amsnet", "paper", "full", recipe="tuned"), 535) == "amsnet-b411fce488ef"
    # each option is a run of its own, and a run folder reads back to it (amsnet fit --like)
    for kw in ({"normalisation": "utterance"}, {"augment": "pitch"}, {"normalisation": "utterance", "augment": "pitch"}):
        exp = experiment("emodb", "urlm", "loso", "quick", **kw)
        assert branch_key("urlm", exp, 535) != "8eebb0d7eac0"
        assert {k: v for k, v in _branch_identity("urlm", exp, 535).items() if k in kw} == kw
        folder = tmp_path / experiment_dir_name(exp, 535)
        _describe(folder, _branch_identity("urlm", exp, 535))
        back = experiment_like(folder)
        assert (back.normalisation, back.augment) == (exp.normalisation, exp.augment)
    assert summary_variant(experiment("emodb", "urlm", "loso", "quick", normalisation="utterance")) == "normalisation=utterance"
    # fit --like takes an utterance-normalised run; a speaker-normalised one stays refused
    from amsnet_lib.cli.train import _like
    from amsnet_lib.errors import AmsnetError

    utt = tmp_path / experiment_dir_name(experiment("emodb", "urlm", "loso", "quick", normalisation="utterance"), 535)
    assert _like(argparse.Namespace(like=str(utt), given=frozenset()))[0].normalisation == "utterance"
    spk_exp = experiment("emodb", "urlm", "loso", "quick", normalisation="speaker")
    spk = tmp_path / experiment_dir_name(spk_exp, 535)
    _describe(spk, _branch_identity("urlm", spk_exp, 535))
    with pytest.raises(AmsnetError, match="normalisation 'speaker'"):
        _like(argparse.Namespace(like=str(spk), given=frozenset()))


def test_the_commands_accept_the_new_choices():
    parser = cli.build_parser()
    common = ["--corpus", "emodb"]
    for argv in (["train", *common, "--normalisation", "utterance", "--augment", "pitch"],
                 ["fit", *common, "--out", "m.pt", "--normalisation", "utterance", "--augment", "pitch"],
                 ["compare", *common, "amsnet", "urlm", "--normalisation", "utterance"],
                 ["features", *common, "--augment", "pitch", "--save", "b.npz"],
                 ["search", *common, "--stage", "urlm", "--augment", "pitch"]):
        args = parser.parse_args(argv)
        assert getattr(args, "normalisation", "utterance") == "utterance" and getattr(args, "augment", "pitch") == "pitch"
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("train", "fit", "compare"):
        help_text = " ".join(sub.choices[name].format_help().split())
        assert "utterance" in help_text, name


# --------------------------------------------------------------------------- training and inference alike


@pytest.fixture(scope="module")
def utt_ckpt(tmp_path_factory):
    """A quick-profile AMSNet fit by `amsnet fit --normalisation utterance` on 8 tone WAVs (1-s window)."""
    root = tmp_path_factory.mktemp("utterance")
    for i in range(4):
        for label, f0 in (("high", 320.0), ("low", 110.0)):
            p = root / "c" / label / f"{label}{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, tone(0.6 + 0.1 * i, f0 * (1 + 0.03 * i), seed=i), 16000)
    threads = torch.get_num_threads()
    try:
        assert cli.main(["fit", "--corpus", str(root / "c"), "--duration", "1.0", "--profile", "quick", "--out",
                         str(root / "u.pt"), "--run-dir", str(root / "runs"), "--cache-dir", str(root / "cache" / "features"),
                         "--jobs", "1", "--threads", "1", "--normalisation", "utterance"]) == 0
    finally:
        torch.set_num_threads(threads)
    return root / "u.pt"


def _manual(rec, signal, utterance: bool = True):
    """The training path by hand: features, per-utterance standardisation, the fitted statistics, the model."""
    c = rec.config
    frames, mask = pad_frames(frame_features(signal, c)[: c.q], c.q)
    spec = log_mel_spectrogram(signal, c)
    if utterance:
        frames, spec = standardise_utterance(frames, mask, spec, c)
    one = Features(frames[None], mask[None], spec[None], np.zeros(1, np.int64), list(rec.classes), pd.DataFrame(), c)
    one = rec.info.normaliser.transform(one)
    with torch.inference_mode():
        logits, _ = rec.model(torch.from_numpy(one.frames), torch.from_numpy(one.mask), torch.from_numpy(one.spec))
    return torch.softmax(logits, -1).numpy()[0]


def test_fit_final_trains_utterance_normalisation_and_the_recognizer_applies_it_as_training_did(utt_ckpt, tmp_path):
    from amsnet_lib.serve.checkpoint import read_checkpoint_info
    from amsnet_lib.serve.predict import Recognizer
    from amsnet_lib.studies import experiment
    from amsnet_lib.train.training import fit_final

    info = read_checkpoint_info(utt_ckpt)
    assert info.experiment.normalisation == "utterance" and "normalisation utterance" in info.meta["configuration"]
    # the fitted statistics are those of standardised utterances: the frame stream's means about 0
    assert np.abs(info.normaliser.frames_mean).max() < 1e-3
    with pytest.raises(ValueError, match="normalisation='corpus' or normalisation='utterance'"):
        fit_final(experiment("custom", "urlm", "paper", "quick", normalisation="speaker"), _raw(), store=tmp_path)
    rec = Recognizer(utt_ckpt)
    assert rec.utterance_normalised
    for x in (tone(0.55, 210.0, seed=7), tone(0.9, 130.0, seed=8)):  # windows with zero-padding of their own length
        want = _manual(rec, x)
        for overlap in (False, True):  # the sequential path and openSMILE beside URLM
            got = rec.predict_signal(x, overlap=overlap)["probabilities"]
            np.testing.assert_allclose([got[c] for c in rec.classes], want, atol=1e-5)
        assert not np.allclose(_manual(rec, x, utterance=False), want, atol=1e-4)  # the step matters
    # --adapt starts from the per-utterance features: standardised, then the blended statistics
    from amsnet_lib.serve.adapt import adapt_features

    paths = []
    for i, (seconds, f0) in enumerate(((0.7, 150.0), (0.5, 260.0), (0.8, 100.0))):
        paths.append(tmp_path / f"a{i}.wav")
        sf.write(paths[-1], tone(seconds, f0, seed=20 + i), 16000)
    df = rec.predict([str(p) for p in paths], adapt="corpus", progress=False)
    feats = [rec.features(rec.load(p)) for p in paths]
    f, m, s = (np.stack(a) for a in zip(*feats))
    f, s = standardise_utterance(f, m, s, rec.config)
    f, s, _ = adapt_features(rec.info.normaliser, f, m, s, "corpus")
    proba, _ = rec.infer(f, m, s, normalised=True)
    np.testing.assert_allclose(df[[f"p_{c}" for c in rec.classes]].to_numpy(), proba, atol=1e-5)


def test_the_torchscript_export_standardises_each_utterance_inside(utt_ckpt, tmp_path):
    from amsnet_lib.serve.export import export_torchscript, load_exported
    from amsnet_lib.serve.predict import Recognizer

    rec = Recognizer(utt_ckpt)
    module, meta = load_exported(export_torchscript(utt_ckpt, tmp_path / "u.ts.pt"))
    assert meta["normalisation"] == "utterance" and meta["normalised_inside"] is True
    feats = [rec.features(tone(seconds, 180.0, seed=k)) for k, seconds in enumerate((0.3, 0.62, 1.2))]
    f, m, s = (np.stack(a) for a in zip(*feats))
    assert len(set(m.sum(1))) == 3  # three mask lengths, one of them full
    with torch.inference_mode():
        got, _ = module(torch.from_numpy(f), torch.from_numpy(m), torch.from_numpy(s))
    np.testing.assert_allclose(got.numpy(), rec.infer(f, m, s)[0], atol=1e-4)


def _shipped_pair(tmp_path, normalisation: str):
    """The shipped model's checkpoint and ONNX file (the same network), their experiment configuration set
    to ``normalisation``: what inference does with each then depends only on that field."""
    import onnx

    from amsnet_lib.serve.checkpoint import load_checkpoint, save_checkpoint
    from amsnet_lib.serve.predict import SHIPPED_CHECKPOINT, SHIPPED_ONNX

    model, info = load_checkpoint(SHIPPED_CHECKPOINT, "cpu")
    exp = dataclasses.replace(info.experiment, normalisation=normalisation)
    pt = save_checkpoint(tmp_path / f"{normalisation}.pt", model, exp, list(info.classes), info.normaliser, dict(info.meta))
    proto = onnx.load(str(SHIPPED_ONNX))
    for entry in proto.metadata_props:
        if entry.key == "experiment":
            entry.value = json.dumps({**json.loads(entry.value), "normalisation": normalisation})
    onnx.save_model(proto, str(tmp_path / f"{normalisation}.onnx"))
    return pt, tmp_path / f"{normalisation}.onnx"


def test_an_onnx_model_of_an_utterance_normalised_checkpoint_gives_its_probabilities(tmp_path):
    from amsnet_lib.serve.predict import SHIPPED_ONNX, Recognizer

    if not SHIPPED_ONNX.is_file():
        pytest.skip("the shipped model's ONNX file is absent")
    pt, onnx_path = _shipped_pair(tmp_path, "utterance")
    eager, ort = Recognizer(pt), Recognizer(onnx_path)
    assert ort.runtime == "onnxruntime" and ort.utterance_normalised and eager.utterance_normalised
    plain = Recognizer(SHIPPED_ONNX)
    assert not plain.utterance_normalised
    x = np.concatenate([tone(0.8, 140.0, seed=1), tone(1.1, 230.0, seed=2)])  # 1.9 s in the 3-s window: padded
    p_eager, p_ort = (np.array(list(r.predict_signal(x)["probabilities"].values())) for r in (eager, ort))
    np.testing.assert_allclose(p_ort, p_eager, atol=1e-4)
    np.testing.assert_allclose(p_eager, _manual(eager, x), atol=1e-5)
    assert not np.allclose(np.array(list(plain.predict_signal(x)["probabilities"].values())), p_ort, atol=1e-3)


@pytest.mark.slow
def test_export_onnx_of_an_utterance_checkpoint_matches_the_eager_model(utt_ckpt, tmp_path):
    """The real export: metadata says the normalisation, and
    ONNX Runtime's probabilities equal the checkpoint's on windows with and without padding."""
    from amsnet_lib.serve.export import export_onnx
    from amsnet_lib.serve.onnx_model import OnnxModel
    from amsnet_lib.serve.predict import Recognizer

    out = export_onnx(utt_ckpt, tmp_path / "u.onnx")
    props = dict(OnnxModel(out).session.get_modelmeta().custom_metadata_map)
    assert json.loads(props["normalisation"]) == "utterance"
    eager, ort = Recognizer(utt_ckpt), Recognizer(out)
    for x in (tone(0.4, 300.0, seed=4), tone(2.3, 120.0, seed=5)):
        a, b = (np.array(list(r.predict_signal(x)["probabilities"].values())) for r in (eager, ort))
        np.testing.assert_allclose(b, a, atol=1e-4)


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


# --------------------------------------------------------------------------- selection for unseen speakers (item 1)


def test_validation_on_held_out_speakers_is_an_option_of_train_compare_and_search_with_keys_of_its_own(monkeypatch):
    from amsnet_lib import studies
    from amsnet_lib.cli import train as cli_train
    from amsnet_lib.train import search
    from amsnet_lib.train.runstore import branch_key

    parser = cli.build_parser()
    common = ["--corpus", "emodb", "--protocol", "loso"]
    for argv in (["train", *common, "--validation", "speaker"], ["compare", *common, "amsnet", "urlm", "--validation", "speaker"],
                 ["search", *common, "--stage", "urlm", "--validation", "speaker"]):
        assert parser.parse_args(argv).validation == "speaker"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", *common, "--validation", "speakers"])
    # not given: the protocol's own split, so every existing run key stays as it was
    args = parser.parse_args(["train", *common])
    assert "validation" not in cli_train._protocol_kwargs(args)
    default = studies.experiment("emodb", "urlm", "loso", "quick")
    chosen = cli_train._protocol_kwargs(parser.parse_args(["train", *common, "--validation", "speaker"]))
    held_out = studies.experiment("emodb", "urlm", "loso", "quick", validation=chosen["validation"])
    assert default.validation == "utterance" and held_out.validation == "speaker"
    # the branches it trains are not the ones chosen on utterance splits: keys of their own; the
    # protocol's own split keeps its keys (RAVDESS's folds hold speakers out by default)
    assert branch_key("urlm", held_out, 535) != branch_key("urlm", default, 535)
    assert branch_key("urlm", dataclasses.replace(held_out, validation="utterance"), 535) == branch_key("urlm", default, 535)
    ravdess = studies.experiment("ravdess", "urlm", "emobox", "quick")
    assert ravdess.validation == "speaker"
    assert branch_key("urlm", dataclasses.replace(ravdess, validation="speaker"), 1440) == branch_key("urlm", ravdess, 1440)
    # a search scored on other validation splits keeps a journal and a table of its own
    monkeypatch.setattr(search, "recipe_augment", lambda *a, **k: "none")
    assert search.study_name("urlm", "emodb", "loso") == "emodb-loso-urlm"
    assert search.study_name("urlm", "emodb", "loso", validation="utterance") == "emodb-loso-urlm"
    assert search.study_name("urlm", "emodb", "loso", validation="speaker") == "emodb-loso-urlm-speaker-validation"
    assert search.study_name("urlm", "ravdess", "emobox", validation="speaker") == "ravdess-emobox-urlm"
    search_args = parser.parse_args(["search", *common, "--stage", "urlm", "--validation", "speaker"])
    assert search_args.validation == "speaker"
    # and a table of its own per protocol: the paper's folds' tables keep their names
    assert search.table_name("urlm", "emodb", "loso", validation="speaker") == "recipe_search_emodb_urlm_loso_speaker_validation"
    assert search.table_name("urlm", "emodb", "loso", validation="utterance") == "recipe_search_emodb_urlm_loso"
    assert search.table_name("urlm", "emodb", own="speed") == "recipe_search_emodb_urlm_with_speed"
    assert search.table_name("urlm", "emodb", augment="pitch") == "recipe_search_emodb_urlm_pitch"
    assert search.table_name("urlm", "emodb", "loso", augment="pitch", validation="speaker") == \
        "recipe_search_emodb_urlm_pitch_loso_speaker_validation"
