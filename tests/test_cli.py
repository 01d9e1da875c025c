"""`amsnet features` and `amsnet train` from the command line, on a small corpus of one's own."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from amsnet_lib import cli, studies
from signals import sine


def _corpus(tmp_path):
    for label, f0 in (("calm", 140.0), ("loud", 300.0)):
        for i in range(5):
            p = tmp_path / "corpus" / label / f"{label}{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            amp = 0.2 if label == "calm" else 0.6
            sf.write(p, sine(0.6 + 0.05 * i, freq=f0 * (1 + 0.02 * i), amplitude=amp), 16000)
    (tmp_path / "corpus" / "calm" / "broken.wav").write_bytes(b"not audio")
    return tmp_path / "corpus"


def test_features_summary_reports_counts_shapes_and_skips(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    args = ["features", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "utterances: 10" in out and "calm 5, loud 5" in out
    assert "[10, 100, 76]" in out and "[10, 128, 41]" in out
    assert "cache hits: 0 / 10" in out
    assert "broken.wav" in out  # skipped, and the report says so
    assert cli.main(args + ["--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cache_hits"] == 10 and summary["frame_dims"] == 76


def _assert_bundles_train_as_the_corpus(runs: list[tuple[Path, list[str], str]], run_dir: Path) -> None:
    """`amsnet train --features bundle` for each ``(bundle, train options, output of training from the corpus)``,
    one after another in one fresh process: each prints the per-fold table of training from the corpus, and
    the process imports no audio library."""
    import subprocess
    import sys

    code = ("import json, sys; from amsnet_lib import cli\n"
            "for i, args in enumerate(json.loads(sys.argv[1])):\n"
            "    print(f'== run {i}'); rc = cli.main(args)\n"
            "    if rc: sys.exit(rc)\n"
            "bad = [m for m in ('soundfile', 'soxr', 'opensmile', 'librosa') if m in sys.modules]\n"
            "print('audio modules:', bad)\n")
    calls = [["train", "--features", str(bundle), *train, "--run-dir", str(run_dir / str(i))]
             for i, (bundle, train, _) in enumerate(runs)]
    out = subprocess.run([sys.executable, "-c", code, json.dumps(calls)], capture_output=True, text=True,
                         env={**os.environ, "AMSNET_NO_REEXEC": "1"})
    assert out.returncode == 0, out.stderr
    assert "audio modules: []" in out.stdout
    table = lambda s: [line for line in s.splitlines() if "fold" in line or "mean" in line]  # noqa: E731
    outputs = out.stdout.split("== run ")[1:]
    assert len(outputs) == len(runs)
    for got, (_, _, from_corpus) in zip(outputs, runs):
        assert table(got) == table(from_corpus) and len(table(from_corpus)) >= 3


@pytest.mark.slow
def test_a_saved_bundle_with_or_without_copies_trains_as_the_corpus_without_audio(tmp_path, capsys):
    """`amsnet features --save` then `amsnet train --features`: the same folds and numbers as training from
    the corpus, and the training process imports no audio library (a GPU machine without openSMILE, librosa
    or libsndfile trains from the bundle). With `--augment speed` the bundle holds the speed copies, and
    training from it with --augment speed gives the numbers of training from the corpus (the tuned URLM's
    copies on a GPU machine that has no audio library)."""
    from amsnet_lib.data.features import Features

    corpus = _corpus(tmp_path)
    common = ["--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0"]
    plain, speed = tmp_path / "corpus.npz", tmp_path / "speed.npz"
    assert cli.main(["features", "--corpus", str(corpus), *common, "--save", str(plain)]) == 0
    assert "saved: " in capsys.readouterr().out and plain.exists()
    assert cli.main(["features", "--corpus", str(corpus), *common, "--save", str(speed), "--augment", "speed"]) == 0
    capsys.readouterr()
    assert Features.load(speed).table["augment"].value_counts().to_dict() == {"speed": 20, "none": 10}
    with pytest.raises(SystemExit, match="name it with --save FILE"):  # copies with nowhere to go
        cli.main(["features", "--corpus", str(corpus), *common, "--augment", "speed"])
    runs = []
    for bundle, extra in ((plain, []), (speed, ["--augment", "speed"])):
        train = ["--model", "urlm", "--profile", "quick", "--folds", "2", "--summary", "", "--threads", "1", *extra]
        assert cli.main(["train", "--corpus", str(corpus), *common, *train, "--run-dir", str(tmp_path / "r1" / bundle.stem)]) == 0
        runs.append((bundle, train, capsys.readouterr().out))
    _assert_bundles_train_as_the_corpus(runs, tmp_path / "r2")


def test_missing_corpus_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["features", "--corpus", "emodb", "--data-dir", str(tmp_path / "nowhere"), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "Fix:" in err


def test_train_prints_per_fold_table(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    rc = cli.main(["train", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0",
                   "--model", "urlm", "--profile", "quick", "--folds", "2", "--run-dir", str(tmp_path / "runs"), "--summary", ""])
    out = capsys.readouterr().out
    assert rc == 0
    assert "fold0" in out and "fold1" in out and "[protocol: paper]" in out


def test_train_ensemble_chooses_its_size_on_validation_then_reports_it(tmp_path, capsys, monkeypatch):
    from amsnet_lib.train import ensemble

    chosen = []
    real = ensemble.choose_size
    monkeypatch.setattr(ensemble, "choose_size", lambda scores: chosen.append(real(scores)) or 3)  # force a 3-member report
    args = ["train", "--corpus", str(_corpus(tmp_path)), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1",
            "--duration", "1.0", "--model", "frlm", "--profile", "quick", "--folds", "2", "--run-dir", str(tmp_path / "runs"),
            "--summary", "", "--ensemble", "3"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "no test fold read" in out and "chosen on validation: 3 member(s)" in out and len(chosen) == 1
    assert "ensemble of 3 seeds: mean WA" in out
    # members 1 and 2 are runs of their own beside member 0
    assert len({p.parent.parent.parent.name for p in (tmp_path / "runs").glob("frlm-*/seed0/fold0/metrics.json")}) == 3
    assert len(list((tmp_path / "runs").glob("ensemble-*/seed0/fold*/metrics.json"))) == 2  # kept, read back next time


def test_train_options_name_the_variant_as_the_studies_do(tmp_path, monkeypatch):
    """A changed factor changes the configuration and its summary label, the same way the study
    notebook does; the paper configuration's summary row is never overwritten by a variant."""
    from amsnet_lib import studies
    from amsnet_lib.train import training

    seen = []

    def fake_run(exp, feats, **kwargs):
        seen.append(exp)
        raise SystemExit(0)  # the configuration is what this test checks, not training

    monkeypatch.setattr(training, "run_experiment", fake_run)
    corpus = _corpus(tmp_path)
    common = ["train", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0",
              "--run-dir", str(tmp_path / "runs"), "--summary", ""]
    for extra in (["--se-ratio", "8"], ["--model", "frlm", "--hidden-size", "256"], ["--batch-size", "64", "--lr", "5e-5"], [],
                  ["--frlm-lr", "1e-3", "--fusion-lr", "5e-4"], ["--model", "late", "--late-weight", "0.5"], ["--model", "late"],
                  ["--model", "late", "--monitor", "val_ua", "--patience", "10"]):
        try:
            cli.main(common + extra)
        except SystemExit:
            pass
    se, hidden, train, plain, stages, average, late, by_ua = seen
    assert {by_ua.stage_train(s).monitor for s in ("frlm", "urlm", "fusion")} == {"val_ua"}
    assert {by_ua.stage_train(s).patience for s in ("frlm", "urlm", "fusion")} == {10}
    assert by_ua.variant == "patience=10, monitor=val_ua" and late.fusion_train.monitor == "val_loss"
    with pytest.raises(ValueError, match="val_loss or val_ua"):
        studies.with_stopping(late, monitor="ua")
    assert average.late_weights == (0.5,) and average.variant == "w=0.5"
    assert late.variant == "" and len(late.late_weights) == 21  # chosen on validation among 0, 0.05, ..., 1
    assert [c.variant for c in studies.late_fusion_study("emodb")] == ["", "w=0.5"]
    assert (stages.stage_train("frlm").lr, stages.stage_train("urlm").lr, stages.stage_train("fusion").lr) == (1e-3, 1e-4, 5e-4)
    assert stages.variant == "lr frlm=0.001,urlm=0.0001,fusion=0.0005"
    assert se.urlm.se_ratio == 8 and se.variant == "r=8"
    assert hidden.frlm.hidden_size == 256 and hidden.variant == "hidden=256"
    assert train.variant == "rmsprop,bs=64; lr=5e-05"
    assert {t.batch_size for t in (train.branch_train, train.fusion_train)} == {64}
    assert {t.lr for t in (train.branch_train, train.fusion_train)} == {5e-5}
    assert plain.variant == "" and plain.urlm.se_ratio == 16
    # the study notebook's configurations carry the same labels
    table3 = {c.variant: c for c in studies.se_ratio_study("emodb") if c.recipe == "paper"}
    assert list(table3) == ["r=2", "r=4", "r=8", "r=16", "r=32"] and table3["r=8"].urlm.se_ratio == 8
    assert "hidden=256" in {c.variant for c in studies.hidden_size_study("emodb")}
    assert "rmsprop,bs=64" in {c.variant for c in studies.optimizer_batch_study("emodb")}


