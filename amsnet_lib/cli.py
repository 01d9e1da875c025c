"""Command line: ``amsnet features | train | compare | fit | pretrain | predict | evaluate | stream | export``."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from . import studies  # configuration dataclasses only: cheap, and --help names the studies
from .config import MODELS, MONITORS, OPTIMIZERS, RECIPES


def _add_corpus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", default="emodb", help="emodb, iemocap, or a CSV manifest / folder-per-label of your own corpus")
    p.add_argument("--data-dir", default=None, help="corpus directory (default: $AMSNET_EMODB_DIR / $AMSNET_IEMOCAP_DIR, else ./data/<corpus>)")
    p.add_argument("--no-download", action="store_true", help="never download EmoDB; fail if it is absent")
    p.add_argument("--name", default=None,
                   help="name of a manifest or folder corpus in tables, summaries and run names (default: the "
                        "manifest's file name without .csv, or the folder's name)")
    p.add_argument("--cache-dir", default=None, help="feature cache (default: $AMSNET_CACHE_DIR or ./.cache/features)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes for feature extraction (default: all cores)")
    p.add_argument("--duration", type=float, default=None, help="fixed utterance length in seconds (default: 3 EmoDB, 5 IEMOCAP)")
    p.add_argument("--n-mels", type=int, default=128, help="mel bands of the spectrogram")
    p.add_argument("--features", default=None, metavar="FILE",
                   help="read both feature streams from a bundle written by `amsnet features --save` instead of the "
                        "corpus (no audio or openSMILE needed; the corpus options above are then ignored)")


def _load(args):
    """The corpus' features (``--features`` bundle, or extracted); what the corpus skipped is
    reported first, on stdout (stderr with ``--json``), for every command that reads a corpus."""
    from .config import FeatureConfig
    from .corpora import load_corpus
    from .features import Features, extract_features

    out = sys.stderr if getattr(args, "json", False) else sys.stdout
    if args.features:
        feats = Features.load(args.features)
        _report_skipped(feats.table, out, when=f"when {args.features} was made")
        return feats
    named = {"name": args.name} if getattr(args, "name", None) and args.corpus.lower() not in ("emodb", "iemocap") else {}
    table = load_corpus(args.corpus, data_dir=args.data_dir, download=False if args.no_download else "auto", **named)
    _report_skipped(table, out)
    corpus = table.attrs.get("corpus", "custom")
    overrides = {"n_mels": args.n_mels}
    if args.duration is not None:
        overrides["duration"] = args.duration
    config = FeatureConfig.for_corpus(corpus, **overrides)
    return extract_features(table, config, cache_dir=args.cache_dir, n_jobs=args.jobs)


# Up to this many skipped files are listed one by one; more are grouped by reason.
_MAX_LISTED = 10


def _report_skipped(table, out, when: str = "") -> None:
    """Print the files the corpus loader left out (``table.attrs["skipped"]``) with their reasons.

    Up to :data:`_MAX_LISTED` files are listed one per line; more are grouped by reason (the
    reason without its parenthesised details), each with its count and one example.
    """
    import re

    skipped = [(str(p), str(r)) for p, r in table.attrs.get("skipped") or []]
    if not skipped:
        return
    total = len(table) + len(skipped)
    print(f"skipped {len(skipped)} of {total} files{f' {when}' if when else ''} (not used):", file=out)
    if len(skipped) <= _MAX_LISTED:
        for path, reason in skipped:
            print(f"  {path}: {reason}", file=out)
        return
    groups: dict[str, list[tuple[str, str]]] = {}
    for path, reason in skipped:
        groups.setdefault(re.sub(r"\s*\(.*\)\s*$", "", reason), []).append((path, reason))
    for kind, members in sorted(groups.items(), key=lambda g: -len(g[1])):
        path, reason = members[0]
        print(f"  {len(members)} file(s) {kind}, e.g. {path}: {reason}", file=out)


def _check_outputs(args, *, run_store: bool = False, files: dict | None = None) -> None:
    """Every location the command will write, checked before any work starts (creating missing
    folders): a folder that cannot be written is an error naming it and the fix, not a traceback
    after the training. ``files``: ``{what: path}`` of the files to write (``None``: not written)."""
    from ._atomic import check_writable

    if run_store:
        from .training import default_run_dir

        check_writable(args.run_dir or default_run_dir(), "run store", "pass --run-dir (or set AMSNET_RUN_DIR) to a "
                       "folder you can write", folder=True)
    for what, path in (files or {}).items():
        if path:
            check_writable(path, what, f"give {what} a file name in a folder you can write")


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    """Where the trainings run (``engine.EngineConfig``): a local Ray by default, or a cluster."""
    p.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="join the running Ray cluster whose head is here (`ray start --head` prints it; docs/CLUSTER.md); "
                        "default $RAY_ADDRESS, else a Ray started for this command on this machine (127.0.0.1 only)")
    p.add_argument("--serial", action="store_true", help="no Ray: the same trainings one after another in this process")


def _engine(args, num_cpus: int | None, threads: int | None):
    from .engine import EngineConfig

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
    _check_outputs(args, files={"--save": args.save})
    feats = _load(args)
    s = feats.summary()
    if args.save:
        path = feats.save(args.save, precision=args.precision)
        print(f"saved: {path} ({path.stat().st_size / 1e6:.1f} MB, {args.precision}); train from it with --features {path}",
              file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(s, indent=1))
        return 0
    t = feats.table
    print(f"corpus: {t.attrs.get('corpus', args.corpus)}")
    print(f"utterances: {s['utterances']}")
    codes = {}
    if t.attrs.get("corpus") == "emodb":  # also the official letter codes, W L E A F T N
        from .corpora.emodb import CODES

        codes = {name: f" ({code})" for code, name in CODES.items()}
    print("per class: " + ", ".join(f"{c}{codes.get(c, '')} {n}" for c, n in s["classes"].items()))
    print("per speaker: " + ", ".join(f"{k} {n}" for k, n in s["speakers"].items()))
    print(f"total duration: {s['total_duration_s'] / 60:.1f} min ({s['total_duration_s']:.1f} s)")
    print(f"frame-level features: {s['frames_shape']} (utterances, q frames, {s['frame_dims']} dims)")
    print(f"spectrogram: {s['spec_shape']} (utterances, mel bands, frames)")
    print(f"cache hits: {s['cache_hits']} / {s['utterances']}")
    report = args.report or _report_dir(args) / f"features_{_corpus_name(args.features or args.corpus)}_warnings.csv"
    _report_grouped(feats.warnings, "warning(s)", report if feats.warnings else None, stream=sys.stdout)
    return 0


def _experiment(args, corpus: str, feats, *, protocol: str = "paper", **kw):
    """The paper's configuration (``studies.experiment``) with only the options given here changed,
    so the CLI and the notebooks share their run store entries."""
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
    return exp


def _add_protocol_args(p: argparse.ArgumentParser) -> None:
    """The options of ``train`` and ``compare`` that choose the folds and the seeds."""
    p.add_argument("--protocol", default="paper", choices=["paper", "loso", "loso_session", "split_file"])
    p.add_argument("--split-file", default=None, help="CSV path,fold for --protocol split_file")
    p.add_argument("--folds", type=int, default=5, help="folds of the paper protocol")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--normalisation", default="corpus", choices=["corpus", "speaker"],
                   help="corpus (paper): fold-training statistics; speaker: each speaker standardised with their own "
                        "statistics first (not in the paper; assumes the test speaker is known)")


def _protocol_kwargs(args) -> dict:
    """``_add_protocol_args``'s options as :func:`_experiment` keywords."""
    return dict(protocol=args.protocol, n_folds=args.folds, split_seed=args.split_seed, seeds=tuple(args.seeds),
                split_file=args.split_file, normalisation=args.normalisation)


