"""Command line, training: ``amsnet features | train | compare | fit | pretrain | search`` (added to
:func:`amsnet_lib.cli.main`)."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .. import studies  # configuration dataclasses only: cheap, and --help names the studies
from ..config import (AUGMENTATIONS, BALANCES, CLASSIC_MODELS, CORPUS_BATCH_SIZE, FUSION_TRAIN, MODELS, MONITORS, NORMALISATIONS,
                     OPTIMIZERS, PROTOCOLS, QUICK_TRAIN, RECIPES, VALIDATIONS, ExperimentConfig, FRLMConfig, TrainConfig,
                     URLMConfig)
from ._common import (MAX_SEED, _add_corpus_args, _load, _check_outputs, _report_grouped, _augmented, _report_dir,
                      _corpus_name, _dumps, _number)


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    """Where the trainings run (``engine.EngineConfig``): a local Ray by default, or a cluster."""
    p.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="join the running Ray cluster whose head is here (`ray start --head` prints it; docs/CLUSTER.md); "
                        "default $RAY_ADDRESS, else a Ray started for this command on this machine (127.0.0.1 only)")
    p.add_argument("--serial", action="store_true", help="no Ray: the same trainings one after another in this process")


def _engine(args, num_cpus: int | None, threads: int | None):
    from ..train.engine import EngineConfig

    return EngineConfig(address=args.ray_address, num_cpus=num_cpus, threads=threads or 1, serial=args.serial)


def _engine_line(engine) -> str:
    import os

    if engine.serial:
        return "one after another in this process (--serial)"
    where = engine.address or os.environ.get("RAY_ADDRESS")
    if where:
        return f"Ray tasks on the cluster at {where}, {engine.threads} thread(s) each"
    return f"Ray tasks on this machine ({engine.num_cpus or os.cpu_count()} CPUs), {engine.threads} thread(s) each"


def _set_threads(args) -> None:
    """``--threads``: torch's intra-op threads in this process (Ray tasks get theirs from ``engine``)."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def _cmd_features(args) -> int:
    if args.augment != "none" and not args.save:
        raise SystemExit("error: --augment adds the copies to the bundle --save writes; name it with --save FILE")
    report = args.report or _report_dir(args) / f"features_{_corpus_name(args.features or args.corpus)}_warnings.csv"
    _check_outputs(args, files={"--save": args.save, "--report" if args.report else "warnings list": report})
    feats = _load(args)
    s = feats.summary()
    if args.save:
        feats = _augmented(args, feats, args.augment)  # the copies travel in the bundle: no audio needed there
        path = feats.save(args.save, precision=args.precision)
        print(f"saved: {path} ({path.stat().st_size / 1e6:.1f} MB, {args.precision}); train from it with --features {path}",
              file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(_dumps(s, indent=1))
        return 0
    t = feats.table
    print(f"corpus: {t.attrs.get('corpus', args.corpus)}")
    print(f"utterances: {s['utterances']}")
    codes = {}
    if t.attrs.get("corpus") == "emodb":  # also the official letter codes, W L E A F T N
        from ..data.corpora.emodb import CODES

        codes = {name: f" ({code})" for code, name in CODES.items()}
    print("per class: " + ", ".join(f"{c}{codes.get(c, '')} {n}" for c, n in s["classes"].items()))
    print("per speaker: " + ", ".join(f"{k} {n}" for k, n in s["speakers"].items()))
    print(f"total duration: {s['total_duration_s'] / 60:.1f} min ({s['total_duration_s']:.1f} s)")
    print(f"frame-level features: {s['frames_shape']} (utterances, q frames, {s['frame_dims']} dims)")
    print(f"spectrogram: {s['spec_shape']} (utterances, mel bands, frames)")
    print(f"cache hits: {s['cache_hits']} / {s['utterances']}")
    _report_grouped(feats.warnings, "warning(s)", report if feats.warnings else None, stream=sys.stdout)
    return 0


def _experiment(args, corpus: str, feats, *, protocol: str = "paper", **kw):
    """The paper's configuration (``studies.experiment``) with only the options given here changed,
    so the CLI and the notebooks share their run store entries."""
    if args.model in CLASSIC_MODELS:  # no network: no recipe (``compare`` sets them beside a tuned AMSNet) and no network option
        return studies.experiment(corpus, args.model, protocol, args.profile, features=feats.config, **kw)
    exp = studies.experiment(corpus, args.model, protocol, args.profile, recipe=args.recipe, features=feats.config, **kw)
    # each changed factor also names the variant, so the summary row of a changed configuration
    # never overwrites the paper configuration's row (and matches the study notebook's row)
    if args.se_ratio is not None:
        exp = studies.with_se_ratio(exp, args.se_ratio)
    if args.hidden_size is not None:
        exp = studies.with_hidden_size(exp, args.hidden_size)
    if args.optimizer is not None or args.batch_size is not None:
        exp = studies.with_optimizer_batch(exp, args.optimizer, args.batch_size)
    if args.lr is not None:
        exp = studies.with_learning_rate(exp, args.lr)
    if args.late_weight is not None:
        exp = studies.with_late_weight(exp, args.late_weight)
    if any(getattr(args, k, None) is not None for k in ("frlm_lr", "urlm_lr", "fusion_lr")):
        exp = studies.with_stage_learning_rates(exp, args.frlm_lr, args.urlm_lr, args.fusion_lr)
    exp = studies.with_stopping(exp, args.epochs, args.patience, args.monitor)
    if getattr(args, "balance", None) is not None:
        exp = studies.with_balance(exp, args.balance)
    return exp


def _add_protocol_args(p: argparse.ArgumentParser) -> None:
    """The options of ``train`` and ``compare`` that choose the folds and the seeds."""
    p.add_argument("--protocol", default="paper", choices=list(PROTOCOLS))
    p.add_argument("--split-file", default=None, help="CSV path,fold for --protocol split_file")
    p.add_argument("--folds", type=_number(int, 2), default=ExperimentConfig.n_folds, help="folds of the paper protocol (default: %(default)s)")
    p.add_argument("--split-seed", type=_number(int, 0, MAX_SEED), default=ExperimentConfig.split_seed)
    p.add_argument("--seeds", type=_number(int, 0, MAX_SEED), nargs="+", default=[0])
    p.add_argument("--normalisation", default="corpus", choices=list(NORMALISATIONS),
                   help="corpus (paper): fold-training statistics; speaker: each speaker standardised with their own "
                        "statistics first (not in the paper; assumes the test speaker is known); utterance: each "
                        "utterance standardised with its own statistics first (per-utterance CMVN, not in the paper; "
                        "needs no speaker, so a checkpoint can use it too; not yet chosen on validation)")
    _add_validation_arg(p)


def _add_validation_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--validation", default=None, choices=list(VALIDATIONS),
                   help="how each fold's validation split is drawn from its training part: utterance (stratified "
                        "by class) or speaker (whole training speakers held out, for a choice made for unseen "
                        "speakers; needs a speaker column). Default: the protocol's (speaker for RAVDESS's "
                        "speaker-independent folds, utterance otherwise)")


