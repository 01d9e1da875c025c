"""The diagnostic scripts: frame-feature check and FRLM tuning table (their computations, on synthetic data)."""
from __future__ import annotations

import importlib
import json

import numpy as np
import pandas as pd



def _script(name: str):
    """A one-off diagnostic of ``scripts/diagnostics/``, as ``python -m scripts.diagnostics.<name>`` imports it."""
    return importlib.import_module(f"scripts.diagnostics.{name}")


def test_utterance_statistics_use_only_valid_frames():
    check = _script("check_frame_features")
    frames = np.zeros((2, 5, 3), np.float32)
    frames[0, :2] = [[1, 2, 3], [3, 4, 5]]
    frames[1, :5] = np.arange(15, dtype=np.float32).reshape(5, 3)
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
    x = check.utterance_statistics(frames, mask)
    assert x.shape == (2, 3 * 5)  # mean, std, 3 percentiles per dimension
    np.testing.assert_allclose(x[0, :3], [2, 3, 4])  # the padded zeros do not pull the mean down
    np.testing.assert_allclose(x[0, 3:6], [1, 1, 1])


def test_speaker_standardisation_is_per_speaker():
    check = _script("check_frame_features")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4))
    speakers = np.array(["a", "b"] * 20)
    x[speakers == "b"] = 10 + 3 * x[speakers == "b"]
    z = check.speaker_standardised(x, speakers)
    for s in ("a", "b"):
        np.testing.assert_allclose(z[speakers == s].mean(0), 0, atol=1e-9)
        np.testing.assert_allclose(z[speakers == s].std(0), 1, atol=1e-5)


def test_tuning_reads_the_epoch_early_stopping_keeps(tmp_path):
    tuning = _script("frlm_tuning")
    assert tuning.validation_row(tmp_path) is None  # fold not run
    pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.2], "train_acc": [0.5, 0.7, 0.9],
                  "val_loss": [1.2, 0.8, 0.9], "val_wa": [0.4, 0.6, 0.65], "val_ua": [0.3, 0.55, 0.6]}).to_csv(
        tmp_path / "curves.csv", index=False)
    (tmp_path / "metrics.json").write_text(json.dumps({"wa": 0.5, "ua": 0.5}))
    row = tuning.validation_row(tmp_path)
    assert row == {"best_epoch": 2, "epochs_run": 3, "val_loss": 0.8, "val_ua": 55.0, "val_wa": 60.0, "train_acc": 70.0}


def test_tuning_hidden_size_variant_is_the_fig7_study_run():
    """``0.3,0,256`` must land in the same run-store entry as the hidden-size study's 256 (no retraining)."""
    from amsnet_lib import studies
    from amsnet_lib.train.runstore import branch_key

    tuning = _script("frlm_tuning")
    base = studies.experiment("emodb", "frlm", "paper", "full")
    fig7 = {c.frlm.hidden_size: c for c in studies.hidden_size_study("emodb")}
    v = tuning.variant(base, "0.3,0,256")
    assert v.frlm.hidden_size == 256 and v.variant.endswith("hidden=256")
    assert branch_key("frlm", v, 535) == branch_key("frlm", fig7[256], 535)
    assert branch_key("frlm", tuning.variant(base, "0.3,0"), 535) == branch_key("frlm", fig7[128], 535)


def test_head_seed_zero_reproduces_the_engines_head_and_other_seeds_differ(tmp_path):
    """scripts/diagnostics/head_seeds.py retrains a fusion head over the stored branches: with the run's own seed it
    must be the engine's computation exactly, or its spread over seeds would measure something else."""
    import torch

    from amsnet_lib.train.training import make_folds, run_experiment
    from amsnet_lib.train.runstore import RunStore
    from tests.test_training import _exp, _features

    heads = _script("head_seeds")
    feats = _features()
    torch.use_deterministic_algorithms(True, warn_only=True)
    for model, normalisation in (("amsnet", "corpus"), ("concat", "speaker")):
        exp = _exp(model, normalisation=normalisation)
        res = run_experiment(exp, feats, store=tmp_path, device="cpu", progress=False)
        fold = make_folds(feats.table, "paper", n_folds=exp.n_folds)[1]
        stored = res.folds.set_index("fold").loc["fold1"]
        cached = {}
        same = heads.retrain_head(exp, feats, fold, 0, RunStore(tmp_path), cached)
        assert same["wa"] == round(100 * stored["wa"], 4) and same["ua"] == round(100 * stored["ua"], 4)
        assert same["stored_wa"] == same["wa"]
        other = [heads.retrain_head(exp, feats, fold, s, RunStore(tmp_path), cached) for s in (1, 2, 3)]
        assert len(cached) == 1  # the fold's branches and embeddings computed once
        assert any(o["wa"] != same["wa"] or o["best_epoch"] != same["best_epoch"] for o in other)
    # without the branches' weights (a committed store keeps results only) there is nothing to retrain
    for p in tmp_path.glob("frlm-*/seed0/fold1/model.pt"):
        p.unlink()
    assert heads.retrain_head(_exp("amsnet"), feats, fold, 1, RunStore(tmp_path), {}) is None


