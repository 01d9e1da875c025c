"""Inference on new audio: inputs, features as in training, bad files, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from amsnet_lib import cli
from amsnet_lib.errors import CheckpointError
from amsnet_lib.data.features import Normaliser, extract_features
from amsnet_lib.serve.inputs import collect_inputs
from amsnet_lib.serve.predict import Recognizer, predict

from signals import TINY_FEATURES, tone



@pytest.fixture(scope="module")
def rec(tiny_ckpt) -> Recognizer:
    return Recognizer(tiny_ckpt)


def _prob_cols(df):
    return [c for c in df.columns if c.startswith("p_")]


# --------------------------------------------------------------------------- features as in training


def test_features_and_normalisation_match_the_training_path(rec, write_audio, tmp_path):
    paths = [write_audio("a.wav", tone(1.4, 150.0, seed=3)), write_audio("b.wav", tone(0.6, 300.0, seed=4), sample_rate=16000)]
    table = pd.DataFrame({"path": [str(p) for p in paths], "label": ["high", "low"], "speaker": ["x", "y"], "duration": [1.4, 0.6]})
    table.attrs["classes"] = ["high", "low"]
    feats = extract_features(table, rec.config, cache_dir=tmp_path / "c", n_jobs=1, progress=False)
    norm = rec.info.normaliser.transform(feats)
    for i, p in enumerate(paths):
        f, m, s = rec.normalise(*rec.features(rec.load(p)))
        np.testing.assert_array_equal(m, feats.mask[i])
        np.testing.assert_allclose(f, norm.frames[i], rtol=0, atol=1e-6)
        np.testing.assert_allclose(s, norm.spec[i], rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- inputs


def test_files_folder_and_manifest_give_the_same_predictions(rec, tmp_path):
    folder = tmp_path / "clips"
    (folder / "deep").mkdir(parents=True)
    paths = [folder / "one.wav", folder / "deep" / "two.flac", folder / "deep" / "three.WAV"]
    for i, p in enumerate(paths):
        sf.write(p, tone(1.0 + 0.2 * i, 120.0 + 100 * i, seed=i), 16000, format="FLAC" if p.suffix == ".flac" else "WAV")
    (folder / "notes.txt").write_text("not audio")
    (tmp_path / "list.csv").write_text("path,label\nclips/one.wav,x\nclips/deep/two.flac,y\n" + f"{paths[2]},z\n")

    by_file = predict([str(p) for p in paths], checkpoint=rec, progress=False)
    by_folder = predict(folder, checkpoint=rec, progress=False)
    by_manifest = predict(tmp_path / "list.csv", checkpoint=rec, progress=False)
    assert list(by_file.columns) == ["path", "label", "p_high", "p_low", "alpha_frlm", "alpha_urlm", "duration", "windows",
                                     "warnings", "error"]
    assert (by_file["error"] == "").all() and by_file["label"].isin(["high", "low"]).all()
    np.testing.assert_allclose(by_file[_prob_cols(by_file)].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(by_file[["alpha_frlm", "alpha_urlm"]].sum(axis=1), 1.0, atol=1e-5)
    assert sorted(by_folder["path"]) == sorted(str(p) for p in paths)  # recursive, .wav/.flac any case only
    key = lambda d: d.set_index("path").sort_index()[_prob_cols(d)]  # noqa: E731
    pd.testing.assert_frame_equal(key(by_file), key(by_folder))
    pd.testing.assert_frame_equal(key(by_file), key(by_manifest))
    # batching does not change anything
    pd.testing.assert_frame_equal(key(by_file), key(predict(folder, checkpoint=rec, batch_size=1, progress=False)),
                                  check_exact=False, atol=1e-6)


def test_collect_inputs_reports_empty_folders_and_bad_manifests(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "m.csv").write_text("file,label\na.wav,x\n")
    got = dict(collect_inputs([tmp_path / "empty", tmp_path / "m.csv", tmp_path / "missing.wav"]))
    assert "holds no audio files" in got[str(tmp_path / "empty")] and ".wav, .flac, .ogg" in got[str(tmp_path / "empty")]
    assert "no `path` column" in got[str(tmp_path / "m.csv")]
    assert got[str(tmp_path / "missing.wav")] == ""  # its error comes from loading it


def test_recognizer_is_loaded_once_per_checkpoint(tiny_ckpt, write_audio):
    from amsnet_lib.serve import predict as P

    p = write_audio("x.wav", tone(1.0, 200.0))
    predict(p, checkpoint=tiny_ckpt, progress=False)
    first = P._cached_recognizer(tiny_ckpt)
    predict(p, checkpoint=tiny_ckpt, progress=False)
    assert P._cached_recognizer(tiny_ckpt) is first


def test_missing_shipped_checkpoint_says_how_to_train_it(monkeypatch, tmp_path):
    from amsnet_lib.serve import predict as P

    monkeypatch.setitem(P.SHIPPED_MODELS, "emodb", tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match=r"python -m scripts\.train_shipped_model"):
        predict(tmp_path / "x.wav", progress=False)


# --------------------------------------------------------------------------- bad inputs


def test_each_bad_file_gets_an_error_row_and_the_batch_continues(rec, tmp_path, write_audio):
    good = write_audio("good.wav", tone(0.9, 200.0))  # the tiny model reads 1 s
    text = tmp_path / "text.wav"
    text.write_text("this is not audio\n" * 50)
    empty = write_audio("empty.wav", np.zeros(0, np.float32))
    short = write_audio("short.wav", tone(0.05, 200.0))
    silent = write_audio("silent.wav", np.zeros(16000, np.float32))
    square = np.sign(np.sin(2 * np.pi * 150 * np.arange(16000) / 16000)).astype(np.float32)
    clipped = write_audio("clipped.wav", square)
    odd_rate = write_audio("odd.wav", tone(1.1, 200.0, sr=11025), sample_rate=11025)
    stereo = write_audio("stereo.wav", np.stack([tone(1.0, 200.0), tone(1.0, 210.0)], 1))
    flac_as_wav = write_audio("lying.wav", tone(1.0, 220.0), format="FLAC")
    wav_as_flac = write_audio("lying.flac", tone(1.0, 220.0), format="WAV")
    text_as_flac = tmp_path / "text.flac"
    text_as_flac.write_bytes(b"fLaC" + b"\x00" * 30)
    long = write_audio("long.wav", tone(2.5, 200.0))
    missing = tmp_path / "missing.wav"
    inputs = [good, text, empty, short, silent, clipped, odd_rate, stereo, flac_as_wav, wav_as_flac, text_as_flac, long, missing]

    raw = predict([str(p) for p in inputs], checkpoint=rec, batch_size=4, progress=False)
    assert list(raw["path"]) == [str(p) for p in inputs]  # input order kept
    assert sorted(p for p, _ in raw.attrs["failed"]) == sorted(str(p) for p in (text, empty, short, text_as_flac, missing))
    df = raw.set_index("path")
    assert len(df) == len(inputs)
    row = lambda p: df.loc[str(p)]  # noqa: E731
    for bad, msg in ((text, "cannot be decoded"), (empty, "no audio samples"), (short, "too short"),
                     (text_as_flac, "cannot be decoded"), (missing, "does not exist")):
        r = row(bad)
        assert msg in r["error"], (bad, r["error"])
        assert "Fix:" in r["error"]
        assert pd.isna(r["label"]) and np.isnan(r["p_high"])
    for ok in (good, silent, clipped, odd_rate, stereo, flac_as_wav, wav_as_flac, long):
        r = row(ok)
        assert r["error"] == "" and r["label"] in ("high", "low"), (ok, r["error"])
    assert row(silent)["warnings"] == "silent"
    assert row(clipped)["warnings"] == "clipped"
    # scored whole: 1-s windows at 0, 1 and 1.5 s (the last one ends at the end), nothing truncated
    assert row(long)["warnings"] == "" and row(long)["windows"] == 3 and row(good)["windows"] == 1
    assert row(good)["warnings"] == ""
    assert row(odd_rate)["duration"] == pytest.approx(1.1, abs=1e-3)
    # a stereo file is its channel mean, exactly as load_audio gives it
    ref = predict(str(stereo), checkpoint=rec, progress=False).iloc[0]
    assert ref["p_high"] == pytest.approx(row(stereo)["p_high"], abs=1e-6)


# --------------------------------------------------------------------------- CLI


def test_cli_predict_json(tiny_ckpt, write_audio, tmp_path, capsys):
    a = write_audio("a.wav", tone(1.0, 140.0))
    b = write_audio("b.wav", tone(1.0, 330.0), sample_rate=16000)
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    rc = cli.main(["predict", str(a), str(b), str(bad), "--checkpoint", str(tiny_ckpt), "--format", "json", "--quiet"])
    out = capsys.readouterr()
    assert rc == 0
    rows = json.loads(out.out)
    assert [r["path"] for r in rows] == [str(a), str(b), str(bad)]
    for r in rows[:2]:
        assert r["label"] in ("high", "low") and set(r["probabilities"]) == {"high", "low"}
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert set(r["alpha"]) == {"frlm", "urlm"} and r["error"] is None
    assert rows[2]["label"] is None and rows[2]["probabilities"] is None and "cannot be decoded" in rows[2]["error"]
    assert "bad.wav" in out.err  # failures are reported on stderr, stdout stays valid JSON


def test_cli_predict_table_csv_and_exit_codes(tiny_ckpt, write_audio, tmp_path, capsys):
    a = write_audio("a.wav", tone(1.0, 140.0))
    assert cli.main(["predict", str(a), "--checkpoint", str(tiny_ckpt)]) == 0
    out = capsys.readouterr().out
    assert "high" in out and "alpha_frlm" in out and "1 of 1 files predicted" in out
    assert cli.main(["predict", str(a), "--checkpoint", str(tiny_ckpt), "--format", "csv"]) == 0
    df = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert list(df["path"]) == [str(a)] and {"p_high", "p_low", "alpha_frlm", "alpha_urlm"} <= set(df.columns)
    # every file failed -> non-zero exit
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    assert cli.main(["predict", str(bad), str(tmp_path / "gone.wav"), "--checkpoint", str(tiny_ckpt)]) == 1
    err = capsys.readouterr().err
    assert "2 file(s) failed" in err and "gone.wav" in err
    # a missing checkpoint is an error naming the file
    assert cli.main(["predict", str(a), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "none.pt" in capsys.readouterr().err


# --------------------------------------------------------------------------- other model kinds


@pytest.mark.parametrize("name", ["frlm", "urlm", "concat"])
def test_models_without_connection_attention(name, tmp_path, write_audio):
    """A freshly built small model of each kind: predictions work, alpha is NaN (None in JSON)."""
    import dataclasses

    import torch

    from amsnet_lib.serve.checkpoint import save_checkpoint
    from amsnet_lib.models import build_model
    from amsnet_lib.studies import experiment

    exp = dataclasses.replace(experiment("custom", name, "paper", "quick"), features=TINY_FEATURES)
    torch.manual_seed(0)
    model = build_model(name, 3, frlm=exp.frlm, urlm=exp.urlm, fusion=exp.fusion, n_mels=128)
    norm = Normaliser(np.zeros(76, np.float32), np.ones(76, np.float32), np.full(128, -6.0, np.float32), np.full(128, 4.0, np.float32))
    ckpt = save_checkpoint(tmp_path / f"{name}.pt", model, exp, ["a", "b", "c"], norm)
    clip = write_audio("c.wav", tone(0.8, 200.0))
    r = Recognizer(ckpt)
    df = r.predict([clip], progress=False)
    assert df.loc[0, "label"] in ("a", "b", "c") and np.isnan(df.loc[0, "alpha_frlm"])
    np.testing.assert_allclose(df[["p_a", "p_b", "p_c"]].sum(axis=1), 1.0, atol=1e-5)
    one = r.predict_signal(r.load(clip))
    assert one["probabilities"]["a"] == pytest.approx(df.loc[0, "p_a"], abs=1e-6)


# --------------------------------------------------------------------------- evaluation on labelled audio


def _labelled_corpus(root: Path) -> Path:
    """Folder per label: two labels of the model (one in capitals), one it lacks, and an undecodable file."""
    for i in range(3):
        for label, f0 in (("HIGH", 330.0), ("low", 115.0)):
            (root / label).mkdir(parents=True, exist_ok=True)
            sf.write(root / label / f"{label}{i}.wav", tone(1.0 + 0.1 * i, f0 * (1 + 0.02 * i), seed=10 + i), 16000)
    (root / "excited").mkdir()
    sf.write(root / "excited" / "e0.wav", tone(1.0, 300.0, seed=20), 16000)
    (root / "low" / "broken.wav").write_text("not audio")
    return root


def test_evaluate_maps_labels_to_the_models_classes_lists_what_it_leaves_out_and_measures_the_rest(rec, tmp_path):
    from amsnet_lib.metrics import unweighted_accuracy
    from amsnet_lib.serve.evaluation import evaluate

    corpus = _labelled_corpus(tmp_path / "other")
    ev = evaluate(corpus, rec, progress=False)
    df = ev.predictions
    assert len(df) == 6 and set(df["true"]) == {"high", "low"} and set(df["corpus_label"]) == {"HIGH", "low"}
    reasons = dict(ev.left_out)
    assert len(ev.left_out) == 2 and "no class of the model" in reasons[str(corpus / "excited" / "e0.wav")]
    assert "--label-map excited=CLASS" in reasons[str(corpus / "excited" / "e0.wav")]
    assert any("broken.wav" in p for p in reasons)  # the loader's skip is reported, not dropped silently
    assert ev.wa == pytest.approx(100 * (df["true"] == df["label"]).mean())
    idx = {c: i for i, c in enumerate(ev.classes)}
    assert ev.ua == pytest.approx(100 * unweighted_accuracy(df["true"].map(idx), df["label"].map(idx), 2))
    assert int(ev.confusion.to_numpy().sum()) == 6 and list(ev.confusion.index) == ev.classes
    assert ev.confusion.loc["high"].sum() == 3 and ev.recall["high"] == pytest.approx(100 * ev.confusion.loc["high", "high"] / 3)
    # the same files predicted directly give the same labels
    direct = predict(list(df["path"]), checkpoint=rec, progress=False)
    assert list(direct["label"]) == list(df["label"])
    # a map brings the third label in
    mapped = evaluate(corpus, rec, label_map={"excited": "high"}, progress=False)
    assert len(mapped.predictions) == 7 and mapped.confusion.loc["high"].sum() == 4
    with pytest.raises(ValueError, match="not classes of the model"):
        evaluate(corpus, rec, label_map={"excited": "joy"}, progress=False)
    with pytest.raises(ValueError, match="no utterance left to evaluate"):
        evaluate(pd.DataFrame({"path": [str(corpus / "excited" / "e0.wav")], "label": ["excited"]}), rec, progress=False)


def test_cli_evaluate_prints_wa_ua_and_confusion_and_writes_predictions(tiny_ckpt, tmp_path, capsys):
    corpus = _labelled_corpus(tmp_path / "other")
    out = tmp_path / "preds.csv"
    rc = cli.main(["evaluate", str(corpus), "--checkpoint", str(tiny_ckpt), "--label-map", "excited=high",
                   "--out", str(out), "--figure", str(tmp_path / "fig" / "confusion.png"), "--quiet"])
    printed = capsys.readouterr()
    assert rc == 0
    assert "7 utterances of" in printed.out and "trained on: synthetic tones" in printed.out
    assert "WA " in printed.out and "confusion (rows: true, columns: predicted)" in printed.out
    assert "broken.wav" in printed.err and "1 utterance(s) left out" in printed.err
    assert (tmp_path / "fig" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = pd.read_csv(out)
    assert len(written) == 7 and {"path", "corpus_label", "true", "label"} <= set(written.columns)
    assert cli.main(["evaluate", str(corpus), "--checkpoint", str(tiny_ckpt), "--label-map", "excited"]) == 2
    assert "CORPUS_LABEL=MODEL_CLASS" in capsys.readouterr().err
    assert cli.main(["evaluate", str(corpus), "--checkpoint", str(tiny_ckpt), "--label-map", "excited=joy", "--quiet"]) == 2
    assert "not classes of the model" in capsys.readouterr().err


def test_evaluate_leaves_out_the_checkpoints_training_files_by_content(rec, tiny_ckpt, tmp_path):
    """The tiny model's training files, one of them renamed into a test corpus: found by content, left out and
    listed; kept and flagged on request; a corpus of nothing else is refused."""
    import shutil

    from amsnet_lib.serve.checkpoint import load_checkpoint, save_checkpoint
    from amsnet_lib.serve.evaluation import evaluate

    training = tiny_ckpt.parent / "corpus"
    corpus = _labelled_corpus(tmp_path / "other")
    shutil.copy(training / "high" / "high2.wav", corpus / "HIGH" / "copy.wav")
    ev = evaluate(corpus, rec, progress=False)
    assert ev.training_overlap == 1 and len(ev.predictions) == 6 and not ev.predictions["in_training"].any()
    reasons = dict(ev.left_out)
    assert "in the checkpoint's training data" in reasons[str(corpus / "HIGH" / "copy.wav")]
    mixed = evaluate(corpus, rec, include_training=True, progress=False)
    assert mixed.training_overlap == 1 and len(mixed.predictions) == 7
    flagged = mixed.predictions.loc[mixed.predictions["in_training"], "path"]
    assert list(flagged) == [str(corpus / "HIGH" / "copy.wav")]
    with pytest.raises(ValueError, match="12 of the 12 in the corpus are files .* was trained on"):
        evaluate(training, rec, progress=False)
    assert evaluate(training, rec, include_training=True, progress=False).training_overlap == 12
    # a checkpoint that records no training files: nothing is checked, and it says so
    model, info = load_checkpoint(tiny_ckpt)
    meta = {k: v for k, v in info.meta.items() if k != "training_sha256"}
    bare = save_checkpoint(tmp_path / "bare.pt", model, info.experiment, info.classes, info.normaliser, meta)
    unchecked = evaluate(corpus, bare, progress=False)
    assert unchecked.training_overlap is None and len(unchecked.predictions) == 7
    assert "in_training" not in unchecked.predictions


@pytest.mark.slow
def test_cli_fit_writes_a_checkpoint_that_predict_and_evaluate_use(tmp_path, capsys):
    """`amsnet fit` on a folder-per-label corpus: a checkpoint with the training data described; evaluate then
    refuses that corpus (training accuracy) unless asked, and measures other audio."""
    from amsnet_lib.serve.checkpoint import file_digest, read_checkpoint_info

    train = tmp_path / "train"
    for i in range(5):
        for label, f0 in (("high", 320.0), ("low", 110.0)):
            (train / label).mkdir(parents=True, exist_ok=True)
            sf.write(train / label / f"{label}{i}.wav", tone(1.0, f0 * (1 + 0.03 * i), seed=30 + i), 16000)
    out = tmp_path / "model" / "mine.pt"
    args = ["fit", "--corpus", str(train), "--duration", "1.0", "--profile", "quick", "--out", str(out),
            "--run-dir", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1",
            "--threads", "1", "--description", "ten tones"]
    threads = torch.get_num_threads()
    try:
        assert cli.main(args) == 0
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "trained on all 10 utterances of train (high, low)" in printed and "no accuracy" in printed
    info = read_checkpoint_info(out)
    assert info.model_name == "amsnet" and info.classes == ("high", "low") and info.features.duration == 1.0
    assert info.meta["data"] == "ten tones" and info.meta["class_counts"] == {"high": 5, "low": 5}
    assert info.meta["training_sha256"] == sorted(file_digest(p) for p in train.rglob("*.wav"))
    assert Recognizer(out).predict([train / "high" / "high0.wav"], progress=False).loc[0, "label"] in ("high", "low")
    # evaluate on the training corpus: refused, then training accuracy on request, labelled as such
    assert cli.main(["evaluate", str(train), "--checkpoint", str(out), "--quiet"]) == 2
    assert "--include-training" in capsys.readouterr().err
    assert cli.main(["evaluate", str(train), "--checkpoint", str(out), "--quiet", "--include-training"]) == 0
    assert "10 of the 10 utterances evaluated are files the checkpoint was trained on" in capsys.readouterr().out
    other = _labelled_corpus(tmp_path / "other")
    report = tmp_path / "left_out.csv"  # every utterance left out, listed in a file the summary names
    assert cli.main(["evaluate", str(other), "--checkpoint", str(out), "--quiet", "--left-out", str(report)]) == 0
    printed = capsys.readouterr()
    assert "training data: none of these files" in printed.out and str(report) in printed.err and report.is_file()
    # determinism: the same seed and data in a fresh run store give the same weights
    again = tmp_path / "again.pt"
    torch.set_num_threads(1)
    try:
        assert cli.main([{str(out): str(again), str(tmp_path / "runs"): str(tmp_path / "runs2")}.get(a, a) for a in args]) == 0
    finally:
        torch.set_num_threads(threads)
    first, second = (torch.load(p, weights_only=True)["state_dict"] for p in (out, again))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    capsys.readouterr()
    # bad options fail before any work
    assert cli.main(args[:-2] + ["--late-weight", "0.5"]) == 2
    assert "--late-weight" in capsys.readouterr().err
    assert cli.main([a if a != str(out) else str(tmp_path) for a in args]) == 2
    assert "is a folder" in capsys.readouterr().err
