"""Fold generators and the paper's measures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amsnet_lib.errors import ManifestError
from amsnet_lib.metrics import confusion_matrix, per_class_recall, unweighted_accuracy, weighted_accuracy
from amsnet_lib.data.protocols import make_folds, validation_split


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


# --------------------------------------------------------------------------- comparing two models


def _two_models(n_parts=5, per_part=60, n_classes=4, acc_a=0.8, acc_b=0.6, seed=0):
    rng = np.random.default_rng(seed)
    n = n_parts * per_part
    y = rng.integers(0, n_classes, n)
    a = np.where(rng.random(n) < acc_a, y, (y + 1) % n_classes)
    b = np.where(rng.random(n) < acc_b, y, (y + 2) % n_classes)
    return y, a, b, np.repeat(np.arange(n_parts), per_part)


def test_paired_bootstrap_delta_is_the_tables_mean_over_folds_and_its_interval_behaves():
    from amsnet_lib.metrics import paired_bootstrap

    y, a, b, parts = _two_models()
    r = paired_bootstrap(y, a, b, 4, parts, n_resamples=2000)
    folds = [parts == k for k in range(5)]
    assert r["wa"]["delta"] == pytest.approx(100 * np.mean([weighted_accuracy(y[f], a[f]) - weighted_accuracy(y[f], b[f]) for f in folds]))
    assert r["ua"]["delta"] == pytest.approx(100 * np.mean([unweighted_accuracy(y[f], a[f], 4) - unweighted_accuracy(y[f], b[f], 4)
                                                             for f in folds]))
    for m in ("wa", "ua"):  # 20 points apart on 300 utterances: far outside the noise
        assert 0 < r[m]["low"] < r[m]["delta"] < r[m]["high"] and r[m]["p"] < 0.01
    assert paired_bootstrap(y, a, b, 4, parts, n_resamples=2000) == r  # seeded
    swapped = paired_bootstrap(y, b, a, 4, parts, n_resamples=2000)
    assert swapped["wa"]["delta"] == pytest.approx(-r["wa"]["delta"])
    assert swapped["wa"]["low"] == pytest.approx(-r["wa"]["high"]) and swapped["wa"]["high"] == pytest.approx(-r["wa"]["low"])
    same = paired_bootstrap(y, a, a, 4, parts, n_resamples=500)
    assert same["ua"] == {"delta": 0.0, "low": 0.0, "high": 0.0, "p": 1.0}
    # two models a little apart on few utterances: the interval spans 0, p is large
    y2, a2, b2, parts2 = _two_models(per_part=12, acc_a=0.7, acc_b=0.65, seed=3)
    close = paired_bootstrap(y2, a2, b2, 4, parts2, n_resamples=2000)
    assert close["wa"]["low"] < 0 < close["wa"]["high"] and close["wa"]["p"] > 0.05
    with pytest.raises(ValueError, match="same non-zero length"):
        paired_bootstrap(y, a[:-1], b, 4, parts)


def test_mcnemar_counts_the_discordant_utterances_and_tests_them_exactly():
    from amsnet_lib.metrics import mcnemar

    y = np.zeros(20, dtype=int)
    a = np.r_[np.zeros(15), np.ones(5)].astype(int)  # right on the first 15
    b = np.r_[np.ones(5), np.zeros(5), np.ones(10)].astype(int)  # right on 5..9 only
    r = mcnemar(y, a, b)
    assert (r["a_only"], r["b_only"]) == (10, 0)
    assert r["p"] == pytest.approx(2 * 0.5 ** 10)  # two-sided exact binomial, 10 of 10
    assert mcnemar(y, a, a) == {"a_only": 0, "b_only": 0, "p": 1.0}


@pytest.mark.slow
def test_paired_bootstrap_rejects_equal_models_about_as_often_as_its_level_says():
    """Two models of the same accuracy, independent errors: p < 0.05 in about 5 % of 200 simulated test sets
    (an unpaired or mis-scaled resampling would be far off)."""
    from amsnet_lib.metrics import mcnemar, paired_bootstrap

    boot, exact = [], []
    for s in range(200):
        rng = np.random.default_rng(1000 + s)
        y = rng.integers(0, 4, 300)
        a = np.where(rng.random(300) < 0.7, y, (y + 1) % 4)
        b = np.where(rng.random(300) < 0.7, y, (y + 2) % 4)
        boot.append(paired_bootstrap(y, a, b, 4, np.repeat(np.arange(5), 60), n_resamples=1000, seed=s)["wa"]["p"] < 0.05)
        exact.append(mcnemar(y, a, b)["p"] < 0.05)
    assert 0.02 <= np.mean(boot) <= 0.09
    assert np.mean(exact) <= 0.07  # exact: at most its level, up to simulation noise
