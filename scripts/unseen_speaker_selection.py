#!/usr/bin/env python
"""The recipe chosen for speakers it never heard (beyond the paper, issue #38 item 1): a branch stage's
search scored on speaker-held-out validation, then the test folds read once.

    amsnet search --corpus emodb --protocol loso --validation speaker --stage frlm --trials 4
    python -m scripts.unseen_speaker_selection --stage frlm

The search (its journal under ``<run store>/search``) scores each trial by the mean validation UA over
the protocol's folds, the validation split of each fold being whole training speakers held out of its
training part; its trial 0 is the tuned recipe as chosen on EmoDB's speaker-dependent folds. This script
reads the finished trials, takes the best by validation UA, and trains it and trial 0 under the protocol
with the same speaker-held-out validation (resumable through the run store): each configuration's test
folds are read once, after the choice. It writes ``results/tables/unseen_speaker_selection_<corpus>_<protocol>_
<stage>.{csv,md}``: both configurations' validation and test figures, the recipe's own row as Table 2 has
it (its epochs chosen on random utterances of the training speakers), and a paired test of the chosen
configuration against trial 0 on the same test utterances.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd

import amsnet_lib as ams
from amsnet_lib import studies
from amsnet_lib.paths import resolve_run_dir
from amsnet_lib.report.significance import significance_table
from amsnet_lib.errors import AmsnetError
from amsnet_lib.report.tables import NOT_RUN, write_table
from amsnet_lib.train.search import (STAGE_MODELS, recipe_augment, search_table, study_name, table_name,
                                     trial_components)
from scripts._options import add_store_options

CHOSEN = "chosen on validation speakers"
TRIAL0 = "the EmoDB-chosen recipe, validation speakers"
TABLE2 = "the EmoDB-chosen recipe, validation utterances (Table 2)"


def finished_trials(stage: str, corpus: str, protocol: str, profile: str, root: Path) -> tuple[pd.DataFrame, dict]:
    """The search's finished trials (:func:`amsnet_lib.train.search.search_table`), best first, and each
    one's values as Optuna holds them (by trial number; the table's rows mix ints into floats)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    name = study_name(stage, corpus, protocol, profile, validation="speaker")
    journal = root / name / "journal.log"
    if not journal.is_file():
        raise SystemExit(f"{journal}: no search journal; run first: amsnet search --corpus {corpus} --protocol {protocol} "
                         f"--validation speaker --stage {stage} --trials 4")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(journal))))
    table = search_table(study)
    if not len(table) or 0 not in set(table["trial"]):
        raise SystemExit(f"{journal}: trial 0 (the recipe as chosen on EmoDB) has not finished; resume the search")
    return table, {t.number: t.params for t in study.trials if t.number in set(table["trial"])}


def configuration(stage: str, corpus: str, protocol: str, profile: str, params: dict | None, validation: str, label: str):
    """The stage's model with a trial's ``params`` (None: the tuned recipe as it is), labelled."""
    base = studies.experiment(corpus, STAGE_MODELS[stage], protocol, profile, validation=validation)
    components = {} if params is None else trial_components(stage, params)
    exp = studies.tuned(base, quick=profile == "quick", **components)
    return dataclasses.replace(exp, variant="; ".join(v for v in (exp.variant, label) if v)) if label else exp


