#!/usr/bin/env python
"""Cross-corpus tables and heat maps (beyond the paper, issue #38 item 4): trained on all of EmoDB and
tested on RAVDESS, and the reverse, over the classes the two share and over the four cross-corpus
benchmarks use, with each adaptation.

    python -m scripts.cross_corpus              # the classic baseline: results/tables/cross_corpus_classic.{csv,md},
                                                #   results/figures/cross_corpus_classic_{shared,four}.png
    python -m scripts.cross_corpus --networks   # then FRLM, URLM and AMSNet (tuned recipe) beside that table:
                                                #   results/tables/cross_corpus.{csv,md},
                                                #   results/figures/cross_corpus_{shared,four}.png

The corpora are found as everywhere (``$AMSNET_EMODB_DIR``, ``$AMSNET_RAVDESS_DIR``, ``./data/<corpus>``;
``--emodb``/``--ravdess`` override). The SVM's complexity is chosen by speaker-grouped cross-validation
inside the training corpus; the test corpus is read once per row. Functionals come from the feature
cache (computed once, about 0.15 s per file).

The networks are the tuned recipe's, each trained on all of its training corpus by ``amsnet fit`` (every
class of that corpus; the epoch chosen on a validation split of it; resumable through the run store),
except AMSNet on EmoDB, which is the shipped model (that same fit). Each is scored by ``amsnet evaluate``
on the other corpus's files of the row's classes, whole recordings, its probabilities renormalised over
those classes (the default scoring over the classes the audio can have). Every evaluation's row is kept
under ``--work`` as it finishes, so an interrupted run resumes there.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

import amsnet_lib as ams
from amsnet_lib.atomic import atomic_write_text
from amsnet_lib.config import CLASSIC_MODELS
from amsnet_lib.data.functionals import extract_functionals
from amsnet_lib.paths import REPO_ROOT, resolve_run_dir
from amsnet_lib.report import plotting
from amsnet_lib.report.tables import NOT_RUN, write_table
from amsnet_lib.serve.predict import SHIPPED_CHECKPOINT
from amsnet_lib.train.cross_corpus import ADAPT_MODES, FOUR_CLASSES, classic_cross_corpus, shared_classes

MODEL = "compare-svm"
LABEL = "ComParE 2016 functionals + linear SVM"
#: The networks of the table, each the tuned recipe's (docs/RECIPE.md), by ``amsnet fit --model``.
NETWORKS = {"frlm": "FRLM, tuned recipe", "urlm": "URLM, tuned recipe", "amsnet": "AMSNet, tuned recipe"}
#: Beyond the tuned recipe, what was chosen for unheard speakers on EmoDB [loso]'s validation speakers
#: (scripts/unseen_speaker_options.py): fitted by ``amsnet fit --like`` that run, so its configuration is the one
#: chosen; row key -> (label, stage, option).
UNHEARD = {"frlm-pitch": ("FRLM, tuned recipe + pitch copies", "frlm", "augment pitch")}
DIRECTIONS = (("emodb", "ravdess"), ("ravdess", "emodb"))
ADAPT_NOTE = ("adapt: none = the test corpus standardised with the training corpus's statistics; corpus = each corpus "
              "with its own; speaker = each speaker with their own (no test label is read).")
CLASSES_NOTE = ("shared: the six classes EmoDB and RAVDESS share (anger, disgust, fear, happiness, sadness, neutral; "
                "chance UA 16.67); four: anger, happiness, neutral, sadness (chance 25).")


def class_sets(corpora: dict, train: str, test: str) -> dict[str, list[str]]:
    """The two class sets of a direction: the classes both corpora have, and the four among them."""
    shared = shared_classes(corpora[train].attrs["classes"], corpora[test].attrs["classes"])
    return {"shared": shared, "four": [c for c in shared if c in FOUR_CLASSES]}


def row(label: str, train: str, test: str, name: str, classes, adapt: str, wa, ua, n_test, **extra) -> dict:
    """One evaluation of the table (WA and UA in %, rounded; or NOT_RUN)."""
    measured = not isinstance(wa, str)
    return {"model": label, "train": train, "test": test, "classes": name, "n_classes": len(classes), "adapt": adapt,
            "WA (%)": round(wa, 2) if measured else wa, "UA (%)": round(ua, 2) if measured else ua,
            "chance UA (%)": round(100 / len(classes), 2), "n_test": n_test, **extra}


def classic_rows(corpora: dict, jobs: int | None) -> list[dict]:
    """ComParE + SVM, trained on the row's classes of one corpus and tested on the other's."""
    x = {c: extract_functionals(t, CLASSIC_MODELS[MODEL], n_jobs=jobs) for c, t in corpora.items()}
    rows = []
    for train, test in DIRECTIONS:
        for name, classes in class_sets(corpora, train, test).items():
            for adapt in ADAPT_MODES:
                s = classic_cross_corpus(corpora[train], x[train], corpora[test], x[test], classes, adapt)
                rows.append(row(LABEL, train, test, name, classes, adapt, s.wa, s.ua, s.n_test, C=s.chosen["C"],
                                class_weight=s.chosen["class_weight"],
                                **{"inner UA (%)": round(100 * s.chosen["inner_ua"], 2)}))
                print(f"{train} -> {test}, {name} ({len(classes)} classes), --adapt {adapt}: "
                      f"WA {s.wa:.2f} UA {s.ua:.2f} (C {s.chosen['C']:g}, {s.chosen['class_weight']})", flush=True)
    return rows


def unheard_run(key: str, run_dir: str | None) -> Path:
    """The run folder of :data:`UNHEARD` ``key``: that option's test run under EmoDB [loso] (``fit --like`` reads
    its configuration); an error naming the command that trains it when the run store lacks it."""
    from amsnet_lib.train.like import experiment_dir_name
    from scripts.unseen_speaker_options import candidates

    _, stage, option = UNHEARD[key]
    exp = candidates(stage, "emodb", "loso", "full", [option])[option]
    run = resolve_run_dir(run_dir) / experiment_dir_name(exp, len(ams.load_corpus("emodb", download=False)))
    if not (run / "config.json").is_file():
        raise SystemExit(f"{run} is missing: `python -m scripts.unseen_speaker_options --stage {stage}` trains the "
                         "option chosen there")
    return run


def checkpoint(model: str, corpus: str, data_dir: str | None, work: Path, run_dir: str | None) -> Path:
    """``model`` (a key of :data:`NETWORKS` or :data:`UNHEARD`) trained on all of ``corpus``: the shipped model for
    AMSNet on EmoDB, else ``amsnet fit`` (resumable: its stages are kept in the run store)."""
    if (model, corpus) == ("amsnet", "emodb"):
        return SHIPPED_CHECKPOINT
    out = work / f"{model}_{corpus}_tuned.pt"
    if not out.is_file():
        how = (["--like", str(unheard_run(model, run_dir))] if model in UNHEARD
               else ["--model", model, "--recipe", "tuned"])
        cmd = ([sys.executable, "-m", "amsnet_lib.cli", "fit", "--corpus", corpus, "--no-download", *how,
                "--out", str(out)] + (["--data-dir", data_dir] if data_dir else [])
               + (["--run-dir", run_dir] if run_dir else []))
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    return out


def network_rows(corpora: dict, dirs: dict, work: Path, run_dir: str | None, train_on=("emodb", "ravdess")) -> list[dict]:
    """Each network of :data:`NETWORKS`, trained on all of one corpus (of ``train_on``), evaluated on the
    other's files of each class set with each adaptation; one JSON per row under ``work`` (resumable)."""
    rows = []
    for train, test in DIRECTIONS:
        for model, label in {**NETWORKS, **{k: v[0] for k, v in UNHEARD.items()}}.items():
            ckpt = checkpoint(model, train, dirs[train], work, run_dir) if train in train_on else None
            for name, classes in class_sets(corpora, train, test).items():
                for adapt in ADAPT_MODES:
                    done = work / f"{model}_{train}_{test}_{name}_{adapt}.json"
                    if not done.is_file() and ckpt is None:  # a direction not asked for: its rows so far, else say so
                        rows.append(row(label, train, test, name, classes, adapt, NOT_RUN, NOT_RUN, NOT_RUN, checkpoint=""))
                        continue
                    if not done.is_file():
                        ev = ams.evaluate(corpora[test], ckpt, adapt=adapt, classes=classes, progress=sys.stderr.isatty())
                        atomic_write_text(done, json.dumps(row(label, train, test, name, classes, adapt, ev.wa, ev.ua,
                                                               len(ev.predictions), checkpoint=ckpt.name)))
                    rows.append({**json.loads(done.read_text()), "model": label})  # the label as the code names it now
                    print(f"{label}: {train} -> {test}, {name}, --adapt {adapt}: WA {rows[-1]['WA (%)']:.2f} "
                          f"UA {rows[-1]['UA (%)']:.2f}", flush=True)
    return rows


