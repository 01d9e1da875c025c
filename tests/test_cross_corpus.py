"""Cross-corpus evaluation of the classic baseline: classes, adaptation, no label of the target read."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amsnet_lib.config import SVMConfig
from amsnet_lib.train.cross_corpus import FOUR_CLASSES, classic_cross_corpus, shared_classes, standardise


def _corpus(rng, classes, n_speakers, per, shift=0.0, scale=1.0, prefix="s"):
    rows, x = [], []
    centres = {c: np.eye(6)[i] * 3 for i, c in enumerate(["anger", "happiness", "neutral", "sadness", "fear", "calm"])}
    for s in range(n_speakers):
        offset = rng.normal(0, 0.5, 6)
        for c in classes:
            for _ in range(per):
                rows.append({"label": c, "speaker": f"{prefix}{s}"})
                x.append((centres[c] + offset + rng.normal(0, 0.7, 6)) * scale + shift)
    return pd.DataFrame(rows), np.array(x, np.float32)


SMALL = SVMConfig(c_grid=(0.01, 1.0), class_weights=("none",), inner_folds=3)


def test_shared_classes_keep_the_source_order():
    assert shared_classes(["anger", "boredom", "happiness", "neutral"], ["neutral", "calm", "anger"]) == ["anger", "neutral"]


def test_standardise_gives_each_group_zero_mean_and_unit_std():
    x = np.array([[1.0, 5.0], [3.0, 5.0], [10.0, 0.0], [14.0, 2.0]])
    z = standardise(x, np.array(["a", "a", "b", "b"]))
    assert np.allclose(z[:2].mean(0), 0) and np.allclose(z[2:].std(0), 1) and np.allclose(z[:2, 1], 0)


def test_a_shifted_corpus_is_recovered_by_corpus_adaptation_and_only_the_chosen_classes_are_scored():
    rng = np.random.default_rng(0)
    source, xs = _corpus(rng, ["anger", "happiness", "neutral", "sadness", "fear"], 4, 8)
    target, xt = _corpus(rng, ["anger", "happiness", "neutral", "sadness", "calm"], 3, 8, prefix="t",
                         shift=np.array([-4.0, 0.0, 4.0, 0.0, 2.0, 0.0]), scale=2.0)  # a channel: every class moved alike
    classes = shared_classes(["anger", "happiness", "neutral", "sadness", "fear"], list(FOUR_CLASSES) + ["calm"])
    none = classic_cross_corpus(source, xs, target, xt, classes, "none", SMALL)
    corpus = classic_cross_corpus(source, xs, target, xt, classes, "corpus", SMALL)
    assert none.n_test == corpus.n_test == 3 * 4 * 8  # calm is not scored, fear not trained
    assert none.classes == tuple(FOUR_CLASSES) and none.confusion.shape == (4, 4)
    assert corpus.ua > none.ua + 20 and corpus.ua > 80
    assert corpus.chosen["inner_cv"].startswith("speaker")


def test_no_label_of_the_target_is_read():
    rng = np.random.default_rng(1)
    source, xs = _corpus(rng, list(FOUR_CLASSES), 4, 6)
    target, xt = _corpus(rng, list(FOUR_CLASSES), 2, 6, shift=1.0, prefix="t")
    a = classic_cross_corpus(source, xs, target, xt, FOUR_CLASSES, "speaker", SMALL)
    shuffled = target.copy()
    shuffled["label"] = rng.permutation(shuffled["label"].to_numpy())
    b = classic_cross_corpus(source, xs, shuffled, xt, FOUR_CLASSES, "speaker", SMALL)
    # the same predictions scored against other labels: the choice and the confusion's column sums agree
    assert a.chosen == b.chosen and np.array_equal(a.confusion.sum(0), b.confusion.sum(0))
    with pytest.raises(ValueError, match="adapt must be one of"):
        classic_cross_corpus(source, xs, target, xt, FOUR_CLASSES, "target-labels", SMALL)
