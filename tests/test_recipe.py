"""The tuned training recipe: its components, its place in the configuration and run keys, and the
validation-only search that chooses it."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from amsnet_lib.report import plotting, recipe_ablation
from amsnet_lib.train import runstore, search, training
from amsnet_lib import studies
from amsnet_lib.data.augment import augment_batch, mask_spans, mixup_lambda
from amsnet_lib.config import FRLMConfig, TrainConfig, identity
from amsnet_lib.models import build_model
from amsnet_lib.models.frlm import stack_frames
from amsnet_lib.train.training import run_experiment
from amsnet_lib.report.summary import update_summary
from test_training import _exp, _features, spy_on_evaluations

TUNED_TRAIN = dict(optimizer="adamw", lr=3e-3, batch_size=16, epochs=4, patience=0, val_fraction=0.2, schedule="cosine",
                   warmup=0.25, grad_clip=1.0, label_smoothing=0.1, time_mask=0.3, freq_mask=0.2, noise_std=0.1, mixup=0.4)


def _tuned_exp(model="amsnet", **kw):
    exp = _exp(model, **kw)
    tc = dataclasses.replace(exp.branch_train, **TUNED_TRAIN)
    return dataclasses.replace(exp, recipe="tuned", branch_train=tc, fusion_train=tc,
                               frlm=dataclasses.replace(exp.frlm, frame_stack=3))


# --------------------------------------------------------------------------- configuration and keys


def test_recipe_fields_at_their_defaults_leave_identity_and_keys_unchanged():
    """A paper-recipe configuration hashes as before the recipe fields existed."""
    tc = TrainConfig()
    plain = {f.name: getattr(tc, f.name) for f in dataclasses.fields(tc) if not f.metadata.get("omit_default")}
    assert identity(tc) == plain
    changed = dataclasses.replace(tc, mixup=0.2)
    assert identity(changed)["mixup"] == 0.2
    exp = studies.experiment("emodb", "frlm", "paper", "full")
    assert runstore.branch_key("frlm", exp, 535) != runstore.branch_key("frlm", studies.tuned(exp), 535)


def test_tuned_experiment_is_labelled_and_differs_only_in_training_and_frame_stack():
    paper = studies.experiment("emodb", "amsnet", "paper", "full")
    tuned = studies.experiment("emodb", "amsnet", "paper", "full", recipe="tuned")
    assert paper.recipe == "paper" and tuned.recipe == "tuned"
    assert tuned.features == paper.features and tuned.urlm == paper.urlm and tuned.fusion == paper.fusion
    assert dataclasses.replace(tuned.frlm, frame_stack=1) == paper.frlm
    assert tuned.frlm.frame_stack == studies.TUNED_FRAME_STACK
    for stage in ("frlm", "urlm", "fusion"):
        assert tuned.stage_train(stage).optimizer == "adamw"
    assert tuned.stage_train("urlm").lr == studies.TUNED_URLM["lr"]  # URLM's own values over the branches'
    assert tuned.stage_train("frlm").lr == studies.TUNED_FRLM["lr"]
    # URLM paper-trained inside the tuned recipe: the paper's URLM run, whatever else the recipe changes
    paper_urlm = studies.tuned(paper, urlm=studies.PAPER_URLM, branch={"grad_clip": 0.0})
    assert paper_urlm.branch_train == paper.branch_train and paper_urlm.stage_train("frlm") != paper.stage_train("frlm")
    assert runstore.branch_key("urlm", paper_urlm, 535) == runstore.branch_key("urlm", paper, 535)
    with pytest.raises(ValueError, match="recipe"):
        studies.experiment("emodb", "amsnet", recipe="best")


def test_speed_perturbation_is_urlms_alone_and_the_rows_before_it_keep_their_keys():
    paper = studies.experiment("emodb", "amsnet", "paper", "full")
    tuned = studies.tuned(paper)
    assert tuned.stage_augment("urlm") == "speed" == tuned.audio_augment
    assert {tuned.stage_augment(s) for s in ("frlm", "early", "fusion")} == {"none"} and tuned.finetune.augment == "none"
    # FRLM's key is the tuned FRLM's of before; URLM's (and the heads over it) are new
    before = studies.tuned(paper, urlm={"augment": "none"})
    assert runstore.branch_key("frlm", tuned, 535) == runstore.branch_key("frlm", before, 535)
    assert runstore.branch_key("urlm", tuned, 535) != runstore.branch_key("urlm", before, 535)
    store = runstore.RunStore("/nonexistent")
    for model in ("urlm", "concat", "amsnet", "late"):
        row = next(e for e in studies.urlm_without_speed_study("emodb", "loso") if e.model == model)
        plain = studies.experiment("emodb", model, "loso", "full", recipe="tuned")
        assert row.variant == studies.URLM_WITHOUT_SPEED_VARIANT and row.stage_augment("urlm") == "none"
        assert (runstore.experiment_fold_dir(row, 535, 0, "03", store)
                == runstore.experiment_fold_dir(plain.with_training(augment="none"), 535, 0, "03", store))
    # copies are made for a model that trains on them: not for FRLM or early fusion of the same recipe
    assert [studies.experiment("emodb", m, "paper", "full", recipe="tuned").audio_augment
            for m in ("frlm", "early", "urlm", "late")] == ["none", "none", "speed", "speed"]
    # a search of a stage that trains on other data than before keeps another journal (and table)
    assert [search.study_name(st) for st in ("frlm", "urlm", "fusion")] == [
        "emodb-paper-frlm", "emodb-paper-urlm-with-speed", "emodb-paper-fusion-with-speed"]
    assert search.study_name("urlm", augment="speed") == "emodb-paper-urlm-speed"
    assert search.study_name("urlm", profile="quick") == "emodb-paper-urlm"
    # a smoke run makes no copies; one experiment takes one kind of copies, and fine-tuning trains on the head's
    assert studies.tuned(studies.experiment("emodb", "amsnet", "paper", "quick"), quick=True).audio_augment == "none"
    with pytest.raises(ValueError, match="one audio augmentation"):
        dataclasses.replace(tuned, augment="channels")
    with pytest.raises(ValueError, match="finetune"):
        dataclasses.replace(tuned, finetune=dataclasses.replace(tuned.finetune, augment="speed"))


def test_invalid_recipe_components_are_refused():
    for bad in (dict(schedule="step"), dict(time_mask=1.0), dict(mixup=-1.0), dict(class_weighting="inverse"),
                dict(optimizer="lion")):
        with pytest.raises(ValueError):
            TrainConfig(**bad)
    with pytest.raises(ValueError):
        FRLMConfig(frame_stack=0)


# --------------------------------------------------------------------------- components


def test_frame_stacking_concatenates_consecutive_frames_and_keeps_padding_out():
    frames = torch.arange(2 * 7 * 2, dtype=torch.float32).reshape(2, 7, 2) + 1
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3], dtype=torch.bool)
    x, m = stack_frames(frames, mask, 3)
    assert x.shape == (2, 3, 6) and m.tolist() == [[True, True, True], [True, True, False]]
    assert torch.equal(x[0, 0], frames[0, :3].reshape(-1))
    assert torch.equal(x[1, 1, 2:], torch.zeros(4))  # frames 5-6 of utterance 1 are padding
    assert torch.equal(x[0, 2, 2:], torch.zeros(4))  # q padded up to a multiple of k
    same, same_mask = stack_frames(frames, mask, 1)
    assert same is frames and same_mask is mask


def test_frlm_with_frame_stacking_runs_a_third_of_the_steps_and_ignores_padding():
    torch.manual_seed(0)
    model = build_model("frlm", 4, frlm=FRLMConfig(hidden_size=8, embedding_dim=8, frame_stack=3)).eval()
    x = torch.randn(2, 30, 76)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[1, 12:] = False
    assert model.attention(x, mask).shape == (2, 10)
    changed = x.clone()
    changed[1, 12:] = 99.0  # padding of utterance 1
    assert torch.allclose(model(x, mask)[1], model(changed, mask)[1])


def test_masks_lie_within_each_rows_valid_steps_and_respect_the_share():
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([10, 40, 1, 0])
    spans = mask_spans(lengths, 50, 0.25, gen)
    widths = spans.sum(1)
    assert (widths <= torch.floor(0.25 * lengths + 1).clamp_max(lengths.float()).long()).all()
    for i, L in enumerate(lengths.tolist()):
        assert not spans[i, L:].any()
    assert mask_spans(lengths, 50, 0.0, gen).sum() == 0


def test_augmentation_is_seeded_leaves_its_input_alone_and_mixup_pairs_labels():
    cfg = TrainConfig(time_mask=0.3, freq_mask=0.2, noise_std=0.1, mixup=0.4)
    rng = torch.Generator().manual_seed(1)
    batch = {"frames": torch.randn(6, 12, 76, generator=rng), "mask": torch.ones(6, 12, dtype=torch.bool),
             "spec": torch.randn(6, 8, 9, generator=rng), "labels": torch.arange(6)}
    before = {k: v.clone() for k, v in batch.items()}
    runs = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(7)
        lam = mixup_lambda(cfg.mixup, gen)
        runs.append((lam, *augment_batch(batch, cfg, gen, lam)))
    (lam, a, ya), (_, b, yb) = runs
    assert 0 < lam < 1 and torch.equal(ya, yb) and sorted(ya.tolist()) == list(range(6))
    assert all(torch.equal(a[k], b[k]) for k in batch)
    assert all(torch.equal(batch[k], before[k]) for k in batch)
    assert not torch.equal(a["frames"], batch["frames"]) and not torch.equal(a["spec"], batch["spec"])
    plain = TrainConfig()
    assert not plain.augments and mixup_lambda(0.0, torch.Generator()) == 1.0


@pytest.mark.parametrize("model", ["frlm", "urlm", "early", "amsnet", "concat", "late"])
def test_every_model_trains_under_the_tuned_recipe(tmp_path, model):
    feats = _features()
    res = run_experiment(_tuned_exp(model), feats, store=tmp_path, device="cpu", progress=False)
    assert len(res.folds) == 3 and res.summary()["recipe"] == "tuned"
    assert res.folds["wa"].between(0, 1).all()


def test_tuned_training_is_deterministic_and_resumes_to_the_same_numbers(tmp_path, monkeypatch):
    """Augmentation and the schedule are part of the loop's saved state: a cut fold ends as a whole one."""
    feats = _features()
    exp = _tuned_exp("urlm")
    exp = dataclasses.replace(exp, branch_train=dataclasses.replace(exp.branch_train, epochs=8))
    clean = run_experiment(exp, feats, store=tmp_path / "clean", device="cpu", progress=False)
    again = run_experiment(exp, feats, store=tmp_path / "again", device="cpu", progress=False)
    pd.testing.assert_frame_equal(clean.predictions, again.predictions)
    real, count = training.evaluate_split, {"n": 0}

    def dying(*a, **kw):
        count["n"] += 1
        if count["n"] == 7:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(training, "evaluate_split", dying)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, feats, store=tmp_path / "cut", device="cpu", progress=False)
    monkeypatch.setattr(training, "evaluate_split", real)
    resumed = run_experiment(exp, feats, store=tmp_path / "cut", device="cpu", progress=False)
    pd.testing.assert_frame_equal(clean.predictions, resumed.predictions)