def heat_maps(table: pd.DataFrame, stem: str, what: str, figures: Path) -> None:
    table = table.assign(**{"UA (%)": pd.to_numeric(table["UA (%)"], errors="coerce")})  # 'not run': a blank cell
    for name in ("shared", "four"):
        part = table[table["classes"] == name]
        plotting.cross_corpus(part, chance=float(part["chance UA (%)"].iloc[0]),
                              title=f"{what}, cross-corpus UA, {name} classes", save=figures / f"{stem}_{name}.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--emodb", default=None, help="EmoDB folder (default: as load_corpus finds it)")
    p.add_argument("--ravdess", default=None, help="RAVDESS folder (default: as load_corpus finds it)")
    p.add_argument("--results", default=str(REPO_ROOT / "results"), help="results folder (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=None, help="processes for the functionals (default: all cores)")
    p.add_argument("--networks", action="store_true",
                   help="FRLM, URLM and AMSNet (tuned recipe), trained on all of each corpus, beside the baseline's "
                        "table (run once without --networks first; long: see the docstring)")
    p.add_argument("--work", default=str(REPO_ROOT / ".cache" / "cross_corpus"),
                   help="the networks' checkpoints and finished rows (default: %(default)s)")
    p.add_argument("--run-dir", default=None, help="run store of the fits (default: amsnet fit's)")
    p.add_argument("--train", nargs="+", choices=[d[0] for d in DIRECTIONS], default=[d[0] for d in DIRECTIONS],
                   help="--networks: only the networks trained on these corpora (default: both)")
    args = p.parse_args(argv)

    corpora = {"emodb": ams.load_corpus("emodb", data_dir=args.emodb, download=False),
               "ravdess": ams.load_corpus("ravdess", data_dir=args.ravdess, download=False)}
    results = Path(args.results)
    classic_csv = results / "tables" / "cross_corpus_classic.csv"
    if args.networks:  # the baseline's rows as the run without --networks wrote them (deterministic, minutes of SVMs)
        if not classic_csv.is_file():
            raise SystemExit(f"{classic_csv} is missing: run `python -m scripts.cross_corpus` (the classic baseline) first")
        classic = pd.read_csv(classic_csv)
    else:
        classic = pd.DataFrame(classic_rows(corpora, args.jobs))
        write_table(classic, results / "tables" / "cross_corpus_classic",
                    caption="Cross-corpus, the classic baseline: trained on all of one corpus, tested on all of the other",
                    notes=[CLASSES_NOTE, ADAPT_NOTE,
                           "C and class weighting chosen by speaker-grouped 5-fold cross-validation inside the training "
                           "corpus (inner UA); the test corpus read once per row.",
                           "Written by scripts/cross_corpus.py."])
        heat_maps(classic, "cross_corpus_classic", LABEL, results / "figures")
        print(f"wrote {results / 'tables' / 'cross_corpus_classic.md'} and its figures")
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    dirs = {"emodb": args.emodb, "ravdess": args.ravdess}  # None: amsnet fit finds the corpus as load_corpus did
    networks = pd.DataFrame(network_rows(corpora, dirs, work, args.run_dir, args.train))
    table = pd.concat([networks.drop(columns="checkpoint"), classic[networks.columns.drop("checkpoint")]],
                      ignore_index=True)
    write_table(table, results / "tables" / "cross_corpus",
                caption="Cross-corpus, the networks beside the classic baseline: trained on all of one corpus, "
                        "tested on the other",
                notes=[CLASSES_NOTE, ADAPT_NOTE,
                       "Networks: the tuned recipe (docs/RECIPE.md) trained on all of the training corpus, every class of "
                       "it (amsnet fit; AMSNet on EmoDB is the shipped model), the epoch chosen on a validation split of "
                       "that corpus; scored whole-recording (amsnet evaluate's default) with the probabilities "
                       "renormalised over the row's classes. Their adaptation acts at test time only.",
                       "'+ pitch copies': the configuration chosen for unheard speakers on EmoDB [loso]'s validation "
                       "speakers (unseen_speaker_options_emodb_loso_frlm.md: two pitch-shifted copies of every training "
                       "utterance, the epoch chosen on held-out speakers), fitted by `amsnet fit --like` its run. It was "
                       "chosen before RAVDESS was read, but on EmoDB's speakers: its EmoDB -> RAVDESS rows test that choice, "
                       "its RAVDESS -> EmoDB rows do not (EmoDB's labels chose it).",
                       "ComParE 2016 functionals + linear SVM: trained on the row's classes, its adaptation applied to both "
                       "corpora, C and class weighting chosen by speaker-grouped 5-fold cross-validation inside the "
                       "training corpus (details: cross_corpus_classic.md).",
                       "'not run': the networks trained on that corpus are not fitted yet (`python -m "
                       "scripts.cross_corpus --networks --train <corpus>`).",
                       "Nothing was chosen on the test corpus, each row reads it once; except that the whole-recording "
                       "default (pooling, trimming) was chosen with the shipped model on RAVDESS's six classes as "
                       "validation data (whole_recordings_validation.md), so the EmoDB -> RAVDESS rows are no independent "
                       "test of that choice.",
                       "Written by scripts/cross_corpus.py --networks (the baseline's rows: cross_corpus_classic.csv, "
                       "written by scripts/cross_corpus.py)."])
    heat_maps(table, "cross_corpus", "Networks (tuned recipe) and the classic baseline", results / "figures")
    print(f"wrote {results / 'tables' / 'cross_corpus.md'} and its figures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
