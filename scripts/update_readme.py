#!/usr/bin/env python
"""Write the README's headline block from the measured results (run by ``run_all.sh`` after the report).

    python -m scripts.update_readme                  # results/ -> README.md
    python -m scripts.update_readme --check          # exit 1 if README.md's block is not what results/ gives

The block between :data:`START` and :data:`END` in README.md is Table 5 (EmoDB: AMSNet, its
ablations and late fusion, both recipes) beside the paper's values, one compact cell per WA / UA,
built from ``results/tables/summary.csv`` with the library's table builders; nothing outside the
markers is touched. Only the full profile's results (``results/``) go there.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from amsnet_lib.atomic import atomic_write_text, locked
from amsnet_lib.paths import REPO_ROOT
from amsnet_lib.report import compact_table
from amsnet_lib.tables import NOT_AVAILABLE, ablation_table, markdown_table, protocol_notes

START = "<!-- headline: written by scripts/update_readme.py (run_all.sh); do not edit by hand -->"
END = "<!-- /headline -->"
#: Shown under the table when the full run drew them.
FIGURES = ("fig4_confusion_emodb_paper.png", "fig5_curves_emodb_paper.png")


def headline(summary: pd.DataFrame | None, availability: Mapping[str, str | None] | None = None,
             protocols: Sequence[str] = ("paper", "loso"), figures: Sequence[str] = ()) -> str:
    """The README's results block: Table 5 ours vs the paper's, per protocol and recipe."""
    t = compact_table(ablation_table(summary, "emodb", protocols, availability))
    lines = ["Measured by `./run_all.sh` (profile full; every run in the committed run store `runs/`), EmoDB, "
             "mean over folds; 'not run' = not measured yet. All tables: [results/REPORT.md](results/REPORT.md).", "",
             markdown_table(t)]
    lines += [f"- {n}" for n in protocol_notes(protocols, "full")]
    shown = [f for f in FIGURES if f in set(figures)]
    if shown:
        lines.append("")
        lines += [f"![{Path(f).stem}](results/figures/{f})" for f in shown]
    return "\n".join(lines)


def replace_block(readme: str | os.PathLike, block: str) -> bool:
    """Replace the text between :data:`START` and :data:`END` (atomically, under a file lock);
    False, and the file left alone, when the markers are absent."""
    with locked(readme) as path:
        text = path.read_text()
        if START not in text or END not in text:
            return False
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        new = f"{head}{START}\n{block}\n{END}{tail}"
        if new != text:
            atomic_write_text(path, new)
    return True


def block_from_results(results: Path, protocols: Sequence[str] = ("paper", "loso")) -> str:
    """:func:`headline` of a results folder (``summary.csv`` and ``figures/``)."""
    path = results / "tables" / "summary.csv"
    summary = pd.read_csv(path, keep_default_na=False) if path.is_file() else None
    measured = set(summary["corpus"].astype(str)) if summary is not None and len(summary) else set()
    availability = {c: None if c in measured else NOT_AVAILABLE for c in ("emodb", "iemocap")}
    figures = sorted(f.name for f in (results / "figures").glob("*.png"))
    return headline(summary, availability, protocols, figures)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=str(REPO_ROOT / "results"), help="results folder of the full run")
    p.add_argument("--readme", default=str(REPO_ROOT / "README.md"))
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if the block is out of date")
    args = p.parse_args(argv)
    block = block_from_results(Path(args.results))
    text = Path(args.readme).read_text()
    if START not in text or END not in text:
        print(f"{args.readme}: no headline markers ({START} ... {END}); nothing written", file=sys.stderr)
        return 1
    if args.check:
        current = text.split(START, 1)[1].split(END, 1)[0].strip("\n")
        ok = current == block
        print("README headline up to date" if ok else "README headline out of date: run python -m scripts.update_readme")
        return 0 if ok else 1
    replace_block(args.readme, block)
    print(f"README headline written from {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
