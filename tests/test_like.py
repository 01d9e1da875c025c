"""`amsnet fit --like RUN_DIR`: a run's configuration read back from its run-store folder, exactly
(keyed as the run store keys it, it gives back the folder's own name), and fit with it."""
from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import soundfile as sf
import torch

from amsnet_lib import cli, studies
from amsnet_lib.config import CLASSIC_MODELS, FeatureConfig
from amsnet_lib.errors import AmsnetError
from amsnet_lib.train.classic import classic_identity
from amsnet_lib.train.like import experiment_dir_name, experiment_like, run_utterances
from amsnet_lib.train.runstore import SINGLE_STAGE, _describe, n_utterances
from amsnet_lib.train.training import run_experiment
from signals import REPO_ROOT, tone
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


def _tones(root, n=5):
    for i in range(n):
        for label, f0 in (("high", 320.0), ("low", 110.0)):
            (root / label).mkdir(parents=True, exist_ok=True)
            sf.write(root / label / f"{label}{i}.wav", tone(0.8 + 0.05 * i, f0 * (1 + 0.03 * i), seed=i), 16000)
    return root


def test_fit_like_a_run_writes_its_configuration_into_the_checkpoint(tmp_path, capsys):
    """`amsnet train` a tuned quick AMSNet (one fold), then `amsnet fit --like` its folder on the same
    corpus: the checkpoint holds the run's configuration (one seed), says where it came from, and its
    folds land in the run's own folder; on another corpus, it says what differs."""
    from amsnet_lib.serve.checkpoint import read_checkpoint_info

    corpus = _tones(tmp_path / "tones")
    common = ["--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--threads", "1",
              "--run-dir", str(tmp_path / "runs")]
    threads = torch.get_num_threads()
    try:
        assert cli.main(["train", *common, "--duration", "1.0", "--profile", "quick", "--recipe", "tuned", "--folds", "2",
                         "--fold", "fold0", "--summary", ""]) == 0
        run = next((tmp_path / "runs").glob("amsnet-*"))
        out = tmp_path / "mine.pt"
        capsys.readouterr()
        assert cli.main(["fit", *common, "--like", str(run), "--out", str(out), "--seed", "3"]) == 0
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert f"the configuration of {run} (amsnet, recipe tuned), trained there on the same corpus (tones, 10 utterances)" in printed
    info = read_checkpoint_info(out)
    like = experiment_like(run)
    assert info.experiment == dataclasses.replace(like, seeds=(3,))
    assert info.experiment.recipe == "tuned" and info.experiment.features == FeatureConfig(duration=1.0)
    assert info.meta["like"] == str(run) and info.meta["recipe"] == "tuned" and "profile" not in info.meta
    assert info.meta["configuration"].startswith(f"that of the run {run.name} (amsnet fit --like")
    assert (run / "seed3" / "all" / "metrics.json").is_file()  # the same key: the run's own folder
    # its URLM branch's configuration on another corpus (fewer utterances): legitimate, and said
    urlm = run.parent / json.loads((run / "config.json").read_text())["branch_runs"][1]
    other = _tones(tmp_path / "other", n=3)
    try:
        assert cli.main(["fit", *common, "--corpus", str(other), "--like", str(urlm), "--out", str(tmp_path / "u.pt")]) == 0
    finally:
        torch.set_num_threads(threads)
    assert (f"the configuration of {urlm} (urlm, recipe tuned) on another corpus: the run was trained on tones (10 "
            "utterances), this fit trains on other (6 utterances)") in capsys.readouterr().out
    assert read_checkpoint_info(tmp_path / "u.pt").experiment == dataclasses.replace(experiment_like(urlm), corpus="other", seeds=(0,))


def test_fit_without_like_records_its_recipe(tmp_path, capsys):
    """The checkpoint's configuration line names the recipe it was trained with (it said "paper" for
    every fit before)."""
    from amsnet_lib.serve.checkpoint import read_checkpoint_info

    corpus = _tones(tmp_path / "tones", n=3)
    out = tmp_path / "m.pt"
    threads = torch.get_num_threads()
    try:
        assert cli.main(["fit", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1",
                         "--threads", "1", "--run-dir", str(tmp_path / "runs"), "--duration", "1.0", "--profile", "quick",
                         "--model", "urlm", "--recipe", "tuned", "--epochs", "1", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    meta = read_checkpoint_info(out).meta
    assert meta["configuration"] == 'studies.experiment("tones", "urlm", "paper", "quick", recipe="tuned") with epochs=1'
    assert meta["recipe"] == "tuned" and meta["profile"] == "quick"


@pytest.mark.parametrize("case", ["option", "default_option", "classic", "ensemble", "speaker", "normalisation", "nowhere"])
def test_fit_like_refuses_what_it_cannot_fit(tiny_store, tmp_path, capsys, case):
    """Refused before any corpus is read, each with the folder or option at fault and the fix."""
    root, suite, n = tiny_store
    folder = {"classic": lambda: root / experiment_dir_name(suite[-1], n),
              "speaker": lambda: root / experiment_dir_name(suite[13], n),
              "nowhere": lambda: tmp_path / "nowhere"}.get(case, lambda: root / experiment_dir_name(suite[4], n))()
    if case == "ensemble":
        folder = tmp_path / "ensemble-0123456789ab"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"model": "amsnet", "members": ["amsnet-aaaaaaaaaaaa"]}))
    extra = {"option": ["--lr", "0.01", "--augment", "speed"], "default_option": ["--recipe", "paper"]}.get(case, [])
    argv = ["fit", "--corpus", str(tmp_path / "absent"), "--out", str(tmp_path / "x.pt"), "--run-dir", str(tmp_path / "runs"),
            *(["--normalisation", "speaker"] if case == "normalisation" else ["--like", str(folder), *extra])]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    expected = {"option": "with --lr, --augment. Fix: --like takes the whole configuration",
                "default_option": "with --recipe. Fix: --like takes the whole configuration",
                "classic": "is a run of compare-svm, a classic baseline",
                "ensemble": "is the folder of a seed ensemble",
                "speaker": "was trained with normalisation 'speaker'",
                "normalisation": "fit --normalisation speaker. Fix: a model for new audio cannot know",
                "nowhere": "nowhere: is not a folder"}[case]
    assert expected in err, err
    assert not (tmp_path / "x.pt").exists()


def test_fit_like_a_run_that_validated_on_whole_speakers_needs_speakers(tmp_path, capsys):
    """A RAVDESS run under EmoBox's folds held out whole speakers for validation: fitting its
    configuration on a corpus without speakers is refused before any training, not a traceback."""
    run = next((d for d in sorted((REPO_ROOT / "runs").glob("frlm-*")) if (d / "config.json").is_file()
                and experiment_like(d).validation == "speaker"), None)
    if run is None:
        pytest.skip("no committed run with speaker validation here")
    corpus = _tones(tmp_path / "tones", n=2)
    assert cli.main(["fit", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--like", str(run),
                     "--run-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert f"names 0 speaker(s), and the run {run.name} chose its epochs on a validation split of whole speakers" in err, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
