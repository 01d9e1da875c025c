"""Seed ensembles: members that differ only in their seed, a size chosen on validation without a
test fold, and a test read only for the size chosen."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from amsnet_lib.train import ensemble, runstore, training
from amsnet_lib import studies
from amsnet_lib.errors import AmsnetError
from amsnet_lib.data.protocols import make_folds
from amsnet_lib.train.runstore import RunStore
from amsnet_lib.train.training import run_experiment
from test_training import _exp, _features


def test_member_zero_keeps_every_key_and_other_members_get_their_own():
    exp = studies.experiment("emodb", "amsnet", "paper", "full", recipe="tuned")
    assert studies.with_member(exp, 0) is exp
    m1, m2 = studies.with_member(exp, 1), studies.with_member(exp, 2)
    assert m1.variant == "member 1" and m1.init_seed(2) == 1002 and exp.init_seed(2) == 2
    for b in runstore.BRANCHES:
        keys = {runstore.branch_key(b, e, 535) for e in (exp, m1, m2)}
        assert len(keys) == 3
    # member 0 is what it always was: same config, same key as before members existed
    assert exp.member == 0 and "member" not in runstore._branch_identity("urlm", exp, 535)
    with pytest.raises(ValueError, match="member"):
        dataclasses.replace(exp, member=-1)


def test_members_share_the_validation_split_and_differ_in_their_weights(tmp_path):
    feats, exp = _features(), _exp("frlm")
    store = RunStore(tmp_path)
    a, b = ensemble.members(exp, 2)
    fold = make_folds(feats.table, "paper", n_folds=3, split_seed=0)[0]
    da = training.run_fold(a, feats, fold, 0, store, "cpu", progress=False)
    db = training.run_fold(b, feats, fold, 0, store, "cpu", progress=False)
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (da, db))
    assert ma["n_val"] == mb["n_val"] and da != db
    wa, wb = store.load_state(da), store.load_state(db)
    assert any(not np.allclose(wa[k], wb[k]) for k in wa)


def test_size_is_chosen_on_validation_and_only_that_size_reads_the_test_folds(tmp_path, monkeypatch):
    feats, exp = _features(), _exp("amsnet")
    store = RunStore(tmp_path)
    splits = []
    real = ensemble._probabilities
    monkeypatch.setattr(ensemble, "_probabilities", lambda *a, **kw: (splits.append(a[6]), real(*a, **kw))[1])
    scores = ensemble.validation_scores(exp, feats, 3, store=store, device="cpu")
    assert splits == ["val"] * 3 and not scores.attrs["missing"]
    assert sorted(scores["members"].unique()) == [1, 2, 3] and len(scores) == 9
    # no test metrics of the ensemble exist after its validation
    assert not list(tmp_path.glob("ensemble-*/seed0/*/metrics.json"))
    # one member scored alone: the validation figures its own training recorded at its epoch
    single = run_experiment(exp, feats, store=store, device="cpu", progress=False, finished_only=True)
    own = single.curves[single.curves["stage"] == "amsnet"].merge(
        single.folds[["fold", "best_epoch"]].rename(columns={"best_epoch": "epoch"}), on=["fold", "epoch"])
    one = scores[scores["members"] == 1].sort_values("fold")
    np.testing.assert_allclose(one["val_ua"].to_numpy(), 100 * own.sort_values("fold")["val_ua"].to_numpy(), atol=1e-3)

    k = ensemble.choose_size(scores)
    mean = scores.groupby("members")["val_ua"].mean().round(2)
    assert mean[k] == mean.max() and all(mean[j] < mean.max() for j in mean.index if j < k)
    splits.clear()
    res = ensemble.run_ensemble(exp, feats, 3, store=store, device="cpu")
    assert splits == ["test"] * 3
    assert res.config.variant == ensemble.ensemble_label(3) and len(res.predictions) == len(feats)
    p = res.predictions[[c for c in res.predictions if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-3)
    members = [run_experiment(e, feats, store=store, device="cpu", progress=False, finished_only=True)
               for e in ensemble.members(exp, 3)]
    assert res.summary()["train_seconds"] == pytest.approx(sum(m.folds["seconds"].sum() for m in members), abs=0.2)
    # read back, nothing evaluated again
    splits.clear()
    again = ensemble.run_ensemble(exp, feats, 3, store=store, device="cpu", train=False)
    assert splits == [] and again.folds["ua"].tolist() == res.folds["ua"].tolist()


def test_an_ensemble_member_without_its_weights_says_how_to_get_them(tmp_path):
    feats, exp = _features(), _exp("frlm")
    store = RunStore(tmp_path)
    ensemble.validation_scores(exp, feats, 1, store=store, device="cpu")  # trains member 0
    for f in tmp_path.glob("frlm-*/seed0/*/model.pt"):
        f.unlink()
    for f in tmp_path.glob("ensemble-*/seed0/*/validation.csv"):
        f.unlink()
    with pytest.raises(AmsnetError, match="model.pt"):
        ensemble.validation_scores(exp, feats, 1, store=store, device="cpu")


def test_members_not_trained_are_missing_without_training(tmp_path):
    feats, exp = _features(), _exp("frlm")
    scores = ensemble.validation_scores(exp, feats, 2, store=RunStore(tmp_path), device="cpu", train=False)
    assert len(scores) == 0 and len(scores.attrs["missing"]) == 3
    assert not list(tmp_path.iterdir())  # a look writes nothing


def test_table5_shows_a_seed_ensemble_row_only_where_one_was_chosen():
    import pandas as pd

    from amsnet_lib.report import tables

    rows = [{"corpus": "emodb", "protocol": "paper", "recipe": r, "model": "amsnet", "variant": "", "wa": w, "ua": w}
            for r, w in (("paper", 81.0), ("tuned", 86.0))]
    summary = pd.DataFrame(rows)
    labels = tables.ablation_table(summary, "emodb", ["paper", "loso"])["model"].tolist()
    assert not any("ensemble" in x for x in labels)
    summary = pd.concat([summary, pd.DataFrame([{**rows[1], "variant": ensemble.ensemble_label(3), "wa": 87.5}])])
    t = tables.ablation_table(summary, "emodb", ["paper", "loso"]).set_index("model")
    row = t.loc["AMSNet, tuned recipe, ensemble of 3 seeds"]
    assert row["WA ours [paper] (%)"] == 87.5 and row["WA ours [loso] (%)"] == tables.NOT_RUN
    assert t.loc["AMSNet, tuned recipe", "WA ours [paper] (%)"] == 86.0
    # a table of another protocol only has no row for it
    assert not any("ensemble" in x for x in tables.ablation_table(summary, "emodb", ["loso"])["model"])
