"""Scripts that run_all.sh calls: run as `python -m scripts.<name>`, on the library's public API."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from scripts import update_docs
from test_report import AVAIL, SUMMARY

ROOT = Path(__file__).resolve().parents[1]


def test_readme_headline_block_is_replaced_between_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{update_docs.START}\nold numbers\n{update_docs.END}\nafter\n")
    block = update_docs.headline(SUMMARY, AVAIL, ["paper", "loso"], ["fig4_confusion_emodb_paper.png"])
    assert update_docs.replace_block(readme, block)
    text = readme.read_text()
    assert "old numbers" not in text and text.startswith("# title\n\nbefore\n") and text.endswith(f"{update_docs.END}\nafter\n")
    assert "| AMSNet | 88.34 / 88.56 | 80.00 / 78.50 | -8.34 / -10.06 |" in text  # ours beside the paper's, with Δ
    assert "not run" in text  # early fusion was not measured
    assert "results/figures/fig4_confusion_emodb_paper.png" in text
    # a second update replaces the block instead of adding one
    assert update_docs.replace_block(readme, "new")
    assert readme.read_text().count(update_docs.START) == 1 and "\nnew\n" in readme.read_text()


def test_readme_without_markers_is_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert not update_docs.replace_block(readme, "x")
    assert readme.read_text() == "# no markers\n"
    findings = tmp_path / "FINDINGS.md"
    findings.write_text("# no markers either\n")
    assert update_docs.main(["--readme", str(readme), "--findings", str(findings), "--results", str(tmp_path)]) == 1
    assert readme.read_text() == "# no markers\n" and findings.read_text() == "# no markers either\n"


def test_key_figures_put_each_recipe_and_protocol_beside_each_other():
    import pandas as pd

    rows = [("emodb", "paper", "paper", "frlm", "", 63.18, 59.44), ("emodb", "paper", "tuned", "frlm", "", 84.30, 83.14),
            ("emodb", "loso", "tuned", "frlm", "", 71.14, 69.48), ("emodb", "paper", "paper", "frlm", "seeds=0,1,2", 63.49, 59.78),
            ("emodb", "paper", "tuned", "late", "w=0.5", 85.79, 85.13)]
    summary = pd.DataFrame(rows, columns=["corpus", "protocol", "recipe", "model", "variant", "wa", "ua"])
    summary = pd.concat([summary, pd.DataFrame([("emodb", "paper", "tuned", "amsnet", "ensemble of 3 seeds", 87.0, 86.5)],
                                               columns=summary.columns)])
    block = update_docs.key_figures(summary, chosen={"frlm": 1, "amsnet": 3})
    frlm = next(line for line in block.splitlines() if line.startswith("| FRLM |"))
    assert frlm == ("| FRLM | 63.18 / 59.44 | 84.30 / 83.14 | not run | 71.14 / 69.48 | not run | not run | 63.49 / 59.78 "
                    "| 1 member chosen: the tuned row |")
    assert next(line for line in block.splitlines() if line.startswith("| AMSNet |")).endswith("| 87.00 / 86.50 |")
    assert next(line for line in block.splitlines() if line.startswith("| URLM |")).endswith("| not run |")
    assert "| Late fusion, w = 0.5 | not run | 85.79 / 85.13 |" in block


def test_the_committed_readme_headline_is_what_the_committed_results_give(capsys):
    assert update_docs.main(["--check"]) == 0, capsys.readouterr().out


def _private_uses(path: Path) -> list[str]:
    """Private names of the library a file imports (``from amsnet_lib.x import _y``, ``amsnet_lib._m``),
    and any edit of ``sys.path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("amsnet_lib"):
            private = [a.name for a in node.names if a.name.startswith("_")]
            if private or any(p.startswith("_") for p in node.module.split(".")):
                found.append(f"from {node.module} import {', '.join(a.name for a in node.names)}")
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names
                      if a.name.startswith("amsnet_lib") and any(p.startswith("_") for p in a.name.split("."))]
        if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
            found.append("sys.path")
    return found


