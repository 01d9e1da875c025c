"""Whole recordings (windows, pooling, trimming) and scoring over the classes the audio can have (issue #38 items 3, 6)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from amsnet_lib import cli
from amsnet_lib.config import POOLINGS, WindowConfig
from amsnet_lib.data.corpora.labels import canonical, match_labels, no_class_reason
from amsnet_lib.data.features import Normaliser, silence_span, trim_silence
from amsnet_lib.serve.evaluation import evaluate
from amsnet_lib.serve.inputs import collect_inputs
from amsnet_lib.serve.predict import Recognizer, predict
from amsnet_lib.serve.windows import allowed_classes, cut_windows, pool, restrict, window_starts

from signals import TINY_FEATURES, tone

SR = 16000


@pytest.fixture(scope="module")
def rec(tiny_ckpt) -> Recognizer:
    return Recognizer(tiny_ckpt)


def _fresh_checkpoint(path, classes, features=TINY_FEATURES):
    """A freshly built small AMSNet with ``classes`` (random weights: the tests compare paths, not accuracy)."""
    from amsnet_lib.models import build_model
    from amsnet_lib.serve.checkpoint import save_checkpoint
    from amsnet_lib.studies import experiment

    exp = dataclasses.replace(experiment("custom", "amsnet", "paper", "quick"), features=features)
    torch.manual_seed(0)
    model = build_model("amsnet", len(classes), frlm=exp.frlm, urlm=exp.urlm, fusion=exp.fusion, n_mels=128)
    norm = Normaliser(np.zeros(76, np.float32), np.ones(76, np.float32), np.full(128, -6.0, np.float32), np.full(128, 4.0, np.float32))
    return save_checkpoint(path, model, exp, list(classes), norm)


# --------------------------------------------------------------------------- windows and pooling


@pytest.mark.parametrize("n, expected", [(10, [0]), (30, [0]), (50, [0, 10, 20]), (55, [0, 10, 20, 25]), (31, [0, 1])])
def test_windows_cover_every_sample_and_end_at_the_end(n, expected):
    starts = window_starts(n, 30, 10)
    assert starts == expected
    covered = np.zeros(n, bool)
    for s in starts:
        assert 0 <= s and (s + 30 <= n or n <= 30)
        covered[s : s + 30] = True
    assert covered.all()
    # a tail within the read margin gets no window of its own (the last window's features read it)
    assert window_starts(n, 30, 10, min_tail=5) == (expected[:-1] if n in (55, 31) else expected)


def test_pooling_rules():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.5, 0.3]], np.float32)
    np.testing.assert_allclose(pool(p, "mean_proba"), p.mean(0), atol=1e-6)
    np.testing.assert_allclose(pool(p, "first"), p[0], atol=1e-6)
    np.testing.assert_allclose(pool(p, "max_proba"), p.max(0) / p.max(0).sum(), atol=1e-6)
    logits = np.log(p)  # any logits whose softmax is p: the mean logit's softmax is the pooled score
    m = logits.mean(0)
    np.testing.assert_allclose(pool(p, "mean_logit"), np.exp(m) / np.exp(m).sum(), atol=1e-6)
    for how in POOLINGS:
        assert pool(p, how).sum() == pytest.approx(1.0, abs=1e-6)
        assert pool(p[:1], how) == pytest.approx(p[0], abs=1e-6)  # one window: its own scores
    with pytest.raises(ValueError, match="pooling"):
        pool(p, "median")
    with pytest.raises(ValueError, match="pooling"):
        WindowConfig(pooling="median")


def test_restriction_renormalises_over_the_allowed_classes_and_pooling_keeps_the_zeros():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], np.float32)
    idx = allowed_classes("A, c", ["a", "b", "c"])
    assert idx.tolist() == [0, 2]
    r = restrict(p, idx)
    np.testing.assert_allclose(r, [[0.5 / 0.7, 0, 0.2 / 0.7], [0.1 / 0.9, 0, 0.8 / 0.9]], atol=1e-6)
    for how in POOLINGS:
        assert pool(r, how)[1] == 0 and pool(r, how).sum() == pytest.approx(1.0, abs=1e-6)
    assert restrict(p, None) is not None and np.array_equal(restrict(p, None), p)
    with pytest.raises(ValueError, match=r"\['joy'\] are not classes of the model"):
        allowed_classes(["a", "joy"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="at least two"):
        allowed_classes("a", ["a", "b", "c"])


def test_trimming_span_is_what_trim_silence_keeps():
    x = np.concatenate([np.zeros(8000, np.float32), tone(1.0, 200.0), np.zeros(4000, np.float32)])
    cfg = dataclasses.replace(TINY_FEATURES, trim_db=40.0)
    start, end = silence_span(x, cfg)
    assert 7000 <= start <= 8000 and 24000 <= end <= 25000  # within one 12.5-ms hop of the tone's edges
    np.testing.assert_array_equal(trim_silence(x, cfg), x[start:end])
    assert silence_span(x, TINY_FEATURES) == (0, len(x))  # no trim_db: all of it
    w = cut_windows(x, TINY_FEATURES, WindowConfig(hop=0.5))  # the tiny model's window is 1 s
    assert w.speech == (start / SR, end / SR) and w.starts[0] == start / SR
    assert end / SR - 0.05 <= w.ends[-1] <= end / SR  # up to the read margin's tail left to the last window's features


# --------------------------------------------------------------------------- files scored whole


def test_a_long_file_is_scored_by_windows_whose_pooled_scores_are_the_files(rec, tmp_path):
    x = np.concatenate([tone(1.2, 330.0, seed=1), tone(1.3, 115.0, seed=2)])  # 2.5 s, 1-s window, hop 1 s
    path = tmp_path / "long.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    files, windows = rec.predict([path], progress=False, return_windows=True)
    assert files.loc[0, "windows"] == 3 and list(windows["window"]) == [0, 1, 2]
    assert list(zip(windows["start"], windows["end"])) == [(0.0, 1.0), (1.0, 2.0), (1.5, 2.5)]
    cols = [f"p_{c}" for c in rec.classes]
    np.testing.assert_allclose(files.loc[0, cols].to_numpy(float), windows[cols].to_numpy().mean(0), atol=1e-6)
    # each window's scores are the model's on exactly that slice (+ the 50-ms read margin, as in training)
    for k, s in enumerate([0, SR, SR + SR // 2]):
        f, m, sp = rec.features(x[s : s + SR + 800])
        proba, _ = rec.infer(f[None], m[None], sp[None])
        np.testing.assert_allclose(windows.loc[k, cols].to_numpy(float), proba[0], atol=1e-5)
    # the same recording through predict_signal (the library's one-signal call) gives the same scores
    one = rec.predict_signal(x, overlap=False)
    assert one["windows"] == 3 and one["probabilities"]["high"] == pytest.approx(files.loc[0, "p_high"], abs=1e-6)
    # pooling 'first' without trimming is the scoring before whole recordings: the first second only
    first = predict([path], checkpoint=rec, progress=False, windowing=WindowConfig(pooling="first", trim_db=None))
    f, m, sp = rec.features(rec.load(path))
    proba, _ = rec.infer(f[None], m[None], sp[None])
    assert first.loc[0, "windows"] == 1 and first.loc[0, "warnings"].startswith("truncated")
    np.testing.assert_allclose(first.loc[0, cols].to_numpy(float), proba[0], atol=1e-6)
    for how in POOLINGS:  # every rule is the pooling of the same window scores
        got = predict([path], checkpoint=rec, progress=False, windowing=WindowConfig(pooling=how))
        np.testing.assert_allclose(got.loc[0, cols].to_numpy(float), pool(windows[cols].to_numpy(), how), atol=1e-5)


def test_a_file_shorter_than_the_window_is_one_padded_window_as_before(rec, tmp_path):
    x = tone(0.7, 200.0, seed=3)
    path = tmp_path / "short.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    df = predict([path], checkpoint=rec, progress=False)
    f, m, sp = rec.features(rec.load(path))  # the training path: zero-padded to the window
    proba, _ = rec.infer(f[None], m[None], sp[None])
    assert df.loc[0, "windows"] == 1
    np.testing.assert_allclose(df[[f"p_{c}" for c in rec.classes]].to_numpy(float)[0], proba[0], atol=1e-6)


def test_a_checkpoint_trained_with_trimming_trims_at_predict_time(rec, tmp_path):
    speech = tone(0.6, 330.0, seed=5)
    padded = np.concatenate([np.zeros(SR // 2, np.float32), speech, np.zeros(SR // 4, np.float32)])
    a, b = tmp_path / "speech.wav", tmp_path / "padded.wav"
    sf.write(a, speech, SR, subtype="FLOAT")
    sf.write(b, padded, SR, subtype="FLOAT")
    info = rec.info
    trained_trimmed = dataclasses.replace(info, experiment=dataclasses.replace(
        info.experiment, features=dataclasses.replace(info.features, trim_db=40.0)))
    no_trim = WindowConfig(trim_db=None)  # the checkpoint's own trimming wins over this
    trimmed = Recognizer(model=rec.model, info=trained_trimmed, windowing=no_trim)
    plain = Recognizer(model=rec.model, info=info, windowing=no_trim)
    cols = [f"p_{c}" for c in rec.classes]
    t, tw = trimmed.predict([b], progress=False, return_windows=True)
    p, pw = plain.predict([b], progress=False, return_windows=True)
    # the scored span starts where the speech does, and the scores are the training path's on the trimmed signal
    assert tw.loc[0, "start"] == pytest.approx(0.5, abs=0.02) and pw.loc[0, "start"] == 0.0
    f, m, sp = rec.features(trim_silence(padded, trained_trimmed.features))
    proba, _ = rec.infer(f[None], m[None], sp[None])
    np.testing.assert_allclose(t.loc[0, cols].to_numpy(float), proba[0], atol=1e-6)
    assert np.abs(p.loc[0, cols].to_numpy(float) - proba[0]).max() > 1e-4  # untrimmed: another input


# --------------------------------------------------------------------------- classes


def test_predict_and_stream_score_over_the_classes_given(tmp_path, capsys):
    ckpt = _fresh_checkpoint(tmp_path / "m.pt", ["anger", "boredom", "sadness"])
    r = Recognizer(ckpt)
    path = tmp_path / "a.wav"
    sf.write(path, tone(1.6, 180.0, seed=7), SR)
    full = r.predict([path], progress=False)
    part = r.predict([path], progress=False, classes="anger,sadness")
    assert part.loc[0, "p_boredom"] == 0 and part.loc[0, "label"] in ("anger", "sadness")
    assert part.attrs["scored_classes"] == ["anger", "sadness"]
    # one window here: the restriction is the full scores renormalised
    if full.loc[0, "windows"] == 1:
        kept = full.loc[0, ["p_anger", "p_sadness"]].to_numpy(float)
        np.testing.assert_allclose(part.loc[0, ["p_anger", "p_sadness"]].to_numpy(float), kept / kept.sum(), atol=1e-6)
    assert cli.main(["predict", str(path), "--checkpoint", str(ckpt), "--classes", "anger,sadness", "--format", "json",
                     "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert out["probabilities"]["boredom"] == 0 and out["label"] in ("anger", "sadness")
    assert cli.main(["predict", str(path), "--checkpoint", str(ckpt), "--classes", "anger,joy", "--quiet"]) == 2
    assert "['joy'] are not classes of the model" in capsys.readouterr().err
    assert cli.main(["stream", str(path), "--checkpoint", str(ckpt), "--classes", "anger,sadness", "--format", "jsonl",
                     "--window", "1", "--hop", "0.5"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert all(w["probabilities"]["boredom"] == 0 for w in lines if "probabilities" in w) and len(lines) >= 3


def test_default_label_map_across_corpora():
    assert [canonical(x) for x in ("Angry", " SAD ", "hap", "fearful", "calm", "excited")] == \
           ["anger", "sadness", "happiness", "fear", "calm", "excited"]
    emodb = ["anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"]
    ravdess = ["anger", "disgust", "fear", "happiness", "sadness", "neutral", "calm", "surprise"]
    m = match_labels(ravdess, emodb)
    assert [k for k, v in m.items() if v is None] == ["calm", "surprise"] and m["anger"] == "anger"
    assert match_labels(["angry", "happy", "sad", "neutral"], emodb) == {"angry": "anger", "happy": "happiness",
                                                                         "sad": "sadness", "neutral": "neutral"}
    assert match_labels(["anger"], ["angry", "happy"]) == {"anger": "angry"}  # an IEMOCAP model's names
    assert match_labels(["ang"], emodb, {"ang": "boredom"}) == {"ang": "boredom"}  # an explicit map wins
    assert "no class in EmoDB's set" in no_class_reason("calm", emodb)


def _corpus(root, labels):
    for i, (label, f0) in enumerate(labels):
        (root / label).mkdir(parents=True, exist_ok=True)
        for k in range(2):
            sf.write(root / label / f"{label}{k}.wav", tone(1.0 + 0.8 * k, f0 * (1 + 0.03 * k), seed=i * 10 + k), SR)
    return root


def test_evaluate_renormalises_over_the_corpus_classes_lists_calm_and_matches_the_derivation(tmp_path):
    ckpt = _fresh_checkpoint(tmp_path / "m.pt", ["anger", "boredom", "sadness"])
    r = Recognizer(ckpt)
    corpus = _corpus(tmp_path / "c", [("angry", 300.0), ("sad", 120.0), ("calm", 200.0)])
    ev = evaluate(corpus, r, progress=False)
    assert ev.scored_classes == ["anger", "sadness"]  # the corpus has no boredom
    assert set(ev.predictions["true"]) == {"anger", "sadness"} and (ev.predictions["p_boredom"] == 0).all()
    reasons = dict(ev.left_out)
    assert len(reasons) == 2 and all("label 'calm' is no class of the model" in v for v in reasons.values())
    every = evaluate(corpus, r, progress=False, all_classes=True)
    assert every.scored_classes == ["anger", "boredom", "sadness"] and (every.predictions["p_boredom"] > 0).all()
    # the restricted scores are the all-class window scores restricted, then pooled (benchmarks rely on it)
    cols = [f"p_{c}" for c in r.classes]
    idx = allowed_classes(ev.scored_classes, r.classes)
    for path, g in every.windows.sort_values(["path", "window"]).groupby("path"):
        want = pool(restrict(g[cols].to_numpy(), idx), r.windowing.pooling)
        got = ev.predictions.set_index("path").loc[path, cols].to_numpy(float)
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert (ev.windows.groupby("path").size() > 1).any()  # the 1.8-s files are two windows each
    # --classes narrows further and lists what it leaves out
    one = evaluate(corpus, r, progress=False, classes=["anger", "boredom"])
    assert set(one.predictions["true"]) == {"anger"} and sum("not among the classes scored" in v for _, v in one.left_out) == 2


def test_cli_evaluate_all_classes_and_windows_csv(tmp_path, capsys):
    ckpt = _fresh_checkpoint(tmp_path / "m.pt", ["anger", "boredom", "sadness"])
    corpus = _corpus(tmp_path / "c", [("angry", 300.0), ("sad", 120.0)])
    win = tmp_path / "w.csv"
    assert cli.main(["evaluate", str(corpus), "--checkpoint", str(ckpt), "--adapt", "none", "--quiet",
                     "--windows", str(win), "--left-out", str(tmp_path / "lo.csv")]) == 0
    out = capsys.readouterr().out
    assert "scored over anger, sadness only" in out and "--all-classes" in out
    w = pd.read_csv(win)
    assert {"path", "true", "window", "start", "end", "label", "p_boredom"} <= set(w.columns) and (w["p_boredom"] == 0).all()
    assert cli.main(["evaluate", str(corpus), "--checkpoint", str(ckpt), "--adapt", "none", "--quiet", "--all-classes",
                     "--left-out", str(tmp_path / "lo.csv")]) == 0
    assert "scored over" not in capsys.readouterr().out


def test_named_corpus_as_predict_input(ravdess_dir):
    items = collect_inputs("ravdess", data_dir=ravdess_dir)
    assert len(items) == 1440 and not any(err for _, err in items)
    assert items[0][0].endswith("03-01-01-01-01-01-01" + ravdess_dir.joinpath("Actor_01").iterdir().__next__().suffix)
