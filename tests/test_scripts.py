"""Scripts that run_all.sh calls: run as `python -m scripts.<name>`, on the library's public API."""
from __future__ import annotations

import ast
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


def test_scripts_use_the_public_api_only():
    """No script imports a private name of the library or edits sys.path: they run as `python -m scripts.<name>`."""
    for path in sorted((ROOT / "scripts").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("amsnet_lib"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private and not any(p.startswith("_") for p in node.module.split(".")), (path.name, node.module, private)
            if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
                raise AssertionError(f"{path.name} uses sys.path")


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


def test_recipe_ablation_rows_give_each_variant_its_difference_to_the_full_recipe():
    from scripts import recipe_ablation

    def summary(wa, ua):
        return {"wa": wa, "ua": ua, "wa_std": 1.0, "ua_std": 2.0, "n_folds": 5}

    full_012, full_0 = summary(84.3, 83.1), summary(84.0, 83.0)
    rows = recipe_ablation.ablation_rows({
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

    import numpy as np
    import pandas as pd

    from scripts import recipe_ablation

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
    rows = recipe_ablation.ablation_rows({
        ("frlm", recipe_ablation.FULL): {"summary": full, "reference": None, "seeds": (0,)},
        ("frlm", "without mixup"): {"summary": {**full, "wa": 70.0, "ua": 70.0}, "reference": full, "seeds": (0,),
                                    "significance": sig}})
    out = recipe_ablation.figure(rows, tmp_path / "ablation.png")
    assert out == tmp_path / "ablation.png" and out.stat().st_size > 0
    assert recipe_ablation.figure(rows.iloc[:1], tmp_path / "none.png") is None  # nothing to draw: no file