def _add_configuration_args(p: argparse.ArgumentParser) -> None:
    """The options of ``train`` and ``fit`` that change the model or its training."""
    p.add_argument("--profile", default="full", choices=["full", "quick"], help="full = the paper's settings; quick = smoke run")
    p.add_argument("--recipe", default="paper", choices=list(RECIPES),
                   help="training recipe: paper (the paper's stated settings) or tuned (beyond the paper, chosen on "
                        "validation: docs/RECIPE.md); the options below change either")
    p.add_argument("--optimizer", default=None, choices=list(OPTIMIZERS), help="default: the recipe's (paper: rmsprop)")
    p.add_argument("--lr", type=float, default=None, help="learning rate of both stages (default: the profile's, 1e-4)")
    p.add_argument("--frlm-lr", type=float, default=None,
                   help="FRLM's (and early fusion's) learning rate where it differs from --lr (not in the paper; "
                        "scripts/stage_lr.py chooses one per stage on validation)")
    p.add_argument("--urlm-lr", type=float, default=None, help="URLM's learning rate where it differs from --lr")
    p.add_argument("--fusion-lr", type=float, default=None, help="the fusion head's learning rate where it differs from --lr")
    p.add_argument("--late-weight", type=float, default=None,
                   help="--model late: fix the weight of FRLM's probabilities (0-1; 0.5: the plain average) instead of choosing it on validation")
    p.add_argument("--batch-size", type=int, default=None, help="default: 256 EmoDB, 64 IEMOCAP")
    p.add_argument("--se-ratio", type=int, default=None, help="URLM squeeze-and-excitation reduction ratio r (Table 3; default 16)")
    p.add_argument("--hidden-size", type=int, default=None, help="FRLM BLSTM units per direction (Fig. 7; default 128)")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs per stage")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs (0: off)")
    p.add_argument("--monitor", default=None, choices=list(MONITORS),
                   help="model selection and early stopping on the validation split, every stage (late fusion: "
                        "its weight's criterion): lowest loss (default) or highest UA")