def test_scripts_and_benchmarks_use_the_public_api_only():
    """No script, diagnostic or benchmark imports a private name of the library or edits sys.path: they
    run as `python -m scripts.<name>`, `python -m scripts.diagnostics.<name>`, `python -m benchmarks.<name>`."""
    files = sorted((ROOT / "scripts").rglob("*.py")) + sorted((ROOT / "benchmarks").rglob("*.py"))
    assert any(f.parent.name == "diagnostics" for f in files) and any(f.parent.name == "benchmarks" for f in files)
    bad = {f.relative_to(ROOT).as_posix(): uses for f in files if (uses := _private_uses(f))}
    assert not bad, bad
    shell = "\n".join(p.read_text() for p in [*(ROOT / "benchmarks").glob("*.sh"), ROOT / "run_all.sh"])
    assert not re.search(r"python\"? (benchmarks|scripts)/\w+\.py", shell)  # run as modules, from the root


def test_notebooks_use_the_public_api_only():
    """Notebooks call the library and hold no logic: no private name of it (``module._name``, ``s._name``)."""
    import json

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            tree = ast.parse("\n".join(line for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!"))))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                    raise AssertionError(f"{path.name} uses the private name {node.attr}")
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("amsnet_lib"):
                    assert not [a.name for a in node.names if a.name.startswith("_")], (path.name, node.module)


def test_a_gpu_studies_session_whose_tarball_came_back_split_is_recorded_whole(tmp_path):
    """gpu_studies.sh splits a large runs.tgz (SPLIT_MB) so it fits the transfer; the record joins
    the parts again, and the table reads the runs from it."""
    import io
    import json
    import tarfile

    from scripts.diagnostics import gpu_studies_report

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("urlm-abc/config.json", {"model": "urlm", "train": {"optimizer": "adamw", "lr": 3e-4, "batch_size": 32}}),
                           ("urlm-abc/seed0/fold0/metrics.json", {"wa": 0.8, "ua": 0.7, "seconds": 60.0, "device": "cuda"})):
            raw = json.dumps(data).encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    blob = buf.getvalue()
    src = tmp_path / "session"
    src.mkdir()
    (src / "timings.txt").write_text("start urlm 0\nend urlm 30\n")
    half = len(blob) // 2
    (src / "runs.tgz.part-aa").write_bytes(blob[:half])
    (src / "runs.tgz.part-ab").write_bytes(blob[half:])
    dst = tmp_path / "studies" / "s1"
    gpu_studies_report.record(src, dst)
    assert (dst / "runs.tgz").read_bytes() == blob and not list(dst.glob("runs.tgz.part-*"))
    assert "| urlm-abc | urlm | adamw |" in gpu_studies_report.table(tmp_path / "studies")


def test_headline_compares_loso_with_our_own_paper_protocol_figure_not_the_papers():
    """Issue #39: the "Δ [loso]" column subtracted the paper's speaker-dependent figure from a
    leave-one-speaker-out result (two tasks); the headline shows our own LOSO gap instead, and
    rows beyond the paper say so in the row."""
    import pandas as pd

    summary = pd.read_csv(ROOT / "results" / "tables" / "summary.csv", keep_default_na=False)
    block = update_docs.block_from_results(ROOT / "results")
    header = next(line for line in block.splitlines() if line.startswith("| model"))
    assert "Δ WA / UA [loso]" not in header and "LOSO gap" in header
    row = next(line for line in block.splitlines() if line.startswith("| AMSNet |"))
    paper = summary[(summary.corpus == "emodb") & (summary.model == "amsnet") & (summary.variant == "")
                    & (summary.recipe == "paper")]
    p = paper[paper.protocol == "paper"].iloc[0]
    l = paper[paper.protocol == "loso"].iloc[0]
    assert row.rstrip(" |").endswith(f"{float(l.wa) - float(p.wa):+.2f} / {float(l.ua) - float(p.ua):+.2f}")
    for line in block.splitlines():
        if line.startswith("| ") and ("tuned recipe" in line or "ensemble" in line):
            assert "beyond the paper" in line, line
        if "ensemble of" in line:
            assert "networks vs the paper's 1" in line, line


def test_the_retraining_cost_in_the_readme_comes_from_the_timed_runs_files():
    read = lambda p: (ROOT / "results" / p).read_text()  # noqa: E731
    text = update_docs.retraining_cost(read("cpu_amsnet_run.txt"), read("cpu_table5_run.txt"), read("tables/gpu_suite.md"))
    assert "5-fold AMSNet [paper] (paper recipe) 35 min of wall on a 2-core CPU" in text  # 35:23 in the file
    assert "Table 5 (EmoDB, [paper]) 42 min of wall" in text  # 42:11 in the file
    assert "661 s of wall (11.0 min) for 46 of the 460 trainings, the rest not measured" in text
    missing = update_docs.retraining_cost(None, None, None)
    assert missing.count("not run") == 3 and "min of wall" not in missing
    readme = (ROOT / "README.md").read_text()
    assert readme.split(update_docs.COST_START)[1].split(update_docs.COST_END)[0].strip() == text


def test_the_headline_sets_ravdess_amsnet_beside_the_classic_baselines_once_it_is_measured():
    import pandas as pd

    from scripts.update_docs import emobox_note

    cols = ["corpus", "protocol", "recipe", "model", "variant", "wa", "ua"]
    rows = [("ravdess", "emobox", "paper", "compare-svm", "", 54.44, 55.40),
            ("ravdess", "emobox", "paper", "egemaps-svm", "", 48.47, 48.31)]
    assert emobox_note(pd.DataFrame(rows, columns=cols)) is None
    rows.append(("ravdess", "emobox", "tuned", "amsnet", "", 55.0, 55.0))
    note = emobox_note(pd.DataFrame(rows, columns=cols))
    assert "AMSNet, tuned recipe 55.00 / 55.00" in note
    assert "ComParE functionals + linear SVM 54.44 / 55.40 (above AMSNet in UA)" in note
    assert "eGeMAPS functionals + linear SVM 48.47 / 48.31 (below AMSNet)" in note


def test_the_cross_corpus_line_quotes_its_fixed_setting_and_says_which_is_above():
    """The headline's cross-corpus line reads one setting fixed beforehand (four classes, --adapt corpus),
    never the best row on the test corpus, and leaves out what was not run."""
    import pandas as pd

    cols = ["model", "train", "test", "classes", "adapt", "UA (%)"]
    rows = [["AMSNet, tuned recipe", "emodb", "ravdess", "four", "corpus", "43.36"],
            ["AMSNet, tuned recipe", "emodb", "ravdess", "four", "speaker", "60.00"],  # higher, not the line's setting
            ["AMSNet, tuned recipe", "emodb", "ravdess", "shared", "corpus", "31.25"],
            ["ComParE 2016 functionals + linear SVM", "emodb", "ravdess", "four", "corpus", "49.61"],
            ["AMSNet, tuned recipe", "ravdess", "emodb", "four", "corpus", "not run"]]
    table = pd.DataFrame(rows, columns=cols)
    line = update_docs.cross_corpus_note(table)
    assert "EmoDB → RAVDESS: AMSNet, tuned recipe 43.36, ComParE functionals + linear SVM 49.61" in line
    assert "60.00" not in line and "RAVDESS → EmoDB" not in line and "the baseline above AMSNet in every direction" in line
    table.loc[3, "UA (%)"] = "40.00"
    assert "AMSNet above the baseline in every direction" in update_docs.cross_corpus_note(table)
    assert update_docs.cross_corpus_note(table[table["model"] != "AMSNet, tuned recipe"]) is None
    assert update_docs.cross_corpus_note(None) is None


def _speaker_manifest(tmp_path, speakers: int):
    """``mine.csv``: ``speakers`` speakers, each three tones of two classes (a tiny corpus for loso)."""
    import pandas as pd
    import soundfile as sf

    from signals import tone

    rows = []
    for s in range(1, speakers + 1):
        for label, f0 in (("calm", 140.0), ("loud", 300.0)):
            for i in range(3):
                path = tmp_path / "audio" / f"s{s}_{label}{i}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, tone(0.6, f0 * (1 + 0.03 * i + 0.01 * s), seed=i), 16000)
                rows.append({"path": str(path), "label": label, "speaker": f"s{s}"})
    manifest = tmp_path / "mine.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def test_unseen_speaker_selection_trains_the_best_validation_trial_and_the_recipe_then_tabulates_both(tmp_path, capsys):
    """A quick search on speaker-held-out validation (one trial: the recipe, so the best is trial 0), then the
    script: the table has the search's validation figures and the test figures of what it trained; no test
    fold is read by the search."""
    import pandas as pd

    from amsnet_lib import cli
    from scripts import unseen_speaker_selection

    manifest = _speaker_manifest(tmp_path, 4)
    common = ["--corpus", str(manifest), "--cache-dir", str(tmp_path / "cache"), "--profile", "quick"]
    assert cli.main(["search", *common, "--jobs", "1", "--stage", "frlm", "--trials", "1", "--protocol", "loso",
                     "--validation", "speaker", "--root", str(tmp_path / "runs" / "search"), "--table", str(tmp_path / "tables"),
                     "--threads", "1", "--serial", "--weights-from", "none"]) == 0
    assert (tmp_path / "tables" / "recipe_search_mine_frlm_loso_speaker_validation.md").is_file()
    assert not list((tmp_path / "runs").rglob("predictions.csv"))  # the search read no test fold
    # a trial's values come back as the search used them: trial 0's build the recipe itself, ints as ints
    _, values = unseen_speaker_selection.finished_trials("frlm", "mine", "loso", "quick", tmp_path / "runs" / "search")
    built = unseen_speaker_selection.configuration("frlm", "mine", "loso", "quick", values[0], "speaker", "")
    recipe = unseen_speaker_selection.configuration("frlm", "mine", "loso", "quick", None, "speaker", "")
    assert built == recipe and type(built.stage_train("frlm").epochs) is int and type(built.frlm.frame_stack) is int
    capsys.readouterr()
    assert unseen_speaker_selection.main(["--stage", "frlm", *common, "--protocol", "loso", "--run-dir", str(tmp_path / "runs"),
                                          "--tables", str(tmp_path / "tables"), "--device", "cpu"]) == 0
    table = pd.read_csv(tmp_path / "tables" / "unseen_speaker_selection_mine_loso_frlm.csv", dtype={"trial": str})
    assert table["configuration"].iloc[0] == unseen_speaker_selection.TRIAL0 and str(table["trial"].iloc[0]) == "0"
    assert table["configuration"].iloc[-1] == unseen_speaker_selection.TABLE2
    assert table["WA [loso] (%)"].iloc[-1] == "not run"  # the recipe's own loso run is not in this store
    trained = table.iloc[:-1]
    assert set(trained["configuration"]) <= {unseen_speaker_selection.TRIAL0, unseen_speaker_selection.CHOSEN}
    assert trained[["val UA (%)", "WA [loso] (%)", "UA [loso] (%)"]].notna().all().all()
    # each configuration trained once on the four leave-one-speaker-out folds, its test folds read then
    assert len(list((tmp_path / "runs").glob("frlm-*/seed0/*/predictions.csv"))) == 4 * len(trained)
    assert "validation speakers" in (tmp_path / "tables" / "unseen_speaker_selection_mine_loso_frlm.md").read_text()


def test_unseen_speaker_options_score_on_validation_speakers_then_test_only_the_chosen_and_the_recipe(tmp_path, capsys):
    """Each option scored like a search trial (no test fold read under --validation-only), then the chosen one
    and the recipe trained under the protocol; an option not chosen is never tested. Ties keep the recipe."""
    import pandas as pd
    import pytest

    from scripts import unseen_speaker_options as options

    tie = pd.DataFrame({"configuration": [options.RECIPE, "x"], "val UA (%)": [50.0, 50.0], "val WA (%)": [60.0, 60.0]})
    assert options.choose(tie) == options.RECIPE
    assert options.choose(tie.assign(**{"val WA (%)": [60.0, 61.0]})) == "x"
    # each option changes one thing: the pitch candidate of each stage trains that stage on pitch copies
    for stage in ("frlm", "urlm"):
        exps = options.candidates(stage, "emodb", "loso", "quick", list(options.OPTIONS))
        assert exps["augment pitch"].stage_train(stage).augment == "pitch" and exps["augment pitch"].audio_augment == "pitch"
        assert exps["normalisation speaker"].normalisation == "speaker"
        assert exps["normalisation utterance"].stage_train(stage) == exps[options.RECIPE].stage_train(stage)

    manifest = _speaker_manifest(tmp_path, 3)
    common = ["--stage", "frlm", "--corpus", str(manifest), "--protocol", "loso", "--profile", "quick", "--options",
              "normalisation utterance", "--run-dir", str(tmp_path / "runs"), "--tables", str(tmp_path / "tables"),
              "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    csv = tmp_path / "tables" / "unseen_speaker_options_mine_loso_frlm.csv"
    with pytest.raises(SystemExit):  # ensembles come after the test that --validation-only skips: said, not ignored
        options.main(common + ["--validation-only", "--ensemble", "3"])
    assert "drop one of them" in capsys.readouterr().err and not csv.exists()
    assert options.main(common + ["--validation-only"]) == 0
    assert not list((tmp_path / "runs").rglob("predictions.csv"))
    val = pd.read_csv(csv)
    assert list(val["configuration"]) == [options.RECIPE, "normalisation utterance"]
    assert val[["val UA (%)", "val WA (%)"]].notna().all().all() and (val["chosen"] == "yes").sum() == 1
    assert len(list((tmp_path / "runs" / "search" / "folds").rglob("val.json"))) == 2 * 3  # 2 candidates x 3 folds
    capsys.readouterr()
    assert options.main(common) == 0
    table = pd.read_csv(csv, dtype=str)
    assert table[["val UA (%)", "val WA (%)"]].equals(val[["val UA (%)", "val WA (%)"]].astype(str))  # read back
    chosen = table.loc[table["chosen"] == "yes", "configuration"].item()
    tested = table.set_index("configuration")["WA [loso] (%)"]
    assert tested[options.RECIPE] != options.NOT_TESTED and tested[chosen] != options.NOT_TESTED
    assert (tested == options.NOT_TESTED).sum() == (0 if chosen == "normalisation utterance" else 1)
    # the recipe, and the option when chosen, each trained once on the three folds: their test folds read then
    assert len(list((tmp_path / "runs").glob("frlm-*/seed0/*/predictions.csv"))) == 3 * (1 + (chosen != options.RECIPE))
    # --ensemble: the chosen configuration's ensembles of 1 and 2 members on the validation speakers, only the size
    # kept read on the test folds (the single network's are those above)
    assert options.main(common + ["--ensemble", "2"]) == 0
    ens = pd.read_csv(tmp_path / "tables" / "unseen_speaker_options_mine_loso_frlm_ensemble.csv", dtype=str)
    assert list(ens["members"]) == ["1", "2"] and (ens["chosen"] == "yes").sum() == 1
    k = int(ens.loc[ens["chosen"] == "yes", "members"].item())
    assert ens.loc[ens["members"] == "1", "WA [loso] (%)"].item() == tested[chosen]
    assert (ens["WA [loso] (%)"] == options.NOT_TESTED).sum() == (k == 1)
    assert len(list((tmp_path / "runs").glob("ensemble-*/seed0/*/predictions.csv"))) == 3 * (k == 2)
    assert len(list((tmp_path / "runs").glob("ensemble-*/seed0/*/validation.csv"))) == 3


def test_the_cross_corpus_row_chosen_for_unheard_speakers_fits_the_committed_run_of_that_choice(emodb_dir, tmp_path,
                                                                                               monkeypatch):
    """scripts/cross_corpus.py fits the option unseen_speaker_options chose (`amsnet fit --like` its run): the run
    it names is the committed one of that choice, and a store without it is an error naming what trains it."""
    import pytest

    from scripts import cross_corpus

    monkeypatch.setenv("AMSNET_EMODB_DIR", str(emodb_dir))  # as found here: the script finds it by its setting
    runs = Path(__file__).resolve().parents[1] / "runs"
    run = cross_corpus.unheard_run("frlm-pitch", str(runs))
    assert run.parent == runs and (run / "config.json").is_file()
    assert '"augment": "pitch"' in (run / "config.json").read_text()
    with pytest.raises(SystemExit, match="scripts.unseen_speaker_options --stage frlm"):
        cross_corpus.unheard_run("frlm-pitch", str(tmp_path))