def test_fine_tuning_trains_the_branches_and_keeps_the_whole_model(tmp_path):
    feats = _features()
    exp = dataclasses.replace(_tuned_exp("amsnet"), finetune=dataclasses.replace(_tuned_exp().branch_train, lr=1e-3, epochs=2))
    res = run_experiment(exp, feats, store=tmp_path, device="cpu", progress=False)
    d = next(tmp_path.glob("amsnet-*/seed0/fold0"))
    state = torch.load(d / "model.pt", weights_only=True)
    assert any(k.startswith("frlm.") for k in state) and any(k.startswith("head.") for k in state)
    assert "finetune" in json.loads((d.parent.parent / "config.json").read_text())
    model = training.load_fold_model(exp, d, 3, runstore.RunStore(tmp_path))
    branch = next(tmp_path.glob("frlm-*/seed0/fold0"))
    frozen = torch.load(branch / "model.pt", weights_only=True)
    assert not torch.equal(model.frlm.fc.weight, frozen["fc.weight"])  # the branch moved
    assert len(res.folds) == 3


def test_summary_keeps_paper_and_tuned_rows_apart(tmp_path):
    feats = _features()
    path = tmp_path / "summary.csv"
    pd.DataFrame([{"corpus": "synthetic", "protocol": "paper", "model": "urlm", "variant": "", "wa": 1.0}]).to_csv(path, index=False)
    update_summary(run_experiment(_tuned_exp("urlm"), feats, store=tmp_path / "r", device="cpu", progress=False), path)
    table = pd.read_csv(path, keep_default_na=False)
    assert sorted(table["recipe"]) == ["paper", "tuned"] and (table["model"] == "urlm").all()