def _chosen_validation(args) -> dict:
    """``--validation`` as an experiment override; nothing when not given (the protocol's own)."""
    return {} if getattr(args, "validation", None) is None else {"validation": args.validation}


def _protocol_kwargs(args) -> dict:
    """``_add_protocol_args``'s options as :func:`_experiment` keywords."""
    return dict(protocol=args.protocol, n_folds=args.folds, split_seed=args.split_seed, seeds=tuple(args.seeds),
                split_file=args.split_file, normalisation=args.normalisation, **_chosen_validation(args))


def _add_configuration_args(p: argparse.ArgumentParser) -> None:
    """The options of ``train`` and ``fit`` that change the model or its training."""
    p.add_argument("--profile", default="full", choices=list(studies.PROFILES), help="full = the paper's settings; quick = smoke run")
    p.add_argument("--recipe", default="paper", choices=list(RECIPES),
                   help="training recipe: paper (the paper's stated settings) or tuned (beyond the paper, chosen on "
                        "validation: docs/RECIPE.md); the options below change either")
    p.add_argument("--optimizer", default=None, choices=list(OPTIMIZERS), help=f"default: the recipe's (paper: {TrainConfig.optimizer})")
    p.add_argument("--lr", type=_number(float, 0, 10, above=True), default=None, help=f"learning rate of both stages (default: the profile's; full: {TrainConfig.lr:g})")
    p.add_argument("--frlm-lr", type=_number(float, 0, 10, above=True), default=None,
                   help="FRLM's (and early fusion's) learning rate where it differs from --lr (not in the paper; "
                        "scripts/diagnostics/stage_lr.py chooses one per stage on validation)")
    p.add_argument("--urlm-lr", type=_number(float, 0, 10, above=True), default=None, help="URLM's learning rate where it differs from --lr")
    p.add_argument("--fusion-lr", type=_number(float, 0, 10, above=True), default=None, help="the fusion head's learning rate where it differs from --lr")
    p.add_argument("--late-weight", type=_number(float, 0, 1), default=None,
                   help="--model late: fix the weight of FRLM's probabilities (0-1; 0.5: the plain average) instead of choosing it on validation")
    p.add_argument("--batch-size", type=_number(int, 1), default=None, help=f"default: {TrainConfig.batch_size} EmoDB, {CORPUS_BATCH_SIZE['iemocap']} IEMOCAP")
    p.add_argument("--se-ratio", type=_number(int, 1), default=None, help=f"URLM squeeze-and-excitation reduction ratio r (Table 3; default {URLMConfig.se_ratio})")
    p.add_argument("--hidden-size", type=_number(int, 1), default=None, help=f"FRLM BLSTM units per direction (Fig. 7; default {FRLMConfig.hidden_size})")
    p.add_argument("--epochs", type=_number(int, 1), default=None,
                   help=f"maximum epochs per stage (default, profile full: {TrainConfig.epochs} for the branches, "
                        f"{FUSION_TRAIN['epochs']} for the fusion head; quick: {QUICK_TRAIN['epochs']})")
    p.add_argument("--patience", type=_number(int, 0), default=None,
                   help=f"early-stopping patience in epochs, 0: off (default, profile full: {TrainConfig.patience} for the "
                        f"branches, {FUSION_TRAIN['patience']} for the fusion head; quick: {QUICK_TRAIN['patience']})")
    p.add_argument("--balance", default=None, choices=list(BALANCES),
                   help="how each epoch draws its training utterances, every stage (beyond the paper): none (each once: "
                        "default), class (each class alike) or corpus_class (each corpus and class alike: "
                        "--corpus emodb+ravdess)")
    p.add_argument("--monitor", default=None, choices=list(MONITORS),
                   help="model selection and early stopping on the validation split, every stage (late fusion: "
                        "its weight's criterion): lowest loss (default) or highest UA")


#: The options of ``train`` that change a network or its training (``None``: not given).
_NETWORK_OPTIONS = ("optimizer", "lr", "frlm_lr", "urlm_lr", "fusion_lr", "late_weight", "batch_size", "se_ratio",
                    "hidden_size", "epochs", "patience", "monitor", "balance")