def _check_configuration_args(args) -> None:
    from .errors import AmsnetError

    if args.late_weight is not None and (args.model != "late" or not 0.0 <= args.late_weight <= 1.0):
        raise AmsnetError(None, f"--late-weight {args.late_weight:g} with --model {args.model}",
                          "--late-weight needs --model late and a weight between 0 and 1 (or leave it out: "
                          "the weight is then chosen on validation)")


def _cmd_train(args) -> int:
    from .training import run_experiment, update_summary

    _check_configuration_args(args)
    writes_summary = args.summary and args.profile == "full" and not args.fold
    _check_outputs(args, run_store=True, files={"--summary": args.summary if writes_summary else None})
    _set_threads(args)
    feats = _load(args)
    corpus = feats.table.attrs.get("corpus", "custom")
    exp = _experiment(args, corpus, feats, **_protocol_kwargs(args))
    if (args.workers > 1 or args.ray_address) and not args.finished_only:
        from .engine import pretrain

        # the folds side by side as Ray tasks, branches first, then the fusion heads
        if args.fold:
            print("--workers / --ray-address: ignored with --fold (the folds named run in this process)")
        else:
            engine = _engine(args, args.workers, args.threads)
            print(f"training: {_engine_line(engine)}")
            pretrain([exp], feats, store=args.run_dir, device=args.device, engine=engine, fusion=True)
    result = run_experiment(exp, feats, store=args.run_dir, device=args.device, finished_only=args.finished_only,
                            only_folds=args.fold)
    if result.missing:
        print(f"INCOMPLETE: {len(result.missing)} of {len(result.missing) + len(result.folds)} fold runs not finished yet "
              f"({', '.join(f for _, f in result.missing)}); the mean below covers the finished folds only")
    print(f"{exp.model} on {corpus}, protocol {exp.protocol}, profile {args.profile} ({len(result.folds)} fold runs)")
    print(result.fold_table().to_string(index=False))
    s = result.summary()
    print(f"mean WA {s['wa']:.2f} ± {s['wa_std']:.2f} %, UA {s['ua']:.2f} ± {s['ua_std']:.2f} % [protocol: {exp.protocol}] [recipe: {exp.recipe}]")
    if writes_summary and not result.missing:
        update_summary(result, args.summary)
        print(f"summary: {args.summary}")
    return 0


def _cmd_fit(args) -> int:
    import datetime as _dt

    import amsnet_lib

    from .checkpoint import TRAINING_DIGESTS, config_to_dict, describe_training_data, save_checkpoint
    from .training import fit_final

    _check_configuration_args(args)
    _check_outputs(args, run_store=True, files={"--out": args.out})  # found now, not after the training
    _set_threads(args)
    feats = _load(args)
    corpus = feats.table.attrs.get("corpus", "custom")
    exp = _experiment(args, corpus, feats, seeds=(args.seed,))
    originals = feats  # what the checkpoint records as its training data (the copies derive from them)
    if args.augment != "none":
        from .channels import augmented_features

        feats = augmented_features(feats, args.augment, audio_dir=_report_dir(args).parent / "augmented",
                                   feature_cache=args.cache_dir)
        exp = dataclasses.replace(exp, augment=args.augment)
    model, normaliser = fit_final(exp, feats, store=args.run_dir, device=args.device)
    shown = corpus  # a manifest's or folder's own name (corpora.custom.corpus_name)
    val = exp.branch_train.val_fraction  # the one validation split of every stage (training._fold_data)
    meta = {
        "data": args.description or f"{shown}: {len(feats)} utterances of {len(feats.classes)} classes",
        "corpus": corpus,
        "protocol": f"trained on all given utterances (training.fit_final); a stratified {val:.0%} validation split "
                    "selects the epoch",
        "configuration": f'studies.experiment("{corpus}", "{exp.model}", "paper", "{args.profile}")'
                         + (f" with {exp.variant}" if exp.variant else ""),
        "profile": args.profile,
        "seed": args.seed,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "amsnet_version": amsnet_lib.__version__,
        "features": config_to_dict(exp.features),
    }
    meta.update(describe_training_data(originals.table, feats.classes))
    out = save_checkpoint(args.out, model, exp, feats.classes, normaliser, meta)
    skipped = len(meta.get("skipped") or [])
    print(f"{out}: {exp.model} trained on all {len(feats)} utterances of {shown} ({', '.join(feats.classes)}), "
          f"profile {args.profile}, seed {args.seed}"
          + (f"; {skipped} unusable file(s) skipped (listed above and in the checkpoint)" if skipped else ""))
    if isinstance(meta[TRAINING_DIGESTS], list):
        print("its training files are recorded by content: `amsnet evaluate` leaves them out of a test")
    else:
        print(f"warning: `amsnet evaluate` cannot keep its training files out of a test: {meta[TRAINING_DIGESTS]}")
    print(f"no accuracy: the model saw all of {shown}. For one, run `amsnet train` with the same options "
          "(cross-validated, the same engine)")
    return 0