# --------------------------------------------------------------------------- the search


def test_validation_score_never_evaluates_a_test_fold(tmp_path, monkeypatch):
    feats = _features()
    test_ids, seen = spy_on_evaluations(monkeypatch, search)
    score = search.validation_score(_tuned_exp("amsnet"), feats, tmp_path)
    assert len(score.folds) == 3 and 0 <= score.ua <= 100
    assert seen and not any(s in test_ids for s in seen)
    assert not list(tmp_path.rglob("predictions.csv"))  # nothing a test metric could be read from
    calls = len(seen)
    search.validation_score(_tuned_exp("amsnet"), feats, tmp_path)  # finished trials are read back
    assert len(seen) == calls


def test_search_is_bounded_resumable_and_records_every_trial(tmp_path, monkeypatch):
    feats = _features()
    base = _tuned_exp("urlm")
    current = studies.tuned(base, quick=True).branch_train
    monkeypatch.setattr(search, "SPACES", {"urlm": {"lr": (current.lr, 3e-3), "mixup": (current.mixup, 0.4)}, "frlm": {}})
    monkeypatch.setattr(studies, "experiment", lambda *a, **kw: dataclasses.replace(base, recipe=kw.get("recipe", "paper")))
    table = search.run_search("urlm", feats, tmp_path, trials=2, corpus="synthetic", profile="quick", progress=False)
    assert len(table) == 2 and set(table.columns) >= {"trial", "lr", "mixup", "val_ua", "val_wa", "val_loss"}
    assert table["val_ua"].is_monotonic_decreasing
    first = table.set_index("trial").loc[0]
    # trial 0: the recipe's current values, the point the search is to improve on
    assert (first["lr"], first["mixup"]) == (current.lr, current.mixup)
    more = search.run_search("urlm", feats, tmp_path, trials=3, corpus="synthetic", profile="quick", progress=False)
    assert len(more) == 3
    again = search.run_search("urlm", feats, tmp_path, trials=3, corpus="synthetic", profile="quick", progress=False)
    pd.testing.assert_frame_equal(more, again)
    assert not list(tmp_path.rglob("predictions.csv"))