def _check_configuration_args(args) -> None:
    from ..errors import AmsnetError

    model = getattr(args, "model", None)
    given = [o for o in _NETWORK_OPTIONS if getattr(args, o, None) is not None]
    if model in CLASSIC_MODELS and (given or getattr(args, "recipe", "paper") != "paper" or getattr(args, "augment", "none") != "none"):
        given += (["recipe"] if args.recipe != "paper" else []) + (["augment"] if getattr(args, "augment", "none") != "none" else [])
        raise AmsnetError(None, f"--model {model} with --{', --'.join(o.replace('_', '-') for o in given)}",
                          f"{model} is a classic baseline (openSMILE functionals, linear SVM with C chosen by inner "
                          "cross-validation): leave out the network's options")

    if args.late_weight is not None and (args.model != "late" or not 0.0 <= args.late_weight <= 1.0):
        raise AmsnetError(None, f"--late-weight {args.late_weight:g} with --model {args.model}",
                          "--late-weight needs --model late and a weight between 0 and 1 (or leave it out: "
                          "the weight is then chosen on validation)")


def _cmd_train(args) -> int:
    from ..train.training import run_experiment
    from ..report.summary import update_summary

    _check_configuration_args(args)
    writes_summary = args.summary and args.profile == "full" and not args.fold
    _check_outputs(args, run_store=True, files={"--summary": args.summary if writes_summary else None})
    _set_threads(args)
    classic = args.model in CLASSIC_MODELS
    feats = _load(args, streams=not classic)  # a classic baseline needs the corpus table, not AMSNet's streams
    corpus = feats.table.attrs.get("corpus", "custom")
    exp = _experiment(args, corpus, feats, **_protocol_kwargs(args))
    if args.augment != "none":  # the folds stay the originals'; a copy trains only beside its original
        exp = dataclasses.replace(exp, augment=args.augment)
    feats = _augmented(args, feats, exp.audio_augment)  # every stage's copies (the tuned URLM's speed copies)
    if (args.workers > 1 or args.ray_address) and not args.finished_only and not classic:
        from ..train.engine import pretrain

        # the folds side by side as Ray tasks, branches first, then the fusion heads
        if args.fold:
            print("--workers / --ray-address: ignored with --fold (the folds named run in this process)")
        else:
            engine = _engine(args, args.workers, args.threads)
            print(f"training: {_engine_line(engine)}")
            pretrain([exp], feats, store=args.run_dir, device=args.device, engine=engine, fusion=True)
    functionals = None
    if classic:  # through the feature cache --cache-dir names, with --jobs workers, when a fold needs them
        import functools

        from ..data.functionals import extract_functionals
        from ..train.classic import describe

        print(f"{exp.model}: {describe(exp)}")
        functionals = functools.cache(lambda: extract_functionals(feats.table, CLASSIC_MODELS[exp.model], sample_rate=
                                                                  exp.features.sample_rate, cache_dir=args.cache_dir,
                                                                  n_jobs=args.jobs))
    result = run_experiment(exp, feats, store=args.run_dir, device=args.device, finished_only=args.finished_only,
                            only_folds=args.fold, functionals=functionals)
    if result.missing:
        print(f"INCOMPLETE: {len(result.missing)} of {len(result.missing) + len(result.folds)} fold runs not finished yet "
              f"({', '.join(f for _, f in result.missing)}); the mean below covers the finished folds only")
    print(f"{exp.model} on {corpus}, protocol {exp.protocol}, profile {args.profile} ({len(result.folds)} fold runs)")
    print(result.fold_table().to_string(index=False))
    if classic:  # what the inner cross-validation chose on each training part
        chosen = result.folds[["seed", "fold", "svm_C", "svm_class_weight", "inner_cv", "inner_ua"]].copy()
        chosen["inner_ua"] = (100 * chosen["inner_ua"]).round(2)
        print("chosen on the training part (inner CV, UA %):\n" + chosen.to_string(index=False))
    s = result.summary()
    print(f"mean WA {s['wa']:.2f} ± {s['wa_std']:.2f} %, UA {s['ua']:.2f} ± {s['ua_std']:.2f} % [protocol: {exp.protocol}] [recipe: {exp.recipe}]")
    if writes_summary and not result.missing:
        update_summary(result, args.summary, written_by="amsnet train")
        print(f"summary: {args.summary}")
    if args.ensemble > 1 and not result.missing:
        _train_ensemble(args, exp, feats, writes_summary)
    return 0


def _train_ensemble(args, exp: ExperimentConfig, feats, writes_summary: bool) -> None:
    """``amsnet train --ensemble N``: members 1..N-1, the size chosen on validation, its test folds."""
    from ..train import ensemble
    from ..report.summary import update_summary

    members = ensemble.members(exp, args.ensemble)
    if (args.workers > 1 or args.ray_address) and not args.finished_only:
        from ..train.engine import pretrain

        pretrain(members[1:], feats, store=args.run_dir, device=args.device, engine=_engine(args, args.workers, args.threads),
                 fusion=True)
    scores = ensemble.validation_scores(exp, feats, args.ensemble, store=args.run_dir, device=args.device,
                                        train=not args.finished_only)
    if scores.attrs["missing"]:
        print(f"ensemble: members of {len(scores.attrs['missing'])} fold(s) not finished; nothing chosen")
        return
    k = ensemble.choose_size(scores)
    means = scores.groupby("members")[["val_wa", "val_ua", "val_loss"]].mean().round(2)
    print(f"seed ensembles on the validation splits (no test fold read), mean over folds:\n{means.to_string()}")
    print(f"chosen on validation: {k} member(s)")
    if k == 1:
        print("the single model above is the result")
        return
    res = ensemble.run_ensemble(exp, feats, k, store=args.run_dir, device=args.device, train=not args.finished_only)
    print(res.fold_table().to_string(index=False))
    s = res.summary()
    print(f"{ensemble.ensemble_label(k)}: mean WA {s['wa']:.2f} ± {s['wa_std']:.2f} %, UA {s['ua']:.2f} ± {s['ua_std']:.2f} % "
          f"[protocol: {exp.protocol}] [recipe: {exp.recipe}]")
    if writes_summary:
        update_summary(res, args.summary, written_by="amsnet train")


