"""Report tables on synthetic results: the paper's value, ours, the difference, 'not run', protocol labels."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amsnet_lib.report import paper, report, session, tables, timings
from amsnet_lib import paths, studies
from amsnet_lib.train import runstore, training, units


def _summary(rows):
    cols = ["corpus", "protocol", "model", "variant", "n_folds", "n_seeds", "wa", "ua", "wa_std", "ua_std", "train_seconds"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)


SUMMARY = _summary([
    ("emodb", "paper", "amsnet", "", 5, 1, 80.00, 78.50, 1.0, 1.2, 100.0),
    ("emodb", "loso", "amsnet", "", 10, 1, 70.10, 65.00, 3.0, 4.0, 200.0),
    ("emodb", "paper", "frlm", "", 5, 1, 74.14, 74.46, 1.0, 1.0, 50.0),
    ("emodb", "paper", "amsnet", "r=8", 5, 1, 81.59, 80.00, 1.0, 1.0, 90.0),
])
AVAIL = {"emodb": None, "iemocap": tables.NOT_AVAILABLE + " (no IEMOCAP at /x)"}
SE_PARAMS = {(recipe, r): 1 for recipe in tables.RECIPES for r in studies.SE_RATIOS}  # Table 3's, not built


def test_table2_literature_rows_marked_and_ours_beside_paper():
    t = tables.comparison_table2(SUMMARY, ["paper", "loso"], AVAIL)
    # ours: the paper and the tuned recipe, and the two classic baselines after each AMSNet
    assert len(t) == len(paper.TABLE2) + sum(r.amsnet for r in paper.TABLE2) * (1 + len(tables.BASELINE_LABELS))
    tuned = t[t["model"] == "AMSNet" + tables.TUNED_SUFFIX]
    assert len(tuned) == 2 and (tuned["WA ours [paper] (%)"].iloc[[0, 1]] != 80.00).all()
    lit = t[t["source"] == tables.REPORTED_NOT_RERUN]
    assert len(lit) == sum(not r.amsnet for r in paper.TABLE2)
    assert (lit["WA ours [paper] (%)"] == tables.NOT_RERUN).all()
    emodb = t[(t["model"] == "AMSNet") & (t["corpus"] == "EmoDB")].iloc[0]
    assert emodb["WA reported [paper] (%)"] == 88.34
    assert emodb["WA ours [paper] (%)"] == 80.00
    assert emodb["ΔWA [paper]"] == pytest.approx(80.00 - 88.34)
    assert emodb["UA ours [loso] (%)"] == 65.00
    assert emodb["ΔUA [loso]"] == pytest.approx(65.00 - 88.56)


def test_table2_shows_amsnets_seed_ensemble_only_where_one_was_chosen():
    from amsnet_lib.train.ensemble import ensemble_label

    tuned = _summary([("emodb", "paper", "amsnet", "", 5, 1, 87.85, 87.36, 1.0, 1.0, 1.0),
                      ("emodb", "paper", "frlm", ensemble_label(5), 5, 1, 87.10, 86.26, 1.0, 1.0, 1.0)]).assign(recipe="tuned")
    summary = pd.concat([SUMMARY.assign(recipe="paper"), tuned])
    t = tables.comparison_table2(summary, ["paper", "loso"], AVAIL)
    assert not t["model"].str.contains("ensemble").any()  # FRLM's ensemble is no row of Table 2
    summary = pd.concat([summary, _summary([("emodb", "paper", "amsnet", ensemble_label(3), 5, 1, 88.60, 88.24,
                                             1.0, 1.0, 1.0)]).assign(recipe="tuned")])
    t = tables.comparison_table2(summary, ["paper", "loso"], AVAIL)
    ens = t[t["model"] == f"AMSNet{tables.TUNED_SUFFIX}, {ensemble_label(3)}"]
    assert len(ens) == 1 and ens["corpus"].iloc[0] == "EmoDB"  # IEMOCAP has none
    row = ens.iloc[0]
    assert row["WA ours [paper] (%)"] == 88.60 and row["ΔUA [paper]"] == pytest.approx(88.24 - 88.56)
    assert row["WA ours [loso] (%)"] == tables.NOT_RUN  # measured under the paper's protocol only
    single = t[(t["model"] == "AMSNet" + tables.TUNED_SUFFIX) & (t["corpus"] == "EmoDB")].iloc[0]
    assert single["WA ours [paper] (%)"] == 87.85  # the single network keeps its own row
    # notebooks 02 and 03 leave ensembles out: their tables must not depend on an earlier run's summary
    assert not tables.comparison_table2(summary, ["paper"], AVAIL, ensembles=False)["model"].str.contains("ensemble").any()
    assert tables.ablation_table(summary, "emodb", ["paper"], AVAIL)["model"].str.contains("ensemble").sum() == 2
    assert not tables.ablation_table(summary, "emodb", ["paper"], AVAIL, ensembles=False)["model"].str.contains("ensemble").any()


def test_table2_unavailable_corpus_says_so_never_a_number():
    t = tables.comparison_table2(SUMMARY, ["paper", "loso"], AVAIL)
    iem = t[(t["model"] == "AMSNet") & (t["corpus"] == "IEMOCAP")].iloc[0]
    assert iem["WA ours [paper] (%)"] == tables.NOT_AVAILABLE  # short in the cell; the path is in the report
    assert iem["ΔWA [paper]"] == tables.NOT_RUN
    assert iem["WA reported [paper] (%)"] == 69.22  # the paper's value is still shown


def test_ablation_table_not_run_cells_and_protocol_columns():
    summary = pd.concat([SUMMARY, _summary([("emodb", "paper", "late", "", 5, 1, 83.36, 83.01, 1.0, 1.0, 1.0),
                                            ("emodb", "paper", "late", "w=0.5", 5, 1, 84.49, 83.80, 1.0, 1.0, 1.0)])])
    summary = pd.concat([summary, _summary([("emodb", "paper", "frlm", "", 5, 1, 85.00, 84.00, 1.0, 1.0, 1.0)]).assign(recipe="tuned")])
    t = tables.ablation_table(summary, "emodb", ["paper", "loso"], AVAIL)
    labels = [paper.ABLATION_LABELS[m] for m in studies.ABLATION_MODELS] + [tables.LATE_FUSION_LABEL, tables.LATE_AVERAGE_LABEL]
    baselines = list(tables.BASELINE_LABELS.values())  # one row each, whatever the recipe
    assert list(t["model"]) == [x for label in labels for x in (label, label + tables.TUNED_SUFFIX)] + baselines
    tuned = t[t["model"] == "FRLM" + tables.TUNED_SUFFIX].iloc[0]  # its own row, never the paper recipe's
    assert tuned["WA ours [paper] (%)"] == 85.00 and tuned["ΔWA [paper]"] == pytest.approx(85.00 - 84.14)
    assert t[t["model"] == "AMSNet" + tables.TUNED_SUFFIX].iloc[0]["WA ours [paper] (%)"] == tables.NOT_RUN
    only_paper = tables.ablation_table(summary, "emodb", ["paper"], AVAIL, recipes=("paper",))
    assert list(only_paper["model"]) == labels + baselines
    late = t[t["model"] == tables.LATE_FUSION_LABEL].iloc[0]  # beyond the paper: ours only, no reported value or Δ
    assert late["WA ours [paper] (%)"] == 83.36 and late["UA ours [loso] (%)"] == tables.NOT_RUN
    assert t[t["model"] == tables.LATE_AVERAGE_LABEL].iloc[0]["WA ours [paper] (%)"] == 84.49
    assert late["WA reported [paper] (%)"] == late["ΔWA [paper]"] == late["ΔUA [loso]"] == tables.NOT_IN_PAPER
    frlm = t[t["model"] == "FRLM"].iloc[0]
    assert frlm["WA reported [paper] (%)"] == 84.14 and frlm["WA ours [paper] (%)"] == 74.14
    assert frlm["ΔWA [paper]"] == pytest.approx(-10.0)
    assert frlm["WA ours [loso] (%)"] == tables.NOT_RUN and frlm["ΔWA [loso]"] == tables.NOT_RUN
    early = t[t["model"] == "Early fusion"].iloc[0]
    assert early["UA ours [paper] (%)"] == tables.NOT_RUN
    assert all("[paper]" in c or "[loso]" in c for c in t.columns if c != "model")


def test_ablation_table_iemocap_unavailable():
    t = tables.ablation_table(SUMMARY, "iemocap", ["paper"], AVAIL)
    assert all(str(v).startswith(tables.NOT_AVAILABLE) for v in t["WA ours [paper] (%)"])
    assert list(t["WA reported [paper] (%)"]) == [v for m in studies.ABLATION_MODELS for v in [paper.ABLATIONS["iemocap"][m][0]] * 2] + [tables.NOT_IN_PAPER] * 6


def test_normalisation_table_pairs_corpus_and_speaker_rows_per_protocol():
    summary = _summary([
        ("emodb", "paper", "amsnet", "", 5, 1, 80.00, 78.50, 1.0, 1.2, 100.0),
        ("emodb", "paper", "amsnet", "normalisation=speaker", 5, 1, 83.25, 82.00, 1.0, 1.0, 100.0),
        ("emodb", "loso", "amsnet", "normalisation=speaker", 10, 1, 71.00, 69.00, 1.0, 1.0, 100.0),
        ("emodb", "paper", "frlm", "r=8", 5, 1, 99.0, 99.0, 1.0, 1.0, 1.0),  # another study's row: not picked up
    ])
    t = tables.normalisation_table(summary, "emodb", ["paper", "loso"], AVAIL)
    assert list(t["model"]) == [paper.ABLATION_LABELS[m] for m in studies.NORMALISATION_MODELS]
    am = t[t["model"] == "AMSNet"].iloc[0]
    assert am["WA corpus [paper] (%)"] == 80.00 and am["WA speaker [paper] (%)"] == 83.25
    assert am["ΔWA [paper]"] == pytest.approx(3.25) and am["ΔUA [paper]"] == pytest.approx(3.5)
    assert am["WA corpus [loso] (%)"] == tables.NOT_RUN and am["ΔWA [loso]"] == tables.NOT_RUN  # no corpus row: no Δ
    assert am["UA speaker [loso] (%)"] == 69.00
    frlm = t[t["model"] == "FRLM"].iloc[0]
    assert frlm["WA corpus [paper] (%)"] == tables.NOT_RUN and frlm["WA speaker [paper] (%)"] == tables.NOT_RUN
    md = report.build_report(summary, profile="full", protocols=["paper", "loso"], availability=AVAIL,
                             se_params=SE_PARAMS)
    assert "Beyond the paper: per-speaker feature standardisation, EmoDB" in md and "+3.25" in md
    assert "per-speaker feature standardisation, IEMOCAP" not in md  # a corpus not available has no such section


def test_se_ratio_table():
    params = {(recipe, r): 1000 * r + (recipe == "tuned") for recipe in tables.RECIPES for r in studies.SE_RATIOS}
    summary = pd.concat([SUMMARY.assign(recipe="paper"), _summary([("emodb", "paper", "amsnet", "r=8", 5, 1, 86.00, 85.00,
                                                                   1.0, 1.0, 1.0)]).assign(recipe="tuned")])
    t = tables.se_ratio_table(summary, ["paper"], AVAIL, params=params, profile="quick")
    assert list(t["recipe"]) == list(tables.RECIPES) * len(studies.SE_RATIOS)  # the tuned row beside each paper row
    r8 = t[(t["r"] == 8) & (t["recipe"] == "paper")].iloc[0]
    assert r8["ACC EmoDB reported [paper] (%)"] == 88.59 and r8["ACC EmoDB ours [paper] (%)"] == 81.59
    assert r8["ΔACC EmoDB [paper]"] == pytest.approx(-7.0)
    assert r8["params reported"] == 12.5e6 and r8["params ours (EmoDB, quick)"] == 8000
    tuned8 = t[(t["r"] == 8) & (t["recipe"] == "tuned")].iloc[0]  # its own measurement, never the paper recipe's
    assert tuned8["ACC EmoDB ours [paper] (%)"] == 86.00 and tuned8["ΔACC EmoDB [paper]"] == pytest.approx(86.00 - 88.59)
    assert tuned8["params ours (EmoDB, quick)"] == 8001
    r2 = t[(t["r"] == 2) & (t["recipe"] == "tuned")].iloc[0]
    assert r2["ACC EmoDB ours [paper] (%)"] == tables.NOT_RUN
    assert str(r2["ACC IEMOCAP ours [paper] (%)"]).startswith(tables.NOT_AVAILABLE)
    # without given counts, the tuned recipe's are its own: frame stacking widens FRLM's input
    counts = tables.se_ratio_table(None, ["paper"], AVAIL, corpora=["emodb"], profile="quick")
    by = {(rc, r): n for rc, r, n in zip(counts["recipe"], counts["r"], counts["params ours (EmoDB, quick)"])}
    assert by[("tuned", 16)] != by[("paper", 16)] and by[("paper", 2)] > by[("paper", 32)]


def test_nothing_measured_gives_not_run_everywhere():
    t = tables.comparison_table2(None, ["paper"], {})
    am = t[t["model"] == "AMSNet"]
    assert (am["WA ours [paper] (%)"] == tables.NOT_RUN).all()


def test_markdown_formats_and_escapes():
    df = pd.DataFrame({"model": ["a|b", "c"], "WA (%)": [88.3456, np.nan], "ΔWA [paper]": [-1.234, "not run"], "params": [11_200_000.0, 1234]})
    md = tables.markdown_table(df)
    lines = md.strip().splitlines()
    assert lines[0] == "| model | WA (%) | ΔWA [paper] | params |"
    assert "a\\|b" in lines[2] and "88.35" in lines[2] and "-1.23" in lines[2] and "11.20M" in lines[2]
    assert "not run" in lines[3] and "1,234" in lines[3]
    assert "+2.00" in tables.markdown_table(pd.DataFrame({"Δx": [2.0]}))


def test_write_table_csv_and_markdown_with_protocol(tmp_path):
    df = tables.ablation_table(SUMMARY, "emodb", ["paper"], AVAIL)
    csv, md = tables.write_table(df, tmp_path / "t" / "ablations_emodb_paper", "Table 5", tables.protocol_notes(["paper"], "quick"))
    back = pd.read_csv(csv)
    assert list(back.columns) == list(df.columns)
    text = md.read_text()
    assert text.startswith("**Table 5**") and "[paper] = speaker-dependent" in text and "Profile quick" in text
    assert not list((tmp_path / "t").glob(".tmp-*"))


def test_build_report_labels_protocols_and_marks_missing(tmp_path):
    timings = pd.DataFrame({"notebook": ["00_data_prep", "02_fusion"], "protocol": ["paper", "loso"], "profile": ["full", "full"],
                            "seconds": [60.0, 120.0], "status": ["ok", "ok"], "finished_utc": ["x", "y"]})
    study = {"fig7_hidden_size_emodb_paper": pd.DataFrame({"hidden_size": [32, 64], "WA [paper] (%)": [70.0, 71.0]})}
    env = {"cpu": "Test CPU", "cores": 2, "memory": "1 GiB", "gpu": "none", "os": "linux", "python": "3.11", "versions": {"torch": "x"}}
    md = report.build_report(SUMMARY, profile="full", protocols=["paper", "loso"], availability=AVAIL, study_tables=study,
                             figures=["fig4_confusion_emodb_paper.png"], timings=timings, environment=env,
                             se_params=SE_PARAMS, tables_out=tmp_path,
                             searches=["recipe_search_emodb_urlm", "recipe_search_emodb_frlm_speed"])
    assert "[paper]" in md and "[loso]" in md and "leave one speaker out" in md
    chosen = md.split("## Beyond the paper: how the tuned recipe was chosen")[1].split("\n## ")[0]
    assert "- [`recipe_search_emodb_frlm_speed`](tables/recipe_search_emodb_frlm_speed.md)\n- [`recipe_search_emodb_urlm`]" in chosen
    assert "Table 2" in md and "Table 3" in md and "Table 4" in md and "Table 5" in md
    assert tables.NOT_AVAILABLE in md  # IEMOCAP
    assert "Test CPU" in md and "GPU: none" in md and "Total: 3.0 min" in md
    assert "(figures/fig4_confusion_emodb_paper.png)" in md
    assert "fig7_hidden_size_emodb_paper" in md
    assert "Fig. 6: optimizer and batch size" in md and f"Ours: {tables.NOT_RUN}." in md  # study not run
    assert (tmp_path / "report_table2.csv").is_file() and (tmp_path / "report_table5_emodb.md").is_file()
    assert "`[emobox]`" not in md and "RAVDESS (beyond the paper)" not in md  # no RAVDESS row measured
    with_ravdess = pd.concat([SUMMARY, _summary([("ravdess", "emobox", "frlm", "", 6, 1, 61.18, 59.38, 5.7, 5.3, 300.0)])])
    md = report.build_report(with_ravdess, profile="full", protocols=["paper", "loso"], availability=AVAIL, se_params=SE_PARAMS)
    protocols = md.split("## Protocols")[1].split("\n## ")[0]
    assert "`[emobox]` EmoBox folds: EmoBox's published folds" in protocols
    assert "| RAVDESS (beyond the paper) | measured |" in md.split("## Corpora")[1].split("\n## ")[0]
    assert "88.34" in md and "80.00" in md and "-8.34" in md


def test_build_report_without_anything():
    md = report.build_report(None, profile="quick", protocols=["paper"], availability={}, se_params=SE_PARAMS)
    assert "Profile quick" in md and "not measured" in md
    assert "80.00" not in md
    assert "how the tuned recipe was chosen\n\n`amsnet search`" in md and f"Ours: {tables.NOT_RUN}." in md


def test_record_and_read_timings(tmp_path):
    p = tmp_path / "timings.csv"
    timings.record_timing(p, "00_data_prep", "paper", "quick", 12.34)
    timings.record_timing(p, "02_fusion", "loso", "quick", 5)
    timings.record_timing(p, "00_data_prep", "paper", "quick", 20, "failed")
    t = timings.read_timings(p)
    assert len(t) == 2
    row = t[t["notebook"] == "00_data_prep"].iloc[0]
    assert row["seconds"] == 20.0 and row["status"] == "failed"
    assert timings.read_timings(tmp_path / "absent.csv") is None


def test_results_and_run_dirs(monkeypatch, tmp_path):
    monkeypatch.delenv("AMSNET_RUN_DIR", raising=False)
    assert paths.resolve_results_dir(None, "full") == paths.REPO_ROOT / "results"
    assert paths.resolve_results_dir(None, "quick") == paths.REPO_ROOT / ".cache" / "results-quick"
    assert paths.resolve_results_dir(tmp_path / "r", "quick") == tmp_path / "r"
    assert paths.resolve_run_dir(None, "quick") == paths.REPO_ROOT / ".cache" / "runs-quick"
    monkeypatch.setenv("AMSNET_RUN_DIR", str(tmp_path / "runs"))
    assert paths.resolve_run_dir(None, "full") == tmp_path / "runs"


def test_resolve_corpora():
    assert session.resolve_corpora("both") == ["emodb", "iemocap"]
    assert session.resolve_corpora("EmoDB") == ["emodb"]
    assert session.resolve_corpora(["ravdess", "emodb"]) == ["ravdess", "emodb"]
    with pytest.raises(ValueError):
        session.resolve_corpora("savee")


def test_the_report_sets_ravdess_beside_emobox_and_says_whether_the_ordering_holds():
    from amsnet_lib.report import second_corpus

    rows = [("ravdess", "emobox", "tuned", m, "", 6, True, 1, wa, ua, 1.0, 1.5, 0.0, "cpu")
            for m, wa, ua in (("amsnet", 70.0, 69.0), ("frlm", 60.0, 59.5), ("urlm", 71.0, 70.0), ("concat", 68.0, 69.0))]
    summary = pd.DataFrame(rows, columns=["corpus", "protocol", "recipe", "model", "variant", "n_folds", "complete",
                                          "n_seeds", "wa", "ua", "wa_std", "ua_std", "train_seconds", "trained_on"])
    table, notes = second_corpus.section(summary, {}, {"significance_ravdess_emobox": pd.DataFrame()})
    amsnet = table[table["model"] == "AMSNet, tuned recipe"].iloc[0]
    assert amsnet["WA ours [emobox] (%)"] == 70.0 and amsnet["UA std"] == 1.5 and amsnet["source"] == "measured here"
    assert table[table["model"] == "AMSNet"].iloc[0]["WA ours [emobox] (%)"] == "not run"
    assert table[table["model"].str.startswith("HuBERT base")].iloc[0]["WA ours [emobox] (%)"] == 66.21
    ordering = next(n for n in notes if n.startswith("Does the paper's ordering hold"))
    assert "is above FRLM (UA 59.50), Δ +9.50" in ordering and "is below URLM (UA 70.00), Δ -1.00" in ordering
    assert "is level with URLM+FRLM (Concat)" in ordering
    assert any("significance_ravdess_emobox" in n for n in notes)


def test_emodb_on_emobox_folds_gets_its_table_beside_emoboxs_leaderboard_once_measured():
    from amsnet_lib.report import second_corpus

    cols = ["corpus", "protocol", "recipe", "model", "variant", "n_folds", "complete", "n_seeds", "wa", "ua", "wa_std",
            "ua_std", "train_seconds", "trained_on"]
    paper_only = pd.DataFrame([("emodb", "paper", "tuned", "amsnet", "", 5, True, 1, 87.85, 87.36, 1.0, 1.0, 0.0, "cpu")],
                              columns=cols)
    assert second_corpus.emodb_table(paper_only) is None
    md = report.build_report(paper_only, profile="full", protocols=["paper"], availability={}, se_params=SE_PARAMS)
    assert "EmoDB on EmoBox's folds" not in md
    summary = pd.concat([paper_only, pd.DataFrame([("emodb", "emobox", "tuned", "amsnet", "", 5, True, 1, 88.0, 87.5, 2.0,
                                                    2.5, 0.0, "cpu")], columns=cols)])
    t = second_corpus.emodb_table(summary, {})
    row = t[t["model"] == "AMSNet, tuned recipe"].iloc[0]
    assert row["WA ours [emobox] (%)"] == 88.0 and row["UA std"] == 2.5
    assert t[t["model"].str.startswith("URLM, tuned")].iloc[0]["WA ours [emobox] (%)"] == "not run"
    assert t[t["model"].str.startswith("HuBERT base")].iloc[0]["WA ours [emobox] (%)"] == 87.73
    md = report.build_report(summary, profile="full", protocols=["paper"], availability={}, se_params=SE_PARAMS)
    assert "## Beyond the paper: EmoDB on EmoBox's folds" in md


def test_ravdess_table5_cost_counts_each_branch_once_and_waits_for_every_model():
    from amsnet_lib.report import second_corpus

    seconds = {"frlm": 3600.0, "urlm": 7200.0, "early": 1800.0, "concat": 10800.0 + 360.0, "amsnet": 10800.0 + 720.0}
    rows = [("ravdess", "emobox", "tuned", m, "", 6, True, 1, 60.0, 60.0, 1.0, 1.0, s, "cpu") for m, s in seconds.items()]
    summary = pd.DataFrame(rows, columns=["corpus", "protocol", "recipe", "model", "variant", "n_folds", "complete",
                                          "n_seeds", "wa", "ua", "wa_std", "ua_std", "train_seconds", "trained_on"])
    cost = second_corpus.table5_cost(summary)
    # 1 + 2 h of branches, 0.5 h early fusion, 0.1 + 0.2 h of fusion stages: 3.8 CPU hours, 1.9 h on two cores
    assert "took 3.8 CPU hours" in cost and "branches 3.0 h" in cost and "about 1.9 h of wall" in cost
    assert any(n.startswith("Cost, tuned recipe") for n in second_corpus.section(summary, {}, {})[1])
    unfinished = summary.assign(complete=[True, True, True, True, False])
    assert second_corpus.table5_cost(unfinished) is None
    assert second_corpus.table5_cost(summary[summary["model"] != "early"]) is None


class _FakeResult:
    """The attributes of training.ExperimentResult that the helpers read."""

    def __init__(self, folds, predictions=None, classes=("a", "b")):
        self.folds = folds
        self.predictions = predictions
        self.classes = list(classes)
        self.curves = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5]})


def test_fold_table_side_by_side_with_mean():
    folds = pd.DataFrame({"seed": [0, 0], "fold": ["fold0", "fold1"], "wa": [0.8, 0.6], "ua": [0.7, 0.5], "n_train": [385, 385],
                          "n_val": [43, 43], "n_test": [107, 107], "best_epoch": [3, 4]})
    t = tables.fold_table({"FRLM": _FakeResult(folds), "URLM": _FakeResult(folds.assign(wa=[0.9, 0.7]))})
    assert list(t["fold"]) == ["fold0", "fold1", "mean"]
    assert t.iloc[-1]["FRLM WA (%)"] == pytest.approx(70.0) and t.iloc[-1]["URLM WA (%)"] == pytest.approx(80.0)
    assert t.iloc[0]["n_test"] == 107
    assert "FRLM best epoch" in t.columns


def test_fusion_weight_table():
    p = pd.DataFrame({"true": [0, 0, 1, 1], "alpha_frlm": [0.2, 0.4, 0.6, 0.8]})
    t = tables.fusion_weight_table(_FakeResult(None, p))
    assert list(t["class"]) == ["a", "b", "all"]
    assert t.iloc[0]["mean alpha_FRLM"] == pytest.approx(0.3) and t.iloc[1]["share FRLM trusted more (%)"] == 100.0
    assert t.iloc[2]["mean alpha_URLM"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        tables.fusion_weight_table(_FakeResult(None, p.drop(columns=["alpha_frlm"])))


def test_spectrogram_examples_prefers_one_speaker_and_text():
    table = pd.DataFrame({"path": [f"/x/{i}.wav" for i in range(6)], "label": ["anger", "happiness", "anger", "neutral", "sadness", "happiness"],
                          "speaker": ["03", "03", "08", "08", "08", "08"], "text": ["a01", "a01", "a02", "a02", "a02", "a02"]})
    table.attrs["corpus"] = "emodb"

    class F:
        pass

    f = F()
    f.table, f.classes = table, ["anger", "boredom", "happiness", "sadness", "neutral"]
    f.spec = np.arange(6)[:, None, None] * np.ones((6, 2, 3))
    specs, captions = tables.spectrogram_examples(f)
    assert list(specs) == ["anger", "happiness", "neutral", "sadness"]
    assert {int(s[0, 0]) for s in specs.values()} == {2, 3, 4, 5}  # all from speaker 08, text a02
    assert "speaker 08" in captions["anger"]


def test_fold_sizes_match_protocol():
    n = 50
    table = pd.DataFrame({"label": ["a", "b"] * (n // 2), "speaker": [str(i % 5) for i in range(n)]})
    table.attrs["classes"] = ["a", "b"]
    cfg = studies.experiment("emodb", "frlm", "loso", "quick")
    t = tables.fold_sizes(table, cfg)
    assert len(t) == 5 and (t["n_test"] == 10).all() and (t["n_train"] + t["n_val"] == 40).all()
    cfg = studies.experiment("emodb", "frlm", "paper", "quick")
    t = tables.fold_sizes(table, cfg)
    assert len(t) == 5 and t["n_test"].sum() == n


def test_report_links_the_diagnostic_tables_under_their_own_titles():
    diag = {"frame_feature_check": "# Frame-feature check (diagnostic)\n\n| protocol | WA |\n|---|---|\n| [paper] | 84.49 |\n"}
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, diagnostics=diag,
                             se_params=SE_PARAMS)
    assert "## Diagnostics beyond the paper" in md
    assert "- Frame-feature check (diagnostic): [`tables/frame_feature_check.md`](tables/frame_feature_check.md)" in md
    assert "84.49" not in md  # the detail stays in its file
    assert "Diagnostics" not in report.build_report(None, profile="full", protocols=["paper"], availability={},
                                                    se_params=SE_PARAMS)


def test_report_shows_the_tables_on_corpora_never_heard_whole_with_their_figures():
    unheard = {"cross_corpus_classic": "**Cross-corpus, the classic baseline**\n\n| train | test | UA (%) |\n|---|---|---|\n"
                                       "| emodb | ravdess | 49.61 |\n",
               "whole_recordings_validation": "# Whole recordings\n\nText.\n\n| set | UA |\n|---|---|\n| a | 20.40 |\n"}
    figures = ["cross_corpus_classic_four.png", "fig1_spectrograms_emodb.png"]
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, unheard=unheard,
                             figures=figures, se_params=SE_PARAMS)
    section = md.split("## Beyond the paper: corpora and voices the model never heard")[1].split("\n## ")[0]
    assert "### Cross-corpus, the classic baseline" in section and "| emodb | ravdess | 49.61 |" in section
    assert "### Whole recordings" in section and "| a | 20.40 |" in section and "# Whole" not in section.replace("### Whole", "")
    assert "![cross_corpus_classic_four](figures/cross_corpus_classic_four.png)" in section
    assert "fig1_spectrograms" not in section
    # a table whose name begins another's shows its own figures only
    both = {"cross_corpus": "**Cross-corpus, the networks**\n\n| UA |\n|---|\n| 50 |\n", **unheard}
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, unheard=both,
                             figures=["cross_corpus_four.png", *figures], se_params=SE_PARAMS)
    networks = md.split("### Cross-corpus, the networks")[1].split("\n### ")[0]
    assert "figures/cross_corpus_four.png" in networks and "cross_corpus_classic_four" not in networks
    classic = md.split("### Cross-corpus, the classic baseline")[1].split("\n### ")[0]
    assert "figures/cross_corpus_classic_four.png" in classic and "figures/cross_corpus_four.png" not in classic
    assert "never heard" not in report.build_report(None, profile="full", protocols=["paper"], availability={},
                                                    se_params=SE_PARAMS)


def test_report_shows_the_gpu_session_in_the_hardware_section():
    gpu = "# Measured on a GPU (H100)\n\n- Full 5-fold AMSNet run: 112 s wall\n"
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, gpu=gpu,
                             se_params=SE_PARAMS)
    hardware = md.split("## Hardware, software, time", 1)[1].split("\n## ", 1)[0]
    assert "### Measured on a GPU (H100)" in hardware and "112 s wall" in hardware
    assert "Measured on a GPU" not in report.build_report(None, profile="full", protocols=["paper"], availability={},
                                                          se_params=SE_PARAMS)
    studies_md = "# GPU sessions that trained studies\n\n## `call_1`: H200\n\n| study group | wall time |\n"
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, gpu=[gpu, studies_md],
                             se_params=SE_PARAMS)
    hardware = md.split("## Hardware, software, time", 1)[1].split("\n## ", 1)[0]
    # both inside the hardware section, the second's own sections one level down
    assert "### Measured on a GPU (H100)" in hardware and "### GPU sessions that trained studies" in hardware
    assert "#### `call_1`: H200" in hardware


def test_suite_cost_counts_shared_branches_once_and_uses_measured_times(tmp_path):
    from amsnet_lib.train.runstore import RunStore

    summary = pd.DataFrame([{"corpus": "emodb", "protocol": "paper", "model": m, "variant": "", "n_folds": 5, "n_seeds": 1,
                             "train_seconds": s} for m, s in (("frlm", 500.0), ("urlm", 1000.0), ("early", 600.0))])
    # EmoDB's shape: 535 utterances, 7 classes, 10 speakers
    table = pd.DataFrame({"label": [f"c{i % 7}" for i in range(535)], "speaker": [f"{i % 10:02d}" for i in range(535)]})
    cost = report.suite_cost(summary, table, store=RunStore(tmp_path)).set_index("kind")
    # FRLM: the paper configuration (shared by the ablations, Table 3, Fig. 6's base, the lr base), 4 other hidden
    # sizes, 11 other optimizer/batch pairs, 4 other learning rates: 20 configurations x 5 folds, + 10 LOSO folds;
    # the normalisation study adds the speaker-standardised branch under both protocols (5 + 10 folds), the
    # seed study seeds 1 and 2 of the paper configuration (2 x 5 folds)
    # the tuned recipe's study adds its own FRLM, URLM and early fusion under both protocols (5 + 10 folds each),
    # its seed-ensemble study members 1 and 2 of each under the paper's protocol (2 x 5 folds each)
    members = (studies.ENSEMBLE_MEMBERS - 1) * 5
    assert cost.loc["frlm", "trainings"] == 20 * 5 + 10 + 15 + 10 + 15 + members
    # URLM: like FRLM, but Table 3's 4 other ratios instead of the hidden sizes
    # and the tuned recipe's URLM under both protocols (the study paper_urlm's URLM is the paper's: counted once),
    # with and without speed perturbation (the study urlm_without_speed)
    # and Table 3's 4 other ratios under the tuned recipe (its r = 16 is the tuned URLM)
    tuned_urlm = 2 * (5 + 10) + 4 * 5
    assert cost.loc["urlm", "trainings"] == (1 + 4 + 11 + 4) * 5 + 10 + 15 + 10 + tuned_urlm + members
    assert cost.loc["early", "trainings"] == 5 + 10 + 15 + members  # early fusion: the ablations, paper and tuned recipe
    assert cost.loc["frlm", "seconds_per_fold"] == 100 and cost.loc["frlm", "cpu_hours_all"] == round((150 + members) * 100 / 3600, 1)
    # the heads: AMSNet and concatenation of every configuration, shared ones once
    heads = len(units.fusion_units(studies.full_suite("emodb", "full"), table))
    assert cost.loc["fusion heads", "trainings"] == heads > 0 and cost.loc["fusion heads", "finished"] == 0
    assert cost.loc["total", "trainings"] == 150 + 135 + tuned_urlm + 30 + 3 * members + heads and cost.loc["total", "finished"] == 0
    assert cost.loc["total", "cpu_hours_measured"] == 0
    key = runstore.branch_key("urlm", studies.experiment("emodb", "urlm", "paper", "full"), 535)
    # measured seconds: one fold on this CPU, one written before devices were recorded (a CPU's), one on a GPU
    for fold, metrics in (("fold0", '{"seconds": 3600, "device": "cpu"}'), ("fold1", '{"seconds": 1800}'),
                          ("fold2", '{"seconds": 90000, "device": "cuda (NVIDIA H100)"}'),
                          ("all", '{"seconds": 5}')):  # "all": the final model, not a fold
        (tmp_path / f"urlm-{key}" / "seed0" / fold).mkdir(parents=True)
        (tmp_path / f"urlm-{key}" / "seed0" / fold / "metrics.json").write_text(metrics)
    cost = report.suite_cost(summary, table, store=RunStore(tmp_path)).set_index("kind")
    assert cost.loc["urlm", "finished"] == 3 and cost.loc["urlm", "cpu_hours_left"] == round((135 + tuned_urlm + members - 3) * 200 / 3600, 1)
    assert cost.loc["urlm", "cpu_hours_measured"] == 1.5 and cost.loc["urlm", "finished_on_gpu"] == 1
    assert cost.loc["total", "cpu_hours_measured"] == 1.5 and cost.loc["total", "finished_on_gpu"] == 1
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, suite=cost.reset_index(),
                             se_params=SE_PARAMS)
    assert "Measured (`cpu_hours_measured`" in md and "1.5 CPU hours for 2 trainings" in md
    assert np.isnan(report.suite_cost(None, table).set_index("kind").loc["frlm", "cpu_hours_all"])


def test_full_suite_lists_each_experiment_once_and_the_normalisation_study_under_both_protocols():
    suite = studies.full_suite("emodb", "full")
    assert len(suite) == len(set(suite))
    speaker = [e for e in suite if e.normalisation == "speaker"]
    assert sorted((e.model, e.protocol) for e in speaker) == sorted(
        (m, p) for m in studies.NORMALISATION_MODELS for p in ("paper", "loso"))
    # the study's corpus-standardised rows are the ablations' experiments (trained once, one summary row)
    for e in studies.normalisation_study("emodb", "loso"):
        if e.normalisation == "corpus":
            assert e in studies.ablations("emodb", "loso")
    # late fusion under both protocols, over the ablations' branches: it adds no stage-1 training
    late = [e for e in suite if e.model == "late" and e.recipe == "paper"]
    assert sorted((e.protocol, e.variant) for e in late) == [("loso", ""), ("loso", "w=0.5"), ("paper", ""), ("paper", "w=0.5")]
    # the tuned recipe's study: Table 5's models and late fusion under both protocols; its seed ensembles'
    # members 1, 2, ... under the paper's protocol
    members = [e for e in suite if e.member]
    assert sorted((e.model, e.protocol, e.member) for e in members) == sorted(
        (m, "paper", k) for m in studies.ENSEMBLE_MODELS for k in range(1, studies.ENSEMBLE_MEMBERS))
    tuned = [e for e in suite if e.recipe == "tuned" and not e.member
             and e.variant not in (studies.PAPER_URLM_VARIANT, studies.URLM_WITHOUT_SPEED_VARIANT)]
    assert sorted((e.model, e.protocol, e.variant) for e in tuned) == sorted(
        [(m, p, v) for p in ("paper", "loso") for m, v in [(m, "") for m in studies.ABLATION_MODELS] + [("late", ""), ("late", "w=0.5")]]
        + [("amsnet", "paper", studies.se_ratio_label(r)) for r in studies.SE_RATIOS])  # and Table 3, its protocol only
    # URLM paper-trained, under the tuned recipe: the models that use URLM's training, both protocols
    paper_urlm = [e for e in suite if e.variant == studies.PAPER_URLM_VARIANT]
    assert sorted((e.model, e.protocol) for e in paper_urlm) == sorted(
        (m, p) for m in ("amsnet", "concat", "late", "urlm") for p in ("paper", "loso"))
    for e in paper_urlm:  # only URLM's training differs, and it is the paper's
        t = next(t for t in tuned if (t.model, t.protocol, t.variant) == (e.model, e.protocol, ""))
        assert e.frlm_train == t.frlm_train and e.fusion_train == t.fusion_train and e.branch_train != t.branch_train
        assert e.branch_train == studies.experiment("emodb", e.model, e.protocol, "full").branch_train
    # URLM without speed perturbation: the same models, URLM's training less its copies
    without_speed = [e for e in suite if e.variant == studies.URLM_WITHOUT_SPEED_VARIANT]
    assert sorted((e.model, e.protocol) for e in without_speed) == sorted((e.model, e.protocol) for e in paper_urlm)
    for e in without_speed:
        t = next(t for t in tuned if (t.model, t.protocol, t.variant) == (e.model, e.protocol, ""))
        assert e.branch_train == dataclasses.replace(t.branch_train, augment="none") != t.branch_train
        assert e.frlm_train == t.frlm_train and e.fusion_train == t.fusion_train
    table = pd.DataFrame({"path": [f"/c/{i:02d}a.wav" for i in range(40)], "label": ["a", "b"] * 20,
                          "speaker": [f"{10 + i % 10}" for i in range(40)]})
    without = [e for e in suite if e.model != "late" or e.recipe == "tuned"]
    assert len(units.stage1_units(suite, table)) == len(units.stage1_units(without, table))
    assert all(e.protocol == "paper" for e in studies.full_suite("emodb", "full", loso=False))
    assert studies.full_suite("emodb", "full", studies=[]) == studies.ablations("emodb", "paper") + studies.ablations("emodb", "loso")
    with pytest.raises(ValueError, match="unknown studies"):
        studies.full_suite("emodb", "full", studies=["speaker"])


def test_a_study_table_mixing_devices_says_so_and_one_device_does_not(tmp_path):
    s = session.Session.__new__(session.Session)  # no corpus needed to write a table
    s.tables_dir, s.profile, s.protocol = tmp_path, "full", "paper"
    df = pd.DataFrame({"lr": [1e-4, 1e-3], "WA [paper] (%)": [81.1, 79.4], "trained on": ["cpu", "cuda (H200), float16 features"]})
    s.save_table(df, "learning_rate", "emodb")
    assert report.MIXED_DEVICES_NOTE in (tmp_path / "learning_rate_emodb_paper.md").read_text()
    s.save_table(df.iloc[:1], "learning_rate", "emodb")
    assert report.MIXED_DEVICES_NOTE not in (tmp_path / "learning_rate_emodb_paper.md").read_text()


def test_report_puts_a_studys_own_tables_before_the_tables_derived_from_them():
    t = pd.DataFrame({"optimizer": ["adam"], "batch_size": [64]})
    # equal name lengths: a derived table sorting before an own one by length-then-name would come first
    names = ["fig6_optimizer_batch_branches_emodb_paper", "fig6_optimizer_batch_iemocap_loso_session",
             "fig6_optimizer_batch_emodb_paper"]
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, study_tables={n: t for n in names})
    at = {n: md.index(f"`{n}`") for n in names}
    assert at["fig6_optimizer_batch_emodb_paper"] < at["fig6_optimizer_batch_iemocap_loso_session"] \
        < at["fig6_optimizer_batch_branches_emodb_paper"]


def test_a_table_defines_reported_and_delta_only_when_it_holds_the_papers_values(tmp_path):
    s = session.Session.__new__(session.Session)
    s.tables_dir, s.profile, s.protocol = tmp_path, "full", "paper"
    s.save_table(pd.DataFrame({"lr": [1e-4], "WA [paper] (%)": [81.1]}), "learning_rate", "emodb")
    md = (tmp_path / "learning_rate_emodb_paper.md").read_text()
    assert "'reported' =" not in md and "Δ" not in md and "'not run' = not measured." in md
    s.save_table(pd.DataFrame({"model": ["amsnet"], "WA reported [paper] (%)": [88.34], "WA ours [paper] (%)": [81.1]}),
                 "table3", "emodb")
    assert "'reported' =" in (tmp_path / "table3_emodb_paper.md").read_text()
    s.save_table(pd.DataFrame({"model": ["amsnet"], "WA [paper] (%)": [81.1]}), "forced", "emodb", reported=True)
    assert "'reported' =" in (tmp_path / "forced_emodb_paper.md").read_text()


def test_training_seed_study_is_the_ablation_models_with_three_seeds_under_the_paper_protocol_only():
    exps = studies.training_seed_study("emodb", "paper")
    assert [e.model for e in exps] == list(studies.SEED_MODELS)
    assert all(e.seeds == studies.TRAINING_SEEDS and e.variant == "seeds=0,1,2" for e in exps)
    assert studies.training_seed_study("emodb", "loso") == []
    # seed 0 is the ablations' run: same configuration but for the seeds (so the same run keys)
    ablation = {e.model: e for e in studies.ablations("emodb", "paper")}
    for e in exps:
        assert dataclasses.replace(e, seeds=(0,), variant="") == ablation[e.model]
    # a session's `seeds` parameter does not replace the study's own
    s = session.Session.__new__(session.Session)
    s.protocol, s.profile, s.seeds = "paper", "full", (0,)
    assert all(c.seeds == (0, 1, 2) for c in s.configs("training_seeds", "emodb"))
    assert all(c.seeds == (0,) for c in s.configs("learning_rate", "emodb"))


def test_seed_table_means_per_seed_then_over_seeds():
    from amsnet_lib.config import ExperimentConfig

    folds = pd.DataFrame({"seed": [0, 0, 1, 1], "fold": ["fold0", "fold1"] * 2, "wa": [0.8, 0.6, 0.9, 0.9],
                          "ua": [0.7, 0.5, 0.8, 0.8], "seconds": 1.0})
    res = training.ExperimentResult(ExperimentConfig(model="amsnet"), folds, pd.DataFrame(), pd.DataFrame(), ["a", "b"])
    t = tables.seed_table([res]).iloc[0]
    assert t["model"] == "AMSNet" and t["seeds"] == 2 and t["folds"] == 2
    assert t["WA seed 0 [paper] (%)"] == pytest.approx(70.0) and t["WA seed 1 [paper] (%)"] == pytest.approx(90.0)
    assert t["WA mean [paper] (%)"] == pytest.approx(80.0) and t["WA std over seeds"] == pytest.approx(10.0)
    assert t["UA range"] == "60.00-80.00" and t["trained on"] == "cpu"
    pts = tables.seed_points([res])
    assert list(pts["seed"]) == ["seed 0", "seed 1"] and list(pts["wa"]) == [70.0, 90.0]


def test_report_has_a_training_seed_section_not_run_until_measured():
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, se_params=SE_PARAMS)
    section = md.split("## Beyond the paper: training seeds", 1)[1].split("\n## ", 1)[0]
    assert f"Ours: {tables.NOT_RUN}." in section
    t = pd.DataFrame({"model": ["AMSNet"], "WA mean [paper] (%)": [80.0]})
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, se_params=SE_PARAMS,
                             study_tables={"training_seeds_emodb_paper": t})
    section = md.split("## Beyond the paper: training seeds", 1)[1].split("\n## ", 1)[0]
    assert "(tables/training_seeds_emodb_paper.md)" in section and "80.00" not in section  # linked: the detail is in its file


def test_a_study_table_keeps_the_same_variant_of_two_recipes_apart():
    # Table 3 holds "r=8" under both recipes: each planned row shows its own recipe's result
    planned = studies.se_ratio_study("emodb", "paper")
    folds = pd.DataFrame({"seed": [0, 0], "fold": ["fold0", "fold1"], "wa": [0.8, 0.6], "ua": [0.7, 0.5],
                          "loss": [0.9, 1.1], "best_epoch": [10, 20], "seconds": 1.0})
    done = [c for c in planned if c.variant == "r=8"]
    assert [c.recipe for c in done] == ["paper", "tuned"]
    res = [training.ExperimentResult(c, folds.assign(wa=folds["wa"] - 0.1 * i), pd.DataFrame(), pd.DataFrame(), list("abcdefg"))
           for i, c in enumerate(done)]
    t = tables.study_table(res, "se_ratio", planned=planned)
    assert len(t) == len(planned) and list(zip(t["recipe"], t["r"])) == [(c.recipe, c.urlm.se_ratio) for c in planned]
    measured = t[t["trained on"] != tables.NOT_RUN].set_index("recipe")
    assert list(measured["r"]) == [8, 8]
    assert measured.loc["paper", "WA [paper] (%)"] == pytest.approx(70.0)
    assert measured.loc["tuned", "WA [paper] (%)"] == pytest.approx(60.0)


def test_a_study_table_lists_the_planned_configurations_not_run_with_empty_cells(tmp_path):
    planned = studies.optimizer_batch_study("emodb", "paper")
    done = next(c for c in planned if c.variant == "adam,bs=128")
    folds = pd.DataFrame({"seed": [0, 0], "fold": ["fold0", "fold1"], "wa": [0.8, 0.6], "ua": [0.7, 0.5],
                          "loss": [0.9, 1.1], "best_epoch": [10, 20], "seconds": 1.0})
    res = training.ExperimentResult(done, folds, pd.DataFrame(), pd.DataFrame(), list("abcdefg"))
    t = tables.study_table([res], "optimizer_batch", planned=planned)
    # every configuration of the study in the study's order, the measured one among them
    assert list(zip(t["optimizer"], t["batch_size"])) == [(c.branch_train.optimizer, c.branch_train.batch_size) for c in planned]
    measured = t[t["trained on"] != tables.NOT_RUN]
    assert len(measured) == 1 and measured.iloc[0]["optimizer"] == "adam" and measured.iloc[0]["batch_size"] == 128
    assert measured.iloc[0]["WA [paper] (%)"] == pytest.approx(70.0)
    unrun = t[t["trained on"] == tables.NOT_RUN]
    assert len(unrun) == len(planned) - 1 and unrun["WA [paper] (%)"].isna().all() and (unrun["folds"] == 0).all()
    assert (unrun["params"] > 0).all()  # what a configuration costs is known before it is trained
    # without `planned` only what finished
    assert len(tables.study_table([res], "optimizer_batch")) == 1
    # the table's legend says what the empty rows are; they do not count as another device
    s = session.Session.__new__(session.Session)
    s.tables_dir, s.profile, s.protocol = tmp_path, "full", "paper"
    s.save_table(t, "fig6_optimizer_batch", "emodb")
    md = (tmp_path / "fig6_optimizer_batch_emodb_paper.md").read_text()
    assert report.NOT_RUN_ROWS_NOTE in md and report.MIXED_DEVICES_NOTE not in md
    s.save_table(measured, "fig6_optimizer_batch", "emodb")
    assert report.NOT_RUN_ROWS_NOTE not in (tmp_path / "fig6_optimizer_batch_emodb_paper.md").read_text()


def test_branch_table_puts_each_branch_beside_the_fusion_of_its_configuration():
    planned = studies.optimizer_batch_study("emodb", "paper")[:2]
    folds = pd.DataFrame({"seed": [0, 0], "fold": ["fold0", "fold1"], "wa": [0.8, 0.6], "ua": [0.7, 0.5], "seconds": 1.0})

    def result(cfg, scale):
        return training.ExperimentResult(cfg, folds.assign(wa=folds.wa * scale), pd.DataFrame(), pd.DataFrame(), list("abcdefg"))

    frlm, urlm = studies.branches_of(planned[0])
    # branches of the first configuration are its own experiments, with its variant and run keys
    assert (frlm.model, urlm.model) == ("frlm", "urlm") and frlm.variant == urlm.variant == planned[0].variant
    assert runstore.branch_key("frlm", frlm, 535) == runstore.branch_key("frlm", planned[0], 535)
    assert runstore.branch_key("urlm", urlm, 535) == runstore.branch_key("urlm", planned[0], 535)
    t = tables.branch_table("optimizer_batch", planned, [result(planned[0], 1.0), result(frlm, 0.5), result(urlm, 1.1)])
    assert list(t["batch_size"]) == [c.branch_train.batch_size for c in planned]
    first, second = t.iloc[0], t.iloc[1]
    assert first["FRLM WA [paper] (%)"] == pytest.approx(35.0) and first["URLM WA [paper] (%)"] == pytest.approx(77.0)
    assert first["AMSNet WA [paper] (%)"] == pytest.approx(70.0) and first["trained on"] == "cpu"
    assert np.isnan(second["AMSNet WA [paper] (%)"]) and np.isnan(second["FRLM UA [paper] (%)"])
    assert second["trained on"] == tables.NOT_RUN
    # the second configuration's FRLM finished, its fusion not: the row shows FRLM and says what is missing
    frlm2, _ = studies.branches_of(planned[1])
    table = tables.branch_table("optimizer_batch", planned, [result(planned[0], 1.0), result(frlm2, 0.5)])
    partly = table.iloc[1]
    assert partly["FRLM WA [paper] (%)"] == pytest.approx(35.0) and np.isnan(partly["URLM WA [paper] (%)"])
    assert partly["trained on"] == f"cpu; AMSNet: {tables.NOT_RUN}"
    assert report._has_unrun_rows(table) and not report._mixes_devices(table)


_CPU_RUN = """# benchmarks/cpu_amsnet_run.sh 2: full 5-fold AMSNet [paper] from an empty run store, CPU
host: 2 cores, Some CPU, torch 2.13.0+cpu
note: something shared the CPU
start 2026-01-01T00:00:00Z load 0.1 0.1 0.1
amsnet on emodb, protocol paper, profile full (5 fold runs)
seed  fold    wa    ua
   0 fold0 76.64 76.56
   0 fold1 87.85 87.96
      mean 82.25 82.26