def test_a_resumed_search_draws_new_values(tmp_path, monkeypatch):
    """Each call of run_search is a new process's resume: its random start-up draws must not repeat
    the trials the journal already holds (they would be read back, not explored)."""
    feats = _features()
    monkeypatch.setattr(search, "SPACES", {"urlm": {"lr": (3e-4, 1e-3, 3e-3), "mixup": (0.0, 0.2, 0.4),
                                                    "time_mask": (0.0, 0.1, 0.2, 0.3)}, "frlm": {}})
    base = _tuned_exp("urlm")
    monkeypatch.setattr(studies, "experiment", lambda *a, **kw: dataclasses.replace(base, recipe=kw.get("recipe", "paper")))
    search.run_search("urlm", feats, tmp_path, trials=2, corpus="synthetic", profile="quick", progress=False)
    table = search.run_search("urlm", feats, tmp_path, trials=3, corpus="synthetic", profile="quick", progress=False)
    values = table.set_index("trial")[["lr", "mixup", "time_mask"]]
    assert tuple(values.loc[2]) != tuple(values.loc[1])


def test_recipe_ablation_removes_one_component_at_a_time():
    study = studies.recipe_ablation_study("emodb", "paper", "full")
    full = {e.model: e for e in study if "without" not in e.variant}
    assert set(full) == set(studies.RECIPE_ABLATION_MODELS) and all(e.seeds == studies.TRAINING_SEEDS for e in study)
    frlm_stack = next(e for e in study if e.model == "frlm" and e.variant.endswith("without frame stacking"))
    assert frlm_stack.frlm.frame_stack == 1 and frlm_stack.stage_train("frlm") == full["frlm"].stage_train("frlm")
    # URLM paper-trained in every row, as when the study was measured: its seeds only, and AMSNet's
    # variants stand on that URLM
    paper_urlm = studies.experiment("emodb", "urlm", "paper", "full").branch_train
    assert [e.variant for e in study if e.model == "urlm"] == ["seeds=0,1,2"]
    assert all(e.branch_train == paper_urlm for e in study if e.model in ("urlm", "amsnet"))
    assert {e.variant for e in study if e.model == "amsnet"} >= {"seeds=0,1,2; without mixup", "seeds=0,1,2; without clipping"}
    assert len({(e.model, e.variant) for e in study}) == len(study)
    assert studies.recipe_ablation_study("emodb", "loso") == []