#: The options of ``fit`` that configure the model or its training: ``--like RUN_DIR`` takes all of them
#: from the run, so none may be given beside it.
_LIKE_CONFLICTS = ("model", "profile", "recipe", *_NETWORK_OPTIONS, "normalisation", "validation", "augment", "duration",
                   "n_mels")


class _NotedStore(argparse.Action):
    """``store`` that also notes the option as given (``args.given``), whatever its value: ``fit --like``
    refuses a configuration option given beside it, even at its default."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = frozenset(getattr(namespace, "given", ())) | {self.dest}


def _like(args):
    """``fit --like RUN_DIR``: the run's configuration (:func:`amsnet_lib.train.like.experiment_like`) and
    the utterance count its key holds; refused beside a configuration option, or for a run fit cannot make."""
    from ..errors import AmsnetError
    from ..train.like import experiment_like, run_utterances

    given = [o for o in _LIKE_CONFLICTS if o in getattr(args, "given", ())]
    if given:
        options = ", ".join("--" + o.replace("_", "-") for o in given)
        raise AmsnetError(None, f"--like {args.like} with {options}",
                          "--like takes the whole configuration (model, recipe, training, features) from the run: leave "
                          f"out {options}, or fit without --like, with the run's options and yours")
    exp = experiment_like(args.like)
    if exp.model in CLASSIC_MODELS:
        raise AmsnetError(args.like, f"is a run of {exp.model}, a classic baseline measured by cross-validation only: fit "
                                     "makes no checkpoint of it", "--like a run of a network (amsnet, frlm, urlm, concat, "
                                     "early, late), or quote the baseline's cross-validated figures")
    if exp.normalisation == "speaker":
        raise AmsnetError(args.like, f"was trained with normalisation {exp.normalisation!r}, which needs each test speaker's "
                                     "statistics: a model for new audio has none", "--like a run with the corpus normalisation "
                                     "(the default) or the utterance one")
    return exp, run_utterances(args.like)


def _cmd_fit(args) -> int:
    import datetime as _dt

    import amsnet_lib

    from ..errors import AmsnetError
    from ..serve.checkpoint import TRAINING_DIGESTS, config_to_dict, describe_training_data, save_checkpoint
    from ..train.runstore import n_utterances
    from ..train.training import fit_final

    like = _like(args) if args.like else None
    _check_configuration_args(args)
    if args.normalisation == "speaker":
        raise AmsnetError(None, f"fit --normalisation {args.normalisation}", "a model for new audio cannot know a new "
                          "speaker's statistics: fit with --normalisation corpus (the default) or utterance (each "
                          "utterance standardised alone); speaker normalisation is for cross-validation (amsnet train)")
    _check_outputs(args, run_store=True, files={"--out": args.out})  # found now, not after the training
    _set_threads(args)
    feats = _load(args, config=like[0].features if like else None)
    corpus = feats.table.attrs.get("corpus", "custom")
    if like:
        run, n_run = like
        if feats.config != run.features:  # a --features bundle made with other settings
            raise AmsnetError(args.features, f"holds features made with {feats.config}, and the run {Path(args.like).name} "
                                             f"was trained on {run.features}", "make the bundle with the run's feature "
                                             "settings, or give the corpus instead of --features")
        # the run's configuration on this corpus: its key then names this corpus, and one seed
        exp = dataclasses.replace(run, corpus=corpus, seeds=(args.seed,))
    else:
        exp = _experiment(args, corpus, feats, seeds=(args.seed,), normalisation=args.normalisation,
                          **_chosen_validation(args))
        if args.augment != "none":
            exp = dataclasses.replace(exp, augment=args.augment)
    speakers = set(feats.table["speaker"].dropna()) if "speaker" in feats.table else set()
    if exp.validation == "speaker" and len(speakers) < 2:  # found now, not after the features of the copies
        why, fix = ((f"the run {Path(args.like).name} chose its epochs on a validation split of whole speakers "
                     f"({run.corpus} under {run.protocol})", "fit without --like") if like else
                    ("--validation speaker holds whole speakers out", "fit with --validation utterance"))
        raise AmsnetError(args.corpus, f"names {len(speakers)} speaker(s), and {why}",
                          f"give the corpus two or more speakers (a manifest's speaker column), or {fix}")
    originals = feats  # what the checkpoint records as its training data (the copies derive from them)
    feats = _augmented(args, feats, exp.audio_augment)
    if like:
        n = n_utterances(feats, exp)  # as the run's key counts them (an experiment-wide augmentation's copies too)
        if (corpus, n) == (run.corpus, n_run):
            print(f"the configuration of {args.like} ({run.model}, recipe {run.recipe}), trained there on the same "
                  f"corpus ({run.corpus}, {n_run} utterances)")
        else:
            print(f"the configuration of {args.like} ({run.model}, recipe {run.recipe}) on another corpus: the run was "
                  f"trained on {run.corpus} ({n_run} utterances), this fit trains on {corpus} ({n} utterances)")
    model, normaliser = fit_final(exp, feats, store=args.run_dir, device=args.device)
    shown = corpus  # a manifest's or folder's own name (corpora.custom.corpus_name)
    val = exp.branch_train.val_fraction  # the one validation split of every stage (splits.fold_data)
    held_out = "whole training speakers held out" if exp.validation == "speaker" else "stratified by class"
    if like:
        configuration = (f"that of the run {Path(args.like).name} (amsnet fit --like {args.like}: "
                         f"amsnet_lib.train.like.experiment_like), trained there on {run.corpus} ({n_run} utterances)")
    else:
        configuration = (f'studies.experiment("{corpus}", "{exp.model}", "paper", "{args.profile}", recipe="{exp.recipe}")'
                         + (f" with {exp.variant}" if exp.variant else "")
                         + (f", augment {exp.augment}" if exp.augment != "none" else "")
                         + (f", normalisation {exp.normalisation}" if exp.normalisation != "corpus" else ""))
    meta = {
        "data": args.description or f"{shown}: {len(feats)} utterances of {len(feats.classes)} classes",
        "corpus": corpus,
        "protocol": f"trained on all given utterances (training.fit_final); a {val:.0%} validation split ({held_out}) "
                    "selects the epoch",
        "configuration": configuration,
        "recipe": exp.recipe,
        **({"like": str(args.like)} if like else {"profile": args.profile}),
        "seed": args.seed,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "amsnet_version": amsnet_lib.__version__,
        "features": config_to_dict(exp.features),
    }
    meta.update(describe_training_data(originals.table, feats.classes))
    out = save_checkpoint(args.out, model, exp, feats.classes, normaliser, meta)
    skipped = len(meta.get("skipped") or [])
    print(f"{out}: {exp.model} trained on all {len(feats)} utterances of {shown} ({', '.join(feats.classes)}), "
          + (f"configuration of {Path(args.like).name}" if like else f"profile {args.profile}") + f", seed {args.seed}"
          + (f"; {skipped} unusable file(s) skipped (listed above and in the checkpoint)" if skipped else ""))
    if isinstance(meta[TRAINING_DIGESTS], list):
        print("its training files are recorded by content: `amsnet evaluate` leaves them out of a test")
    else:
        print(f"warning: `amsnet evaluate` cannot keep its training files out of a test: {meta[TRAINING_DIGESTS]}")
    print(f"no accuracy: the model saw all of {shown}. For one, run `amsnet train` with the same options "
          "(cross-validated, the same engine)" + (f", or read {args.like}'s folds" if like else ""))
    return 0


def _cmd_compare(args) -> int:
    from ..errors import AmsnetError
    from ..report.significance import significance_table
    from ..report.tables import markdown_table
    from ..train.training import run_experiment

    _check_configuration_args(args)
    if len(set(args.models)) != len(args.models) or len(args.models) < 2:
        raise AmsnetError(None, f"compare got the models {args.models}", "name two or more different models, e.g. "
                                "amsnet compare amsnet concat urlm (the first is compared with each other one)")
    _check_outputs(args, files={"--out": args.out})
    feats = _load(args, streams=False)  # reads finished runs only: the corpus table names them, no stream is needed
    corpus = feats.table.attrs.get("corpus", "custom")
    results = {}
    for model in args.models:
        exp = _experiment(argparse.Namespace(**{**vars(args), "model": model}), corpus, feats, **_protocol_kwargs(args))
        res = run_experiment(exp, feats, store=args.run_dir, finished_only=True, progress=False)
        if res.missing:  # a partial mean is no basis for a comparison
            raise AmsnetError(args.run_dir, f"{model} has {len(res.missing)} unfinished fold run(s) under protocol "
                                            f"{exp.protocol} ({', '.join(f for _, f in res.missing)})",
                              f"finish them first: amsnet train --model {model} with the same options")
        results[model] = res
    table = significance_table(results, args.models[0], n_resamples=args.resamples, seed=args.seed)
    print(f"{args.models[0]} against {', '.join(args.models[1:])} on {corpus}, protocol {args.protocol} "
          f"({len(results[args.models[0]].folds)} fold runs; Δ = {args.models[0]} − model, percentage points)")
    print(markdown_table(table))
    print(f"95 % CI and p (UA): paired bootstrap of the test utterances within each fold ({args.resamples} resamples, "
          f"seed {args.seed}); p (WA): McNemar's exact test. No correction for the number of comparisons. "
          f"[protocol: {args.protocol}]")
    if args.out:
        from ..atomic import atomic_write_text

        atomic_write_text(args.out, table.to_csv(index=False))
    return 0


def _cmd_pretrain(args) -> int:
    from ..train.engine import pretrain
    from ..train.units import stage1_units

    _check_outputs(args, run_store=True)
    _set_threads(args)
    feats = _load(args)
    corpus = feats.table.attrs.get("corpus", "custom")
    names = [s for s in args.studies.split(",") if s] if args.studies != "all" else None
    suite = studies.full_suite(corpus, args.profile, loso=not args.no_loso, studies=names)
    # the features as loaded (duration, mel bands), as `amsnet train` does: the run keys then agree
    suite = [dataclasses.replace(e, features=feats.config) for e in suite]
    if args.seeds:
        suite = [dataclasses.replace(e, seeds=tuple(args.seeds)) for e in suite]
    if args.variants:
        suite = [e for e in suite if any(v in e.variant for v in args.variants)]
        if not suite:
            raise SystemExit(f"error: no experiment of the suite has a variant containing any of {args.variants}")
    if args.models:
        suite = [e for e in suite if e.model in args.models]
        if not suite:
            raise SystemExit(f"error: no experiment of the suite (after the other filters) is a model of {args.models}")
    if args.recipe:
        suite = [e for e in suite if e.recipe == args.recipe]
        if not suite:
            raise SystemExit(f"error: no experiment of the suite (after the other filters) uses the {args.recipe} recipe")
    kinds = sorted({e.audio_augment for e in suite} - {"none"})
    if len(kinds) > 1:
        raise SystemExit(f"error: the suite's experiments train with {kinds}: one audio augmentation per run "
                         "(select experiments with --studies, --models or --variants)")
    feats = _augmented(args, feats, kinds[0] if kinds else "none")  # a stage without them drops them
    units = stage1_units(suite, feats.table)
    print(f"{len(suite)} experiments on {corpus} (profile {args.profile}): {len(units)} stage-1 trainings "
          f"(branches and early fusion, per fold and seed)")
    engine = _engine(args, args.cpus, args.threads)
    print(f"training: {_engine_line(engine)}")
    ran = pretrain(suite, feats, store=args.run_dir, device=args.device, engine=engine, fusion=args.fusion)
    if args.fusion:
        print(f"trained {ran} (branches, early fusion and fusion heads); the notebooks now only read the run store")
    else:
        print(f"trained {ran}, {len(units) - ran} were finished already; the notebooks (or amsnet train) now train only the fusion heads")
    return 0


def _paper_validation(args, feats, corpus: str) -> tuple[str, float | None]:
    """The paper recipe's validation figures on the same splits, from its finished runs' curves (no
    test figure is read), as the reference a search's trials are compared with, and its UA; ('', None)
    when not run."""
    from ..errors import AmsnetError
    from ..train.search import STAGE_MODELS
    from ..train.training import run_experiment

    exp = studies.experiment(corpus, STAGE_MODELS[args.stage], args.protocol, args.profile, features=feats.config,
                             **_chosen_validation(args))
    try:
        res = run_experiment(exp, feats, finished_only=True, progress=False)
    except AmsnetError:
        return "", None
    if res.missing:
        return "", None
    v = res.validation()
    return (f"Reference, the paper recipe's {STAGE_MODELS[args.stage].upper()} on the same validation splits (its kept "
            f"epochs, from the run store's curves): val UA {v['val_ua']:.2f}, val WA {v['val_wa']:.2f}, val loss "
            f"{v['val_loss']:.4f}."), v["val_ua"]


def _augment_table(args, table, plain, corpus: str, root, donor, engine) -> None:
    """The table of a search with ``--augment``: its trials beside the recipe's current values
    without the augmentation, on the same validation splits (read back from the search store, or
    trained there: no test fold either way)."""
    from pathlib import Path

    from ..train.search import STAGE_MODELS, table_name, validation_score
    from ..report.tables import write_table

    exp = studies.experiment(corpus, STAGE_MODELS[args.stage], args.protocol, args.profile, features=plain.config,
                             recipe="tuned", **_chosen_validation(args)).with_training(augment="none")  # no stage's copies: the augmentation's reference
    ref = validation_score(exp, plain, root / "folds", device=args.device, weights_from=donor, engine=engine)
    best = float(table["val_ua"].max())
    stem = Path(args.table) / table_name(args.stage, corpus, args.protocol, args.profile, args.augment, args.validation)
    cmd = f"amsnet search --stage {args.stage} --augment {args.augment} --trials {args.trials}"
    write_table(table, stem, caption=f"Recipe search, {args.stage.upper()} with {args.augment} augmentation, {corpus} "
                                     f"[{args.protocol}] validation",
                notes=[f"`{cmd}`: every trial trains on the fit part and its {args.augment} copies "
                       "(amsnet_lib.data.channels.augmented_features); the folds, validation splits and test folds are the "
                       "originals', no copy is validated or tested on, and no trial evaluated a test fold. Trial 0 is "
                       "the tuned recipe's current values: the augmentation alone.",
                       f"Reference, the tuned recipe's {args.stage.upper()} without augmentation on the same validation "
                       f"splits: val UA {ref.ua:.2f}, val WA {ref.wa:.2f}, val loss {ref.loss:.4f}.",
                       (f"The best row is above the reference: by the search's rule, {args.augment} augmentation is due to "
                        "join the tuned recipe (amsnet_lib/studies.py says where it stands)." if best > ref.ua else
                        f"No row is above the reference: the tuned recipe trains without {args.augment} augmentation.")])
    print(f"wrote {stem}.md")


def _cmd_search(args) -> int:
    from pathlib import Path

    from ..report.tables import write_table
    from ..train.search import SPACES, recipe_augment, run_search, table_name
    from ..paths import default_run_dir

    _set_threads(args)
    feats = _load(args)
    corpus = feats.table.attrs.get("corpus", "custom")
    root = Path(args.root) if args.root else default_run_dir() / "search"
    donor = None if args.weights_from == "none" else (args.weights_from or default_run_dir())
    engine = _engine(args, args.cpus, args.threads)
    print(f"trial folds: {_engine_line(engine)}")
    plain = feats
    own = recipe_augment(args.stage, corpus, args.protocol, args.profile)  # the recipe's stage's own copies
    feats = _augmented(args, feats, args.augment if args.augment != "none" else own)
    table = run_search(args.stage, feats, root, trials=args.trials, corpus=corpus, protocol=args.protocol,
                       profile=args.profile, device=args.device, weights_from=donor, engine=engine, augment=args.augment,
                       validation=args.validation)
    if args.table and len(table) and args.augment != "none":
        _augment_table(args, table, plain, corpus, root, donor, engine)
    elif args.table and len(table):
        stem = Path(args.table) / table_name(args.stage, corpus, args.protocol, args.profile, validation=args.validation, own=own)
        grid = args.stage == "fusion"
        notes = [f"Search of the tuned recipe's {args.stage.upper()} stage (`amsnet search --stage {args.stage} --trials "
                 f"{args.trials}`): Optuna {'grid (every combination, in random order)' if grid else 'TPE'} over "
                 f"{', '.join(f'{k} {list(v)}' for k, v in SPACES[args.stage].items())}.",
                 f"Score: mean validation UA (%) over the {args.protocol} protocol's folds, each fold's validation split "
                 "drawn from its training part" + (", whole training speakers held out" if (args.validation or
                 studies.validation_for(corpus, args.protocol)) == "speaker" else "") + "; no trial evaluated a test fold."
                 + ("" if grid else " Trial 0 is the recipe's starting point."),
                 ]
        reference, paper_ua = _paper_validation(args, feats, corpus)
        if paper_ua is not None and paper_ua >= float(table["val_ua"].max()):
            notes.append("No trial reached the paper recipe's validation UA (below): the tuned recipe keeps this stage's "
                         "paper training (amsnet_lib/studies.py).")
        else:
            notes.append("The best row is above the paper recipe's validation UA (below): by the search's rule its values "
                         "are the tuned recipe's (amsnet_lib/studies.py says where they stand).")
        if reference:
            notes.append(reference)
        write_table(table, stem, caption=f"Recipe search, {args.stage.upper()}, {corpus} [{args.protocol}] validation", notes=notes)
        print(f"wrote {stem}.md")
    print(table.head(10).to_string(index=False) if len(table) else "no finished trial")
    return 0


def _add_training_commands(sub) -> None:

    p = sub.add_parser("features", help="load a corpus, extract both feature streams into the cache, print a summary")
    _add_corpus_args(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--save", default=None, metavar="FILE", help="also write the features to one .npz bundle (Features.save)")
    p.add_argument("--precision", default="float32", choices=["float32", "float16"],
                   help="of the saved bundle: float32 lossless, float16 half the size (rounded values)")
    p.add_argument("--augment", default="none", choices=list(AUGMENTATIONS),
                   help="with --save: the bundle also holds this augmentation's copies (e.g. speed, the tuned URLM's), "
                        "so `--features FILE` trains a recipe that uses them on a machine without the audio")
    p.add_argument("--report", default=None, metavar="CSV",
                   help="write every feature warning (path, reason) here (default: reports/ beside the feature cache); "
                        "the terminal shows them grouped by reason")
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser("train", help="train and evaluate a model under a protocol; prints per-fold WA/UA")
    _add_corpus_args(p)
    p.add_argument("--model", default="amsnet", choices=MODELS,
                   help="late: late fusion of the branches' probabilities, weight chosen on validation (beyond the paper)")
    _add_protocol_args(p)
    _add_configuration_args(p)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=_number(int, 1), default=None,
                   help="CPU threads for torch (default: torch's choice). Use 1 per process when running several at once: "
                        "oversubscribed threads slow recurrent training down several-fold")
    p.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    p.add_argument("--summary", default="results/tables/summary.csv", help="machine-readable summary to update ('' to skip)")
    p.add_argument("--finished-only", action="store_true", help="train nothing: report the folds the run store already holds")
    p.add_argument("--fold", nargs="+", default=None, metavar="NAME",
                   help="run only these folds (fold0..fold4, or speakers for loso): several processes can share one experiment")
    p.add_argument("--workers", type=_number(int, 1), default=1,
                   help="N > 1: first train the folds as Ray tasks on a local Ray of N CPUs, --threads (default 1) "
                        "per task, then report them (on a CPU: the number of cores)")
    p.add_argument("--ensemble", type=_number(int, 1), default=1, metavar="N",
                   help="N > 1: also train members 1..N-1 (other seeds, the same validation splits), choose the ensemble "
                        "size 1..N on validation and report the test folds for that size (beyond the paper; docs/RECIPE.md)")
    p.add_argument("--augment", default="none", choices=list(AUGMENTATIONS),
                   help="also train on audio-level copies of each fit utterance (channels: a random channel; speed: 0.9 "
                        "and 1.1 times the speed; pitch: shifted -2 and +2 semitones, duration kept), their audio beside the feature cache in augmented/; the folds, "
                        "validation splits and test folds stay the originals' (summary row variant augment=<name>)")
    _add_engine_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("compare", help="are the differences between trained models larger than the test set's noise? "
                                       "(paired bootstrap, McNemar; from the run store, trains nothing)")
    _add_corpus_args(p)
    p.add_argument("models", nargs="+", choices=MODELS, metavar="MODEL",
                   help="two or more of amsnet, frlm, urlm, concat, early, late; the first is compared with each other")
    _add_protocol_args(p)
    _add_configuration_args(p)
    p.add_argument("--resamples", type=_number(int, 1), default=10000, help="bootstrap resamples")
    p.add_argument("--seed", type=_number(int, 0, MAX_SEED), default=0, help="of the bootstrap")
    p.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    p.add_argument("--out", default=None, metavar="CSV", help="also write the table")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("fit", help="train a model on all of a corpus and write a checkpoint for predict, evaluate, stream "
                                   "and export (reports no accuracy: that is `train`)",
                       description="Takes every option of `train` that configures the model or its training, or with "
                                   "--like the whole configuration of a finished run. train's --protocol, --split-file, "
                                   "--folds, --split-seed, --seeds and --ensemble choose test folds, seeds and members: "
                                   "they do not apply here (one model, trained on every utterance; a validation split "
                                   "chooses its epoch).")
    p.register("action", None, _NotedStore)  # args.given: what --like must not be given with
    p.register("action", "store", _NotedStore)
    p.set_defaults(given=frozenset())
    _add_corpus_args(p)
    p.add_argument("--model", default="amsnet", choices=MODELS)
    _add_configuration_args(p)
    p.add_argument("--like", default=None, metavar="RUN_DIR",
                   help="a run-store experiment folder (e.g. runs/amsnet-<key>, which `amsnet train` wrote): fit the "
                        "configuration it was trained with (read back from its config.json and, for a fusion head, "
                        "its branches' beside it) on --corpus. The configuration options (--model, --profile, --recipe, "
                        "--lr..., --augment, --normalisation, --validation, --duration, --n-mels) are then refused")
    p.add_argument("--normalisation", default="corpus", choices=list(NORMALISATIONS),
                   help="as train's: corpus (default) or utterance (each utterance standardised with its own statistics "
                        "first; predict, evaluate, stream and the ONNX export then do the same to every window); "
                        "speaker is refused: a model for new audio cannot know a new speaker's statistics")
    _add_validation_arg(p)
    p.add_argument("--seed", type=_number(int, 0, MAX_SEED), default=0, help="training seed: initial weights, validation split, batch order")
    p.add_argument("--out", required=True, metavar="FILE", help="the checkpoint to write (.pt)")
    p.add_argument("--description", default=None, metavar="TEXT",
                   help="the training data in words, kept in the checkpoint (evaluate prints it)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=_number(int, 1), default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs); an interrupted fit resumes")
    p.add_argument("--augment", default="none", choices=list(AUGMENTATIONS),
                   help="channels: also train on one random-channel copy of every utterance; speed: on copies at 0.9 and "
                        "1.1 times the speed; pitch: on copies shifted -2 and +2 semitones (amsnet_lib.data.channels; the "
                        "derived audio goes to augmented/ beside the feature cache; results/tables/channel_shift_urlm_val.md "
                        "vs channel_shift_urlm_channels_val.md measure it)")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("pretrain", help="train every branch fold a whole suite of experiments needs, as Ray tasks "
                                        "(a local Ray, or a cluster: --ray-address)")
    _add_corpus_args(p)
    p.add_argument("--studies", default="all",
                   help="studies to include besides the ablations: 'all' (the default studies: "
                        f"{', '.join(studies.default_studies())}) or a comma-separated subset of "
                        f"{', '.join(n for n in studies.STUDIES if n != 'ablations')} ('' for none)")
    p.add_argument("--no-loso", action="store_true",
                   help="leave out every leave-one-speaker-out experiment (ablations and studies alike)")
    p.add_argument("--seeds", type=_number(int, 0, MAX_SEED), nargs="+", default=None, metavar="SEED",
                   help="only these training seeds of every experiment (default: each experiment's own); the other "
                        "seeds' folds can be trained later, nothing is trained twice")
    p.add_argument("--variants", nargs="+", default=None, metavar="TEXT",
                   help="only the experiments whose variant label contains one of these, e.g. bs=256 lr=1e-05 "
                        "(labels as in summary.csv; the ablations have none)")
    p.add_argument("--models", nargs="+", default=None, choices=list(MODELS), metavar="MODEL",
                   help=f"only the experiments of these models ({', '.join(MODELS)}); a fusion model still trains the "
                        "branch folds it stands on")
    p.add_argument("--recipe", default=None, choices=list(RECIPES),
                   help="only the experiments of this training recipe (e.g. tuned with --studies tuned_recipe: the "
                        "tuned Table 5 without the paper recipe's ablations)")
    p.add_argument("--profile", default="full", choices=list(studies.PROFILES))
    p.add_argument("--cpus", type=_number(int, 1), default=None,
                   help="CPUs of the local Ray (default: all cores); Ray runs as many trainings at once as CPUs, "
                        "memory (~3.5 GB each on a CPU) and GPU memory (10 GiB each) allow")
    _add_engine_args(p)
    p.add_argument("--fusion", action="store_true",
                   help="then also train every fusion head (AMSNet, concatenation, late fusion) of the suite, side by side")
    p.add_argument("--threads", type=_number(int, 1), default=None, help="torch threads per training, the CPUs its Ray task declares (default 1)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("search", help="search the tuned recipe of a branch on validation splits only (Optuna; resumable)")
    _add_corpus_args(p)
    p.add_argument("--stage", required=True, choices=["frlm", "urlm", "fusion"],
                   help="the stage whose recipe is searched (fusion: AMSNet's head and fine-tuning over the recipe's branches)")
    p.add_argument("--trials", type=_number(int, 1), default=8, help="finished trials wanted in all (those in the journal count)")
    p.add_argument("--protocol", default="paper", choices=[x for x in PROTOCOLS if x != "split_file"],
                   help="whose folds' validation splits score a trial")
    p.add_argument("--profile", default="full", choices=list(studies.PROFILES))
    p.add_argument("--root", default=None, help="search store (default: <run store>/search)")
    p.add_argument("--table", default="results/tables", help="folder of the trial table recipe_search_<corpus>_<stage> ('' to skip)")
    p.add_argument("--augment", default="none", choices=list(AUGMENTATIONS),
                   help="train every trial with this audio-level augmentation too (its copies' audio goes to augmented/ "
                        "beside the feature cache): a search of its own, table recipe_search_<corpus>_<stage>_<augment>")
    _add_validation_arg(p)
    p.add_argument("--weights-from", default=None, metavar="RUN_DIR",
                   help="run store whose finished branch folds of the same key are reused, weights only (default: "
                        "$AMSNET_RUN_DIR or ./runs; 'none' to train every branch fold in the search store)")
    p.add_argument("--threads", type=_number(int, 1), default=None, help="CPU threads for torch (of each Ray task: default 1)")
    p.add_argument("--cpus", type=_number(int, 1), default=None, help="CPUs of the local Ray (default: all cores)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    _add_engine_args(p)
    p.set_defaults(func=_cmd_search)

