"""The classic baselines (issue #37): openSMILE functionals, a linear SVM chosen by inner CV, in the run store."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from amsnet_lib import cli
from amsnet_lib.config import CLASSIC_MODELS, MODELS, ExperimentConfig, SVMConfig, identity
from amsnet_lib.data import functionals as fx
from amsnet_lib.data.features import Features
from amsnet_lib.data.protocols import make_folds
from amsnet_lib.studies import experiment
from amsnet_lib.train import classic
from amsnet_lib.train.runstore import RunStore
from amsnet_lib.train.training import run_experiment
from signals import tone

SMALL_SVM = SVMConfig(c_grid=(1e-3, 1e-1, 10.0), inner_folds=3)


def _synthetic(n_speakers: int = 6, per: int = 8, dims: int = 12, seed: int = 0):
    """A table of ``n_speakers`` speakers x 3 classes x ``per`` utterances (no audio) and functionals
    with a class signal, a speaker offset and noise: float32 ``(N, dims)``."""
    rng = np.random.default_rng(seed)
    rows, X = [], []
    centres = rng.normal(0, 1.0, (3, dims))
    for s in range(n_speakers):
        offset = rng.normal(0, 0.8, dims)
        for c, label in enumerate(("anger", "neutral", "sadness")):
            for i in range(per):
                rows.append({"path": f"/corpus/wav/s{s}_{label}_{i}.wav", "label": label, "speaker": f"{s:02d}",
                             "gender": None, "session": None, "text": None, "duration": 1.0})
                X.append(centres[c] + offset + rng.normal(0, 1.2, dims))
    table = pd.DataFrame(rows)
    table.attrs.update(corpus="synth", classes=["anger", "neutral", "sadness"])
    return Features.without_streams(table), np.asarray(X, dtype=np.float32)


def _exp(protocol: str = "paper", model: str = "compare-svm") -> ExperimentConfig:
    return dataclasses.replace(experiment("synth", model, protocol, "quick"), n_folds=3, svm=SMALL_SVM)


# --------------------------------------------------------------------------- configuration


def test_baselines_are_models_and_leave_every_existing_run_key_alone():
    assert set(CLASSIC_MODELS) == {"compare-svm", "egemaps-svm"} and set(CLASSIC_MODELS) <= set(MODELS)
    assert MODELS[:6] == ("frlm", "urlm", "concat", "early", "amsnet", "late")
    # the svm field is left out of the identity at its default: no network's key changes
    assert "svm" not in identity(ExperimentConfig()) and "svm" in identity(dataclasses.replace(ExperimentConfig(), svm=SMALL_SVM))
    with pytest.raises(ValueError, match="recipe='tuned'.*networks only"):
        experiment("emodb", "compare-svm", "loso", recipe="tuned")
    with pytest.raises(ValueError, match="c_grid"):
        SVMConfig(c_grid=(0.0,))
    # no network: the engine's units (Ray tasks) leave them to run_experiment, which fits them in process
    from amsnet_lib.train.units import fusion_units, stage1_units

    features, _ = _synthetic()
    assert stage1_units([_exp("loso")], features.table) == [] == fusion_units([_exp("loso")], features.table)


# --------------------------------------------------------------------------- functionals


def test_functionals_have_the_sets_width_follow_the_table_and_come_back_from_the_cache(tmp_path, monkeypatch):
    paths = []
    for i, f0 in enumerate((110.0, 180.0, 260.0)):
        p = tmp_path / "audio" / f"u{i}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, tone(0.6 + 0.2 * i, f0, seed=i), 16000)  # lengths differ: whole files, no cut
        paths.append(str(p))
    table = pd.DataFrame({"path": paths, "label": ["a", "b", "a"]})
    cache = tmp_path / "cache"
    eg = fx.extract_functionals(table, "eGeMAPSv02", cache_dir=cache, n_jobs=1, progress=False)
    assert eg.shape == (3, 88) and eg.dtype == np.float32 and np.isfinite(eg).all()
    assert len(fx.functional_names("eGeMAPSv02")) == 88
    assert not np.allclose(eg[0], eg[1])  # each row its own file
    cp = fx.extract_functionals(table.iloc[:1], "ComParE_2016", cache_dir=cache, n_jobs=1, progress=False)
    assert cp.shape == (1, 6373)
    # content-addressed, in the shared cache under a namespace of its own; a second call computes nothing
    assert len(list(cache.glob("functionals-*/*/*.npz"))) == 4
    monkeypatch.setattr(fx, "_compute_file", lambda *a, **k: pytest.fail("recomputed a cached file"))
    again = fx.extract_functionals(table.iloc[::-1], "eGeMAPSv02", cache_dir=cache, n_jobs=1, progress=False)
    np.testing.assert_array_equal(again, eg[::-1])  # rows follow the table's order


# --------------------------------------------------------------------------- honest model selection


def test_the_svm_is_chosen_without_reading_the_test_fold():
    """C, the class weighting and every inner-CV score are the same when the test fold's labels and
    functionals are replaced by garbage: selection never reads them."""
    features, X = _synthetic()
    exp = _exp("loso")
    fold = make_folds(features.table, "loso")[2]

    def chosen(feats, values, root):
        d = classic.run_classic_fold(exp, feats, fold, 0, RunStore(root), functionals=values)
        m, curves, _ = RunStore(root).load(d)
        return m, curves

    import tempfile

    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        m0, c0 = chosen(features, X, a)
        rng = np.random.default_rng(1)
        labels = features.labels.copy()
        labels[fold.test] = rng.permutation(labels[fold.test])[::-1]
        poisoned_X = X.copy()
        poisoned_X[fold.test] = rng.normal(0, 100, poisoned_X[fold.test].shape)
        m1, c1 = chosen(dataclasses.replace(features, labels=labels), poisoned_X, b)
    for k in ("svm_C", "svm_class_weight", "inner_ua", "best_epoch", "inner_cv", "inner_folds"):
        assert m0[k] == m1[k], k
    pd.testing.assert_frame_equal(c0, c1)
    assert (m0["wa"], m0["ua"]) != (m1["wa"], m1["ua"])  # the test fold itself did change
    assert len(c0) == len(SMALL_SVM.c_grid) * len(SMALL_SVM.class_weights)


def test_inner_cv_keeps_each_speaker_on_one_side_when_the_outer_fold_is_speaker_independent():
    features, X = _synthetic()
    speakers = features.table["speaker"].to_numpy()
    loso = make_folds(features.table, "loso")[0]
    assert classic.speaker_independent(features.table, loso)
    groups = speakers[loso.train]
    splits, kind = classic.inner_splits(features.labels[loso.train], groups, 3, seed=0)
    assert kind == "speaker-grouped" and len(splits) == 3
    for fit, val in splits:
        assert not set(groups[fit]) & set(groups[val])
        assert len(fit) + len(val) == len(loso.train)
    # the paper's stratified folds share speakers between training and test: stratified inner folds
    paper = make_folds(features.table, "paper", n_folds=3)[0]
    assert not classic.speaker_independent(features.table, paper)
    splits, kind = classic.inner_splits(features.labels[paper.train], None, 3, seed=0)
    assert kind == "stratified"


# --------------------------------------------------------------------------- run store, summary, tables


def test_a_baseline_flows_through_run_experiment_the_run_store_and_the_tables(tmp_path, monkeypatch):
    from amsnet_lib.report import summary as summary_store, tables

    features, X = _synthetic()
    exp = _exp("loso")
    res = run_experiment(exp, features, store=tmp_path / "runs", progress=False, functionals=X)
    assert len(res.folds) == 6 and set(res.folds["inner_cv"]) == {"speaker-grouped"}
    assert res.folds["svm_C"].isin(SMALL_SVM.c_grid).all() and {"recall_anger", "wa", "ua"} <= set(res.folds.columns)
    assert len(res.predictions) == len(features.labels) and {"path", "true", "pred"} <= set(res.predictions.columns)
    assert res.predictions["path"].str.startswith("s").all()  # corpus-relative, as the networks' predictions
    s = res.summary()
    assert (s["model"], s["recipe"], s["protocol"], s["n_folds"]) == ("compare-svm", "paper", "loso", 6)
    assert res.validation()["val_ua"] == pytest.approx(100 * res.folds["inner_ua"].mean(), abs=0.01)
    runs = list((tmp_path / "runs").glob("compare-svm-*"))
    assert len(runs) == 1 and json.loads((runs[0] / "config.json").read_text())["functionals"] == "ComParE_2016"
    # resumable fold by fold: one fold lost is the only one fitted again, with the same numbers
    lost = runs[0] / "seed0" / "03"
    before = json.loads((lost / "metrics.json").read_text())
    (lost / "metrics.json").unlink()
    fitted = []
    real = classic.select_svm
    monkeypatch.setattr(classic, "select_svm", lambda *a, **k: fitted.append(1) or real(*a, **k))
    again = run_experiment(exp, features, store=tmp_path / "runs", progress=False, functionals=lambda: X)
    after = json.loads((lost / "metrics.json").read_text())
    assert len(fitted) == 1 and {k: v for k, v in after.items() if k != "seconds"} == {k: v for k, v in before.items() if k != "seconds"}
    pd.testing.assert_frame_equal(again.predictions.sort_values(["fold", "path"]).reset_index(drop=True),
                                  res.predictions.sort_values(["fold", "path"]).reset_index(drop=True))
    # a look trains nothing
    monkeypatch.setattr(classic, "select_svm", lambda *a, **k: pytest.fail("trained on a look"))
    assert len(run_experiment(exp, features, store=tmp_path / "runs", progress=False, finished_only=True).folds) == 6

    summary = summary_store.update_summary(dataclasses.replace(res, config=dataclasses.replace(exp, corpus="emodb")),
                                    tmp_path / "summary.csv")
    t5 = tables.ablation_table(summary, "emodb", ["loso", "paper"])
    row = t5[t5["model"] == tables.BASELINE_LABELS["compare-svm"]].iloc[0]
    assert row["WA ours [loso] (%)"] == s["wa"] and row["WA ours [paper] (%)"] == tables.NOT_RUN
    assert row["WA reported [paper] (%)"] == tables.NOT_IN_PAPER
    assert t5[t5["model"] == tables.BASELINE_LABELS["egemaps-svm"]]["UA ours [loso] (%)"].iloc[0] == tables.NOT_RUN
    study = tables.study_table([res], "ablations", planned=[exp, _exp("loso", "egemaps-svm")])  # no network, no params
    assert list(study["model"]) == ["compare-svm", "egemaps-svm"] and study["params"].isna().all()
    assert list(study["trained on"]) == ["cpu", tables.NOT_RUN]
    t2 = tables.comparison_table2(summary, ["loso"])
    emodb = t2[t2["corpus"] == "EmoDB"]["model"].tolist()
    assert emodb[-3:] == ["AMSNet, tuned recipe", *tables.BASELINE_LABELS.values()]  # beside AMSNet's rows
    assert t2[t2["model"] == tables.BASELINE_LABELS["compare-svm"]]["UA ours [loso] (%)"].tolist()[-1] == s["ua"]


# --------------------------------------------------------------------------- command line


def test_train_compare_svm_from_the_command_line_on_a_manifest(tmp_path, capsys):
    rows = []
    for s in range(3):
        for label, f0 in (("calm", 120.0), ("loud", 280.0)):
            for i in range(3):
                p = tmp_path / "audio" / f"{s}_{label}{i}.wav"
                p.parent.mkdir(parents=True, exist_ok=True)
                sf.write(p, tone(0.5 + 0.1 * i, f0 * (1 + 0.05 * s), seed=10 * s + i, amp=0.2 if label == "calm" else 0.5), 16000)
                rows.append(f"{p},{label},spk{s}")
    manifest = tmp_path / "mine.csv"
    manifest.write_text("path,label,speaker\n" + "\n".join(rows) + "\n")
    summary = tmp_path / "summary.csv"
    args = ["train", "--corpus", str(manifest), "--model", "compare-svm", "--protocol", "loso", "--cache-dir",
            str(tmp_path / "cache"), "--jobs", "1", "--run-dir", str(tmp_path / "runs"), "--summary", str(summary)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "compare-svm on mine, protocol loso" in out and "mean WA" in out
    assert "chosen on the training part" in out and "speaker-grouped" in out
    # the functionals went to the cache --cache-dir names, and no AMSNet stream was extracted for nothing
    assert [d.name.split("-")[0] for d in (tmp_path / "cache").iterdir()] == ["functionals"]
    row = pd.read_csv(summary).iloc[0]
    assert (row["model"], row["protocol"], row["n_folds"]) == ("compare-svm", "loso", 3)
    metrics = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("compare-svm-*/seed0/*/metrics.json")]
    assert len(metrics) == 3 and all(m["n_functionals"] == 6373 and m["svm_C"] > 0 for m in metrics)
    # compare: the baselines' stored test predictions against each other, from the run store alone
    assert cli.main([*args[:3], "--model", "egemaps-svm", *args[5:]]) == 0
    capsys.readouterr()
    common = ["--corpus", str(manifest), "--protocol", "loso", "--cache-dir", str(tmp_path / "cache"), "--run-dir",
              str(tmp_path / "runs")]
    assert cli.main(["compare", "compare-svm", "egemaps-svm", *common, "--resamples", "200"]) == 0
    assert "compare-svm against egemaps-svm on mine, protocol loso" in capsys.readouterr().out
    assert [d.name.split("-")[0] for d in (tmp_path / "cache").iterdir()] == ["functionals", "functionals"]
    assert cli.main(args + ["--recipe", "tuned", "--lr", "0.1"]) != 0  # a network's option: a clear error
    err = capsys.readouterr().err
    assert "--model compare-svm with --lr, --recipe" in err and "leave out the network's options" in err


def test_the_readme_headline_says_where_a_baseline_is_above_every_amsnet_row():
    from scripts import update_docs

    row = lambda protocol, model, wa, ua, recipe="paper": {"corpus": "emodb", "protocol": protocol, "recipe": recipe,  # noqa: E731
                                                          "model": model, "variant": "", "wa": wa, "ua": ua}
    summary = pd.DataFrame([row("paper", "amsnet", 81.0, 80.0), row("paper", "amsnet", 87.9, 87.4, "tuned"),
                            row("loso", "amsnet", 73.6, 72.2, "tuned"), row("paper", "compare-svm", 86.9, 86.0),
                            row("loso", "compare-svm", 80.1, 71.0), row("loso", "egemaps-svm", 65.9, 62.8)])
    notes = update_docs.baseline_notes(summary, ["paper", "loso"])
    assert len(notes) == 1 and notes[0].startswith("[loso]: the classic baseline ComParE functionals + linear SVM (80.10 / 71.00)")
    assert "best WA: tuned recipe, 73.60" in notes[0]
    assert "- " + notes[0] in update_docs.headline(summary, {"emodb": None})
    assert update_docs.baseline_notes(summary[summary["model"] != "compare-svm"]) == []