def test_fusion_search_tries_every_head_and_fine_tuning_combination_once(tmp_path, monkeypatch):
    feats = _features()
    base = _tuned_exp("amsnet")
    monkeypatch.setattr(studies, "experiment", lambda *a, **kw: base)
    table = search.run_search("fusion", feats, tmp_path, trials=4, corpus="synthetic", profile="quick", progress=False)
    assert sorted(zip(table["head_mixup"], table["finetune"])) == [(0.0, False), (0.0, True), (0.2, False), (0.2, True)]
    assert not list(tmp_path.rglob("predictions.csv"))
    # the branches were trained once and shared by the four heads
    assert len(list(tmp_path.glob("folds/frlm-*"))) == 1 and len(list(tmp_path.glob("folds/urlm-*"))) == 1


def test_a_run_stores_branch_weights_are_reused_on_validation_without_reading_its_metrics(tmp_path, monkeypatch):
    feats = _features()
    exp = _tuned_exp("urlm")
    store = tmp_path / "runs"
    run_experiment(exp, feats, store=store, progress=False)  # the run store's folds, with weights
    for f in store.rglob("metrics.json"):  # a search must not read test figures: make them unreadable
        f.write_text("not json")
    trained = []
    monkeypatch.setattr(search, "train_model", lambda *a, **kw: trained.append(1))
    reused = search.validation_score(exp, feats, tmp_path / "search", weights_from=store)
    assert not trained and len(reused.folds) == 3
    assert all("weights_from" in json.loads(p.read_text()) for p in (tmp_path / "search").rglob("val.json"))
    monkeypatch.undo()
    fresh = search.validation_score(exp, feats, tmp_path / "fresh")  # trained again: the same training
    np.testing.assert_allclose(reused.folds["val_ua"], fresh.folds["val_ua"])


def test_recipe_significance_pairs_each_tuned_model_with_its_paper_run(tmp_path, monkeypatch):
    from amsnet_lib.report import significance

    feats = _features()
    paper = [run_experiment(_exp(m), feats, store=tmp_path, device="cpu", progress=False) for m in ("frlm", "urlm", "amsnet")]
    tuned_frlm = run_experiment(_tuned_exp("frlm"), feats, store=tmp_path, device="cpu", progress=False)
    # URLM trained as the paper trains it: the same run key, so the same run
    kept = dataclasses.replace(_tuned_exp("urlm"), branch_train=_exp("urlm").branch_train)
    tuned_urlm = run_experiment(kept, feats, store=tmp_path, device="cpu", progress=False)
    t = significance.recipe_significance_table(paper, [tuned_frlm, tuned_urlm], n_resamples=200)
    assert list(t["model"]) == ["FRLM", "URLM"]  # AMSNet has no tuned run here: no row
    frlm = t.iloc[0]
    assert frlm["ΔWA (pp)"] == pytest.approx(tuned_frlm.summary()["wa"] - paper[0].summary()["wa"], abs=0.006)
    assert frlm["tuned only"] + frlm["paper only"] <= len(tuned_frlm.predictions)
    assert t.iloc[1]["ΔWA (pp)"].startswith("the same run")