def test_late_weight_needs_the_late_model_and_a_weight_in_0_1(tmp_path, capsys):
    common = ["train", "--corpus", str(tmp_path / "nowhere"), "--summary", ""]
    assert cli.main(common + ["--late-weight", "0.5"]) == 2
    assert cli.main(common + ["--model", "late", "--late-weight", "1.5"]) == 2
    assert "--late-weight" in capsys.readouterr().err


def test_pretrain_trains_the_suites_branch_folds_once(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    args = ["pretrain", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0",
            "--profile", "quick", "--studies", "", "--no-loso", "--serial", "--threads", "1", "--run-dir", str(tmp_path / "runs")]
    assert cli.main(args) == 0  # serial: the same units as on Ray (test_engine.py compares the two run stores)
    out = capsys.readouterr().out
    assert "5 experiments" in out and "15 stage-1 trainings" in out and "trained 15," in out  # frlm, urlm, early x 5 folds
    assert cli.main(args) == 0
    assert "trained 0, 15 were finished" in capsys.readouterr().out
    # the ablations' fusion models now find their branches and train only their heads
    rc = cli.main(["train", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0",
                   "--model", "amsnet", "--profile", "quick", "--run-dir", str(tmp_path / "runs"), "--summary", ""])
    assert rc == 0 and "[protocol: paper]" in capsys.readouterr().out
    assert len(list((tmp_path / "runs").glob("frlm-*/seed0/fold*/model.pt"))) == 5  # not retrained elsewhere


def _pretrain_args(tmp_path, studies: str) -> list[str]:
    """`amsnet pretrain` of the quick profile on the synthetic corpus, serial, `[paper]` only."""
    return ["pretrain", "--corpus", str(_corpus(tmp_path)), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1",
            "--duration", "1.0", "--profile", "quick", "--studies", studies, "--no-loso", "--serial", "--threads", "1",
            "--run-dir", str(tmp_path / "runs")]


def test_pretrain_variants_selects_experiments_by_their_label(tmp_path, capsys):
    """`--variants`: only the experiments whose variant label contains one of the texts (how a
    time-boxed GPU call trains one part of a study, benchmarks/gpu_studies.sh)."""
    base = _pretrain_args(tmp_path, "se_ratio")
    assert cli.main(base + ["--variants", "r=2", "r=32", "--recipe", "paper"]) == 0
    out = capsys.readouterr().out
    # AMSNet with r=2 and r=32 (the paper recipe's; Table 3 has the tuned recipe's too): one FRLM shared,
    # two URLMs, 5 folds each; the ablations have no label
    assert "2 experiments" in out and "15 stage-1 trainings" in out
    assert len({p.parent.parent.parent.name for p in (tmp_path / "runs").glob("urlm-*/seed0/fold*/metrics.json")}) == 2
    with pytest.raises(SystemExit, match="no experiment of the suite has a variant containing"):
        cli.main(base + ["--variants", "r=5"])


def test_pretrain_models_selects_experiments_by_their_model(tmp_path, capsys):
    """`--models`: only those models' experiments (a fusion model's branches still train)."""
    assert cli.main(_pretrain_args(tmp_path, "") + ["--models", "early"]) == 0
    out = capsys.readouterr().out
    assert "1 experiments" in out and "5 stage-1 trainings" in out
    assert {p.name.split("-")[0] for p in (tmp_path / "runs").iterdir()} == {"early"}
    with pytest.raises(SystemExit, match="is a model of"):  # Table 3's variants are all AMSNet
        cli.main(_pretrain_args(tmp_path, "se_ratio") + ["--variants", "r=2", "--models", "early"])


def test_pretrain_recipe_selects_experiments_by_their_training_recipe(tmp_path, capsys):
    """`--recipe tuned`: the tuned rows without the paper recipe's ablations, which every suite holds
    (how benchmarks/cpu_table5_run.sh times the tuned Table 5 alone)."""
    assert cli.main(_pretrain_args(tmp_path, "tuned_recipe") + ["--models", "urlm", "--recipe", "tuned"]) == 0
    out = capsys.readouterr().out
    assert "1 experiments" in out and "5 stage-1 trainings" in out
    configs = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/config.json")]
    assert len(configs) == 1 and configs[0]["model"] == "urlm" and configs[0]["train"]["optimizer"] == "adamw"  # the paper recipe: rmsprop
    with pytest.raises(SystemExit, match="uses the tuned recipe"):  # Fig. 7's variants are the paper recipe's
        cli.main(_pretrain_args(tmp_path, "hidden_size") + ["--variants", "hidden=32", "--recipe", "tuned"])


def test_pretrain_help_names_every_study(capsys):
    """`--studies` lists what the suite accepts, taken from the registries (it once missed one)."""
    from amsnet_lib import studies

    assert cli.main(["pretrain", "--help"]) == 0  # argparse's exit becomes main's return value
    help_text = " ".join(capsys.readouterr().out.split())
    for name in studies.STUDIES:
        assert name in help_text or name == "ablations"  # the ablations are always part of the suite


def test_compare_tests_finished_models_against_the_first_and_trains_nothing(tmp_path, capsys):
    import pandas as pd

    corpus = _corpus(tmp_path)
    common = ["--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0",
              "--profile", "quick", "--folds", "2", "--run-dir", str(tmp_path / "runs")]
    for model in ("urlm", "frlm"):
        assert cli.main(["train", *common, "--model", model, "--summary", "", "--threads", "1"]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    out = tmp_path / "cmp.csv"
    assert cli.main(["compare", "urlm", "frlm", *common, "--resamples", "300", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "urlm against frlm" in printed and "protocol paper" in printed and "| frlm |" in printed
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == before  # nothing trained
    written = pd.read_csv(out)
    assert list(written["model"]) == ["frlm"] and {"ΔWA (pp)", "p (WA, McNemar)"} <= set(written.columns)
    # a model never trained, one model, the same model twice: refused with the fix
    assert cli.main(["compare", "urlm", "concat", *common]) == 2
    assert "train it first" in capsys.readouterr().err
    assert cli.main(["compare", "urlm", *common]) == 2
    assert cli.main(["compare", "urlm", "urlm", *common]) == 2
    assert "two or more different models" in capsys.readouterr().err


def test_features_groups_warnings_by_reason_and_writes_them_all(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    for i in range(3):  # three clipped recordings: one grouped line, not three
        sf.write(corpus / "loud" / f"clip{i}.wav", np.clip(3 * sine(0.7, freq=200.0 + 10 * i), -1, 1), 16000)
    report = tmp_path / "warnings.csv"
    args = ["features", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1",
            "--duration", "1.0", "--report", str(report)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "3 warning(s), 1 reason(s):" in out and "3 x clipped (e.g. " in out and str(report) in out
    assert sum("clip" in line for line in out.splitlines()) == 1  # one grouped line, not one per file
    import pandas as pd

    assert sorted(pd.read_csv(report)["path"].map(lambda p: os.path.basename(p))) == ["clip0.wav", "clip1.wav", "clip2.wav"]
    assert "corpus: corpus" in out  # a folder corpus is named after its folder, not "custom"
    # without --report the list goes to reports/ beside the feature cache
    assert cli.main(args[:-2]) == 0
    assert (tmp_path / "reports" / "features_corpus_warnings.csv").is_file()


def test_search_command_records_its_trials_and_writes_their_table(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    args = ["search", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0",
            "--stage", "frlm", "--trials", "1", "--profile", "quick", "--root", str(tmp_path / "search"),
            "--table", str(tmp_path / "tables"), "--threads", "1", "--serial", "--weights-from", "none"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "one after another in this process" in out
    table = (tmp_path / "tables" / "recipe_search_corpus_frlm.md").read_text()
    assert "val_ua" in table and "no trial evaluated a test fold" in table
    assert len(list((tmp_path / "search").rglob("val.json"))) == 5 and not list(tmp_path.rglob("predictions.csv"))
    assert cli.main(args) == 0  # resumed: the finished trial is kept, nothing trained again
    assert len(list((tmp_path / "search").rglob("model.pt"))) == 5


def test_pretrain_seeds_trains_only_those_seeds_and_later_runs_add_the_rest(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    base = ["pretrain", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0",
            "--profile", "quick", "--studies", "training_seeds", "--no-loso", "--serial", "--threads", "1",
            "--run-dir", str(tmp_path / "runs"), "--variants", "seeds"]
    assert cli.main(base + ["--seeds", "1"]) == 0
    seeds = {p.parent.parent.name for p in (tmp_path / "runs").glob("*-*/seed*/fold*/metrics.json")}
    assert seeds == {"seed1"}
    capsys.readouterr()
    assert cli.main(base) == 0  # every seed of the study: seed 1 is not trained again
    seeds = {p.parent.parent.name for p in (tmp_path / "runs").glob("*-*/seed*/fold*/metrics.json")}
    assert seeds == {f"seed{k}" for k in studies.QUICK_TRAINING_SEEDS} and "were finished already" in capsys.readouterr().out


def test_help_shows_every_default():
    """docs/CLI.md says `--help` prints every default; --model, --protocol, --recipe, --profile,
    --seeds, --split-seed, --format, --trials and others once had none (issue #39)."""
    import argparse

    from amsnet_lib.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, p in sub.choices.items():
        formatter = p._get_formatter()
        for action in p._actions:
            if not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
                continue
            if "default" not in formatter._get_help_string(action).lower():
                missing.append(f"{name} {action.option_strings[0]}")
    assert not missing, missing
    assert "(default: paper)" in sub.choices["train"].format_help().replace("\n", " ")


def test_fit_takes_every_configuration_option_of_train():
    """README: `amsnet train ... --recipe tuned` then `amsnet fit` with the same options gives that
    configuration on all the data; fit must accept every option of train that configures the model
    or its training (not the folds, seeds or reporting, which fitting on everything has none of)."""
    import argparse

    from amsnet_lib.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    dests = {name: {a.dest for a in p._actions} for name, p in sub.choices.items()}
    not_configuration = {"protocol", "split_file", "folds", "split_seed", "seeds", "summary", "finished_only", "fold",
                         "workers", "ensemble", "ray_address", "serial"}
    assert dests["train"] - not_configuration <= dests["fit"], dests["train"] - not_configuration - dests["fit"]
    assert {"recipe", "model", "profile", "augment", "epochs", "lr", "normalisation", "like"} <= dests["fit"]
    # what does not apply to fit is said in its --help
    fit_help = " ".join(sub.choices["fit"].format_help().split())
    assert all(f"--{o}" in fit_help.split("do not apply")[0] for o in ("protocol", "split-file", "folds", "split-seed", "seeds"))
