#!/usr/bin/env python
"""A model trained on EmoDB and RAVDESS together against the same model trained on each alone, on the same
test utterances (beyond the paper, issue #38 item 5: does training on two corpora cost either of them?).

    amsnet train --corpus emodb+ravdess --protocol corpus_folds --model frlm --recipe tuned --balance corpus_class
    python -m scripts.joint_vs_alone --model frlm --recipe tuned --balance corpus_class

Reads the run store, trains nothing: the joint run (protocol ``corpus_folds``: each corpus tested on its own
speaker-independent folds, the other corpus in every training part) and, for each corpus, the model trained on
it alone under that protocol (EmoDB ``loso``, RAVDESS ``emobox``; ``amsnet train`` them first). The joint model is
scored over the classes of the corpus it is tested on (:mod:`amsnet_lib.report.joint`); only the folds the joint
run has finished are compared. Writes ``results/tables/joint_<corpora>_<model>_<recipe>[_balance-<b>].{csv,md}``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import amsnet_lib as ams
from amsnet_lib import studies
from amsnet_lib.config import BALANCES, CORPUS_FOLDS, RECIPES
from amsnet_lib.errors import AmsnetError
from amsnet_lib.paths import resolve_run_dir
from amsnet_lib.report.joint import corpus_comparison
from amsnet_lib.report.tables import write_table
from scripts._options import add_store_options


def configuration(corpus: str, model: str, protocol: str, profile: str, recipe: str, balance: str, features):
    """The experiment as ``amsnet train`` builds it from the same options (so that its run key is found)."""
    exp = studies.experiment(corpus, model, protocol, profile, recipe=recipe, features=features)
    return studies.with_balance(exp, balance)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpora", default="emodb+ravdess")
    p.add_argument("--model", default="frlm")
    p.add_argument("--recipe", default="tuned", choices=list(RECIPES))
    p.add_argument("--balance", default="corpus_class", choices=list(BALANCES), help="the joint run's (the runs alone: none)")
    p.add_argument("--profile", default="full", choices=list(studies.PROFILES))
    add_store_options(p)
    args = p.parse_args(argv)

    store = Path(args.run_dir or resolve_run_dir(profile=args.profile))

    def read(corpus: str, protocol: str, balance: str):
        exp = configuration(corpus, args.model, protocol, args.profile, args.recipe, balance, None)
        feats = ams.extract_features(ams.load_corpus(corpus), exp.features, cache_dir=args.cache_dir)
        exp = configuration(corpus, args.model, protocol, args.profile, args.recipe, balance, feats.config)
        try:
            return ams.run_experiment(exp, feats, store=store, finished_only=True)
        except AmsnetError as error:  # none of its folds finished
            raise SystemExit(f"{corpus} [{protocol}], {args.model}, {args.recipe} recipe: {error}. Train it first: "
                             f"amsnet train --corpus {corpus} --protocol {protocol} --model {args.model} "
                             f"--recipe {args.recipe}" + (f" --balance {balance}" if balance != "none" else "")) from None

    joint = read(args.corpora, "corpus_folds", args.balance)
    alone = {c: read(c, CORPUS_FOLDS[c], "none") for c in args.corpora.split("+")}
    label = "trained on both"
    table = corpus_comparison(joint, alone, label=label)
    name = f"joint_{args.corpora}_{args.model}_{args.recipe}" + (f"_balance-{args.balance}" if args.balance != "none" else "")
    notes = [
        f"{args.model.upper()}, {args.recipe} recipe, profile {args.profile}, seed 0. '{label}': trained on {args.corpora} "
        "under the protocol corpus_folds (each corpus tested on its own speaker-independent folds, EmoDB leave one "
        "speaker out and RAVDESS EmoBox's folds, the other corpus in every training part; validation speakers held "
        "out of each training part" + (f"; epochs drawn with balance={args.balance}" if args.balance != "none" else "")
        + "). 'alone': the same model trained on that corpus alone, same folds, with that corpus's own validation "
        "split (" + "; ".join(f"{c}: {'whole training speakers' if r.config.validation == 'speaker' else 'random utterances of the training speakers'}"
                              for c, r in alone.items()) + ").",
        "The joint model is scored over the classes of the corpus it is tested on (its probabilities renormalised "
        "over them): it is never charged for a class only the other corpus has (EmoDB's boredom, RAVDESS's calm "
        "and surprise).",
        "WA/UA: mean over the folds compared; 'folds': those the joint run has finished, of the corpus's. Δ = joint − "
        "alone; p: paired bootstrap of UA (utterances resampled within folds) and McNemar's exact test of WA, on the "
        "same test utterances.",
    ]
    write_table(table, args.tables / name, caption=f"{args.model.upper()} trained on {args.corpora} against each "
                f"corpus alone, same test utterances", notes=notes)
    print((args.tables / f"{name}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
