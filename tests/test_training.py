"""The training engine: two stages, run store, resume, determinism, no test leakage."""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from amsnet_lib.train import runstore, training, units
from amsnet_lib.data import splits
from amsnet_lib.config import ExperimentConfig, FeatureConfig, FRLMConfig, FusionConfig, TrainConfig, URLMConfig
from amsnet_lib.data.features import Features
from amsnet_lib.train.training import fit_final, run_experiment
from amsnet_lib.report.summary import update_summary
from amsnet_lib.train.runstore import RunStore

CLASSES = ["a", "b", "c"]


def _features(n=60, q=20, n_mels=8, t=9, seed=0) -> Features:
    """Separable synthetic streams: the class shifts both the frames and the spectrogram."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    frames = rng.standard_normal((n, q, 76)).astype(np.float32) + labels[:, None, None] * 0.8
    lengths = rng.integers(q // 2, q + 1, n)
    mask = np.arange(q)[None, :] < lengths[:, None]
    frames[~mask] = 0
    spec = rng.standard_normal((n, n_mels, t)).astype(np.float32) + labels[:, None, None] * 0.8
    table = pd.DataFrame({"path": [f"/x/u{i}.wav" for i in range(n)], "label": [CLASSES[k] for k in labels],
                          "speaker": [f"s{i % 4}" for i in range(n)], "duration": 1.0})
    frames, spec = frames.astype(np.float32), spec.astype(np.float32)
    return Features(frames, mask, spec, labels.astype(np.int64), CLASSES, table, FeatureConfig(duration=0.2, n_mels=n_mels, max_frames=q))


def _exp(model="amsnet", **kw) -> ExperimentConfig:
    tc = TrainConfig(lr=3e-3, batch_size=16, epochs=4, patience=0, val_fraction=0.2)
    return ExperimentConfig(
        corpus="synthetic", model=model, n_folds=3, features=FeatureConfig(duration=0.2, n_mels=8, max_frames=20),
        frlm=FRLMConfig(hidden_size=8, embedding_dim=8), urlm=URLMConfig(input_channels=8, filters=(16, 8, 8), embedding_dim=8),
        fusion=FusionConfig(hidden=(8, 4)), branch_train=tc, fusion_train=tc, **kw)


@pytest.mark.parametrize("model", ["frlm", "urlm", "concat", "early", "amsnet", "late"])
def test_every_model_trains_and_evaluates_on_every_fold(tmp_path, model):
    feats = _features()
    res = run_experiment(_exp(model), feats, store=tmp_path, device="cpu", progress=False)
    assert len(res.folds) == 3 and res.folds["n_test"].sum() == len(feats)
    assert ((res.folds["wa"] >= 0) & (res.folds["wa"] <= 1)).all()
    assert len(res.predictions) == len(feats)
    # relative to the corpus directory: the committed run store names no machine's disk
    assert sorted(res.predictions["path"]) == sorted(os.path.basename(p) for p in feats.table["path"])
    assert res.confusion.sum() == len(feats)
    s = res.summary()
    assert {"corpus", "protocol", "model", "n_folds", "wa", "ua", "wa_std", "ua_std"} <= set(s)
    if model in ("amsnet", "late"):
        a = res.predictions[["alpha_frlm", "alpha_urlm"]].to_numpy()
        np.testing.assert_allclose(a.sum(1), 1, atol=1e-4)


def test_the_data_is_learnable_so_the_loop_really_trains(tmp_path):
    exp = dataclasses.replace(_exp("urlm"), branch_train=TrainConfig(lr=3e-3, batch_size=16, epochs=15, patience=0, val_fraction=0.2))
    res = run_experiment(exp, _features(), store=tmp_path, device="cpu", progress=False)
    assert res.summary()["wa"] > 70


def test_same_seed_same_numbers(tmp_path):
    feats = _features()
    a = run_experiment(_exp(), feats, store=tmp_path / "a", device="cpu", progress=False)
    b = run_experiment(_exp(), feats, store=tmp_path / "b", device="cpu", progress=False)
    pd.testing.assert_frame_equal(a.folds.drop(columns=["seconds", "fusion_seconds"]), b.folds.drop(columns=["seconds", "fusion_seconds"]))
    pd.testing.assert_frame_equal(a.predictions, b.predictions)


def test_each_fold_records_the_device_and_features_that_trained_it(tmp_path):
    """metrics.json names the device (and float16-rounded features); a fusion fold names its
    branches' devices too, and the summary joins them; folds from before the field count as CPU."""
    feats = _features()
    feats.table.attrs["feature_precision"] = "float16"
    res = run_experiment(_exp("amsnet"), feats, store=tmp_path, device="cpu", progress=False)
    assert set(res.folds["device"]) == {"cpu"} and set(res.folds["feature_precision"]) == {"float16"}
    assert res.summary()["trained_on"] == "cpu, float16 features"
    branch = next(tmp_path.glob("frlm-*/seed0/fold0/metrics.json"))
    m = json.loads(branch.read_text())
    assert m["device"] == "cpu"
    m["device"] = "cuda (Some GPU)"
    branch.write_text(json.dumps(m))
    fusion = next(tmp_path.glob("amsnet-*/seed0/fold0"))
    (fusion / "metrics.json").unlink()  # trained again over the "GPU" branch
    res = run_experiment(_exp("amsnet"), feats, store=tmp_path, device="cpu", progress=False)
    assert res.folds.set_index("fold").loc["fold0", "device"] == "cpu + cuda (Some GPU)"
    assert res.summary()["trained_on"] == "cpu + cuda (Some GPU), float16 features"
    legacy = res.folds.drop(columns=["device", "feature_precision"])
    assert training.ExperimentResult(res.config, legacy, res.curves, res.predictions, res.classes).summary()["trained_on"] == "cpu"