mean WA 82.25 ± 5.60 %, UA 82.26 ± 5.70 % [protocol: paper]
\tUser time (seconds): 3000.50
\tSystem time (seconds): 20.00
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.50
\tMaximum resident set size (kbytes): 2097152
end 2026-01-01T01:02:03Z load 1.9 1.9 1.9

## the committed run store's identical configuration (runs/, read only)
seed  fold    wa    ua
   0 fold0 76.64 76.56
   0 fold1 87.85 87.96
      mean 82.25 82.26
"""


def test_cpu_run_facts_reads_gnu_time_and_compares_the_folds_with_the_committed_store():
    facts = report.cpu_run_facts(_CPU_RUN)
    assert facts["wall_s"] == pytest.approx(3723.5) and facts["cpu_s"] == pytest.approx(3020.5)
    assert facts["max_rss_gib"] == pytest.approx(2.0) and (facts["wa"], facts["ua"]) == ("82.25", "82.26")
    assert facts["identical"] is True and facts["notes"] == ["something shared the CPU"]
    run, committed = _CPU_RUN.split("## the committed")
    changed = run + "## the committed" + committed.replace("fold0 76.64 76.56", "fold0 76.64 77.00")
    assert report.cpu_run_facts(changed)["identical"] is False
    assert report.cpu_run_facts(_CPU_RUN.split("## the committed")[0])["identical"] is None
    with pytest.raises(ValueError, match="did not finish"):
        report.cpu_run_facts(_CPU_RUN.replace("Elapsed (wall clock)", "Elapsed"))
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, cpu_run=_CPU_RUN,
                             se_params=SE_PARAMS)
    hardware = md.split("## Hardware, software, time", 1)[1].split("\n## ", 1)[0]
    assert "**62.1 min of wall time** (3724 s)" in hardware and "identical to the committed run store's" in hardware
    assert "- Note: something shared the CPU." in hardware


def _table5_block(model: str, store: str, wa: str) -> str:
    return (f"{model}, run store {store}:\nseed  fold    wa    ua\n   0 fold0 {wa} 80.00\n   0 fold1 90.00 90.00\n"
            f"      mean {(float(wa) + 90) / 2:.2f} 85.00\n")


_TABLE5_RUN = ("# benchmarks/cpu_table5_run.sh 2: the tuned recipe's Table 5 [paper] (frlm urlm) from an empty run store, CPU\n"
               "host: 2 cores, Some CPU, torch 2.13.0+cpu\nstart 2026-01-01T00:00:00Z load 0.1 0.1 0.1\n"
               "\tUser time (seconds): 5000.00\n\tSystem time (seconds): 40.00\n"
               "\tElapsed (wall clock) time (h:mm:ss or m:ss): 52:30.00\n\tMaximum resident set size (kbytes): 4194304\n"
               "end 2026-01-01T00:52:30Z load 1.9 1.9 1.9\n\n"
               "## each model: this run's store, then the committed run store's (runs/, read only)\n"
               + _table5_block("frlm", "/tmp/x", "80.00") + _table5_block("frlm", "runs", "80.00")
               + _table5_block("urlm", "/tmp/x", "70.00") + _table5_block("urlm", "runs", "72.00"))


def test_cpu_table5_facts_time_the_run_and_compare_each_model_with_the_committed_store():
    facts = report.cpu_table5_facts(_TABLE5_RUN)
    assert facts["wall_s"] == pytest.approx(3150.0) and facts["cpu_s"] == pytest.approx(5040.0)
    assert facts["max_rss_gib"] == pytest.approx(4.0)
    assert facts["models"] == {"frlm": {"wa": "85.00", "ua": "85.00", "identical": True},
                               "urlm": {"wa": "80.00", "ua": "85.00", "identical": False}}
    with pytest.raises(ValueError, match="cpu_table5_run.txt: no 'Elapsed"):
        report.cpu_table5_facts(_TABLE5_RUN.replace("Elapsed (wall clock)", "Elapsed"))
    with pytest.raises(ValueError, match="no model's table"):
        report.cpu_table5_facts(_TABLE5_RUN.split("## each model")[0])
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, cpu_table5=_TABLE5_RUN,
                             se_params=SE_PARAMS)
    section = md.split("### Measured on this CPU: the tuned recipe's Table 5", 1)[1].split("\n## ", 1)[0]
    assert "**52.5 min of wall time** (3150 s), within the target of 60 min" in section
    assert "| FRLM | 85.00 | 85.00 | identical |" in section and "| URLM | 80.00 | 85.00 | different |" in section
    slow = _TABLE5_RUN.replace("52:30.00", "1:01:00.00")
    assert "over the target of 60 min" in report.build_report(None, profile="full", protocols=["paper"], availability={},
                                                             cpu_table5=slow, se_params=SE_PARAMS)


def test_report_has_a_significance_section_with_formatted_p_values_not_run_until_measured():
    title = "## Beyond the paper: are the differences of the ablation table larger than the test set's noise?"
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, se_params=SE_PARAMS)
    assert f"Ours: {tables.NOT_RUN}." in md.split(title, 1)[1].split("\n## ", 1)[0]
    t = pd.DataFrame({"model": ["URLM"], "ΔWA (pp)": [-2.24], "ΔWA 95 % CI": ["-4.67 to 0.19"], "p (UA, bootstrap)": [0.08],
                      "p (WA, McNemar)": [2e-6]})
    md = report.build_report(None, profile="full", protocols=["paper"], availability={}, se_params=SE_PARAMS,
                             study_tables={"significance_emodb_paper": t})
    section = md.split(title, 1)[1].split("\n## ", 1)[0]
    assert "- [`significance_emodb_paper`](tables/significance_emodb_paper.md)" in section  # linked, not inlined
    assert "| URLM | -2.24 | -4.67 to 0.19 | 0.0800 | < 0.0001 |" in tables.markdown_table(t)  # as its file shows it


def test_the_study_registry_is_the_one_list_of_studies():
    """Notebooks, run_all.sh, the CLI and the report read amsnet_lib.studies.STUDIES: its quick
    variants are labels of real configurations, its views agree, and a study that is not default
    (the ~9 CPU-hour recipe ablation) stays out of the suite unless named."""
    reg = studies.STUDIES
    assert list(studies.HYPERPARAMETER_STUDIES) == [n for n, s in reg.items() if s.notebook == "04"]
    assert "recipe_ablation" in reg and "recipe_ablation" not in studies.default_studies()
    assert {e.variant for e in studies.full_suite("emodb", "full")} >= {"r=8", "lr=0.001"}
    named = studies.full_suite("emodb", "full", loso=False, studies=["recipe_ablation"])
    assert len(named) > len(studies.full_suite("emodb", "full", loso=False, studies=[]))
    for name, st in reg.items():
        if st.quick_variants is not None:
            labels = {c.variant for c in st.configurations("emodb", "paper", "quick")}
            assert set(st.quick_variants) <= labels, name
        if st.quick_models is not None:
            assert set(st.quick_models) < {c.model for c in st.configurations("emodb", "paper", "quick")}, name
        c = st.configurations("emodb", "paper", "full")
        assert c and set(st.factors) and all(get(c[0]) is not None for get in st.factors.values()), name
    prefixes = [s.table_prefix for s in reg.values() if s.table_prefix]
    assert len(prefixes) == len(set(prefixes))
    run_all = (Path(__file__).resolve().parents[1] / "run_all.sh").read_text()
    assert "default_studies()" in run_all and "normalisation,training_seeds" not in run_all


def test_protocol_legends_cover_exactly_the_configured_protocols():
    from amsnet_lib.config import PROTOCOLS

    assert tuple(tables.PROTOCOL_DESCRIPTIONS) == PROTOCOLS and tuple(tables.PROTOCOL_SHORT) == PROTOCOLS


def test_the_report_settings_name_each_stage_s_own_training():
    """The fusion heads train for longer than the branches: the settings say so, from the configuration."""
    t = report._settings_table("full").set_index(["corpus", "setting"]).iloc[:, 0]
    exp = studies.experiment("emodb", "amsnet", "paper", "full")
    stage1, stage2 = t["emodb", "training, stage 1 (FRLM, URLM, early fusion)"], t["emodb", "training, stage 2 (fusion head)"]
    assert f"<= {exp.branch_train.epochs} epochs, patience {exp.branch_train.patience}" in stage1
    assert f"<= {exp.fusion_train.epochs} epochs, patience {exp.fusion_train.patience}" in stage2
    assert exp.fusion_train.epochs != exp.branch_train.epochs


def test_report_tables_fold_wa_and_ua_into_one_cell_and_link_every_column(tmp_path):
    t = pd.DataFrame({"model": ["AMSNet", "FRLM"], "WA reported [paper] (%)": [88.34, 84.14], "WA ours [paper] (%)": [81.12, "not run"],
                      "ΔWA [paper]": [-7.22, "not run"], "UA reported [paper] (%)": [88.56, 84.46],
                      "UA ours [paper] (%)": [80.62, "not run"], "ΔUA [paper]": [-7.94, "not run"]})
    c = report.compact_table(t)
    assert list(c.columns) == ["model", "WA / UA reported [paper] (%)", "WA / UA ours [paper] (%)", "Δ WA / UA [paper]"]
    assert c.iloc[0].tolist() == ["AMSNet", "88.34 / 88.56", "81.12 / 80.62", "-7.22 / -7.94"]
    assert c.iloc[1].tolist() == ["FRLM", "84.14 / 84.46", "not run", "not run"]
    md = report.build_report(SUMMARY, profile="full", protocols=["paper", "loso"], availability=AVAIL, tables_out=tmp_path,
                             se_params=SE_PARAMS)
    table5 = md.split("## Table 5", 1)[1].split("\n## ", 1)[0]
    assert "| WA / UA reported [paper] (%) |" in table5 and "[`tables/report_table5_emodb.md`]" in table5
    assert "UA ours [paper] (%)" in (tmp_path / "report_table5_emodb.md").read_text()  # the file keeps every column


def test_corpora_table_lists_every_corpus_that_was_run():
    """With --iemocap both corpora are run: the report says so for both, not for the last one only."""
    both = pd.concat([SUMMARY, SUMMARY.assign(corpus="iemocap")], ignore_index=True)
    md = report.build_report(both, profile="quick", protocols=["paper"], availability={"emodb": None, "iemocap": None},
                             se_params=SE_PARAMS)
    corpora = md.split("## Corpora", 1)[1].split("\n## ", 1)[0]
    assert "| IEMOCAP | measured |" in corpora and "| EmoDB | measured |" in corpora
    only_emodb = report.build_report(SUMMARY, profile="quick", protocols=["paper"], availability=AVAIL,
                                     se_params=SE_PARAMS).split("## Corpora", 1)[1].split("\n## ", 1)[0]
    assert "| EmoDB | measured |" in only_emodb and f"| IEMOCAP | {AVAIL['iemocap']} |" in only_emodb


def test_table5_cost_counts_each_training_once_per_recipe():
    rows = [("paper", m, s) for m, s in (("frlm", 600), ("urlm", 1200), ("early", 900), ("concat", 1860), ("amsnet", 1920))]
    rows += [("tuned", m, s) for m, s in (("frlm", 300), ("urlm", 1200), ("early", 240), ("concat", 1530), ("amsnet", 1560))]
    summary = pd.DataFrame([{"corpus": "emodb", "protocol": "paper", "recipe": r, "model": m, "variant": "", "train_seconds": s}
                            for r, m, s in rows])
    t = report.table5_cost(summary).set_index("model")
    # paper: 10 + 20 + 15 min of stage 1, heads 1 + 2 min over the shared branches
    assert t.loc["Table 5, each training once", "paper recipe (min)"] == 48.0
    assert t.loc["Table 5, each training once", "tuned recipe (min)"] == 5 + 20 + 4 + 0.5 + 1
    assert t.loc["FRLM", "tuned recipe (min)"] == 5.0
