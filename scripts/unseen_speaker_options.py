#!/usr/bin/env python
"""What speakers it never heard need (beyond the paper, issue #38 item 2): the tuned recipe's branch stage
with one option changed at a time, each scored on validation speakers, the best kept, its test folds read once.

    python -m scripts.unseen_speaker_options --stage frlm --validation-only   # the validation table alone
    python -m scripts.unseen_speaker_options --stage frlm                     # then the chosen one's test folds

The options (``OPTIONS``), each a documented setting of the library:

- ``normalisation speaker``: every speaker's features standardised with that speaker's own statistics, in
  training and at test alike (what ``amsnet evaluate --adapt speaker`` does at test time); no label is
  read, but the test speaker's unlabelled utterances are (a protocol setting: a shipped model cannot use
  it, ``fit_final`` refuses it). Speaker normalisation: Busso, Mariooryad, Metallinou & Narayanan (2013),
  "Iterative feature normalization scheme for automatic emotion detection from speech", IEEE TAC 4(4).
- ``normalisation utterance``: each utterance standardised with its own statistics (per-utterance mean and
  variance normalisation), which a model for new audio can apply to one file alone.
- ``augment pitch``: two pitch-shifted copies of every training utterance (librosa's phase-vocoder pitch
  shift, :data:`amsnet_lib.data.channels.PITCH_SEMITONES`), a voice change that keeps the duration;
  speed perturbation (Ko et al., Interspeech 2015) is already URLM's own augmentation in the tuned recipe.

Each candidate is scored like a search trial (:func:`amsnet_lib.train.search.validation_score`, the same
fold store as ``amsnet search``, so the recipe itself is read back from the search's trial 0): the mean
validation UA over the protocol's folds, each fold's validation split whole training speakers held out of
its training part. No candidate reads a test fold. The best by validation UA (ties: validation WA, then
the recipe) is then trained under the protocol with the same validation and its test folds read once;
the recipe's own test figures are those of ``scripts/unseen_speaker_selection.py`` (read back, trained here
when missing). Writes ``results/tables/unseen_speaker_options_<corpus>_<protocol>_<stage>.{csv,md}`` (and
``..._significance`` when an option was chosen).

``--ensemble N``: then seed ensembles of the chosen configuration (:mod:`amsnet_lib.train.ensemble`; members
differ in their initial weights, batch order and copies, and share member 0's validation speakers): the
ensembles of 1 ... N members scored on those validation speakers, the size with the best validation UA kept
and only its test folds read. Writes ``..._ensemble.{csv,md}`` (and ``..._ensemble_significance``: the
ensemble against the single network on the same test utterances, when more than one member was kept).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd

import amsnet_lib as ams
from amsnet_lib import studies
from amsnet_lib.paths import resolve_run_dir
from amsnet_lib.train import ensemble
from amsnet_lib.train.search import validation_score
from scripts.unseen_speaker_selection import TRIAL0, configuration, write_choice
from scripts._options import add_store_options

RECIPE = "the EmoDB-chosen recipe"


def _normalisation(kind: str):
    return lambda exp, stage: dataclasses.replace(exp, normalisation=kind)


def _pitch(exp, stage: str):
    """Pitch copies for the stage under test. An experiment's features carry one augmentation, so FRLM's
    candidate drops URLM's speed copies (URLM does not train in it) and URLM's takes pitch in their place."""
    if stage == "frlm":
        return dataclasses.replace(exp, frlm_train=dataclasses.replace(exp.stage_train("frlm"), augment="pitch"),
                                   branch_train=dataclasses.replace(exp.branch_train, augment="none"))
    return dataclasses.replace(exp, branch_train=dataclasses.replace(exp.branch_train, augment="pitch"))


#: label -> how it changes the stage's tuned recipe (one option at a time): f(experiment, stage)
OPTIONS = {
    "normalisation speaker": _normalisation("speaker"),
    "normalisation utterance": _normalisation("utterance"),
    "augment pitch": _pitch,
}
NOT_TESTED = "not tested: not chosen"
ONE_NETWORK = "one network"


def candidates(stage: str, corpus: str, protocol: str, profile: str, options: list[str]) -> dict:
    """The recipe (validated on speakers) and each option applied to it, by label: unlabelled experiments, so
    that the recipe's key is that of the search's trial 0."""
    base = configuration(stage, corpus, protocol, profile, None, "speaker", "")
    return {RECIPE: base, **{o: OPTIONS[o](base, stage) for o in options}}


def choose(scores: pd.DataFrame) -> str:
    """The best row's label: validation UA, then validation WA; the recipe (first row) wins ties."""
    ranked = scores.sort_values(["val UA (%)", "val WA (%)"], ascending=False, kind="stable")
    return str(ranked["configuration"].iloc[0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", default="frlm", choices=["frlm", "urlm"])
    p.add_argument("--corpus", default="emodb", help="a named corpus, a manifest or a folder")
    p.add_argument("--protocol", default="loso")
    p.add_argument("--profile", default="full", choices=list(studies.PROFILES))
    p.add_argument("--options", nargs="+", default=list(OPTIONS), choices=list(OPTIONS), metavar="OPTION",
                   help=f"the options to score (default: all of {', '.join(OPTIONS)})")
    p.add_argument("--validation-only", action="store_true",
                   help="score the candidates and write their validation table; read no test fold")
    p.add_argument("--ensemble", type=int, default=1, metavar="N",
                   help="then seed ensembles of the chosen configuration, 1 ... N members, the size chosen on the "
                        "validation speakers and only its test folds read (default: 1, none)")
    add_store_options(p, search=True, device=True)
    args = p.parse_args(argv)
    if args.ensemble > 1 and args.validation_only:  # the ensembles come after the test step that flag skips
        p.error("--ensemble builds the chosen configuration's ensembles after its test; --validation-only stops before "
                "the test: drop one of them")

    store = Path(args.run_dir or resolve_run_dir(profile=args.profile))
    folds_root = (args.search_root or store / "search") / "folds"
    table = ams.load_corpus(args.corpus)
    args.corpus = table.attrs.get("corpus", args.corpus)
    exps = candidates(args.stage, args.corpus, args.protocol, args.profile, args.options)
    originals = ams.extract_features(table, exps[RECIPE].features, cache_dir=args.cache_dir)

    copies = {"none": originals}  # per augmentation, read once: the chosen candidate's test run trains on them again

    def features_for(exp):
        from amsnet_lib.data.channels import augmented_features

        wanted = exp.audio_augment  # the copies its stage trains on (none, the recipe's own, or the option's)
        if wanted not in copies:
            copies[wanted] = augmented_features(originals, wanted, feature_cache=args.cache_dir)
        return copies[wanted]

    rows = []
    for label, exp in exps.items():
        score = validation_score(exp, features_for(exp), folds_root, device=args.device)
        rows.append({"configuration": label, "val UA (%)": score.ua, "val WA (%)": score.wa, "val loss": score.loss,
                     "CPU seconds": score.seconds})
    scores = pd.DataFrame(rows)
    chosen = choose(scores)
    wa, ua = f"WA [{args.protocol}] (%)", f"UA [{args.protocol}] (%)"
    scores["chosen"] = (scores["configuration"] == chosen).map({True: "yes", False: ""})
    notes = [
        f"Corpus {args.corpus}, protocol {args.protocol}, stage {args.stage.upper()} of the tuned recipe, profile "
        f"{args.profile}, seed 0. Validation: the mean over the {args.protocol} folds of each fold's validation "
        "split, whole training speakers held out of its training part; no candidate read a test fold.",
        "Options (scripts/unseen_speaker_options.py says where each comes from): normalisation speaker = each "
        "speaker standardised with their own statistics in training and test (reads the test speaker's unlabelled "
        "utterances; a protocol setting, not one for a shipped model); normalisation utterance = each utterance with "
        "its own; augment pitch = two copies of every training utterance shifted by -2 and +2 semitones.",
        f"Chosen by validation UA (ties: validation WA, then the recipe): {chosen}.",
    ]
    results = {}
    if args.validation_only:
        scores[wa] = scores[ua] = "not read (--validation-only)"
    else:
        tested = {TRIAL0: configuration(args.stage, args.corpus, args.protocol, args.profile, None, "speaker", TRIAL0)}
        if chosen != RECIPE:
            tested[chosen] = dataclasses.replace(exps[chosen], variant="; ".join(
                v for v in (exps[chosen].variant, f"chosen on validation speakers: {chosen}") if v))
        results = {label: ams.run_experiment(exp, features_for(exp), store=store, device=args.device)
                   for label, exp in tested.items()}
        summary = {(RECIPE if label == TRIAL0 else label): r.summary() for label, r in results.items()}
        scores[wa] = [summary[c]["wa"] if c in summary else NOT_TESTED for c in scores["configuration"]]
        scores[ua] = [summary[c]["ua"] if c in summary else NOT_TESTED for c in scores["configuration"]]
        notes.append(f"Test columns: trained under [{args.protocol}] with the same speaker-held-out validation, the test "
                     "folds read once, after the choice; the recipe's are those of scripts/unseen_speaker_selection.py "
                     f"('{TRIAL0}'). Options not chosen were never tested.")
    stem = args.tables / f"unseen_speaker_options_{args.corpus}_{args.protocol}_{args.stage}"
    write_choice(stem, scores, f"{args.stage.upper()} for unheard speakers: one option at a time on the tuned recipe, "
                 f"scored on validation speakers, {args.corpus} [{args.protocol}]", notes, results, chosen, TRIAL0,
                 f"{args.stage.upper()} with {chosen} against the EmoDB-chosen recipe, both validated on speakers, "
                 f"same test utterances, {args.corpus} [{args.protocol}]")
    if args.ensemble > 1:
        final = chosen if chosen in tested else TRIAL0  # the recipe chosen: its run is the search's trial 0
        write_ensemble(stem.with_name(stem.name + "_ensemble"), tested[final], features_for(tested[final]), args.ensemble,
                       results[final], chosen, args, store)
    return 0


def write_ensemble(stem: Path, exp, feats, n: int, single, chosen: str, args, store: Path) -> None:
    """The ensembles of 1 ... ``n`` members of ``exp`` on the validation speakers, the size with the best validation
    UA kept (ties: the fewer) and only its test folds read; ``single`` is member 0's result (the chosen row)."""
    scores = ensemble.validation_scores(exp, feats, n, store=store, device=args.device)
    if scores.attrs["missing"]:
        raise SystemExit(f"ensemble: members missing for {scores.attrs['missing']}; run again to train them")
    k = ensemble.choose_size(scores)
    mean = scores.groupby("members")[["val_ua", "val_wa"]].mean().round(2)
    wa, ua = f"WA [{args.protocol}] (%)", f"UA [{args.protocol}] (%)"
    label = {m: ONE_NETWORK if m == 1 else ensemble.ensemble_label(m) for m in range(1, n + 1)}
    results = {ONE_NETWORK: single}
    if k > 1:
        results[label[k]] = ensemble.run_ensemble(exp, feats, k, store=store, device=args.device)
    rows = []
    for m, r in mean.iterrows():
        summary = results[label[m]].summary() if label[m] in results else None
        rows.append({"members": int(m), "val UA (%)": r["val_ua"], "val WA (%)": r["val_wa"],
                     "chosen": "yes" if m == k else "",
                     wa: summary["wa"] if summary else NOT_TESTED, ua: summary["ua"] if summary else NOT_TESTED})
    notes = [f"{args.stage.upper()} with {chosen}, {args.corpus} [{args.protocol}], profile {args.profile}: the mean of "
             "the members' class probabilities; member m trains with its own seed (initial weights, batch order, copies) "
             "on member 0's folds and validation speakers.",
             f"Validation: the mean over the folds of each fold's validation speakers (optimistic in absolute terms: each "
             f"member stopped on them, alike for every size); chosen: {k} member(s) (best validation UA, ties: fewer). "
             "Test columns: the single network (the chosen row above) and the chosen size only; other sizes were never "
             "tested."]
    write_choice(stem, pd.DataFrame(rows), f"Seed ensembles of {args.stage.upper()} with {chosen} for unheard speakers, "
                 f"size chosen on validation speakers, {args.corpus} [{args.protocol}]", notes, results,
                 label[k], ONE_NETWORK,
                 f"An ensemble of {k} against the single network, same test utterances, {args.corpus} [{args.protocol}]")


if __name__ == "__main__":
    raise SystemExit(main())