def test_branches_are_frozen_during_fusion_and_shared_between_fusions(tmp_path):
    feats = _features()
    store = RunStore(tmp_path)
    run_experiment(_exp("amsnet"), feats, store=store, device="cpu", progress=False)
    n_branch_runs = len(list(tmp_path.glob("frlm-*/seed0/*/metrics.json")))
    run_experiment(_exp("concat"), feats, store=store, device="cpu", progress=False)
    assert len(list(tmp_path.glob("frlm-*/seed0/*/metrics.json"))) == n_branch_runs == 3  # reused, not retrained
    fold_dir = next(tmp_path.glob("frlm-*/seed0/fold0"))
    branch = store.load_state(fold_dir)
    fusion_dir = next(tmp_path.glob("amsnet-*/seed0/fold0"))
    # the fusion fold stores its head only and names the branch runs it was trained on
    assert not any(k.startswith("frlm.") for k in store.load_state(fusion_dir))
    fused = training.load_fold_model(_exp("amsnet"), fusion_dir, len(feats.classes), store).state_dict()
    for k, v in branch.items():
        torch.testing.assert_close(fused[f"frlm.{k}"], v)


def test_finished_folds_are_skipped_and_an_interrupted_run_resumes(tmp_path, monkeypatch):
    feats = _features()
    calls = []
    real = training.train_model

    def flaky(*args, **kw):
        calls.append(kw.get("desc"))
        if len(calls) == 2:
            raise KeyboardInterrupt  # interrupted during the second fold
        return real(*args, **kw)

    monkeypatch.setattr(training, "train_model", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(_exp("urlm"), feats, store=tmp_path, device="cpu", progress=False)
    assert len(list(tmp_path.glob("urlm-*/seed0/*/metrics.json"))) == 1
    calls.clear()
    monkeypatch.setattr(training, "train_model", lambda *a, **kw: calls.append(kw.get("desc")) or real(*a, **kw))
    run_experiment(_exp("urlm"), feats, store=tmp_path, device="cpu", progress=False)
    assert calls == ["urlm fold1", "urlm fold2"]  # fold0 was finished and is not retrained
    calls.clear()
    run_experiment(_exp("urlm"), feats, store=tmp_path, device="cpu", progress=False)
    assert calls == []


def spy_on_evaluations(monkeypatch, *modules):
    """Record every evaluated split (``evaluate_split`` of ``modules``) and every fold's test split
    (:func:`amsnet_lib.data.splits.fold_data`, which every stage's data comes from).

    Returns ``(test_ids, calls)``: ids of the test splits' label tensors, and of each evaluated
    split's, in order. The tensors are kept alive, so their ids stay unique.
    """
    test_ids, calls, kept = set(), [], []
    real_fold_data, real_evaluate = splits.fold_data, training.evaluate_split

    def fold_data(*a, **kw):
        fd = real_fold_data(*a, **kw)
        test_ids.add(id(fd.test["labels"]))
        kept.append(fd.test["labels"])
        return fd

    def evaluate(model, data, *a, **kw):
        kept.append(data["labels"])
        calls.append(id(data["labels"]))
        return real_evaluate(model, data, *a, **kw)

    monkeypatch.setattr(splits, "fold_data", fold_data)
    for module in {training, *modules}:
        if hasattr(module, "evaluate_split"):
            monkeypatch.setattr(module, "evaluate_split", evaluate)
    return test_ids, calls


def test_model_selection_never_sees_the_test_fold(tmp_path, monkeypatch):
    """evaluate() meets each fold's test part exactly once: the final evaluation."""
    test_ids, calls = spy_on_evaluations(monkeypatch, training)
    run_experiment(_exp("frlm"), _features(), store=tmp_path, device="cpu", progress=False)
    assert len(calls) > 3  # validation every epoch
    assert sum(c in test_ids for c in calls) == 3


def test_loso_protocol_and_summary_file(tmp_path):
    feats = _features()
    res = run_experiment(_exp("urlm", protocol="loso"), feats, store=tmp_path / "runs", device="cpu", progress=False)
    assert list(res.folds["fold"]) == ["s0", "s1", "s2", "s3"]
    path = tmp_path / "summary.csv"
    update_summary(res, path)
    update_summary(res, path)  # replaced, not duplicated
    other = run_experiment(_exp("frlm", protocol="loso"), feats, store=tmp_path / "runs", device="cpu", progress=False)
    table = update_summary(other, path)
    assert len(table) == 2 and set(table["model"]) == {"urlm", "frlm"}
    back = pd.read_csv(path)
    assert list(back.columns[:5]) == ["corpus", "protocol", "recipe", "model", "variant"]


def test_fit_final_trains_on_everything(tmp_path):
    feats = _features()
    model, norm = fit_final(_exp("amsnet"), feats, store=tmp_path, device="cpu", progress=False)
    assert not model.training
    assert norm.frames_mean.shape == (76,)
    logits, alpha = model(torch.from_numpy(feats.frames[:4]), torch.from_numpy(feats.mask[:4]), torch.from_numpy(feats.spec[:4]))
    assert logits.shape == (4, 3) and alpha.shape == (4, 2)


@pytest.mark.parametrize("model", ["frlm", "amsnet"])
def test_fit_final_retrains_a_finished_fit_whose_weights_a_fresh_clone_lacks(tmp_path, model):
    """The committed run store keeps a fit's results but not its model.pt (gitignored): on a fresh
    clone `amsnet fit` found the fold finished and failed reading its weights. It now trains them
    again, with the same seed, to the same model."""
    feats = _features()
    first, _ = fit_final(_exp(model), feats, store=tmp_path, device="cpu", progress=False)
    weights = sorted(tmp_path.rglob("model.pt"))
    assert weights and all(w.parent.name == "all" for w in weights)
    for w in weights:
        w.unlink()
    again, _ = fit_final(_exp(model), feats, store=tmp_path, device="cpu", progress=False)
    assert sorted(tmp_path.rglob("model.pt")) == weights
    x = [torch.from_numpy(a[:6]) for a in (feats.frames, feats.mask, feats.spec)]
    if model == "frlm":
        x = x[:2]
    logits = [out[0] if isinstance(out, tuple) else out for out in (again(*x), first(*x))]
    torch.testing.assert_close(*logits)


def test_training_interrupted_mid_fold_resumes_to_the_same_numbers(tmp_path, monkeypatch):
    """A resume point every few epochs: an interrupted fold continues, and ends where an
    uninterrupted run ends."""
    feats = _features()
    exp = dataclasses.replace(_exp("urlm"), branch_train=TrainConfig(lr=3e-3, batch_size=16, epochs=8, patience=0, val_fraction=0.2))
    clean = run_experiment(exp, feats, store=tmp_path / "clean", device="cpu", progress=False)

    real = training.evaluate_split
    count = {"n": 0}

    def dying(model, data, *a, **kw):
        count["n"] += 1
        if count["n"] == 7:  # during epoch 7 of fold 0, after the resume point of epoch 5
            raise KeyboardInterrupt
        return real(model, data, *a, **kw)

    monkeypatch.setattr(training, "evaluate_split", dying)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, feats, store=tmp_path / "cut", device="cpu", progress=False)
    partial = list((tmp_path / "cut").glob("urlm-*/seed0/fold0/partial.pt"))
    assert len(partial) == 1
    calls = []
    monkeypatch.setattr(training, "evaluate_split", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    resumed = run_experiment(exp, feats, store=tmp_path / "cut", device="cpu", progress=False)
    # fold0 continues at epoch 6 (3 validations + the test), folds 1-2 run whole (8 + 1 each)
    assert len(calls) == 4 + 2 * 9
    assert not list((tmp_path / "cut").glob("urlm-*/seed0/*/partial.pt"))
    cols = ["wa", "ua", "loss", "best_epoch"]
    pd.testing.assert_frame_equal(clean.folds[cols], resumed.folds[cols])
    pd.testing.assert_frame_equal(clean.predictions, resumed.predictions)


def test_finished_only_reports_a_run_in_progress_without_training(tmp_path, monkeypatch):
    feats = _features()
    exp = _exp("amsnet")
    with pytest.raises(ValueError, match="no finished fold"):
        run_experiment(exp, feats, store=tmp_path, device="cpu", progress=False, finished_only=True)
    assert not list(tmp_path.iterdir())  # a look at the store writes nothing into it
    folds = training.make_folds(feats.table, "paper", n_folds=3)
    training.run_fold(exp, feats, folds[1], 0, RunStore(tmp_path), torch.device("cpu"), progress=False)
    monkeypatch.setattr(training, "train_model", lambda *a, **kw: pytest.fail("finished_only must not train"))
    res = run_experiment(exp, feats, store=tmp_path, device="cpu", progress=False, finished_only=True)
    assert list(res.folds["fold"]) == ["fold1"] and res.missing == [(0, "fold0"), (0, "fold2")]
    assert res.summary()["complete"] is False


def test_only_folds_runs_a_subset(tmp_path):
    feats = _features()
    res = run_experiment(_exp("urlm"), feats, store=tmp_path, device="cpu", progress=False, only_folds=["fold2"])
    assert list(res.folds["fold"]) == ["fold2"]
    with pytest.raises(ValueError, match="unknown folds"):
        run_experiment(_exp("urlm"), feats, store=tmp_path, device="cpu", progress=False, only_folds=["fold9"])


def test_report_session_without_training_reports_only_finished_experiments(tmp_path, monkeypatch, capsys):
    """run_all.sh --no-train: a finished experiment is read back; partial or absent ones say "not run"."""
    from amsnet_lib.report import session

    feats = _features()
    run_experiment(_exp("frlm"), feats, store=tmp_path / "runs", device="cpu", progress=False)  # all folds
    run_experiment(_exp("urlm"), feats, store=tmp_path / "runs", device="cpu", progress=False, only_folds=["fold0"])
    monkeypatch.setattr(session, "_corpus_status", lambda corpus, data_dir: (feats.table, None))
    s = session.Session("emodb", profile="quick", results_dir=tmp_path / "results", run_dir=tmp_path / "runs", train=False)
    monkeypatch.setattr(s, "features", lambda corpus, config=None, augment="none": feats)
    monkeypatch.setattr(training, "train_model", lambda *a, **k: pytest.fail("trained although train=False"))
    # rows measured for another configuration of the same experiments: no table may quote them any longer
    for model in ("urlm", "amsnet"):
        update_summary(dict(corpus="synthetic", protocol="paper", recipe="paper", model=model, variant="", wa=1.0, ua=1.0),
                       s.summary_path)
    update_summary(dict(corpus="synthetic", protocol="paper", recipe="paper", model="urlm", variant="r=8", wa=1.0, ua=1.0),
                   s.summary_path)
    done = s.run([_exp("frlm"), _exp("urlm"), _exp("amsnet")])
    assert [r.config.model for r in done] == ["frlm"]
    out = capsys.readouterr().out
    assert "urlm [paper]: not run (incomplete: 2 of 3 fold runs not finished)" in out
    assert "amsnet [paper]: not run (no finished fold in the run store)" in out
    summary = pd.read_csv(s.summary_path, keep_default_na=False)
    # only complete experiments are recorded; another variant's row is not this experiment's
    assert sorted(zip(summary["model"], summary["variant"])) == [("frlm", ""), ("urlm", "r=8")]


def test_a_no_train_run_rebuilds_the_summary_from_the_experiments_it_reads(tmp_path, monkeypatch, capsys):
    """run_all.sh --no-train: the notebooks' rows of summary.csv become what the run store holds of the
    experiments they read back. A stray row (an experiment no configuration names any more) goes; the
    rows read are as the training run wrote them; rows another writer made (`amsnet train`, a script),
    which the notebooks never read, and rows of a protocol the run does not read stay."""
    from pathlib import Path

    from amsnet_lib.report import session
    from amsnet_lib.report.summary import SUITE, begin_summary_rebuild, end_summary_rebuild

    feats = _features()
    res = run_experiment(_exp("frlm"), feats, store=tmp_path / "runs", device="cpu", progress=False)
    monkeypatch.setattr(session, "_corpus_status", lambda corpus, data_dir: (feats.table, None))
    s = session.Session("emodb", profile="quick", results_dir=tmp_path / "results", run_dir=tmp_path / "runs", train=False)
    monkeypatch.setattr(s, "features", lambda corpus, config=None, augment="none": feats)
    update_summary(res, s.summary_path, written_by=SUITE)  # as the training run of the notebooks wrote it
    stray = dict(res.summary(), variant="hidden=99", wa=1.0, ua=1.0)
    update_summary(stray, s.summary_path, written_by=SUITE)
    update_summary(dict(stray, protocol="loso", variant=""), s.summary_path, written_by=SUITE)  # not read by this run
    update_summary(dict(stray, variant="hidden=256"), s.summary_path, written_by="amsnet train")
    update_summary(dict(stray, variant="from before the column"), s.summary_path)
    trained = pd.read_csv(s.summary_path, keep_default_na=False)

    begin_summary_rebuild(s.summary_path, ["synthetic"], ["paper"])
    s.run([_exp("frlm")])
    gone = end_summary_rebuild(s.summary_path)

    rebuilt = pd.read_csv(s.summary_path, keep_default_na=False)
    assert sorted(zip(rebuilt["protocol"], rebuilt["variant"])) == [
        ("loso", ""), ("paper", ""), ("paper", "from before the column"), ("paper", "hidden=256")]
    pd.testing.assert_frame_equal(rebuilt, trained[trained["variant"] != "hidden=99"].reset_index(drop=True))
    assert list(gone["variant"]) == ["hidden=99"]
    assert not list(s.summary_path.parent.glob(".*before*"))  # the summary it started from is forgotten
    # run_all.sh rebuilds on a --no-train run of the whole plan
    run_all = (Path(__file__).resolve().parents[1] / "run_all.sh").read_text()
    assert "begin_summary_rebuild" in run_all and "end_summary_rebuild" in run_all


def test_an_interrupted_summary_rebuild_starts_again_from_the_summary_it_began_with(tmp_path):
    from amsnet_lib.report.summary import begin_summary_rebuild, end_summary_rebuild

    from amsnet_lib.report.summary import SUITE

    path = tmp_path / "summary.csv"
    row = dict(corpus="synthetic", protocol="paper", recipe="paper", model="frlm", variant="", wa=1.0, ua=1.0)
    update_summary(row, path, written_by=SUITE)
    update_summary(dict(row, variant="stray"), path, written_by=SUITE)
    begin_summary_rebuild(path)
    assert not path.exists()
    update_summary(row, path, written_by=SUITE)  # ... interrupted here, then run again
    begin_summary_rebuild(path)
    assert not path.exists()
    update_summary(row, path, written_by=SUITE)
    assert list(end_summary_rebuild(path)["variant"]) == ["stray"]
    assert list(pd.read_csv(path, keep_default_na=False)["variant"]) == [""]
    assert end_summary_rebuild(path).empty  # nothing begun


def test_run_store_experiment_dirs_describe_their_key(tmp_path):
    run_experiment(_exp("amsnet"), _features(), store=tmp_path, device="cpu", progress=False)
    frlm = json.loads(next(tmp_path.glob("frlm-*/config.json")).read_text())
    assert frlm["model"] == "frlm" and frlm["architecture"]["hidden_size"] == 8 and frlm["train"]["lr"] == 3e-3
    fusion_dir = next(tmp_path.glob("amsnet-*"))
    fusion = json.loads((fusion_dir / "config.json").read_text())
    assert fusion["model"] == "amsnet" and len(fusion["branch_runs"]) == 2
    assert all((tmp_path / b).is_dir() for b in fusion["branch_runs"])


def test_branch_weights_missing_from_the_store_are_retrained_only_when_a_fusion_needs_them(tmp_path):
    """The committed run store keeps results, not branch weights (.gitignore)."""
    feats = _features()
    store = RunStore(tmp_path)
    first = run_experiment(_exp("amsnet"), feats, store=store, device="cpu", progress=False)
    weights = sorted(tmp_path.glob("frlm-*/seed0/*/model.pt")) + sorted(tmp_path.glob("urlm-*/seed0/*/model.pt"))
    assert len(weights) == 6
    for w in weights:
        w.unlink()
    again = run_experiment(_exp("amsnet"), feats, store=store, device="cpu", progress=False)  # finished: read back
    assert not any(w.exists() for w in weights)
    pd.testing.assert_frame_equal(first.predictions, again.predictions)
    frlm = run_experiment(_exp("frlm"), feats, store=store, device="cpu", progress=False)  # results suffice
    assert not any(w.exists() for w in weights)
    run_experiment(_exp("concat"), feats, store=store, device="cpu", progress=False)  # needs the weights
    assert all(w.exists() for w in weights)
    # retrained with the same seed: the same branch results
    pd.testing.assert_frame_equal(frlm.predictions, run_experiment(_exp("frlm"), feats, store=store, device="cpu", progress=False).predictions)


# --------------------------------------------------------------------------- speaker normalisation


def test_the_full_profile_keeps_the_keys_of_the_committed_run_store():
    """Options added later (e.g. normalisation) must not orphan the folds already trained."""
    from amsnet_lib.studies import experiment

    for model, committed in (("frlm", "01ff36e99b22"), ("urlm", "6de23475b2c0")):
        assert runstore.branch_key(model, experiment("emodb", model, "paper", "full"), 535) == committed


def test_speaker_normalisation_standardises_each_speaker_and_keeps_padding_zero():
    from amsnet_lib.data.features import standardise_per_speaker

    feats = _features()
    feats.frames[feats.table["speaker"].to_numpy() == "s1"] *= 5.0  # one loud speaker
    feats.frames[~feats.mask] = 0
    out = standardise_per_speaker(feats)
    for s in ("s0", "s1", "s2", "s3"):
        i = feats.table["speaker"].to_numpy() == s
        valid = out.frames[i][out.mask[i]]
        np.testing.assert_allclose(valid.mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(valid.std(0), 1, atol=1e-3)
        bands = out.spec[i].transpose(0, 2, 1).reshape(-1, out.spec.shape[1])
        np.testing.assert_allclose(bands.mean(0), 0, atol=1e-4)
    assert (out.frames[~out.mask] == 0).all()
    assert out.frames.dtype == np.float32 and out.frames.shape == feats.frames.shape
    unknown = dataclasses.replace(feats, table=feats.table.assign(speaker=[None] + ["s0"] * (len(feats) - 1)))
    with pytest.raises(ValueError, match="speaker for every utterance"):
        standardise_per_speaker(unknown)


def test_speaker_normalisation_is_its_own_experiment(tmp_path):
    feats = _features()
    plain = run_experiment(_exp("frlm"), feats, store=tmp_path, device="cpu", progress=False)
    spk = run_experiment(_exp("frlm", normalisation="speaker"), feats, store=tmp_path, device="cpu", progress=False)
    assert len(list(tmp_path.glob("frlm-*"))) == 2  # its own run key, never mixed with the paper's
    assert plain.summary()["variant"] == "" and spk.summary()["variant"] == "normalisation=speaker"
    assert list(plain.predictions["path"]) == list(spk.predictions["path"])
    assert not np.allclose(plain.predictions["p_a"], spk.predictions["p_a"])  # the model saw other inputs
    with pytest.raises(ValueError, match="normalisation='corpus'"):
        fit_final(_exp("frlm", normalisation="speaker"), feats, store=tmp_path, device="cpu", progress=False)
    with pytest.raises(ValueError, match="normalisation must be one of"):
        _exp("frlm", normalisation="vocal-tract")


def test_frlm_can_train_with_its_own_settings_and_with_training_changes_every_stage(tmp_path):
    exp = dataclasses.replace(_exp("frlm"), frlm_train=dataclasses.replace(_exp().branch_train, weight_decay=0.5))
    assert exp.stage_train("frlm").weight_decay == 0.5 and exp.stage_train("urlm").weight_decay == 0.0
    assert exp.stage_train("early").weight_decay == 0.5  # FRLM's BLSTM over both streams
    run_experiment(exp, _features(), store=tmp_path, device="cpu", progress=False)
    described = json.loads(next(tmp_path.glob("frlm-*/config.json")).read_text())
    assert described["train"]["weight_decay"] == 0.5  # the run key covers FRLM's own settings
    changed = exp.with_training(lr=1e-5)
    assert {changed.stage_train(s).lr for s in ("frlm", "urlm", "early", "fusion")} == {1e-5}
    assert changed.stage_train("frlm").weight_decay == 0.5


def test_prediction_paths_are_relative_to_the_corpus_directory():
    paths = ["/data/iemocap/Session1/wav/a.wav", "/data/iemocap/Session2/wav/b.wav"]
    assert training.corpus_relative_paths(paths) == ["Session1/wav/a.wav", "Session2/wav/b.wav"]
    assert training.corpus_relative_paths(["/data/emodb/wav/03a01Fa.wav"]) == ["03a01Fa.wav"]  # one file: its name
    assert training.corpus_relative_paths(["wav/a.wav"]) == ["wav/a.wav"]  # already relative: unchanged


def test_stage1_units_share_branches_between_experiments():
    from amsnet_lib import studies

    feats = _features()
    base = _exp("amsnet")
    table3 = [studies.with_se_ratio(base, r) for r in (2, 4, 16)]
    planned = units.stage1_units(table3, feats.table)
    kinds = pd.Series([u.kind for u in planned]).value_counts().to_dict()
    assert kinds == {"frlm": 3, "urlm": 9}  # one FRLM for every r; a URLM per r; 3 folds each
    assert all(u.need_weights for u in planned)  # the fusion loads them
    alone = units.stage1_units([_exp("frlm")], feats.table)
    assert len(alone) == 3 and not any(u.need_weights for u in alone)  # FRLM alone keeps only results
    both = units.stage1_units([_exp("frlm"), base], feats.table)
    assert {u.kind for u in both} == {"frlm", "urlm"} and all(u.need_weights for u in both if u.kind == "frlm")


def test_on_epoch_watches_the_model_without_changing_its_training():
    """A diagnostic hook (scripts/diagnostics/test_selection.py evaluates the test fold in it) is called once per
    epoch and cannot move the training: same curves, same selected epoch, same weights."""
    feats = _features()
    exp = _exp("urlm")
    fold = training.make_folds(feats.table, "paper", n_folds=3, split_seed=0)[0]
    fd = splits.fold_data(feats, fold, 0.2, 0, torch.device("cpu"))
    cfg = TrainConfig(lr=3e-3, batch_size=16, epochs=12, patience=3, val_fraction=0.2)

    def run(watch: bool):
        training.seed_everything(0)
        model = training.branch_model("urlm", exp, len(feats.classes))
        seen = []
        hook = (lambda e: seen.append((e, training.evaluate_split(model, fd.test, len(feats.classes))["wa"]))) if watch else None
        res = training.train_model(model, fd.fit, fd.val, cfg, len(feats.classes), seed=0, progress=False, on_epoch=hook)
        return model, res, seen

    plain, res_plain, _ = run(False)
    watched, res_watched, seen = run(True)
    assert [e for e, _ in seen] == list(range(1, len(res_watched.curves) + 1))
    pd.testing.assert_frame_equal(res_plain.curves, res_watched.curves)
    assert res_plain.best_epoch == res_watched.best_epoch
    for a, b in zip(plain.state_dict().values(), watched.state_dict().values()):
        assert torch.equal(a, b)


def test_stage_learning_rates_change_only_their_stage_and_reuse_the_study_runs():
    """FRLM at the learning-rate study's 1e-3 is the study's FRLM run (no retraining); URLM stays the paper's."""
    from amsnet_lib.studies import experiment, with_learning_rate, with_stage_learning_rates

    base = experiment("emodb", "amsnet", "paper", "full")
    exp = with_stage_learning_rates(base, frlm=1e-3, fusion=5e-4)
    assert (exp.stage_train("frlm").lr, exp.stage_train("early").lr, exp.stage_train("urlm").lr,
            exp.stage_train("fusion").lr) == (1e-3, 1e-3, 1e-4, 5e-4)
    assert exp.variant == "lr frlm=0.001,urlm=0.0001,fusion=0.0005"
    study = with_learning_rate(base, 1e-3)
    assert runstore.branch_key("frlm", exp, 535) == runstore.branch_key("frlm", study, 535)
    assert runstore.branch_key("urlm", exp, 535) == runstore.branch_key("urlm", base, 535)
    # the paper's own rates spelled out are the paper's configuration (same branch runs, no frlm_train)
    same = with_stage_learning_rates(base, frlm=1e-4, urlm=1e-4)
    assert same.frlm_train is None and dataclasses.replace(same, variant="") == base


def test_validation_reads_the_selected_epoch_of_the_models_own_stage(tmp_path):
    feats = _features()
    res = run_experiment(dataclasses.replace(_exp("concat"), fusion_train=dataclasses.replace(_exp().fusion_train, epochs=6)),
                         feats, store=tmp_path, device="cpu", progress=False)
    v = res.validation()
    own = res.curves[res.curves["stage"] == "concat"]
    picked = own.merge(res.folds[["seed", "fold", "best_epoch"]].rename(columns={"best_epoch": "epoch"}))
    assert len(picked) == 3 and v["val_loss"] == round(float(picked["val_loss"].mean()), 4)
    assert v["val_ua"] == round(100 * float(picked["val_ua"].mean()), 2)
    # the selected epoch, not the curve's minimum, when the two differ (e.g. selection on val_ua)
    moved = dataclasses.replace(res, folds=res.folds.assign(best_epoch=1))
    assert moved.validation()["val_loss"] == round(float(own[own["epoch"] == 1]["val_loss"].mean()), 4)
    with pytest.raises(ValueError, match="selected epoch"):
        dataclasses.replace(res, folds=res.folds.assign(best_epoch=99)).validation()


def test_late_fusion_is_the_branches_probabilities_weighted_by_the_validation_chosen_weight(tmp_path):
    """Late fusion (beyond the paper): its test probabilities are w·FRLM's + (1 − w)·URLM's own test
    probabilities, with the w each fold chose on its validation split (the lowest fused
    cross-entropy among the candidates), recorded as alpha and in the curves."""
    feats = _features()
    store = RunStore(tmp_path)
    late = run_experiment(_exp("late"), feats, store=store, device="cpu", progress=False)
    frlm = run_experiment(_exp("frlm"), feats, store=store, device="cpu", progress=False)
    urlm = run_experiment(_exp("urlm"), feats, store=store, device="cpu", progress=False)
    assert len(list(tmp_path.glob("frlm-*/seed0/*/metrics.json"))) == 3  # the branches late fusion trained, reused
    described = json.loads(next(tmp_path.glob("late-*/config.json")).read_text())
    assert described["late_weights"] == list(training.LATE_WEIGHTS)  # the committed store explains itself
    cols = [f"p_{c}" for c in CLASSES]
    key = ["seed", "fold", "path"]
    m = late.predictions.merge(frlm.predictions[key + cols], on=key, suffixes=("", "_f")).merge(
        urlm.predictions[key + cols], on=key, suffixes=("", "_u"))
    assert len(m) == len(feats)
    w = m["alpha_frlm"].to_numpy()[:, None]
    expected = w * m[[c + "_f" for c in cols]].to_numpy() + (1 - w) * m[[c + "_u" for c in cols]].to_numpy()
    np.testing.assert_allclose(m[cols].to_numpy(), expected, atol=1e-4)
    own = late.curves[late.curves["stage"] == "late"]
    for _, fold in late.folds.iterrows():
        c = own[own["fold"] == fold["fold"]]
        assert list(c["weight"]) == list(training.LATE_WEIGHTS)
        chosen = c[c["epoch"] == fold["best_epoch"]].iloc[0]
        assert chosen["val_loss"] == c["val_loss"].min()
        assert np.allclose(m.loc[m["fold"] == fold["fold"], "alpha_frlm"], chosen["weight"])
    assert late.validation()["val_loss"] == round(float(own.groupby("fold")["val_loss"].min().mean()), 4)
    # what the report shows of it: each fold's choice and the criterion at the branches alone
    from amsnet_lib.report import plotting, significance, tables

    t = tables.late_fusion_table(late)
    assert list(t["fold"]) == ["fold0", "fold1", "fold2", "mean"]
    per_fold = t.iloc[:3]
    assert (per_fold["val loss (chosen w)"] <= per_fold[["val loss (URLM, w=0)", "val loss (average, w=0.5)",
                                                        "val loss (FRLM, w=1)"]].min(axis=1) + 1e-4).all()
    assert list(per_fold["w_FRLM"]) == pytest.approx(list(late.predictions.groupby("fold")["alpha_frlm"].first()), abs=1e-4)
    assert t.iloc[3]["WA (%)"] == pytest.approx(100 * late.folds["wa"].mean(), abs=0.01)
    fig = plotting.late_fusion_weights(late.curves, late.folds, save=tmp_path / "late.png")
    assert (tmp_path / "late.png").stat().st_size > 0 and len(fig.axes[0].lines) == 4  # three folds and w = 0.5
    # every w on the test folds, afterwards: the ends are the branches alone, the chosen w's row is the late run
    sweep = significance.late_fusion_sweep(frlm, urlm, late=late)
    assert list(sweep["w_FRLM"].iloc[:-1]) == pytest.approx(list(training.LATE_WEIGHTS))
    bound = sweep.iloc[-1]  # each fold at its own best w on its test fold: at least any single w
    assert bound[significance.TEST_BEST_COLUMN] == significance.PER_FOLD_BEST and np.isnan(bound["w_FRLM"])
    assert bound["WA (%)"] >= sweep["WA (%)"].iloc[:-1].max() - 1e-9
    per_fold_best = []
    for f in late.folds["fold"]:
        one = {r.config.model: dataclasses.replace(r, predictions=r.predictions[r.predictions["fold"] == f]) for r in (frlm, urlm)}
        per_fold_best.append(significance.late_fusion_sweep(one["frlm"], one["urlm"])["WA (%)"].iloc[:-1].max())
    assert bound["WA (%)"] == pytest.approx(np.mean(per_fold_best), abs=0.01)
    for w, branch in ((0.0, urlm), (1.0, frlm)):
        row = sweep[np.isclose(sweep["w_FRLM"], w)].iloc[0]
        assert row["WA (%)"] == pytest.approx(100 * branch.folds["wa"].mean(), abs=0.01)
        assert row["UA (%)"] == pytest.approx(100 * branch.folds["ua"].mean(), abs=0.01)
    assert (sweep[significance.TEST_BEST_COLUMN] == "yes").sum() == 1
    assert sweep.loc[sweep[significance.TEST_BEST_COLUMN] == "yes", "WA (%)"].iloc[0] == sweep["WA (%)"].iloc[:-1].max()
    assert sweep["val loss"].iloc[:-1].tolist() == pytest.approx(
        own.groupby("weight")["val_loss"].mean().round(4).tolist(), abs=1e-4)
    for _, fold in late.folds.iterrows():  # on each fold alone, the w it chose gives the late run's accuracy
        one = {r.config.model: dataclasses.replace(r, predictions=r.predictions[r.predictions["fold"] == fold["fold"]])
               for r in (frlm, urlm)}
        w = float(late.predictions.loc[late.predictions["fold"] == fold["fold"], "alpha_frlm"].iloc[0])
        at_w = significance.late_fusion_sweep(one["frlm"], one["urlm"], weights=(w,)).iloc[0]
        assert at_w["WA (%)"] == pytest.approx(100 * fold["wa"], abs=0.01)
        assert at_w["UA (%)"] == pytest.approx(100 * fold["ua"], abs=0.01)
    with pytest.raises(ValueError, match="same test utterances"):
        significance.late_fusion_sweep(frlm, dataclasses.replace(urlm, predictions=urlm.predictions.iloc[1:]))
    fig = plotting.late_fusion_weights(late.curves, late.folds, sweep=sweep)
    assert len(fig.axes) == 3 and len(fig.axes[2].lines) == 4  # test WA, UA, the per-fold bound and w = 0.5
    # the head adds no parameters: it is the branches' own classifier heads and one weight
    model = training.load_fold_model(_exp("late"), next(tmp_path.glob("late-*/seed0/fold0")), 3, store)
    assert model.head.frlm_head is model.frlm.head and model.head.urlm_head is model.urlm.head
    assert float(model.head.weight) == pytest.approx(training.LATE_WEIGHTS[late.folds.set_index("fold").loc["fold0", "best_epoch"] - 1])


def test_late_weight_choice_follows_the_monitor_and_breaks_ties_toward_the_average():
    from amsnet_lib.models import LateFusionHead

    head = LateFusionHead(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    with torch.no_grad():
        for lin in (head.frlm_head, head.urlm_head):
            lin.weight.copy_(torch.eye(2) * 4)
            lin.bias.zero_()
    y = torch.tensor([0, 1, 0, 1])
    # FRLM's outputs point at the right class, URLM's at the wrong one: all weight to FRLM
    val = {"h1": torch.nn.functional.one_hot(y, 2).float(), "h2": torch.nn.functional.one_hot(1 - y, 2).float(), "labels": y}
    res = training.fit_late_weight(head, val, 2)
    assert float(head.weight) == 1.0 and res.best_epoch == len(training.LATE_WEIGHTS)
    assert res.curves["val_loss"].is_monotonic_decreasing
    # identical branches: every w scores the same, the plain average is kept (weights whose mixes
    # w·p + (1 − w)·p are exactly p in floating point, so the tie is exact, not a rounding accident)
    same = {"h1": val["h1"], "h2": val["h1"], "labels": y}
    res = training.fit_late_weight(head, same, 2, weights=(0.0, 0.5, 1.0))
    assert res.curves["val_loss"].nunique() == 1 and float(head.weight) == 0.5
    # by UA: every w above 0.5 is right on all four; the tie goes to the lower loss (w = 1)
    training.fit_late_weight(head, val, 2, monitor="val_ua")
    assert float(head.weight) == 1.0
    with pytest.raises(ValueError, match="val_fraction"):
        training.fit_late_weight(head, {k: v[:0] for k, v in val.items()}, 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        training.fit_late_weight(head, val, 2, weights=(0.5, 1.5))
    # one weight is a fixed average: kept as it is, even without a validation split
    res = training.fit_late_weight(head, {k: v[:0] for k, v in val.items()}, 2, weights=(0.3,))
    assert float(head.weight) == pytest.approx(0.3) and res.best_epoch == 1
    with pytest.raises(ValueError, match="late_weights"):
        ExperimentConfig(model="late", late_weights=(0.5, 1.5))
    with pytest.raises(ValueError, match="late_weights"):
        ExperimentConfig(model="late", late_weights=())


def test_a_corpus_no_classifier_can_learn_is_refused_before_training(tmp_path):
    """One class, or a class of a single utterance (the validation split or a test fold takes it whole)."""
    from amsnet_lib.errors import AmsnetError

    feats = _features()
    one_class = dataclasses.replace(feats, labels=np.zeros_like(feats.labels))
    with pytest.raises(AmsnetError, match=r"1 class with utterances \({'a': 60}\); a classifier needs two or more"):
        run_experiment(_exp("urlm"), one_class, store=tmp_path, device="cpu", progress=False)
    lonely = feats.labels.copy()
    lonely[lonely == 2] = 1
    lonely[0] = 2  # class c: one utterance
    with pytest.raises(AmsnetError, match=r"class\(es\) \['c'\] .* single utterance"):
        fit_final(_exp("urlm"), dataclasses.replace(feats, labels=lonely), store=tmp_path, device="cpu", progress=False)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_significance_table_compares_models_on_the_same_utterances_as_the_tables_do(tmp_path):
    from amsnet_lib.report import significance, tables

    feats = _features()
    res = {m: run_experiment(_exp(m), feats, store=tmp_path, device="cpu", progress=False) for m in ("frlm", "urlm", "amsnet")}
    t = significance.significance_table(res, "amsnet", n_resamples=500)
    assert list(t["model"]) == ["frlm", "urlm"]
    for row in t.itertuples(index=False):
        ref, other = res["amsnet"].summary(), res[row.model].summary()
        assert row[1] == pytest.approx(ref["wa"] - other["wa"], abs=0.006)  # ΔWA: the tables' means, A − B
        assert row[3] == pytest.approx(ref["ua"] - other["ua"], abs=0.006)
        low, high = (float(v) for v in row[2].split(" to "))
        assert low <= row[1] <= high
        assert 0 <= row[5] <= 1 and 0 <= row[8] <= 1
    n_test = len(res["amsnet"].predictions)
    assert (t["amsnet only"] + t["model only"] <= n_test).all()
    assert "< 0.0001" in tables.markdown_table(pd.DataFrame({"p (WA, McNemar)": [3e-6]}))
    # a model on other utterances cannot be compared; one with unfinished folds is 'not run'
    with pytest.raises(ValueError, match="not evaluated on the same test utterances"):
        significance.significance_table({"amsnet": res["amsnet"], "urlm": dataclasses.replace(
            res["urlm"], predictions=res["urlm"].predictions.iloc[1:])}, "amsnet")
    partial = run_experiment(_exp("frlm"), feats, store=tmp_path, device="cpu", progress=False, finished_only=True,
                             only_folds=["fold0"])
    part = significance.significance_table({"amsnet": res["amsnet"], "frlm": dataclasses.replace(partial, missing=[(0, "fold1")])},
                                     "amsnet")
    assert part.loc[0, "ΔWA (pp)"].startswith("not run")


def test_ensembles_whose_members_are_not_finished_lose_their_summary_rows(tmp_path, monkeypatch, capsys):
    """A summary row of a seed ensemble stands for the configuration in force: when the recipe changes
    and its members are not trained yet, the old ensemble rows go (the single rows stay), and only
    the chosen size's row is ever kept."""
    from amsnet_lib.report import session, summary

    feats = _features()
    monkeypatch.setattr(session, "_corpus_status", lambda corpus, data_dir: (feats.table, None))
    s = session.Session("emodb", profile="quick", results_dir=tmp_path / "results", run_dir=tmp_path / "runs", train=False)
    monkeypatch.setattr(s, "features", lambda corpus, config=None, augment="none": feats)
    rows = [dict(corpus="emodb", protocol="paper", recipe=r, model=m, variant=v, n_folds=3, complete=True, n_seeds=1,
                 wa=80.0, ua=80.0) for r, m, v in [("tuned", "amsnet", "ensemble of 2 seeds"), ("tuned", "amsnet", "ensemble of 4 seeds"),
                                                  ("tuned", "amsnet", ""), ("paper", "amsnet", "ensemble of 2 seeds"),
                                                  ("tuned", "frlm", "ensemble of 3 seeds")]]
    for row in rows:
        summary.update_summary(row, s.summary_path)
    s.run_ensembles(["seed_ensemble"])
    assert "amsnet seed ensemble: not run (members not all finished)" in capsys.readouterr().out
    left = pd.read_csv(s.summary_path, keep_default_na=False)
    # the quick profile's study ensembles AMSNet alone: FRLM's row is not its business
    assert sorted(zip(left["recipe"], left["model"], left["variant"])) == [("paper", "amsnet", "ensemble of 2 seeds"),
                                                                         ("tuned", "amsnet", ""),
                                                                         ("tuned", "frlm", "ensemble of 3 seeds")]
    # not among the notebook's studies: nothing is touched
    summary.update_summary(rows[0], s.summary_path)
    s.run_ensembles(["tuned_recipe"])
    assert len(pd.read_csv(s.summary_path, keep_default_na=False)) == 4
    assert summary.drop_summary_rows(s.summary_path, corpus="emodb", protocol="paper", model="amsnet", recipe="tuned",
                                    variant=r"^ensemble of \d+ seeds$", keep="ensemble of 2 seeds") == 0


def test_notebook_02_runs_the_tuned_amsnet_so_table2_has_its_row_on_the_first_run(tmp_path, monkeypatch):
    """Table 2 (notebook 02) reads summary.csv, where notebook 03's study used to write the tuned
    AMSNet first: on the first run after a training its tuned row said "not run". run_models with
    the recipe records it before the table is read."""
    from amsnet_lib.report import session, tables

    feats = _features()
    monkeypatch.setattr(session, "_corpus_status", lambda corpus, data_dir: (feats.table, None))
    s = session.Session("emodb", profile="quick", results_dir=tmp_path / "results", run_dir=tmp_path / "runs")
    monkeypatch.setattr(s, "features", lambda corpus, config=None, augment="none": feats)
    monkeypatch.setattr(s, "experiment", lambda c, m, protocol=None, recipe="paper": dataclasses.replace(_exp(m), corpus=c, recipe=recipe))
    before = tables.comparison_table2(s.read_summary(), ["paper"], s.availability)
    tuned_row = lambda t: t[(t["model"] == "AMSNet" + tables.TUNED_SUFFIX) & (t["corpus"] == "EmoDB")].iloc[0]  # noqa: E731
    assert str(tuned_row(before)["WA ours [paper] (%)"]).startswith("not run")
    res = s.run_models(["amsnet"], recipe="tuned")["emodb"]["amsnet"]
    assert res.config.recipe == "tuned"
    after = tuned_row(tables.comparison_table2(s.read_summary(), ["paper"], s.availability))
    assert float(after["WA ours [paper] (%)"]) == pytest.approx(res.summary()["wa"], abs=0.01)
