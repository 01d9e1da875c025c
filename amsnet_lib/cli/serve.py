"""Command line, inference: ``amsnet predict | evaluate | stream | export`` (added to :func:`amsnet_lib.cli.main`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import MAX_SECONDS, _check_outputs, _corpus_name, _dumps, _number, _report_dir, _report_grouped
from ..data.audio import MIN_DURATION


#: The shortest hop of ``stream``: one 10 ms frame of the IS10 features (a hop below one sample
#: was a traceback; every hop is a whole model evaluation, so shorter ones only fall behind).
MIN_HOP = 0.01


def _fmt_prob(v) -> str:
    return "" if v != v else f"{v:.3f}"


#: Each command's --adapt default, chosen by measurement (results/tables/channel_shift.md,
#: results/tables/adapt_min_audio.md; docs/CLI.md, "Audio that is not EmoDB"). evaluate scores a corpus:
#: corpus adaptation gained 1.7-16.8 points of UA under every channel shift (cost 4.0 on clean audio).
#: predict is mostly given a few files: statistics of 1-3 utterances gained 1.2-3.1 (telephone) or cost 2.3-2.6
#: (clean), and
#: a file's label would depend on the files scored with it. stream: not measured on a benchmark.
DEFAULT_ADAPT = {"predict": "none", "evaluate": "corpus", "stream": "none"}


def _add_adapt_args(p: argparse.ArgumentParser, command: str) -> None:
    from ..serve.adapt import ADAPT_MODES

    p.add_argument("--adapt", default=DEFAULT_ADAPT[command], choices=list(ADAPT_MODES),
                   help="unsupervised adaptation (no label is read): standardise the features with statistics of the "
                        "audio scored, all of it (corpus) or each speaker's (speaker: a `speaker` column, or --speaker), "
                        f"blended with the training statistics where there is little audio (default: {DEFAULT_ADAPT[command]})")
    if command != "stream":
        p.add_argument("--speaker", default=None, metavar="NAME",
                       help="all the audio is of this one speaker (for --adapt speaker without a speaker column)")


def _add_window_args(p: argparse.ArgumentParser) -> None:
    """Whole-recording scoring (hop, pooling, trimming), the per-window table, and the classes scored."""
    from ..config import POOLINGS, WindowConfig

    w = WindowConfig()
    p.add_argument("--hop", type=float, default=w.hop,
                   help="seconds between the model's windows over a longer recording (default: %(default)s)")
    p.add_argument("--pooling", default=w.pooling, choices=list(POOLINGS),
                   help="how the windows' scores become the file's: mean of probabilities, softmax of the mean logits, "
                        "largest probability per class, or the first window only (default: %(default)s, "
                        "chosen on validation data; docs/CLI.md)")
    p.add_argument("--trim-db", default=w.trim_db, type=lambda v: None if v.lower() in ("off", "none") else float(v),
                   metavar="DB", help="trim leading and trailing audio quieter than DB below the peak (off: no trimming) "
                                      "for a checkpoint trained without trimming; one trained with it uses its own "
                                      "(default: %(default)s)")
    p.add_argument("--windows", default=None, metavar="CSV", help="also write one row per window: path, window, start, "
                                                                   "end (s), label, probabilities")
    p.add_argument("--classes", default=None, metavar="A,B,C",
                   help="score over these of the model's classes only (comma-separated): their probabilities are "
                        "renormalised, the others are 0")


def _windowing(args):
    from ..config import WindowConfig

    return WindowConfig(hop=args.hop, pooling=args.pooling, trim_db=args.trim_db)


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


def _cmd_predict(args) -> int:
    from ..serve.predict import Recognizer

    _check_outputs(args, files={"--windows": args.windows})
    try:
        rec = Recognizer(args.checkpoint, windowing=_windowing(args))
        progress = (not args.quiet) and sys.stderr.isatty()
        df, windows = rec.predict(args.paths, batch_size=args.batch_size, progress=progress, adapt=args.adapt,
                                  speakers=args.speaker, classes=args.classes, return_windows=True, data_dir=args.data_dir)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.windows:
        from ..atomic import atomic_write_text

        atomic_write_text(args.windows, windows.to_csv(index=False))
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
                "windows": int(r["windows"]),
                "warnings": [w for w in r["warnings"].split("; ") if w],
                "error": r["error"] or None,
            })
        print(_dumps(out, indent=1))
    else:
        show = df[ok]
        if len(show):
            alpha = ["alpha_frlm", "alpha_urlm"] if rec.has_alpha else []
            cols = ["path", "label"] + [f"p_{c}" for c in classes] + alpha
            t = show[cols].copy()
            for c in cols[2:]:
                t[c] = t[c].map(_fmt_prob)
            t.columns = ["path", "label"] + classes + alpha
            if (show["windows"] > 1).any():
                t["windows"] = show["windows"].to_numpy()
            print(t.to_string(index=False))
        for r in df[ok & (df["warnings"] != "")].itertuples():
            print(f"warning: {r.path}: {r.warnings}")
        print(f"{int(ok.sum())} of {len(df)} files predicted with {rec.info.path}; {_scoring_line(df.attrs)}")
    _print_adapt(df.attrs.get("adapt"))
    passed = df.attrs.get("skipped") or []
    if passed:
        from ._common import _list_reasons

        print(f"folder scans passed over {len(passed)} file(s) not named as audio:", file=sys.stderr)
        _list_reasons(passed, sys.stderr)
    if (~ok).any():
        print(f"{int((~ok).sum())} file(s) failed:", file=sys.stderr)
        for r in df[~ok].itertuples():
            print(f"  {r.path}: {r.error}", file=sys.stderr)
    return 0 if ok.any() else 1


def _scoring_line(attrs: dict) -> str:
    """How the files were scored: windows, pooling, trimming, and the classes scored."""
    w = attrs.get("windowing", {})
    trim = f"trimmed at {w['trim_db']:g} dB" if w.get("trim_db") else "not trimmed"
    line = (f"each file whole ({trim}; {w.get('window', 0):g}-s windows every {w.get('hop', 0):g} s, pooling "
            f"{w.get('pooling')})" if w.get("pooling") != "first" else f"the first window of each file ({trim})")
    scored, classes = attrs.get("scored_classes"), attrs.get("classes")
    if scored and classes and len(scored) < len(classes):
        line += f"; scored over {', '.join(scored)} only"
    return line


def _cmd_evaluate(args) -> int:
    from ..atomic import check_distinct
    from ..data.corpora import load_corpus
    from ..serve.evaluation import evaluate
    from ..serve.predict import SHIPPED_CHECKPOINT, Recognizer

    label_map = {}
    for pair in args.label_map or []:
        label, sep, cls = pair.partition("=")
        if not sep or not label or not cls:
            print(f"error: --label-map {pair!r}: write CORPUS_LABEL=MODEL_CLASS, e.g. ang=anger", file=sys.stderr)
            return 2
        label_map[label] = cls
    report = args.left_out or (Path(args.out).with_suffix(".left_out.csv") if args.out else
                               _report_dir(args) / f"evaluate_{_corpus_name(args.corpus)}_left_out.csv")
    outputs = {"--out": args.out, "--figure": args.figure, "--windows": args.windows,
               "--left-out" if args.left_out else "left-out list": report}
    checkpoint = ("checkpoint", args.checkpoint or SHIPPED_CHECKPOINT)
    _check_outputs(args, files=outputs, inputs=[checkpoint])
    try:  # the corpus first: no output may be one of its audio files either, before any prediction
        table = load_corpus(args.corpus, data_dir=args.data_dir)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    check_distinct(outputs.items(), [checkpoint, *(("audio file of the corpus", p) for p in table["path"])])
    try:
        rec = Recognizer(args.checkpoint, windowing=_windowing(args))
        ev = evaluate(table, rec, label_map=label_map, include_training=args.include_training,
                      batch_size=args.batch_size, progress=(not args.quiet) and sys.stderr.isatty(), adapt=args.adapt,
                      speakers=args.speaker, classes=args.classes, all_classes=args.all_classes)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from ..atomic import atomic_write_text

    if args.out:
        atomic_write_text(args.out, ev.predictions.to_csv(index=False))
    if args.windows:
        atomic_write_text(args.windows, ev.windows.to_csv(index=False))
    if args.figure:
        from ..report.plotting import confusion_matrix

        confusion_matrix(ev.confusion.to_numpy(), ev.classes, save=args.figure,
                         title=f"{Path(str(args.corpus)).name} with {Path(str(ev.checkpoint)).name}: "
                               f"WA {ev.wa:.2f} %, UA {ev.ua:.2f} % ({len(ev.predictions)} utterances)")
    trained_on = rec.info.meta.get("data", "not recorded")
    print(f"{len(ev.predictions)} utterances of {args.corpus} evaluated with {ev.checkpoint} (trained on: {trained_on})")
    if ev.training_overlap is None:
        from ..serve.checkpoint import TRAINING_DIGESTS

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
    print(f"scoring: {_scoring_line(ev.predictions.attrs)}"
          + (" (the classes the corpus has; --all-classes: the model's own decision)"
             if len(ev.scored_classes) < len(ev.classes) else ""))
    print(f"WA {ev.wa:.2f} %, UA {ev.ua:.2f} % (UA over the {len(ev.recall)} classes present)")
    print("recall (%): " + ", ".join(f"{c} {r:.2f}" for c, r in ev.recall.items()))
    print("confusion (rows: true, columns: predicted):")
    print(ev.confusion.loc[list(ev.recall), ev.scored_classes].to_string())
    _report_grouped(ev.left_out, "utterance(s) left out", report)
    return 0


def _cmd_stream(args) -> int:
    from ..serve.stream import mic_available, stream_predict

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
    try:
        sr, predictions = stream_predict(source, checkpoint=args.checkpoint, window=args.window, hop=args.hop, mic=args.mic,
                                         adapt=args.adapt, classes=args.classes)
    except ValueError as error:  # e.g. --classes naming no class of the model
        print(f"error: {error}", file=sys.stderr)
        return 2
    classes = list(sr.recognizer.classes)
    if sr.adapt != "none":
        print(f"adaptation: --adapt {sr.adapt}, running statistics of the stream; the first {sr.warmup_seconds:g} s "
              "(warm-up) use the training statistics", file=sys.stderr, flush=True)
    told, interrupted = False, False
    try:
        for p in predictions:
            if p.adapted and not told:
                told = True
                print(f"adaptation: on from the window {p.start:.2f}-{p.end:.2f} s (warm-up of {sr.warmup_seconds:g} s done)",
                      file=sys.stderr, flush=True)
            if args.format == "jsonl":
                print(_dumps(p.to_dict()), flush=True)
            else:
                alpha = "" if p.alpha_frlm != p.alpha_frlm else f"  alpha frlm {p.alpha_frlm:.2f} urlm {p.alpha_urlm:.2f}"
                probs = " ".join(f"{c[:4]} {p.probabilities[c]:.2f}" for c in classes)
                warn = f"  [{', '.join(p.warnings)}]" if p.warnings else ""
                print(f"{p.start:8.2f}-{p.end:8.2f} s  {p.label:<10} {probs}{alpha}  {p.latency_ms:6.1f} ms{warn}", flush=True)
    except KeyboardInterrupt:  # Ctrl-C ends a stream (a microphone's only end): the summary, then exit 130
        interrupted = True
    s = sr.summary()
    if args.format == "jsonl":
        print(_dumps({"summary": s.to_dict()}), flush=True)
    if s.windows == 0 and interrupted:
        from . import EXIT_INTERRUPTED

        print("interrupted (Ctrl-C) before the first window", file=sys.stderr)
        return EXIT_INTERRUPTED
    if s.windows == 0:  # no latency or real-time factor to speak of: say why instead of printing nan
        from ..data.audio import MIN_DURATION

        where = "stdin" if source == "-" else ("the microphone" if source is None else source)
        what = "no audio" if s.audio_seconds == 0 else f"only {s.audio_seconds:g} s of audio (at least {MIN_DURATION:g} s needed)"
        print(f"error: {where}: {what}, so nothing was predicted. Fix: give a recording of at least {MIN_DURATION:g} s"
              + (" as raw 16 kHz 16-bit little-endian mono PCM" if source == "-" else ""), file=sys.stderr)
        return 1
    if args.format != "jsonl":
        print(f"{s.windows} windows over {s.audio_seconds:.2f} s of audio (window {sr.window_seconds:g} s, hop {s.hop_seconds:g} s); "
              f"latency per hop mean {s.mean_latency_ms:.1f} ms, p95 {s.p95_latency_ms:.1f} ms, max {s.max_latency_ms:.1f} ms; "
              f"real-time factor {s.real_time_factor:.3f} ({'keeps up with' if s.keeps_up else 'FALLS BEHIND'} real time)")
    if interrupted:
        from . import EXIT_INTERRUPTED

        print("interrupted (Ctrl-C): stopped after the windows above", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _cmd_export(args) -> int:
    fmt = args.format or ("onnx" if str(args.out).lower().endswith(".onnx") else "torchscript")
    _check_outputs(args, files={"OUT": args.out})
    if fmt == "onnx":
        from ..serve.export import export_onnx

        if args.no_normalise:
            print("error: --no-normalise is for TorchScript; an ONNX file always takes standardised features "
                  "(its metadata holds the normaliser)", file=sys.stderr)
            return 2
        out = export_onnx(args.checkpoint, args.out)
        print(f"wrote {out} (onnx; inputs standardised frames (B, q, 76), mask (B, q), spec (B, n_mels, T) -> "
              "logits (B, C), alpha (B, 2); classes, normaliser, feature settings and card in its metadata; "
              "run it with amsnet predict --checkpoint, no torch needed)")
        return 0
    from ..serve.export import export_torchscript

    out = export_torchscript(args.checkpoint, args.out, normalise=not args.no_normalise)
    print(f"wrote {out} ({fmt}; inputs frames (B, q, 76), mask (B, q), spec (B, n_mels, T) -> "
          f"probabilities (B, C), alpha (B, 2){'; normaliser built in' if not args.no_normalise else ''})")
    return 0


def _add_inference_commands(sub) -> None:
    p = sub.add_parser("predict", help="predict the emotion of audio files, folders or CSV manifests")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders (recursive: .wav .flac .ogg .mp3 .aiff ...), "
                                                          "CSV manifests with a path column, or a named corpus (emodb, ravdess, iemocap)")
    p.add_argument("--checkpoint", default=None, help="model checkpoint (.pt), ONNX file (.onnx), or a shipped model by "
                   "name: emodb (the default: trained on all of EmoDB) or emodb+ravdess (trained on both corpora); its "
                   ".onnx form when torch is not installed")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"])
    p.add_argument("--batch-size", type=_number(int, 1), default=32)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--data-dir", default=None, help="folder of a named corpus given as PATH (emodb, ravdess, iemocap)")
    _add_adapt_args(p, "predict")
    _add_window_args(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("evaluate", help="accuracy of a checkpoint on labelled audio (another corpus, a held-out set)")
    p.add_argument("corpus", metavar="CORPUS", help="emodb, ravdess, iemocap, a CSV manifest path,label[,speaker], or a folder per label")
    p.add_argument("--data-dir", default=None, help="folder of a named corpus (default: $AMSNET_EMODB_DIR / $AMSNET_RAVDESS_DIR / "
                                                    "$AMSNET_IEMOCAP_DIR)")
    p.add_argument("--checkpoint", default=None,
                   help="model checkpoint, or a shipped model by name: emodb (the default: trained on all of EmoDB) "
                        "or emodb+ravdess (trained on both corpora)")
    p.add_argument("--label-map", nargs="+", default=None, metavar="LABEL=CLASS",
                   help="map corpus labels to the model's classes, e.g. ang=anger hap=happiness; other labels "
                        "match by the default map across corpora (the same name, or an alias: angry=anger, sad=sadness...; "
                        "docs/CLI.md) or are left out and listed (RAVDESS calm and surprise for an EmoDB model)")
    p.add_argument("--out", default=None, metavar="CSV", help="also write every prediction with its true class")
    p.add_argument("--figure", default=None, metavar="PNG", help="also draw the confusion matrix (rows: recall in %%)")
    p.add_argument("--include-training", action="store_true",
                   help="also evaluate files the checkpoint was trained on (by default they are left out and listed; "
                        "with them the figures mix in training accuracy)")
    p.add_argument("--batch-size", type=_number(int, 1), default=32)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--left-out", default=None, metavar="CSV",
                   help="write every utterance left out, with its reason (default: beside --out, else "
                        "reports/ beside the feature cache); the terminal shows them grouped by reason")
    p.add_argument("--all-classes", action="store_true",
                   help="score over all the model's classes (its own argmax); by default, when the corpus has fewer, "
                        "the probabilities are renormalised over the classes it has")
    _add_adapt_args(p, "evaluate")
    _add_window_args(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("stream", help="sliding-window predictions over a long file, raw PCM on stdin, or a microphone")
    p.add_argument("source", nargs="?", default=None, metavar="SOURCE",
                   help="audio file (any rate/channels), or - for stdin: raw 16 kHz 16-bit little-endian mono PCM, or a WAV "
                        "stream (e.g. arecord's)")
    p.add_argument("--window", type=_number(float, MIN_DURATION, MAX_SECONDS), default=None, help="window length in s (default: the model's utterance length, 3 s for EmoDB)")
    p.add_argument("--hop", type=_number(float, MIN_HOP, MAX_SECONDS), default=0.5, help="seconds between windows (default 0.5)")
    p.add_argument("--checkpoint", default=None, help="model checkpoint (.pt), ONNX file (.onnx), or a shipped model by "
                   "name: emodb (the default: trained on all of EmoDB) or emodb+ravdess (trained on both corpora); its "
                   ".onnx form when torch is not installed")
    p.add_argument("--mic", action="store_true", help="record from the microphone (needs the optional sounddevice module)")
    p.add_argument("--format", default="table", choices=["table", "jsonl"])
    p.add_argument("--classes", default=None, metavar="A,B,C",
                   help="score over these of the model's classes only (comma-separated; the others get probability 0)")
    _add_adapt_args(p, "stream")
    p.set_defaults(func=_cmd_stream)

    p = sub.add_parser("export", help="export a checkpoint (.pt) to TorchScript or ONNX (needs the [torch] extra)")
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("out", metavar="OUT")
    p.add_argument("--format", default=None, choices=["torchscript", "onnx"],
                   help="onnx: run by ONNX Runtime without torch (predict/evaluate/stream --checkpoint OUT) "
                        "(default: onnx for an OUT ending in .onnx, else torchscript)")
    p.add_argument("--no-normalise", action="store_true", help="export a module that takes standardised features")
    p.set_defaults(func=_cmd_export)