def test_the_tuned_fine_tuning_is_the_one_the_fusion_search_scored():
    assert studies.TUNED_FINETUNE == search.FINETUNE_ON
    exp = studies.tuned(studies.experiment("emodb", "amsnet", "paper", "full"))
    trial = studies.tuned(studies.experiment("emodb", "amsnet", "paper", "full"),
                          **search.trial_components("fusion", {"head_mixup": studies.TUNED_FUSION["mixup"], "finetune": True}))
    assert exp == trial  # the configuration read on the test folds is the trial chosen on validation


def test_recipe_ablation_reports_each_row_over_its_finished_seeds(tmp_path):
    """A variant finished for seed 0 only is compared with its full recipe on seed 0; a row with no
    finished seed is 'not run'; nothing trains without ``train``."""
    feats = _features()
    full = dataclasses.replace(_tuned_exp("frlm"), seeds=(0, 1))
    variant = dataclasses.replace(full, variant="without mixup",
                                  branch_train=dataclasses.replace(full.branch_train, mixup=0.0))
    unrun = dataclasses.replace(full, variant="without clipping",
                                branch_train=dataclasses.replace(full.branch_train, grad_clip=0.0))
    run_experiment(full, feats, store=tmp_path, device="cpu", progress=False)
    run_experiment(dataclasses.replace(variant, seeds=(0,)), feats, store=tmp_path, device="cpu", progress=False)
    results = recipe_ablation.ablation_results([full, variant, unrun], lambda cfg: feats, tmp_path)
    assert results[("frlm", recipe_ablation.FULL)]["seeds"] == (0, 1)
    row = results[("frlm", "without mixup")]
    assert row["seeds"] == (0,) and row["reference"]["n_seeds"] == 1
    seed0 = run_experiment(dataclasses.replace(full, seeds=(0,)), feats, store=tmp_path, device="cpu", progress=False,
                           finished_only=True).summary()
    assert row["reference"]["wa"] == seed0["wa"]  # the full recipe on the variant's seeds, not on its own two
    assert results[("frlm", "without clipping")] is None
    table = recipe_ablation.ablation_table(results)
    assert table["WA [paper] (%)"].tolist()[2] == "not run"
    assert table.loc[1, "ΔWA vs all components"] == round(row["summary"]["wa"] - seed0["wa"], 2)
    lo, hi = (float(v) for v in table.loc[1, "ΔWA 95 % CI"].split(" to "))
    assert lo <= table.loc[1, "ΔWA vs all components"] <= hi


def test_recipe_ablation_rows_give_each_variant_its_difference_to_the_full_recipe():

    def summary(wa, ua):
        return {"wa": wa, "ua": ua, "wa_std": 1.0, "ua_std": 2.0, "n_folds": 5}

    full_012, full_0 = summary(84.3, 83.1), summary(84.0, 83.0)
    rows = recipe_ablation.ablation_table({
        ("frlm", recipe_ablation.FULL): {"summary": full_012, "reference": None, "seeds": (0, 1, 2)},
        ("frlm", "without mixup"): {"summary": summary(80.0, 79.6), "reference": full_012, "seeds": (0, 1, 2),
                                    "significance": {"ΔWA 95 % CI": "-6.10 to -2.50", "ΔUA 95 % CI": "-5.00 to -2.00",
                                                     "p (UA, bootstrap)": 0.0002, "ΔWA (pp)": -4.3}},
        # a variant finished for seed 0 only is compared with the full recipe's seed 0
        ("frlm", "without clipping"): {"summary": summary(85.0, 84.0), "reference": full_0, "seeds": (0,)},
        ("frlm", "without masking"): None})
    assert rows["tuned recipe"].tolist() == ["all components", "without mixup", "without clipping", "without masking"]
    assert rows.loc[1, "ΔWA vs all components"] == -4.3 and rows.loc[1, "ΔUA vs all components"] == -3.5
    assert rows.loc[2, "ΔWA vs all components"] == 1.0 and rows.loc[2, "seeds"] == "0"
    assert rows.loc[3, "WA [paper] (%)"] == "not run" and rows.loc[0, "seeds"] == "0, 1, 2" and rows.loc[0, "model"] == "FRLM"
    # the bootstrap's interval and p beside the variant's Δ; none for the full recipe or a row without one
    assert rows.loc[1, "ΔUA 95 % CI"] == "-5.00 to -2.00" and rows.loc[1, "p (UA, bootstrap)"] == 0.0002
    assert rows.loc[[0, 2], ["ΔWA 95 % CI", "ΔUA 95 % CI"]].isna().all(axis=None)
    assert "ΔWA (pp)" not in rows  # the table's own Δ column, not a second one


