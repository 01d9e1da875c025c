"""Scripts that run_all.sh calls: run as `python -m scripts.<name>`, on the library's public API."""
from __future__ import annotations

import ast
from pathlib import Path

from scripts import update_readme
from test_report import AVAIL, SUMMARY

ROOT = Path(__file__).resolve().parents[1]


def test_readme_headline_block_is_replaced_between_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{update_readme.START}\nold numbers\n{update_readme.END}\nafter\n")
    block = update_readme.headline(SUMMARY, AVAIL, ["paper", "loso"], ["fig4_confusion_emodb_paper.png"])
    assert update_readme.replace_block(readme, block)
    text = readme.read_text()
    assert "old numbers" not in text and text.startswith("# title\n\nbefore\n") and text.endswith(f"{update_readme.END}\nafter\n")
    assert "| AMSNet | 88.34 / 88.56 | 80.00 / 78.50 | -8.34 / -10.06 |" in text  # ours beside the paper's, with Δ
    assert "not run" in text  # early fusion was not measured
    assert "results/figures/fig4_confusion_emodb_paper.png" in text
    # a second update replaces the block instead of adding one
    assert update_readme.replace_block(readme, "new")
    assert readme.read_text().count(update_readme.START) == 1 and "\nnew\n" in readme.read_text()


def test_readme_without_markers_is_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert not update_readme.replace_block(readme, "x")
    assert readme.read_text() == "# no markers\n"
    assert update_readme.main(["--readme", str(readme), "--results", str(tmp_path)]) == 1


def test_the_committed_readme_headline_is_what_the_committed_results_give(capsys):
    assert update_readme.main(["--check"]) == 0, capsys.readouterr().out


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