def test_head_seed_table_summarises_complete_experiments_only():
    heads = _script("head_seeds")
    rows = [{"model": "amsnet", "normalisation": "corpus", "fold": f"fold{f}", "head_seed": s, "wa": 80.0 + s, "ua": 70.0 + 2 * s,
             "best_epoch": 1, "stored_wa": 80.0 if s == 0 else None, "stored_ua": 70.0 if s == 0 else None}
            for f in range(5) for s in (0, 1, 2)]
    rows.append({"model": "concat", "normalisation": "corpus", "fold": "fold0", "head_seed": 0, "wa": 1.0, "ua": 1.0,
                 "best_epoch": 1, "stored_wa": 2.0, "stored_ua": 1.0})  # 1 of 5 folds: left out of the summary
    text = heads.markdown(pd.DataFrame(rows))
    assert "| amsnet | corpus | 3 | 81.00 | 0.82 | 80.00-82.00 | 72.00 | 1.63 | 70.00-74.00 |" in text
    assert "| concat |" not in text
    assert "NOT identical" in text  # the concat fold's seed 0 differs from its stored head


def test_stage_lr_chooses_the_lowest_validation_loss_and_never_a_test_figure():
    stage_lr = _script("stage_lr")
    rows = [{"stage": "frlm", "lr": 1e-4, "val_loss": 0.80, "wa": 90.0},
            {"stage": "frlm", "lr": 1e-3, "val_loss": 0.55, "wa": 70.0},
            {"stage": "frlm", "lr": 1e-5, "trained_on": "not run"}]
    assert stage_lr.choose(rows) == 1e-3  # the best test WA (90.0) does not matter
    assert stage_lr.choose([rows[2]]) is None
    df = pd.DataFrame([{**r, "chosen": r["lr"] == 1e-3, "trained_on": r.get("trained_on", "cpu")} for r in rows]
                      + [{"stage": "amsnet", "lr": 1e-4, "val_loss": 0.5, "val_wa": 85.0, "val_ua": 84.0, "wa": 83.0, "ua": 82.0,
                          "wa_std": 1.0, "ua_std": 2.0, "folds": 5, "chosen": True, "trained_on": "cpu"}])
    text = stage_lr.markdown(df, {"frlm": 1e-3, "urlm": 1e-4, "amsnet": 1e-4, "concat": None})
    assert "Chosen: frlm 0.001, urlm 0.0001, amsnet 0.0001, concat not chosen" in text
    assert "**amsnet** with the chosen learning rates: WA 83.00 ± 1.00, UA 82.00 ± 2.00 `[paper]`" in text
    assert "| frlm | 1e-05 |  |  |  |  |  |  | not run |" in text
    pair = {"protocol": "loso", "frlm_lr": 1e-3, "urlm_lr": 1e-4, "frlm_wa": 60.0, "urlm_wa": 65.0, "both": 40.0,
            "only_frlm": 10.0, "only_urlm": 20.0, "neither": 30.0, "average_wa": 66.0, "average_ua": 64.5,
            "amsnet_wa": 63.7, "concat_wa": None, "late_wa": 65.5, "late_ua": 64.0, "late_w": 0.35}
    assert ("| [loso] | 0.001 | 0.0001 | 60.00 | 65.00 | 40.00 | 10.00 | 20.00 | 30.00 | 66.00 | 64.50 | 63.70 | not run | "
            "65.50 | 64.00 | 0.35 |" in stage_lr.markdown(df, {"frlm": 1e-3}, [pair]))
    from amsnet_lib.studies import experiment

    # the pair's late fusion: the paper's configuration over the paper's branches, else a rate per stage
    assert stage_lr.pair_experiment("late", "loso", 1e-4, 1e-4) == experiment("emodb", "late", "loso", "full")
    chosen = stage_lr.pair_experiment("late", "paper", 1e-3, 1e-4)
    assert (chosen.stage_train("frlm").lr, chosen.stage_train("urlm").lr, chosen.model) == (1e-3, 1e-4, "late")


def test_complementarity_counts_each_utterance_once_and_averages_probabilities():
    from types import SimpleNamespace

    stage_lr = _script("stage_lr")
    classes = ["a", "b"]

    def result(pred_probs, true):
        p = np.asarray(pred_probs, float)
        return SimpleNamespace(classes=classes, predictions=pd.DataFrame({
            "seed": 0, "fold": ["f0", "f0", "f1", "f1"], "path": ["u1", "u2", "u3", "u4"], "true": true,
            "pred": p.argmax(1), "p_a": p[:, 0], "p_b": p[:, 1]}))

    true = [0, 1, 0, 1]
    frlm = result([[0.9, 0.1], [0.6, 0.4], [0.45, 0.55], [0.2, 0.8]], true)    # right, wrong, wrong, right
    urlm = result([[0.8, 0.2], [0.1, 0.9], [0.4, 0.6], [0.55, 0.45]], true)    # right, right, wrong, wrong
    c = stage_lr.complementarity(frlm, urlm)
    assert (c["both"], c["only_frlm"], c["only_urlm"], c["neither"]) == (25.0, 25.0, 25.0, 25.0)  # u1, u4, u2, u3
    # averaged: u1 a (right), u2 b .35/.65 (right), u3 b (wrong), u4 .375/.625 b (right) -> f0 100 %, f1 50 %
    assert c["average_wa"] == 75.0 and c["average_ua"] == 75.0
    shuffled = SimpleNamespace(classes=classes, predictions=urlm.predictions.iloc[::-1])  # row order does not matter
    assert stage_lr.complementarity(frlm, shuffled) == c