def _cmd_compare(args) -> int:
    from .errors import AmsnetError
    from .report import markdown_table, significance_table
    from .training import run_experiment

    _check_configuration_args(args)
    if len(set(args.models)) != len(args.models) or len(args.models) < 2:
        raise AmsnetError(None, f"compare got the models {args.models}", "name two or more different models, e.g. "
                                "amsnet compare amsnet concat urlm (the first is compared with each other one)")
    _check_outputs(args, files={"--out": args.out})
    feats = _load(args)
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
        from ._atomic import atomic_write_text

        atomic_write_text(args.out, table.to_csv(index=False))
    return 0


def _cmd_pretrain(args) -> int:
    from .engine import pretrain
    from .training import stage1_units

    _check_outputs(args, run_store=True)
    _set_threads(args)
    feats = _load(args)
    corpus = feats.table.attrs.get("corpus", "custom")
    names = [s for s in args.studies.split(",") if s] if args.studies != "all" else None
    suite = studies.full_suite(corpus, args.profile, loso=not args.no_loso, studies=names)
    # the features as loaded (duration, mel bands), as `amsnet train` does: the run keys then agree
    suite = [dataclasses.replace(e, features=feats.config) for e in suite]
    if args.variants:
        suite = [e for e in suite if any(v in e.variant for v in args.variants)]
        if not suite:
            raise SystemExit(f"error: no experiment of the suite has a variant containing any of {args.variants}")
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
    from .errors import AmsnetError
    from .search import STAGE_MODELS
    from .training import run_experiment

    exp = studies.experiment(corpus, STAGE_MODELS[args.stage], args.protocol, args.profile, features=feats.config)
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


