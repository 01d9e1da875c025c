"""A run's configuration read back from its run-store folder (`experiment_like`), exactly: keyed as the
run store keys it, it gives back the folder's own name."""
from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from amsnet_lib import studies
from amsnet_lib.config import CLASSIC_MODELS
from amsnet_lib.errors import AmsnetError
from amsnet_lib.train.classic import classic_identity
from amsnet_lib.train.like import experiment_dir_name, experiment_like, run_utterances
from amsnet_lib.train.runstore import SINGLE_STAGE, _describe, n_utterances
from amsnet_lib.train.training import run_experiment
from signals import REPO_ROOT
from test_training import _features


def _tiny_suite(feats) -> list:
    """Quick-profile configurations that differ in every part a run key holds: each model, both
    recipes, fixed and chosen late weights, another split seed and protocol, an ensemble member,
    speaker normalisation, another feature setting."""
    q = lambda model, protocol="paper", **kw: studies.experiment("synthetic", model, protocol, "quick",  # noqa: E731
                                                                  features=feats.config, n_folds=3, **kw)
    return [*(q(m) for m in ("frlm", "urlm", "early", "concat", "amsnet", "late")),
            q("amsnet", recipe="tuned"), q("concat", recipe="tuned"), q("late", recipe="tuned"),
            studies.with_late_weight(q("late"), 0.5), q("amsnet", split_seed=1), q("urlm", "loso"),
            studies.with_member(q("amsnet"), 1), q("urlm", normalisation="speaker"),
            studies.with_stopping(studies.with_se_ratio(q("amsnet"), 4), epochs=1)]


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """A run store of tiny trainings (one fold each; synthetic features, no audio): its root and
    the configurations that trained it."""
    root = tmp_path_factory.mktemp("like") / "runs"
    feats = _features(n=30)
    suite = _tiny_suite(feats)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for exp in suite:
            first = "s0" if exp.protocol == "loso" else "fold0"
            run_experiment(exp, feats, store=root, device="cpu", progress=False, only_folds=[first])
    finally:
        torch.set_num_threads(threads)
    # a classic baseline's folder, as run_classic_fold describes it (its SVM needs openSMILE's functionals)
    svm = studies.experiment("synthetic", "compare-svm", "paper", "quick", n_folds=3, features=feats.config)
    n = n_utterances(feats, svm)
    _describe(root / experiment_dir_name(svm, n), classic_identity(svm, n))
    (root / experiment_dir_name(svm, n) / "seed0").mkdir()
    return root, suite + [svm], len(feats.table)


def _same_configuration(trained, read) -> list[str]:
    """The fields in which ``read`` differs from ``trained`` where they decide the model's weights: all
    of a fusion head's (its FRLM's training: where it differs from URLM's); a branch's stage only."""
    if trained.model in CLASSIC_MODELS:
        return [k for k in ("corpus", "model", "protocol", "n_folds", "split_seed", "svm") if getattr(trained, k) != getattr(read, k)]
    if trained.model in SINGLE_STAGE:
        arch = {"frlm": "frlm", "urlm": "urlm", "early": "frlm"}[trained.model]
        names = ["corpus", "model", "protocol", "n_folds", "split_seed", "split_file", "features", "normalisation", "augment",
                 "member", "validation", arch]
        differ = [k for k in names if getattr(trained, k) != getattr(read, k)]
        return differ + (["train"] if trained.stage_train(trained.model) != read.stage_train(trained.model) else [])
    unused = {"variant", "seeds", "frlm_train"} | ({"finetune"} if trained.model == "late" else set())
    differ = [f.name for f in dataclasses.fields(trained) if f.name not in unused and getattr(trained, f.name) != getattr(read, f.name)]
    return differ + (["frlm_train"] if trained.stage_train("frlm") != read.stage_train("frlm") else [])


def test_every_folder_of_a_store_reads_back_to_its_own_name_and_configuration(tiny_store):
    root, suite, n = tiny_store
    folders = sorted(d for d in root.iterdir() if (d / "config.json").is_file())
    assert len(folders) >= len(suite)  # every experiment's folder, and the branches the fusion heads stand on
    for d in folders:
        exp = experiment_like(d)
        assert experiment_dir_name(exp, run_utterances(d)) == d.name, d.name
        assert run_utterances(d) == n
    for trained in suite:  # beyond the key: the configuration that trained each experiment
        read = experiment_like(root / experiment_dir_name(trained, n))
        assert not _same_configuration(trained, read), (trained.model, trained.variant, _same_configuration(trained, read))
        assert read.recipe == trained.recipe
        assert read.seeds == (0,)


def test_every_run_of_the_committed_store_reads_back_to_its_own_name():
    """The repository's runs/ (every table's source): each experiment folder's config.json rebuilds a
    configuration that keys back to the folder; a seed ensemble's folder is refused (it names members)."""
    runs = REPO_ROOT / "runs"
    folders = sorted(d for d in runs.glob("*-*") if (d / "config.json").is_file()) if runs.is_dir() else []
    if not folders:
        pytest.skip("no committed run store here")
    read = 0
    for d in folders:
        if d.name.startswith("ensemble-"):
            with pytest.raises(AmsnetError, match="seed ensemble"):
                experiment_like(d)
            continue
        assert experiment_dir_name(experiment_like(d), run_utterances(d)) == d.name, d.name
        read += 1
    assert read >= 100


def test_a_folder_that_is_not_the_run_it_says_is_refused(tiny_store, tmp_path):
    root, suite, n = tiny_store
    amsnet = root / experiment_dir_name(suite[4], n)
    with pytest.raises(AmsnetError, match="holds no config.json: it is not a run-store experiment folder .a fold or seed"):
        experiment_like(amsnet / "seed0" / "fold0")
    with pytest.raises(AmsnetError, match="is not a folder"):
        experiment_like(tmp_path / "nowhere")
    # renamed: its configuration keys to another folder
    renamed = tmp_path / "store" / "amsnet-000000000000"
    shutil.copytree(amsnet, renamed)
    for b in json.loads((amsnet / "config.json").read_text())["branch_runs"]:
        shutil.copytree(root / b, tmp_path / "store" / b)
    with pytest.raises(AmsnetError, match=f"run-store folder is {amsnet.name}, not this folder's own name"):
        experiment_like(renamed)
    # an edited config.json (a branch's learning rate): no longer the run's
    edited = tmp_path / "store" / amsnet.name
    shutil.copytree(amsnet, edited)
    frlm = tmp_path / "store" / json.loads((amsnet / "config.json").read_text())["branch_runs"][0]
    cfg = json.loads((frlm / "config.json").read_text())
    cfg["train"]["lr"] *= 2
    (frlm / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(AmsnetError, match="not this folder's own name"):
        experiment_like(edited)
    # a fusion head without its branches beside it
    alone = tmp_path / "alone" / amsnet.name
    shutil.copytree(amsnet, alone)
    with pytest.raises(AmsnetError, match="the FRLM run that .* stands on .* is not beside it"):
        experiment_like(alone)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "config.json").write_text('{"model": "amsnet", "branch_runs": "x", "weird": 1}')
    with pytest.raises(AmsnetError, match="is not the config.json of a run amsnet can read back"):
        experiment_like(tmp_path / "junk")