def test_recipe_ablation_significance_and_figure_from_stored_predictions(tmp_path):
    """Δ = variant − full on the same utterances, the interval around it; the figure drawn from the rows."""
    from types import SimpleNamespace


    rng = np.random.default_rng(0)
    true = rng.integers(0, 3, 300)
    full_pred = np.where(rng.random(300) < 0.9, true, (true + 1) % 3)
    worse = np.where(rng.random(300) < 0.7, true, (true + 1) % 3)

    def result(pred):
        preds = pd.DataFrame({"seed": 0, "fold": np.repeat(["f0", "f1", "f2"], 100), "path": [f"u{i}.wav" for i in range(300)],
                              "true": true, "pred": pred})
        return SimpleNamespace(predictions=preds, missing=[], classes=["a", "b", "c"])

    sig = recipe_ablation.variant_significance(result(worse), result(full_pred))
    lo, hi = (float(v) for v in sig["ΔWA 95 % CI"].split(" to "))
    assert sig["ΔWA (pp)"] < 0 and lo < sig["ΔWA (pp)"] < hi < 0  # clearly worse: the interval excludes 0
    full = {"wa": 90.0, "ua": 90.0, "wa_std": 1.0, "ua_std": 1.0, "n_folds": 3}
    rows = recipe_ablation.ablation_table({
        ("frlm", recipe_ablation.FULL): {"summary": full, "reference": None, "seeds": (0,)},
        ("frlm", "without mixup"): {"summary": {**full, "wa": 70.0, "ua": 70.0}, "reference": full, "seeds": (0,),
                                    "significance": sig}})
    assert plotting.recipe_ablation(rows, save=tmp_path / "ablation.png") is not None
    assert (tmp_path / "ablation.png").stat().st_size > 0
    assert plotting.recipe_ablation(rows.iloc[:1], save=tmp_path / "none.png") is None  # nothing to draw: no file
    assert not (tmp_path / "none.png").exists()


def test_variant_table_pairs_each_model_with_its_base_row_and_names_the_validation_choice():
    from types import SimpleNamespace

    from amsnet_lib.report import significance

    rng = np.random.default_rng(1)
    true = rng.integers(0, 3, 200)

    def result(model, variant, acc):
        pred = np.where(rng.random(200) < acc, true, (true + 1) % 3)
        preds = pd.DataFrame({"seed": 0, "fold": np.repeat(["f0", "f1"], 100), "path": [f"u{i}.wav" for i in range(200)],
                              "true": true, "pred": pred})
        wa = 100 * float((pred == true).mean())
        return SimpleNamespace(predictions=preds, missing=[], classes=["a", "b", "c"],
                               config=SimpleNamespace(model=model, variant=variant),
                               summary=lambda: {"wa": wa, "ua": wa})

    base = [result("urlm", "paper-trained", 0.8), result("amsnet", "paper-trained", 0.9)]
    variant = [result("urlm", "", 0.85), result("amsnet", "", 0.8), result("frlm", "", 0.9)]
    t = significance.variant_significance_table(base, variant, base_label="tuned", variant_label="searched",
                                                validation={"urlm": (85.0, 86.0), "amsnet": (91.0, 91.0)})
    assert t["model"].tolist() == ["URLM", "AMSNet"]  # FRLM has no base row
    with pytest.raises(ValueError, match="two base results of urlm"):  # which of them would be ambiguous
        significance.variant_significance_table(base + [result("urlm", "w=0.5", 0.5)], variant, base_label="a",
                                                variant_label="b")
    assert t["validation prefers"].tolist() == ["searched", "tuned"]  # a tie keeps the base
    assert t.loc[1, "ΔWA (pp)"] < 0 and t.loc[1, "WA, searched (%)"] < t.loc[1, "WA, tuned (%)"]