def write_choice(stem: Path, table: pd.DataFrame, caption: str, notes: list[str], results: dict, chosen: str,
                 reference: str, significance_caption: str) -> None:
    """``stem``.{csv,md}, and beside it ``stem``_significance (``chosen`` against ``reference`` on the same test
    utterances) when ``results`` holds both; prints the table."""
    write_table(table, stem, caption=caption, notes=notes)
    if chosen != reference and chosen in results and reference in results:
        write_table(significance_table({chosen: results[chosen], reference: results[reference]}, chosen),
                    stem.with_name(stem.name + "_significance"), caption=significance_caption)
    print(Path(str(stem) + ".md").read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", default="frlm", choices=["frlm", "urlm"])
    p.add_argument("--corpus", default="emodb", help="a named corpus, or the manifest or folder the search ran on")
    p.add_argument("--protocol", default="loso")
    p.add_argument("--profile", default="full", choices=list(studies.PROFILES))
    add_store_options(p, search=True, device=True)
    args = p.parse_args(argv)

    store = args.run_dir or resolve_run_dir(profile=args.profile)
    table = ams.load_corpus(args.corpus)
    args.corpus = table.attrs.get("corpus", args.corpus)  # a manifest or folder is named as `amsnet search` names it
    trials, values = finished_trials(args.stage, args.corpus, args.protocol, args.profile,
                                     args.search_root or Path(store) / "search")
    best, first = trials.iloc[0], trials.loc[trials["trial"] == 0].iloc[0]

    own = recipe_augment(args.stage, args.corpus, args.protocol, args.profile)
    exp0 = configuration(args.stage, args.corpus, args.protocol, args.profile, None, "speaker", TRIAL0)
    feats = ams.extract_features(table, exp0.features, cache_dir=args.cache_dir)
    if own != "none":
        from amsnet_lib.data.channels import augmented_features

        feats = augmented_features(feats, own)
    # trial 0 is the recipe as it is; a better trial is trained too (the test folds read once for each)
    runs = {TRIAL0: (exp0, first)}
    if int(best["trial"]) != 0:
        runs[CHOSEN] = (configuration(args.stage, args.corpus, args.protocol, args.profile, values[int(best["trial"])],
                                      "speaker", CHOSEN), best)
    results = {label: ams.run_experiment(exp, feats, store=store, device=args.device) for label, (exp, _) in runs.items()}
    # the recipe's row as Table 2 has it (validation on random utterances), read back, never trained here
    try:
        reference = ams.run_experiment(configuration(args.stage, args.corpus, args.protocol, args.profile, None,
                                                     studies.validation_for(args.corpus, args.protocol), ""),
                                       feats, store=store, finished_only=True).summary()
    except AmsnetError:  # the store holds none of its folds
        reference = {"wa": NOT_RUN, "ua": NOT_RUN}

    rows = []
    for label, (exp, trial) in runs.items():
        s = results[label].summary()
        rows.append({"configuration": label, "trial": str(int(trial["trial"])), "val UA (%)": trial["val_ua"],
                     "val WA (%)": trial["val_wa"], f"WA [{args.protocol}] (%)": s["wa"],
                     f"UA [{args.protocol}] (%)": s["ua"]})
    rows.append({"configuration": TABLE2, "trial": "", "val UA (%)": None, "val WA (%)": None,
                 f"WA [{args.protocol}] (%)": reference["wa"], f"UA [{args.protocol}] (%)": reference["ua"]})
    a, b = values[0], values[int(best["trial"])]
    changed = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    notes = [
        f"Search: `amsnet search --corpus {args.corpus} --protocol {args.protocol} --validation speaker --stage {args.stage}` "
        f"({len(trials)} finished trials, results/tables/"
        f"{table_name(args.stage, args.corpus, args.protocol, args.profile, validation='speaker', own=own)}.md): "
        "mean validation UA over the "
        f"{args.protocol} folds, each fold's validation split whole training speakers held out of its training part; "
        "no trial read a test fold.",
        "Trial 0 is the tuned recipe as chosen on EmoDB's speaker-dependent [paper] folds (validation on random "
        "utterances of the training speakers). " + (
            "The best trial by validation UA (ties broken by validation WA, as the search ranks them) is trial 0: "
            "choosing for unheard speakers keeps the recipe."
            if not changed else f"The best trial by validation UA, trial {int(best['trial'])}, changes "
            + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()) + "."),
        f"Test columns: each configuration trained under [{args.protocol}] with the same speaker-held-out validation, "
        "its test folds read once, after the choice; the Table 2 row is the same recipe with validation on random "
        "utterances (its epochs chosen so), read from the run store ('not run': the store holds none of its folds).",
        f"Corpus {args.corpus}, profile {args.profile}, seed 0.",
    ]
    stem = args.tables / f"unseen_speaker_selection_{args.corpus}_{args.protocol}_{args.stage}"
    write_choice(stem, pd.DataFrame(rows), f"{args.stage.upper()} chosen for unheard speakers: validation and test, "
                 f"{args.corpus} [{args.protocol}]", notes, results, CHOSEN, TRIAL0,
                 f"{args.stage.upper()} chosen on validation speakers against the EmoDB-chosen recipe, same test "
                 f"utterances, {args.corpus} [{args.protocol}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
