"""Fold generators and the paper's measures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amsnet_lib.errors import ManifestError
from amsnet_lib.metrics import confusion_matrix, per_class_recall, unweighted_accuracy, weighted_accuracy
from amsnet_lib.protocols import make_folds, validation_split


def _table(n=100, speakers=5, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "path": [f"/x/u{i}.wav" for i in range(n)],
        "label": rng.choice([f"c{k}" for k in range(classes)], n),
        "speaker": [f"s{i % speakers}" for i in range(n)],
        "session": [f"Session{i % speakers // 2 + 1}" for i in range(n)],
    })


def test_wa_and_ua_follow_eqs_15_16():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    assert weighted_accuracy(y, p) == pytest.approx(6 / 8)
    assert unweighted_accuracy(y, p, 3) == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)
    assert confusion_matrix(y, p, 3).tolist() == [[3, 1, 0], [1, 1, 0], [0, 0, 2]]
    r = per_class_recall(y, p, 4)
    assert np.isnan(r[3]) and unweighted_accuracy(y, p, 4) == pytest.approx(unweighted_accuracy(y, p, 3))


def test_paper_protocol_is_stratified_5_fold_and_seeded():
    t = _table()
    folds = make_folds(t, "paper", n_folds=5, split_seed=1)
    assert len(folds) == 5
    tests = np.concatenate([f.test for f in folds])
    assert sorted(tests.tolist()) == list(range(len(t)))
    for f in folds:
        assert len(set(f.train) & set(f.test)) == 0 and len(f.test) == 20
    again = make_folds(t, "paper", n_folds=5, split_seed=1)
    assert all((a.test == b.test).all() for a, b in zip(folds, again))
    other = make_folds(t, "paper", n_folds=5, split_seed=2)
    assert any((a.test != b.test).any() for a, b in zip(folds, other))


def test_loso_holds_out_each_speaker():
    t = _table()
    folds = make_folds(t, "loso")
    assert [f.name for f in folds] == [f"s{k}" for k in range(5)]
    for f in folds:
        assert set(t.speaker.iloc[f.test]) == {f.name}
        assert f.name not in set(t.speaker.iloc[f.train])
    sess = make_folds(t, "loso_session")
    assert [f.name for f in sess] == ["Session1", "Session2", "Session3"]


def test_split_file(tmp_path):
    t = _table(20)
    p = tmp_path / "splits.csv"
    pd.DataFrame({"path": [f"u{i}.wav" for i in range(20)], "fold": ["A" if i < 5 else "B" for i in range(20)]}).to_csv(p, index=False)
    folds = make_folds(t, "split_file", split_file=str(p))
    assert [f.name for f in folds] == ["A", "B"] and len(folds[0].test) == 5
    bad = tmp_path / "bad.csv"
    bad.write_text("file,split\nu0.wav,1\n")
    with pytest.raises(ManifestError, match="bad.csv"):
        make_folds(t, "split_file", split_file=str(bad))
    partial = tmp_path / "partial.csv"
    partial.write_text("path,fold\nu0.wav,1\nu1.wav,2\n")
    with pytest.raises(ManifestError, match="no fold for 18"):
        make_folds(t, "split_file", split_file=str(partial))


def test_validation_split_never_touches_test():
    t = _table()
    labels = pd.factorize(t.label, sort=True)[0]
    fold = make_folds(t, "paper")[0]
    fit, val = validation_split(labels, fold.train, 0.1, seed=0)
    assert len(set(val) & set(fold.test)) == 0 and len(set(fit) & set(val)) == 0
    assert sorted(np.concatenate([fit, val]).tolist()) == sorted(fold.train.tolist())
    assert 7 <= len(val) <= 9


def test_validation_split_of_a_tiny_training_set_falls_back_to_random():
    labels = np.arange(14) % 7
    fit, val = validation_split(labels, np.arange(14), 0.1, seed=0)
    assert len(val) == 2 and len(fit) == 12
