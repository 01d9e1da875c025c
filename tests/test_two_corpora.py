"""Two corpora as one training table, and epochs that draw each corpus and class alike (issue #38 item 5's means)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from amsnet_lib import cli, studies
from amsnet_lib.config import FeatureConfig, FRLMConfig, TrainConfig
from amsnet_lib.data.corpora import load_corpora, load_corpus
from amsnet_lib.errors import CorpusError
from amsnet_lib.models import FRLM
from amsnet_lib.train.training import _draw_weights, train_model


@pytest.fixture
def both(emodb_dir, ravdess_dir, monkeypatch):
    monkeypatch.setenv("AMSNET_EMODB_DIR", str(emodb_dir))
    monkeypatch.setenv("AMSNET_RAVDESS_DIR", str(ravdess_dir))


def test_named_corpora_joined_with_a_plus_load_as_one_table(both):
    emodb, ravdess = load_corpus("emodb"), load_corpus("ravdess")
    table = load_corpus("emodb+ravdess")
    assert len(table) == len(emodb) + len(ravdess)
    assert table.attrs["corpus"] == "emodb+ravdess"
    # the union of the classes: EmoDB's order, then RAVDESS's new ones
    assert table.attrs["classes"] == list(emodb.attrs["classes"]) + ["calm", "surprise"]
    assert table["corpus"].value_counts().to_dict() == {"emodb": len(emodb), "ravdess": len(ravdess)}
    # speaker ids repeat across corpora (both have an "03"): each is named by its corpus
    assert set(emodb["speaker"]) & set(ravdess["speaker"])
    assert table["speaker"].nunique() == emodb["speaker"].nunique() + ravdess["speaker"].nunique()
    assert (table.loc[table["corpus"] == "emodb", "speaker"].to_numpy() == ("emodb:" + emodb["speaker"]).to_numpy()).all()
    assert table["path"].tolist() == emodb["path"].tolist() + ravdess["path"].tolist()
    assert list(table.columns[:8]) == ["path", "label", "speaker", "gender", "session", "text", "duration", "corpus"]


def test_corpus_folds_test_each_corpus_on_its_own_folds_with_the_other_corpus_always_in_training(both):
    from amsnet_lib.data.protocols import make_folds

    table = load_corpus("emodb+ravdess")
    folds = make_folds(table, "corpus_folds")
    alone = {c: make_folds(load_corpus(c), p) for c, p in (("emodb", "loso"), ("ravdess", "emobox"))}
    assert [f.name for f in folds] == [f"{c}_{f.name}" for c in ("emodb", "ravdess") for f in alone[c]]
    offset = {"emodb": 0, "ravdess": int((table["corpus"] == "emodb").sum())}
    for fold in folds:
        corpus = fold.name.split("_", 1)[0]
        own = next(f for f in alone[corpus] if f"{corpus}_{f.name}" == fold.name)
        # the same test utterances as the corpus alone; everything else trains
        assert table["path"].iloc[fold.test].tolist() == table["path"].iloc[own.test + offset[corpus]].tolist()
        assert sorted(np.concatenate([fold.train, fold.test])) == list(range(len(table)))
        other = "ravdess" if corpus == "emodb" else "emodb"
        assert (table["corpus"].iloc[fold.train] == other).sum() == (table["corpus"] == other).sum()
    assert sorted(np.concatenate([f.test for f in folds])) == list(range(len(table)))  # each utterance tested once
    with pytest.raises(ValueError, match="several corpora"):
        make_folds(load_corpus("emodb"), "corpus_folds")
    with pytest.raises(ValueError, match="knows the folds of"):
        make_folds(table.assign(corpus="mine"), "corpus_folds")


def test_speaker_validation_of_two_corpora_holds_out_speakers_of_each():
    from amsnet_lib.data.protocols import validation_groups, validation_split

    # corpus a: 10 speakers of 10 utterances; corpus b: 30 speakers of 10: a plain speaker split of 10 %
    # could hold out b's speakers alone
    table = pd.DataFrame({"corpus": ["a"] * 100 + ["b"] * 300,
                          "speaker": [f"a:{i // 10}" for i in range(100)] + [f"b:{i // 10}" for i in range(300)]})
    labels = np.arange(400) % 2
    assert validation_groups(table, "utterance") == {}
    for seed in range(5):
        fit, val = validation_split(labels, np.arange(400), 0.1, seed, **validation_groups(table, "speaker"))
        assert sorted(np.concatenate([fit, val])) == list(range(400))
        held = set(table["speaker"].iloc[val])
        assert {s.split(":")[0] for s in held} == {"a", "b"}  # each corpus has validation speakers
        assert not held & set(table["speaker"].iloc[fit])  # whole speakers
        assert len(held) == 1 + 3  # a tenth of each corpus's speakers
    one = table[table["corpus"] == "a"].drop(columns="corpus")  # one corpus: the split as before
    assert validation_groups(one, "speaker")["strata"] is None


def test_a_combination_is_of_two_or_more_different_named_corpora(both):
    for bad in ("emodb+emodb", "emodb+mine", "emodb"):
        with pytest.raises(CorpusError, match="join names of"):
            load_corpora(bad.split("+"))
    with pytest.raises(ValueError, match="its own setting"):
        load_corpus("emodb+ravdess", data_dir="/somewhere")


def test_two_corpora_trim_as_ravdess_and_hold_out_speakers_for_validation():
    assert FeatureConfig.for_corpus("emodb+ravdess") == FeatureConfig(duration=3.0, trim_db=40.0)
    assert FeatureConfig.for_corpus("emodb+iemocap").duration == 5.0
    assert studies.experiment("emodb+ravdess", "amsnet", "paper").validation == "speaker"
    # one corpus keeps what its runs were keyed with
    assert studies.experiment("emodb", "amsnet", "paper").validation == "utterance"


def test_balanced_draws_give_each_corpus_and_class_cell_the_same_chance():
    # 3 cells: corpus 0 class 0 (60 utterances), corpus 0 class 1 (30), corpus 1 class 0 (10)
    train = {"labels": torch.tensor([0] * 60 + [1] * 30 + [0] * 10), "corpus": torch.tensor([0] * 90 + [1] * 10)}
    cells = train["corpus"] * 2 + train["labels"]
    w = _draw_weights(train, TrainConfig(balance="corpus_class"))
    for c in (0, 1, 2):
        assert float(w[cells == c].sum()) == pytest.approx(1.0)
    draws = torch.multinomial(w, 30000, replacement=True, generator=torch.Generator().manual_seed(0))
    share = torch.bincount(cells[draws], minlength=3).double() / 30000
    assert torch.allclose(share, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.015)
    # class: the corpora pooled, each class alike
    wc = _draw_weights(train, TrainConfig(balance="class"))
    assert float(wc[train["labels"] == 0].sum()) == pytest.approx(float(wc[train["labels"] == 1].sum()))
    # corpus_class on one corpus (no codes) is class
    assert torch.equal(_draw_weights({"labels": train["labels"]}, TrainConfig(balance="corpus_class")), wc)
    assert _draw_weights(train, TrainConfig()) is None
    with pytest.raises(ValueError, match="balance must be one of"):
        TrainConfig(balance="corpus")


def _tiny_fit(balance: str, seed: int = 0):
    g = torch.Generator().manual_seed(1)
    n, q = 40, 12
    train = {"frames": torch.randn(n, q, 76, generator=g), "mask": torch.ones(n, q, dtype=torch.bool),
             "labels": torch.tensor([0] * 30 + [1] * 10), "corpus": torch.tensor([0] * 20 + [1] * 20)}
    torch.manual_seed(0)
    model = FRLM(FRLMConfig(hidden_size=4, embedding_dim=4), n_classes=2)
    cfg = TrainConfig(epochs=2, patience=0, batch_size=8, balance=balance)
    res = train_model(model, train, None, cfg, 2, seed=seed, progress=False)
    return res.curves, {k: v.clone() for k, v in model.state_dict().items()}


def test_balanced_training_is_deterministic_and_differs_from_plain_shuffling():
    (c1, s1), (c2, s2) = _tiny_fit("corpus_class"), _tiny_fit("corpus_class")
    assert c1.drop(columns=["seconds"], errors="ignore").equals(c2.drop(columns=["seconds"], errors="ignore"))
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    _, plain = _tiny_fit("none")
    assert not all(torch.equal(s1[k], plain[k]) for k in s1)


def test_balance_keeps_every_existing_run_key_and_names_its_own_variant():
    exp = studies.experiment("emodb", "amsnet", "paper", recipe="tuned")
    assert studies.with_balance(exp, "none") is exp
    balanced = studies.with_balance(exp, "corpus_class")
    assert balanced.variant.endswith("balance=corpus_class")
    stages = [balanced.branch_train, balanced.fusion_train] + [t for t in (balanced.frlm_train, balanced.finetune) if t]
    assert {t.balance for t in stages} == {"corpus_class"}
    # a field at its default is left out of what keys a run (runs from before it keep their folders)
    from amsnet_lib.train.runstore import branch_key

    assert branch_key("urlm", exp, 535) == "4ae51ebc5993"  # the key before the field existed
    assert branch_key("urlm", exp, 535) != branch_key("urlm", balanced, 535)
    assert branch_key("urlm", exp, 535) == branch_key("urlm", dataclasses.replace(exp, branch_train=dataclasses.replace(
        exp.branch_train, balance="none")), 535)


def test_train_takes_two_corpora_and_balance_from_the_command_line(both, tmp_path, capsys, monkeypatch):
    from amsnet_lib.data import corpora

    whole = corpora.load_corpora

    def few(names, **kw):  # 2 utterances of each corpus and class: the path of 1975, at the cost of 32
        table = whole(names, **kw)
        part = table.groupby(["corpus", "label"], sort=False).head(2).reset_index(drop=True)
        part.attrs = table.attrs
        return part

    monkeypatch.setattr(corpora, "load_corpora", few)
    args = ["train", "--corpus", "emodb+ravdess", "--model", "urlm", "--profile", "quick", "--balance", "corpus_class",
            "--protocol", "paper", "--folds", "2", "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--summary", "",
            "--run-dir", str(tmp_path / "runs"), "--threads", "1", "--fold", "fold0"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "emodb+ravdess" in out
    folds = list((tmp_path / "runs").glob("urlm-*/seed0/fold0/predictions.csv"))
    assert len(folds) == 1
    pred = pd.read_csv(folds[0])
    assert {"p_calm", "p_surprise", "p_boredom"} <= set(pred.columns)  # the union of the classes
    assert np.isfinite(pred.filter(like="p_").to_numpy()).all()
