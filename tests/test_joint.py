"""A model trained on two corpora set beside each corpus's own model, on the same test utterances (report.joint)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from amsnet_lib.report.joint import corpus_comparison, corpus_view, fold_mean

JOINT = ["anger", "boredom", "neutral", "calm"]  # the union: corpus a has the first three, b anger, neutral, calm


def _result(classes, rows, missing=()):
    """An ExperimentResult's stored predictions: rows of (fold, path, true name, {class: p})."""
    out = []
    for fold, path, true, proba in rows:
        p = np.array([proba.get(c, 0.0) for c in classes])
        out.append({"seed": 0, "fold": fold, "path": path, "true": classes.index(true), "pred": int(p.argmax()),
                    **{f"p_{c}": v for c, v in zip(classes, p)}})
    return SimpleNamespace(predictions=pd.DataFrame(out), classes=list(classes), missing=list(missing))


def test_the_joint_model_is_scored_over_the_classes_of_the_corpus_it_is_tested_on():
    b_alone = _result(["anger", "neutral", "calm"], [
        ("fold_1", "Actor_01/x1.flac", "anger", {"anger": 0.9}), ("fold_1", "Actor_01/x2.flac", "calm", {"anger": 0.9}),
        ("fold_2", "Actor_02/x3.flac", "neutral", {"neutral": 0.9})])
    joint = _result(JOINT, [
        # 'boredom' (corpus a's only) is the joint model's argmax here, but no file of b can be boredom
        ("b_fold_1", "ravdess/Actor_01/x1.flac", "anger", {"boredom": 0.6, "anger": 0.3, "calm": 0.1}),
        ("b_fold_1", "ravdess/Actor_01/x2.flac", "calm", {"boredom": 0.5, "calm": 0.4, "anger": 0.1}),
        ("b_fold_2", "ravdess/Actor_02/x3.flac", "neutral", {"neutral": 0.9}),
        ("a_03", "emodb/wav/03a.wav", "boredom", {"boredom": 0.9})])
    view = corpus_view(joint, "b", b_alone)
    assert view.classes == ["anger", "neutral", "calm"] and not view.missing
    assert view.predictions["path"].tolist() == b_alone.predictions["path"].tolist()  # named as the model alone names them
    assert view.predictions["fold"].tolist() == ["fold_1", "fold_1", "fold_2"]
    assert view.predictions["pred"].tolist() == [0, 2, 1]  # anger, calm, neutral: boredom never
    assert fold_mean(view) == {"wa": 100.0, "ua": 100.0, "n_folds": 2}
    # the model alone got x2 wrong: per fold (fold_1: 1 of 2, fold_2: 1 of 1), then the mean
    assert fold_mean(b_alone)["wa"] == 75.0

    table = corpus_comparison(joint, {"b": b_alone}, label="both")
    row = table.iloc[0]
    assert row["corpus"] == "b" and row["folds"] == "2 of 2"
    assert (row["WA alone (%)"], row["WA both (%)"], row["ΔWA (pp)"]) == (75.0, 100.0, 25.0)


def test_only_the_folds_the_joint_run_finished_are_compared_and_a_lost_file_is_named():
    alone = _result(["anger", "neutral"], [("03", "03a.wav", "anger", {"anger": 1.0}), ("08", "08a.wav", "neutral", {"anger": 1.0})])
    joint = _result(JOINT, [("a_03", "emodb/wav/03a.wav", "anger", {"anger": 1.0})])
    view = corpus_view(joint, "a", alone)
    assert view.missing == ["08"] and view.predictions["fold"].tolist() == ["03"]
    row = corpus_comparison(joint, {"a": alone}).iloc[0]
    assert row["folds"] == "1 of 2" and row["WA alone (%)"] == 100.0  # fold 08 (wrong alone) left out of both
    # a predictions file read back gives EmoDB's speaker 03 as the number 3: the same fold
    as_read = _result(["anger", "neutral"], [(3, "03a.wav", "anger", {"anger": 1.0}), (8, "08a.wav", "neutral", {"anger": 1.0})])
    view = corpus_view(joint, "a", as_read)
    assert view.predictions["fold"].tolist() == [3] and view.missing == ["8"]
    assert corpus_comparison(joint, {"a": as_read}).iloc[0]["folds"] == "1 of 2"
    lost = _result(JOINT, [("a_03", "emodb/wav/other.wav", "anger", {"anger": 1.0})])
    with pytest.raises(ValueError, match="03a.wav"):
        corpus_view(lost, "a", alone)
    none_yet = corpus_comparison(_result(JOINT, [("b_fold_1", "x.wav", "anger", {"anger": 1.0})]), {"a": alone}).iloc[0]
    assert none_yet["folds"] == "0 of 2"  # the joint run has none of a's folds yet
    with pytest.raises(ValueError, match="no class"):
        corpus_view(_result(["anger", "boredom"], []), "a", alone)


def test_the_script_reads_the_joint_run_and_each_corpus_alone_then_writes_the_table(tmp_path, monkeypatch, capsys):
    """scripts/joint_vs_alone.py with the run store's results stubbed: which experiments it asks for, the table."""
    from scripts import joint_vs_alone

    a = _result(["anger", "boredom"], [("03", "03a.wav", "anger", {"anger": 1.0})])
    b = _result(["anger", "calm"], [("fold_1", "Actor_01/x.flac", "calm", {"anger": 1.0})])
    joint = _result(["anger", "boredom", "calm"], [("emodb_03", "emodb/wav/03a.wav", "anger", {"anger": 1.0}),
                                                  ("ravdess_fold_1", "ravdess/Actor_01/x.flac", "calm", {"calm": 1.0})])
    asked = []

    def run_experiment(exp, feats, store, finished_only):
        asked.append((exp.corpus, exp.protocol, exp.model, exp.recipe, exp.branch_train.balance, finished_only))
        res = {"emodb+ravdess": joint, "emodb": a, "ravdess": b}[exp.corpus]
        res.config = exp
        return res

    monkeypatch.setattr(joint_vs_alone.ams, "load_corpus", lambda name: name)
    monkeypatch.setattr(joint_vs_alone.ams, "extract_features", lambda table, config, cache_dir: SimpleNamespace(config=config))
    monkeypatch.setattr(joint_vs_alone.ams, "run_experiment", run_experiment)
    assert joint_vs_alone.main(["--model", "frlm", "--tables", str(tmp_path), "--run-dir", str(tmp_path / "runs")]) == 0
    assert asked == [("emodb+ravdess", "corpus_folds", "frlm", "tuned", "corpus_class", True),
                     ("emodb", "loso", "frlm", "tuned", "none", True), ("ravdess", "emobox", "frlm", "tuned", "none", True)]
    table = pd.read_csv(tmp_path / "joint_emodb+ravdess_frlm_tuned_balance-corpus_class.csv")
    assert table["corpus"].tolist() == ["emodb", "ravdess"]
    assert table["ΔWA (pp)"].tolist() == [0.0, 100.0]  # ravdess's calm: wrong alone, right trained on both
    notes = (tmp_path / "joint_emodb+ravdess_frlm_tuned_balance-corpus_class.md").read_text()
    assert "emodb: random utterances of the training speakers; ravdess: whole training speakers" in notes