def _with_copies(feats):
    """``feats`` and one copy of each utterance (as amsnet_lib.data.channels.augmented_features lays them out)."""
    from amsnet_lib.data.features import Features

    copies = feats.table.assign(source=feats.table["path"], path=[p.replace("/x/", "/aug/") for p in feats.table["path"]])
    table = pd.concat([feats.table.assign(source=""), copies], ignore_index=True)
    return Features(np.concatenate([feats.frames, feats.frames + 0.1]), np.concatenate([feats.mask, feats.mask]),
                    np.concatenate([feats.spec, feats.spec - 0.1]), np.concatenate([feats.labels, feats.labels]),
                    list(feats.classes), table, feats.config)


def test_cross_validation_with_augmented_copies_tests_the_originals_and_trains_on_copies(tmp_path):
    feats = _features()
    plain = run_experiment(_exp("urlm"), feats, store=tmp_path, device="cpu", progress=False)
    aug = run_experiment(_exp("urlm", augment="speed"), _with_copies(feats), store=tmp_path, device="cpu", progress=False)
    # the same test utterances (originals only), the copies of the fit originals in the fit part
    assert sorted(aug.predictions["path"]) == sorted(plain.predictions["path"]) and len(aug.predictions) == len(feats)
    assert (aug.folds["n_test"] == plain.folds["n_test"]).all() and (aug.folds["n_val"] == plain.folds["n_val"]).all()
    assert (aug.folds["n_train"] == 2 * plain.folds["n_train"]).all()


def test_search_with_augmentation_is_a_search_of_its_own(tmp_path, monkeypatch):
    feats = _features()
    base = _tuned_exp("urlm")
    current = studies.tuned(base, quick=True).branch_train
    monkeypatch.setattr(search, "SPACES", {"urlm": {"lr": (current.lr, 3e-3)}, "frlm": {}})
    monkeypatch.setattr(studies, "experiment", lambda *a, **kw: dataclasses.replace(base, recipe=kw.get("recipe", "paper")))
    table = search.run_search("urlm", _with_copies(feats), tmp_path, trials=1, corpus="synthetic", profile="quick",
                              progress=False, augment="speed")
    assert len(table) == 1 and (tmp_path / "synthetic-paper-urlm-speed" / "journal.log").is_file()
    assert not (tmp_path / "synthetic-paper-urlm").exists()
    trial = dataclasses.replace(studies.tuned(studies.experiment(), quick=True,
                                              **search.trial_components("urlm", {"lr": current.lr})), augment="speed")
    key = runstore.branch_key("urlm", trial, 2 * len(feats))  # the augmentation is part of the trial's keys
    assert [p.name for p in tmp_path.glob("folds/urlm-*")] == [f"urlm-{key}"] and not list(tmp_path.rglob("predictions.csv"))
    with pytest.raises(ValueError, match="hold no augmented copies"):
        search.run_search("urlm", feats, tmp_path, trials=1, corpus="synthetic", profile="quick", progress=False,
                          augment="speed")


def test_table3_under_the_tuned_recipe_varies_only_urlms_ratio_and_its_r16_is_the_tuned_amsnet():
    rows = studies.se_ratio_study("emodb")
    assert [(c.recipe, c.urlm.se_ratio) for c in rows] == [(rc, r) for rc in ("paper", "tuned") for r in studies.SE_RATIOS]
    tuned_amsnet = studies.experiment("emodb", "amsnet", "paper", "full", recipe="tuned")
    store = runstore.RunStore("/nonexistent")
    keys = {c.urlm.se_ratio: runstore.experiment_fold_dir(c, 535, 0, "00", store) for c in rows if c.recipe == "tuned"}
    assert keys[16] == runstore.experiment_fold_dir(tuned_amsnet, 535, 0, "00", store)  # nothing trained again
    assert len(set(keys.values())) == len(studies.SE_RATIOS)
    for c in rows:  # FRLM is the recipe's own, shared by every r
        assert runstore.branch_key("frlm", c, 535) == runstore.branch_key("frlm", tuned_amsnet if c.recipe == "tuned"
                                                                          else studies.experiment("emodb"), 535)