def _cmd_search(args) -> int:
    from pathlib import Path

    from .report import write_table
    from .search import SPACES, run_search
    from .training import default_run_dir

    _set_threads(args)
    feats = _load(args)
    corpus = feats.table.attrs.get("corpus", "custom")
    root = Path(args.root) if args.root else default_run_dir() / "search"
    table = run_search(args.stage, feats, root, trials=args.trials, corpus=corpus, protocol=args.protocol,
                       profile=args.profile, device=args.device)
    if args.table and len(table):
        stem = Path(args.table) / f"recipe_search_{corpus}_{args.stage}"
        notes = [f"Search of the tuned recipe's {args.stage.upper()} stage (`amsnet search --stage {args.stage} --trials "
                 f"{args.trials}`): Optuna TPE over {', '.join(f'{k} {list(v)}' for k, v in SPACES[args.stage].items())}.",
                 f"Score: mean validation UA (%) over the {args.protocol} protocol's folds, each fold's validation split "
                 "drawn from its training part; no trial evaluated a test fold. Trial 0 is the recipe's starting point.",
                 ]
        reference, paper_ua = _paper_validation(args, feats, corpus)
        if paper_ua is not None and paper_ua >= float(table["val_ua"].max()):
            notes.append("No trial reached the paper recipe's validation UA (below): the tuned recipe keeps this stage's "
                         "paper training (amsnet_lib/studies.py).")
        else:
            notes.append("The best row's values are the tuned recipe's (amsnet_lib/studies.py, TUNED_*).")
        if reference:
            notes.append(reference)
        write_table(table, stem, caption=f"Recipe search, {args.stage.upper()}, {corpus} [{args.protocol}] validation", notes=notes)
        print(f"wrote {stem}.md")
    print(table.head(10).to_string(index=False) if len(table) else "no finished trial")
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the `amsnet` command: restart with the allocator settings training needs
        from ._runtime import reexec_with_allocator_settings

        reexec_with_allocator_settings("amsnet_lib.cli", sys.argv[1:])
    parser = argparse.ArgumentParser(prog="amsnet", description="AMSNet speech emotion recognition")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("features", help="load a corpus, extract both feature streams into the cache, print a summary")
    _add_corpus_args(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--save", default=None, metavar="FILE", help="also write the features to one .npz bundle (Features.save)")
    p.add_argument("--precision", default="float32", choices=["float32", "float16"],
                   help="of the saved bundle: float32 lossless, float16 half the size (rounded values)")
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
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice). Use 1 per process when running several at once: "
                        "oversubscribed threads slow recurrent training down several-fold")
    p.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    p.add_argument("--summary", default="results/tables/summary.csv", help="machine-readable summary to update ('' to skip)")
    p.add_argument("--finished-only", action="store_true", help="train nothing: report the folds the run store already holds")
    p.add_argument("--fold", nargs="+", default=None, metavar="NAME",
                   help="run only these folds (fold0..fold4, or speakers for loso): several processes can share one experiment")
    p.add_argument("--workers", type=int, default=1,
                   help="N > 1: first train the folds as Ray tasks on a local Ray of N CPUs, --threads (default 1) "
                        "per task, then report them (on a CPU: the number of cores)")
    _add_engine_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("compare", help="are the differences between trained models larger than the test set's noise? "
                                       "(paired bootstrap, McNemar; from the run store, trains nothing)")
    _add_corpus_args(p)
    p.add_argument("models", nargs="+", choices=MODELS, metavar="MODEL",
                   help="two or more of amsnet, frlm, urlm, concat, early, late; the first is compared with each other")
    _add_protocol_args(p)
    _add_configuration_args(p)
    p.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="of the bootstrap")
    p.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    p.add_argument("--out", default=None, metavar="CSV", help="also write the table")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("fit", help="train a model on all of a corpus and write a checkpoint for predict, evaluate, stream "
                                   "and export (reports no accuracy: that is `train`)")
    _add_corpus_args(p)
    p.add_argument("--model", default="amsnet", choices=MODELS)
    _add_configuration_args(p)
    p.add_argument("--seed", type=int, default=0, help="training seed: initial weights, validation split, batch order")
    p.add_argument("--out", required=True, metavar="FILE", help="the checkpoint to write (.pt)")
    p.add_argument("--description", default=None, metavar="TEXT",
                   help="the training data in words, kept in the checkpoint (evaluate prints it)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs); an interrupted fit resumes")
    p.add_argument("--augment", default="none", choices=["none", "channels"],
                   help="channels: also train on one random-channel copy of every utterance (amsnet_lib.channels; the "
                        "derived audio goes to augmented/ beside the feature cache; results/tables/channel_shift_urlm_val.md "
                        "vs channel_shift_urlm_channels_val.md measure it)")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("pretrain", help="train every branch fold a whole suite of experiments needs, as Ray tasks "
                                        "(a local Ray, or a cluster: --ray-address)")
    _add_corpus_args(p)
    p.add_argument("--studies", default="all",
                   help="studies to include besides the ablations: 'all' or a comma-separated subset of "
                        f"{','.join(studies.HYPERPARAMETER_STUDIES)} (notebook 04) and "
                        f"{','.join(studies.BEYOND_PAPER_STUDIES)} (notebook 03, beyond the paper) ('' for none)")
    p.add_argument("--no-loso", action="store_true", help="leave out the speaker-independent ablations")
    p.add_argument("--variants", nargs="+", default=None, metavar="TEXT",
                   help="only the experiments whose variant label contains one of these, e.g. bs=256 lr=1e-05 "
                        "(labels as in summary.csv; the ablations have none)")
    p.add_argument("--profile", default="full", choices=["full", "quick"])
    p.add_argument("--cpus", type=int, default=None,
                   help="CPUs of the local Ray (default: all cores); Ray runs as many trainings at once as CPUs, "
                        "memory (~3.5 GB each on a CPU) and GPU memory (10 GiB each) allow")
    _add_engine_args(p)
    p.add_argument("--fusion", action="store_true",
                   help="then also train every fusion head (AMSNet, concatenation, late fusion) of the suite, side by side")
    p.add_argument("--threads", type=int, default=None, help="torch threads per training, the CPUs its Ray task declares (default 1)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("search", help="search the tuned recipe of a branch on validation splits only (Optuna; resumable)")
    _add_corpus_args(p)
    p.add_argument("--stage", required=True, choices=["frlm", "urlm", "fusion"],
                   help="the stage whose recipe is searched (fusion: AMSNet's head and fine-tuning over the recipe's branches)")
    p.add_argument("--trials", type=int, default=8, help="finished trials wanted in all (those in the journal count)")
    p.add_argument("--protocol", default="paper", choices=["paper", "loso"], help="whose folds' validation splits score a trial")
    p.add_argument("--profile", default="full", choices=["full", "quick"])
    p.add_argument("--root", default=None, help="search store (default: <run store>/search)")
    p.add_argument("--table", default="results/tables", help="folder of the trial table recipe_search_<corpus>_<stage> ('' to skip)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=_cmd_search)

    _add_inference_commands(sub)

    args = parser.parse_args(argv)
    from .errors import AmsnetError

    try:
        return args.func(args)
    except AmsnetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------- inference: predict, stream, export


def _fmt_prob(v) -> str:
    return "" if v != v else f"{v:.3f}"


#: Each command's --adapt default, chosen by measurement (results/tables/channel_shift.md,
#: results/tables/adapt_min_audio.md; README, "Audio that is not EmoDB"). evaluate scores a corpus:
#: corpus adaptation gained 1.7-16.8 points of UA under every channel shift (cost 4.0 on clean audio).
#: predict is mostly given a few files: statistics of 1-3 utterances gained 1.2-3.1 (telephone) or cost 2.3-2.6
#: (clean), and
#: a file's label would depend on the files scored with it. stream: not measured on a benchmark.
DEFAULT_ADAPT = {"predict": "none", "evaluate": "corpus", "stream": "none"}


def _add_adapt_args(p: argparse.ArgumentParser, command: str) -> None:
    from .adapt import ADAPT_MODES

    p.add_argument("--adapt", default=DEFAULT_ADAPT[command], choices=list(ADAPT_MODES),
                   help="unsupervised adaptation (no label is read): standardise the features with statistics of the "
                        "audio scored, all of it (corpus) or each speaker's (speaker: a `speaker` column, or --speaker), "
                        f"blended with the training statistics where there is little audio (default: {DEFAULT_ADAPT[command]})")
    if command != "stream":
        p.add_argument("--speaker", default=None, metavar="NAME",
                       help="all the audio is of this one speaker (for --adapt speaker without a speaker column)")


def _print_adapt(adapted: dict) -> None:
    """One line on the adaptation used, and its warnings (on stderr)."""
    if not adapted or adapted.get("mode", "none") == "none":
        return
    groups = adapted.get("groups", {})
    sizes = sorted(groups.values())
    print(f"adaptation: --adapt {adapted['mode']}, statistics of {len(groups)} group(s) of "
          f"{sizes[0] if sizes else 0}-{sizes[-1] if sizes else 0} utterances (no label read)")
    for w in adapted.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)


def _report_grouped(items, what: str, report_path, stream=None) -> None:
    """``items`` ((path, reason) pairs) grouped by reason, with a count and an example each; all to ``report_path``."""
    import pandas as pd

    from ._atomic import atomic_write_text
    from .errors import group_reasons

    stream = stream or sys.stderr
    if not items:
        return
    groups = group_reasons(items)
    print(f"{len(items)} {what}, {len(groups)} reason(s):", file=stream)
    for reason, count, path in groups:
        print(f"  {count} x {reason} (e.g. {path})", file=stream)
    if report_path is not None:
        report_path = Path(report_path)
        atomic_write_text(report_path, pd.DataFrame(list(items), columns=["path", "reason"]).to_csv(index=False))
        print(f"  every one of them: {report_path}", file=stream)


def _cmd_predict(args) -> int:
    from .predict import Recognizer

    rec = Recognizer(args.checkpoint)
    progress = (not args.quiet) and sys.stderr.isatty()
    try:
        df = rec.predict(args.paths, batch_size=args.batch_size, progress=progress, adapt=args.adapt, speakers=args.speaker)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    classes = rec.classes
    ok = df["error"] == ""
    if args.format == "csv":
        sys.stdout.write(df.to_csv(index=False))
    elif args.format == "json":
        out = []
        for r in df.to_dict("records"):
            fine = not r["error"]
            alpha = {"frlm": r["alpha_frlm"], "urlm": r["alpha_urlm"]}
            out.append({
                "path": r["path"],
                "label": r["label"] if fine else None,
                "probabilities": {c: r[f"p_{c}"] for c in classes} if fine else None,
                "alpha": alpha if fine and alpha["frlm"] == alpha["frlm"] else None,
                "duration": r["duration"] if r["duration"] == r["duration"] else None,
                "warnings": [w for w in r["warnings"].split("; ") if w],
                "error": r["error"] or None,
            })
        print(json.dumps(out, indent=1))
    else:
        show = df[ok]
        if len(show):
            cols = ["path", "label"] + [f"p_{c}" for c in classes] + (["alpha_frlm", "alpha_urlm"] if rec.has_alpha else [])
            t = show[cols].copy()
            for c in cols[2:]:
                t[c] = t[c].map(_fmt_prob)
            t.columns = ["path", "label"] + classes + (["alpha_frlm", "alpha_urlm"] if rec.has_alpha else [])
            print(t.to_string(index=False))
        for r in df[ok & (df["warnings"] != "")].itertuples():
            print(f"warning: {r.path}: {r.warnings}")
        print(f"{int(ok.sum())} of {len(df)} files predicted with {rec.info.path}")
    _print_adapt(df.attrs.get("adapt"))
    if (~ok).any():
        print(f"{int((~ok).sum())} file(s) failed:", file=sys.stderr)
        for r in df[~ok].itertuples():
            print(f"  {r.path}: {r.error}", file=sys.stderr)
    return 0 if ok.any() else 1


def _cmd_evaluate(args) -> int:
    from .predict import Recognizer, evaluate

    label_map = {}
    for pair in args.label_map or []:
        label, sep, cls = pair.partition("=")
        if not sep or not label or not cls:
            print(f"error: --label-map {pair!r}: write CORPUS_LABEL=MODEL_CLASS, e.g. ang=anger", file=sys.stderr)
            return 2
        label_map[label] = cls
    _check_outputs(args, files={"--out": args.out, "--figure": args.figure})
    rec = Recognizer(args.checkpoint)
    try:
        ev = evaluate(args.corpus, rec, data_dir=args.data_dir, label_map=label_map, include_training=args.include_training,
                      batch_size=args.batch_size, progress=(not args.quiet) and sys.stderr.isatty(), adapt=args.adapt,
                      speakers=args.speaker)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out:
        from ._atomic import atomic_write_text

        atomic_write_text(args.out, ev.predictions.to_csv(index=False))
    if args.figure:
        from .plotting import confusion_matrix

        confusion_matrix(ev.confusion.to_numpy(), ev.classes, save=args.figure,
                         title=f"{Path(str(args.corpus)).name} with {Path(str(ev.checkpoint)).name}: "
                               f"WA {ev.wa:.2f} %, UA {ev.ua:.2f} % ({len(ev.predictions)} utterances)")
    trained_on = rec.info.meta.get("data", "not recorded")
    print(f"{len(ev.predictions)} utterances of {args.corpus} evaluated with {ev.checkpoint} (trained on: {trained_on})")
    if ev.training_overlap is None:
        from .checkpoint import TRAINING_DIGESTS

        why = rec.info.meta.get(TRAINING_DIGESTS) or "the checkpoint records no training files"
        print(f"training data: not checked ({why})")
    elif ev.training_overlap == 0:
        print("training data: none of these files (by content)")
    elif args.include_training:
        print(f"training data: {ev.training_overlap} of the {len(ev.predictions)} utterances evaluated are files the "
              "checkpoint was trained on (column in_training): these figures mix in training accuracy")
    else:
        print(f"training data: {ev.training_overlap} utterance(s) are files the checkpoint was trained on and are left "
              "out (--include-training keeps them)")
    _print_adapt(ev.adapt)
    print(f"WA {ev.wa:.2f} %, UA {ev.ua:.2f} % (UA over the {len(ev.recall)} classes present)")
    print("recall (%): " + ", ".join(f"{c} {r:.2f}" for c, r in ev.recall.items()))
    print("confusion (rows: true, columns: predicted):")
    print(ev.confusion.loc[list(ev.recall)].to_string())
    report = args.left_out or (Path(args.out).with_suffix(".left_out.csv") if args.out else
                               _report_dir(args) / f"evaluate_{_corpus_name(args.corpus)}_left_out.csv")
    _report_grouped(ev.left_out, "utterance(s) left out", report)
    return 0


def _report_dir(args) -> Path:
    """Where a command's full lists go when no file is named: ``reports/`` beside the feature cache."""
    from .features import default_cache_dir

    cache = getattr(args, "cache_dir", None)
    return Path(cache or default_cache_dir()).parent / "reports"


def _corpus_name(corpus) -> str:
    """A corpus's name for files and labels: ``emodb``/``iemocap``, else the manifest's or folder's name."""
    return Path(str(corpus)).stem or "corpus"


def _cmd_stream(args) -> int:
    from .stream import mic_available, stream_predict

    if args.mic:
        if not mic_available():
            print("error: --mic needs the optional `sounddevice` module, which is not installed. "
                  "Fix: pip install sounddevice, or pipe raw PCM: arecord -f S16_LE -r 16000 -c 1 -t raw | amsnet stream -",
                  file=sys.stderr)
            return 2
        source = None
    elif args.source is None:
        print("error: give a SOURCE (an audio file, or - for raw 16 kHz s16le mono PCM on stdin) or --mic", file=sys.stderr)
        return 2
    else:
        source = args.source
    sr, predictions = stream_predict(source, checkpoint=args.checkpoint, window=args.window, hop=args.hop, mic=args.mic,
                                     adapt=args.adapt)
    classes = list(sr.recognizer.classes)
    if sr.adapt != "none":
        print(f"adaptation: --adapt {sr.adapt}, running statistics of the stream; the first {sr.warmup_seconds:g} s "
              "(warm-up) use the training statistics", file=sys.stderr, flush=True)
    told = False
    try:
        for p in predictions:
            if p.adapted and not told:
                told = True
                print(f"adaptation: on from the window {p.start:.2f}-{p.end:.2f} s (warm-up of {sr.warmup_seconds:g} s done)",
                      file=sys.stderr, flush=True)
            if args.format == "jsonl":
                print(json.dumps(p.to_dict()), flush=True)
            else:
                alpha = "" if p.alpha_frlm != p.alpha_frlm else f"  alpha frlm {p.alpha_frlm:.2f} urlm {p.alpha_urlm:.2f}"
                probs = " ".join(f"{c[:4]} {p.probabilities[c]:.2f}" for c in classes)
                warn = f"  [{', '.join(p.warnings)}]" if p.warnings else ""
                print(f"{p.start:8.2f}-{p.end:8.2f} s  {p.label:<10} {probs}{alpha}  {p.latency_ms:6.1f} ms{warn}", flush=True)
    except KeyboardInterrupt:
        pass
    s = sr.summary()
    if args.format == "jsonl":
        print(json.dumps({"summary": s.to_dict()}), flush=True)
    if s.windows == 0:  # no latency or real-time factor to speak of: say why instead of printing nan
        from .audio import MIN_DURATION

        where = "stdin" if source == "-" else ("the microphone" if source is None else source)
        what = "no audio" if s.audio_seconds == 0 else f"only {s.audio_seconds:g} s of audio (at least {MIN_DURATION:g} s needed)"
        print(f"error: {where}: {what}, so nothing was predicted. Fix: give a recording of at least {MIN_DURATION:g} s"
              + (" as raw 16 kHz 16-bit little-endian mono PCM" if source == "-" else ""), file=sys.stderr)
        return 1
    if args.format != "jsonl":
        print(f"{s.windows} windows over {s.audio_seconds:.2f} s of audio (window {sr.window_seconds:g} s, hop {s.hop_seconds:g} s); "
              f"latency per hop mean {s.mean_latency_ms:.1f} ms, p95 {s.p95_latency_ms:.1f} ms, max {s.max_latency_ms:.1f} ms; "
              f"real-time factor {s.real_time_factor:.3f} ({'keeps up with' if s.keeps_up else 'FALLS BEHIND'} real time)")
    return 0


def _cmd_export(args) -> int:
    from .export import export_torchscript

    _check_outputs(args, files={"OUT": args.out})
    out = export_torchscript(args.checkpoint, args.out, normalise=not args.no_normalise)
    print(f"wrote {out} ({args.format}; inputs frames (B, q, 76), mask (B, q), spec (B, n_mels, T) -> "
          f"probabilities (B, C), alpha (B, 2){'; normaliser built in' if not args.no_normalise else ''})")
    return 0


def _add_inference_commands(sub) -> None:
    p = sub.add_parser("predict", help="predict the emotion of audio files, folders or CSV manifests")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders (recursive .wav/.flac), CSV manifests with a path column")
    p.add_argument("--checkpoint", default=None, help="model checkpoint (default: the shipped EmoDB model)")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_adapt_args(p, "predict")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("evaluate", help="accuracy of a checkpoint on labelled audio (another corpus, a held-out set)")
    p.add_argument("corpus", metavar="CORPUS", help="emodb, iemocap, a CSV manifest path,label[,speaker], or a folder per label")
    p.add_argument("--data-dir", default=None, help="folder of a named corpus (default: $AMSNET_EMODB_DIR / $AMSNET_IEMOCAP_DIR)")
    p.add_argument("--checkpoint", default=None,
                   help="model checkpoint (default: the shipped EmoDB model, trained on all of EmoDB)")
    p.add_argument("--label-map", nargs="+", default=None, metavar="LABEL=CLASS",
                   help="map corpus labels to the model's classes, e.g. ang=anger hap=happiness; other labels "
                        "match a class of the same name (case ignored) or are left out and listed")
    p.add_argument("--out", default=None, metavar="CSV", help="also write every prediction with its true class")
    p.add_argument("--figure", default=None, metavar="PNG", help="also draw the confusion matrix (rows: recall in %%)")
    p.add_argument("--include-training", action="store_true",
                   help="also evaluate files the checkpoint was trained on (by default they are left out and listed; "
                        "with them the figures mix in training accuracy)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--left-out", default=None, metavar="CSV",
                   help="write every utterance left out, with its reason (default: beside --out, else "
                        "reports/ beside the feature cache); the terminal shows them grouped by reason")
    _add_adapt_args(p, "evaluate")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("stream", help="sliding-window predictions over a long file, raw PCM on stdin, or a microphone")
    p.add_argument("source", nargs="?", default=None, metavar="SOURCE",
                   help="audio file (any rate/channels), or - for raw 16 kHz 16-bit little-endian mono PCM on stdin")
    p.add_argument("--window", type=float, default=None, help="window length in s (default: the model's utterance length, 3 s for EmoDB)")
    p.add_argument("--hop", type=float, default=0.5, help="seconds between windows (default 0.5)")
    p.add_argument("--checkpoint", default=None, help="model checkpoint (default: the shipped EmoDB model)")
    p.add_argument("--mic", action="store_true", help="record from the microphone (needs the optional sounddevice module)")
    p.add_argument("--format", default="table", choices=["table", "jsonl"])
    _add_adapt_args(p, "stream")
    p.set_defaults(func=_cmd_stream)

    p = sub.add_parser("export", help="export a checkpoint to TorchScript: (frames, mask, spec) -> (probabilities, alpha)")
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("out", metavar="OUT")
    p.add_argument("--format", default="torchscript", choices=["torchscript"])
    p.add_argument("--no-normalise", action="store_true", help="export a module that takes standardised features")
    p.set_defaults(func=_cmd_export)


if __name__ == "__main__":
    sys.exit(main())
