"""Unsupervised adaptation (--adapt): the blending rule, each mode, no label ever read, stream warm-up, CLI."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from amsnet_lib.serve import adapt as adapt_mod
from amsnet_lib import cli
from amsnet_lib.serve.adapt import FeatureMoments, adapt_features, blend
from amsnet_lib.data.features import Normaliser
from amsnet_lib.serve.evaluation import evaluate
from amsnet_lib.serve.predict import Recognizer, predict

from signals import tone


def _train_norm(dim=3, mels=2, mean=0.0, std=1.0):
    return Normaliser(frames_mean=np.full(dim, mean, np.float32), frames_std=np.full(dim, std, np.float32),
                      spec_mean=np.full(mels, mean, np.float32), spec_std=np.full(mels, std, np.float32))


def _random_features(n, q=20, dim=3, mels=2, t=7, loc=5.0, scale=2.0, seed=0):
    rng = np.random.default_rng(seed)
    frames = (loc + scale * rng.standard_normal((n, q, dim))).astype(np.float32)
    mask = np.ones((n, q), bool)
    mask[:, q - 3:] = False  # padding: must not enter the statistics and must stay 0
    frames[~mask] = 0.0
    spec = (loc + scale * rng.standard_normal((n, mels, t))).astype(np.float32)
    return frames, mask, spec


def test_blend_weights_the_new_audio_by_n_over_n_plus_prior():
    train = _train_norm()
    frames, mask, spec = _random_features(4)
    m = FeatureMoments.empty(3, 2).add(frames, mask, spec)
    assert m.n == 4 and m.frame_count == 4 * 17  # padded frames left out
    new_mean = frames[mask].mean(0)
    for prior in (0.0, 4.0, 1e9):
        w = 4 / (4 + prior)
        b = blend(train, m, prior=prior)
        np.testing.assert_allclose(b.frames_mean, w * new_mean, rtol=1e-5, atol=1e-5)
    # prior 0: the new audio's own statistics; a huge prior: the training statistics
    own = blend(train, m, prior=0.0)
    np.testing.assert_allclose(own.frames_std, frames[mask].std(0) + 1e-5, rtol=1e-4)
    np.testing.assert_allclose(blend(train, m, prior=1e9).spec_std, train.spec_std, rtol=1e-4)
    assert blend(train, FeatureMoments.empty(3, 2)) is train  # no audio: nothing changes


def test_corpus_and_speaker_modes_standardise_with_the_audios_own_statistics():
    train = _train_norm()
    a = _random_features(30, loc=5.0, scale=2.0, seed=1)
    b = _random_features(30, loc=-3.0, scale=0.5, seed=2)
    frames, mask, spec = (np.concatenate([x, y]) for x, y in zip(a, b))
    speakers = ["a"] * 30 + ["b"] * 30
    f, s, groups = adapt_features(train, frames, mask, spec, "speaker", speakers, prior=0.0)
    assert groups == {"a": 30, "b": 30}
    for sl in (slice(0, 30), slice(30, 60)):  # each speaker centred and scaled on their own
        np.testing.assert_allclose(f[sl][mask[sl]].mean(0), 0.0, atol=1e-4)
        np.testing.assert_allclose(f[sl][mask[sl]].std(0), 1.0, atol=1e-3)
        np.testing.assert_allclose(s[sl].transpose(0, 2, 1).reshape(-1, 2).mean(0), 0.0, atol=1e-4)
    assert np.all(f[~mask] == 0.0)
    f, s, groups = adapt_features(train, frames, mask, spec, "corpus", prior=0.0)
    assert groups == {"all": 60}
    np.testing.assert_allclose(f[mask].mean(0), 0.0, atol=1e-4)
    assert abs(f[:30][mask[:30]].mean()) > 0.5  # one speaker alone is not centred: one statistics for all
    f, s, _ = adapt_features(train, frames, mask, spec, "none")
    np.testing.assert_allclose(f[mask], frames[mask])  # training statistics 0 / 1: unchanged
    with pytest.raises(ValueError, match="needs the speaker of every utterance"):
        adapt_features(train, frames, mask, spec, "speaker")
    with pytest.raises(ValueError, match="adapt must be one of none, corpus, speaker"):
        adapt_features(train, frames, mask, spec, "domain")


def test_little_audio_is_flagged_and_blending_keeps_it_near_training(monkeypatch):
    monkeypatch.setattr(adapt_mod, "MIN_UTTERANCES", {"corpus": 20, "speaker": 10})
    assert adapt_mod.too_little_audio("corpus", {"all": 25}) == []
    assert adapt_mod.too_little_audio("none", {"all": 1}) == []
    msg = adapt_mod.too_little_audio("speaker", {"a": 3, "b": 40})
    assert len(msg) == 1 and "1 of 2 speakers" in msg[0] and "a: 3" in msg[0] and "10 utterances" in msg[0]


def _corpus(root, n_per=4):
    """Two speakers (one a 20 dB quieter 'microphone'), two labels: a manifest path,label,speaker."""
    rows = []
    for spk, gain in (("s1", 1.0), ("s2", 0.1)):
        for label, f0 in (("high", 320.0), ("low", 110.0)):
            for i in range(n_per):
                p = root / spk / f"{label}{i}.wav"
                p.parent.mkdir(parents=True, exist_ok=True)
                sf.write(p, gain * tone(0.9 + 0.05 * i, f0 * (1 + 0.02 * i), seed=30 + i), 16000)
                rows.append({"path": str(p), "label": label, "speaker": spk})
    table = pd.DataFrame(rows)
    table.to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv", table


@pytest.fixture(scope="module")
def rec(tiny_ckpt):
    return Recognizer(tiny_ckpt)


@pytest.mark.slow
def test_adaptation_never_reads_a_label(rec, tmp_path):
    """Labels shuffled, swapped or garbled: the adapted predictions of every file are identical."""
    manifest, table = _corpus(tmp_path)
    cols = [c for c in ("label", "p_high", "p_low")]
    for mode in ("corpus", "speaker"):
        base = evaluate(table, rec, adapt=mode, progress=False).predictions.set_index("path")[cols]
        rng = np.random.default_rng(0)
        shuffled = table.assign(label=rng.permutation(table["label"].to_numpy()))
        swapped = table.assign(label=table["label"].map({"high": "low", "low": "high"}))
        for t in (shuffled, swapped):
            other = evaluate(t, rec, adapt=mode, progress=False).predictions.set_index("path")[cols]
            pd.testing.assert_frame_equal(base.loc[other.index], other)
        # and without any label at all (predict) the same numbers
        unlabelled = predict(table[["path", "speaker"]], checkpoint=rec, adapt=mode, progress=False).set_index("path")[cols]
        pd.testing.assert_frame_equal(base, unlabelled.loc[base.index])


def test_each_mode_on_files_and_manifests(rec, tmp_path):
    manifest, table = _corpus(tmp_path)
    none = predict(manifest, checkpoint=rec, progress=False)
    corpus = predict(manifest, checkpoint=rec, adapt="corpus", progress=False)
    speaker = predict(manifest, checkpoint=rec, adapt="speaker", progress=False)
    assert none.attrs["adapt"]["mode"] == "none" and corpus.attrs["adapt"]["groups"] == {"all": 16}
    assert speaker.attrs["adapt"]["groups"] == {"s1": 8, "s2": 8}  # the manifest's speaker column
    p = ["p_high", "p_low"]
    assert not np.allclose(none[p], corpus[p]) and not np.allclose(corpus[p], speaker[p])
    # 16 files in all, enough; 8 per speaker: below the measured minimum, so speaker mode says so
    assert adapt_mod.MIN_UTTERANCES == {"corpus": 10, "speaker": 10}
    assert not corpus.attrs["adapt"]["warnings"] and "2 of 2 speakers" in speaker.attrs["adapt"]["warnings"][0]
    # a plain file list has no speakers: speaker mode refuses, unless one speaker is named
    files = list(table["path"])
    with pytest.raises(ValueError, match="none of the inputs has a speaker"):
        predict(files, checkpoint=rec, adapt="speaker", progress=False)
    one = predict(files, checkpoint=rec, adapt="speaker", speakers="me", progress=False)
    np.testing.assert_allclose(one[p], corpus[p], atol=1e-6)  # one speaker = all the audio
    # batching does not change the statistics: they come from every file, whatever the batch size
    small = predict(manifest, checkpoint=rec, adapt="corpus", batch_size=3, progress=False)
    np.testing.assert_allclose(small[p], corpus[p], atol=1e-6)


def test_stream_adapts_after_its_warm_up(rec, tmp_path, monkeypatch):
    from amsnet_lib.serve.stream import StreamRecognizer, file_chunks

    monkeypatch.setattr(adapt_mod, "MIN_UTTERANCES", {"corpus": 2, "speaker": 2})
    path = tmp_path / "long.wav"
    sf.write(path, np.concatenate([tone(1.0, 320.0, seed=i) for i in range(4)]), 16000)
    sr = StreamRecognizer(rec, hop=0.5, adapt="corpus")
    preds = list(sr.run(file_chunks(path)))
    s = sr.summary()
    assert s.adapt == "corpus" and s.adapt_warmup_seconds == 2.0  # 2 utterances of the model's 1 s
    flags = [p.adapted for p in preds]
    assert flags[0] is False and flags[-1] is True and flags == sorted(flags)  # off, then on for good
    first = next(p for p in preds if p.adapted)
    assert first.end >= 2.0 and s.adapted_from_seconds == first.start
    plain = list(StreamRecognizer(rec, hop=0.5).run(file_chunks(path)))
    for a, b in zip(plain[:2], preds[:2]):  # before the warm-up: the training statistics, as without --adapt
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)
    assert not all(p.adapted for p in plain) and StreamRecognizer(rec).summary().adapted_from_seconds is None


def test_cli_evaluate_and_predict_adapt_and_group_what_they_leave_out(tiny_ckpt, tmp_path, capsys):
    manifest, table = _corpus(tmp_path / "c")
    extra = []
    for i in range(3):  # a class the model lacks, 3 times
        p = tmp_path / "c" / f"excited{i}.wav"
        sf.write(p, tone(1.0, 250.0, seed=50 + i), 16000)
        extra.append({"path": str(p), "label": "excited", "speaker": "s1"})
    pd.concat([table, pd.DataFrame(extra)]).to_csv(manifest, index=False)
    report = tmp_path / "left_out.csv"
    rc = cli.main(["evaluate", str(manifest), "--checkpoint", str(tiny_ckpt), "--adapt", "speaker", "--quiet",
                   "--left-out", str(report)])
    out = capsys.readouterr()
    assert rc == 0 and "adaptation: --adapt speaker, statistics of 2 group(s)" in out.out
    assert "below the" in out.err  # 8 utterances per speaker: the command says it is too little
    assert "3 utterance(s) left out, 1 reason(s):" in out.err and "3 x label 'excited'" in out.err
    assert "excited1.wav" not in out.err and "excited2.wav" not in out.err  # one grouped line, not one per file
    assert len(pd.read_csv(report)) == 3 and str(report) in out.err
    rc = cli.main(["predict", str(manifest), "--checkpoint", str(tiny_ckpt), "--adapt", "corpus", "--quiet"])
    assert rc == 0 and "adaptation: --adapt corpus" in capsys.readouterr().out
    rc = cli.main(["predict", str(table["path"][0]), "--checkpoint", str(tiny_ckpt), "--adapt", "speaker", "--quiet"])
    assert rc == 2 and "--speaker NAME" in capsys.readouterr().err


def test_group_reasons_counts_and_keeps_an_example():
    from amsnet_lib.errors import group_reasons

    items = [("a.wav", "clipped"), ("b.wav", "truncated: only the first 3 s of 4.2 s are used"), ("c.wav", "clipped"),
             ("d.wav", "truncated: only the first 3 s of 7.9 s are used")]
    assert group_reasons(items) == [("clipped", 2, "a.wav"), ("truncated: only the first 3 s of 4.2 s are used", 2, "b.wav")]
    assert group_reasons([]) == []
    # the corpus loader's reasons end in a parenthesised detail: one group per kind of problem
    unreadable = [("e.wav", "unreadable (Error opening 'e.wav': format not recognised)"),
                  ("f.wav", "unreadable (Error opening 'f.wav': unexpected end of file)")]
    assert group_reasons(unreadable) == [(unreadable[0][1], 2, "e.wav")]
