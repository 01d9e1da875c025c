"""What the command line's two halves share: reading a corpus, reporting skipped files, checking
outputs before any work starts, and the full lists of warnings and left-out items."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import FeatureConfig
from ..data.audio import MIN_DURATION


def _number(kind: type, low: float, high: float | None = None, *, above: bool = False):
    """An argparse ``type`` for a number in a range, checked at parse time (issue 41).

    ``kind`` is ``int`` or ``float``; ``low`` is the smallest value (``above``: values must
    exceed it), ``high`` the largest (``None``: no bound). NaN, infinities and values out of range
    are refused with argparse's usage error (exit 2) naming the option's range, so a bad value
    never reaches the work (``--hop 0`` was a traceback after the model loaded).
    """
    import math

    shown = f"{'above' if above else 'at least'} {low:g}" + (f" and at most {high:g}" if high is not None else "")
    noun = "a whole number" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r}: give a finite number {shown}")
        if (value <= low if above else value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: give {noun} {shown}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its message
    return parse


#: The longest utterance, stream window or hop the command line takes, in seconds: beyond it a
#: window's buffers (and the features of an utterance) no longer fit a small machine's memory
#: (``--window 1e7`` was a MemoryError), and no model here is trained on more than seconds.
MAX_SECONDS = 600.0
#: Mel bands: with the paper's 800-point STFT at 16 kHz, over ~300 bands some come out empty.
MAX_MELS = 256
#: The largest seed: numpy's generators take seeds below 2**32.
MAX_SEED = 2**32 - 1


class DefaultsFormatter(argparse.HelpFormatter):
    """``--help`` shows every option's default: "(default: X)" is added where the help does not name it
    already (options without a value, and those whose absence means "not given", have none to show)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (not action.option_strings or action.default in (None, False, argparse.SUPPRESS)
                or "default" in text.lower()):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def _add_corpus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", default="emodb", help="emodb, iemocap, ravdess, or a CSV manifest / folder-per-label of your own corpus")
    p.add_argument("--data-dir", default=None, help="corpus directory (default: $AMSNET_EMODB_DIR / $AMSNET_IEMOCAP_DIR / "
                                                   "$AMSNET_RAVDESS_DIR, else ./data/<corpus>)")
    p.add_argument("--no-download", action="store_true", help="never download EmoDB or RAVDESS; fail if it is absent")
    p.add_argument("--name", default=None,
                   help="name of a manifest or folder corpus in tables, summaries and run names (default: the "
                        "manifest's file name without .csv, or the folder's name)")
    p.add_argument("--cache-dir", default=None, help="feature cache (default: $AMSNET_CACHE_DIR or ./.cache/features)")
    p.add_argument("--jobs", type=_number(int, 1), default=None, help="worker processes for feature extraction (default: all cores)")
    p.add_argument("--duration", type=_number(float, MIN_DURATION, MAX_SECONDS), default=None, help="fixed utterance length in seconds (default: "
                        f"{FeatureConfig.for_corpus('emodb').duration:g} EmoDB, {FeatureConfig.for_corpus('iemocap').duration:g} IEMOCAP)")
    p.add_argument("--n-mels", type=_number(int, 1, MAX_MELS), default=FeatureConfig.n_mels, help="mel bands of the spectrogram (default: %(default)s)")
    p.add_argument("--features", default=None, metavar="FILE",
                   help="read both feature streams from a bundle written by `amsnet features --save` instead of the "
                        "corpus (no audio or openSMILE needed; the corpus options above are then ignored)")


def _load(args, streams: bool = True, config=None):
    """The corpus' features (``--features`` bundle, or extracted); what the corpus skipped (the
    loader, and extraction: files unusable only once decoded) is reported, on stdout (stderr with
    ``--json``), for every command that reads a corpus.

    ``config``: extract with this :class:`~amsnet_lib.config.FeatureConfig` (``fit --like``: the run's)
    instead of the corpus's own with ``--duration`` and ``--n-mels``.

    ``streams=False``: the corpus table and labels without AMSNet's two streams (empty arrays), for
    the classic baselines, which read their functionals from the audio
    (:mod:`amsnet_lib.data.functionals`)."""
    from ..config import FeatureConfig
    from ..data.corpora import NAMED, load_corpus
    from ..data.features import Features, extract_features

    out = sys.stderr if getattr(args, "json", False) else sys.stdout
    if args.features:
        feats = Features.load(args.features)
        _report_skipped(feats.table, out, when=f"when {args.features} was made")
        return feats
    named = {"name": args.name} if getattr(args, "name", None) and args.corpus.lower() not in NAMED else {}
    table = load_corpus(args.corpus, data_dir=args.data_dir, download=False if args.no_download else "auto", **named)
    corpus = table.attrs.get("corpus", "custom")
    overrides = {"n_mels": args.n_mels}
    if args.duration is not None:
        overrides["duration"] = args.duration
    config = config or FeatureConfig.for_corpus(corpus, **overrides)
    if not streams:
        _report_skipped(table, out)
        return Features.without_streams(table, config)
    feats = extract_features(table, config, cache_dir=args.cache_dir, n_jobs=args.jobs)
    _report_skipped(feats.table, out)
    return feats


def _report_skipped(table, out, when: str = "") -> None:
    """Print the files the corpus loader left out (``table.attrs["skipped"]``) with their reasons,
    grouped by reason as every list of problem files is (:func:`_list_reasons`)."""
    skipped = [(str(p), str(r)) for p, r in table.attrs.get("skipped") or []]
    if not skipped:
        return
    total = len(table) + len(skipped)
    print(f"skipped {len(skipped)} of {total} files{f' {when}' if when else ''} (not used):", file=out)
    _list_reasons(skipped, out)


def _list_reasons(items, out) -> None:
    """``(path, reason)`` pairs, grouped by reason as every list of problem files is
    (:func:`amsnet_lib.errors.problem_lines`), one line each."""
    from ..errors import problem_lines

    for line in problem_lines(items):
        print(f"  {line}", file=out)


def _check_outputs(args, *, run_store: bool = False, files: dict | None = None, inputs=()) -> None:
    """Every location the command will write, checked before any work starts (creating missing
    folders): a folder that cannot be written is an error naming it and the fix, not a traceback
    after the training. ``files``: ``{what: path}`` of the files to write (``None``: not written).
    No file written may be one the command reads (:func:`amsnet_lib.atomic.check_distinct`): the
    inputs its options name (manifest, ``--features``, ``--split-file``, checkpoint) and ``inputs``
    (``(what, path)`` pairs, e.g. a corpus's audio files)."""
    from ..atomic import check_distinct, check_writable

    if run_store:
        from ..paths import default_run_dir

        check_writable(args.run_dir or default_run_dir(), "run store", "pass --run-dir (or set AMSNET_RUN_DIR) to a "
                       "folder you can write", folder=True)
    for what, path in (files or {}).items():
        if path:
            check_writable(path, what, f"give {what} a file name in a folder you can write")
    check_distinct((files or {}).items(), [*_named_inputs(args), *inputs])


def _named_inputs(args) -> list[tuple[str, str]]:
    """``(what, path)`` of the files a command's options name as inputs."""
    named = []
    for attr, what in (("corpus", "corpus manifest"), ("features", "--features bundle"), ("split_file", "--split-file"),
                       ("checkpoint", "checkpoint")):
        value = getattr(args, attr, None)
        if isinstance(value, str) and value and value.lower() not in ("emodb", "iemocap"):
            named.append((what, value))
    return named


# --------------------------------------------------------------------------- full lists of warnings and left-out items (features, evaluate)


def _report_grouped(items, what: str, report_path, stream=None) -> None:
    """``items`` ((path, reason) pairs) grouped by reason (:func:`amsnet_lib.errors.problem_lines`); all to ``report_path``."""
    import pandas as pd

    from ..atomic import atomic_write_text
    from ..errors import problem_lines

    stream = stream or sys.stderr
    if not items:
        return
    lines = problem_lines(items)
    print(f"{len(items)} {what}, {len(lines)} reason(s):", file=stream)
    for line in lines:
        print(f"  {line}", file=stream)
    if report_path is not None:
        report_path = Path(report_path)
        atomic_write_text(report_path, pd.DataFrame(list(items), columns=["path", "reason"]).to_csv(index=False))
        print(f"  every one of them: {report_path}", file=stream)


def _augmented(args, feats, augment: str):
    """``feats`` and their ``augment`` copies (:func:`amsnet_lib.data.channels.augmented_features`; ``none``:
    ``feats``), the copies' audio in ``augmented/`` beside the feature cache."""
    if augment == "none":
        return feats  # no audio module imported: a features bundle trains without the audio
    from ..data.channels import augmented_features

    return augmented_features(feats, augment, feature_cache=args.cache_dir)


def _report_dir(args) -> Path:
    """Where a command's full lists go when no file is named: ``reports/`` beside the feature cache."""
    from ..paths import default_cache_dir

    cache = getattr(args, "cache_dir", None)
    return Path(cache or default_cache_dir()).parent / "reports"


def _corpus_name(corpus) -> str:
    """A corpus's name for files and labels: ``emodb``/``iemocap``, else the manifest's or folder's name."""
    return Path(str(corpus)).stem or "corpus"


def _dumps(obj, **kwargs) -> str:
    """``json.dumps`` that always writes valid JSON: NaN and infinities become ``null``.

    Python's default writes a bare ``NaN``, which JSON has no word for: ``jq`` and other parsers
    refuse the whole document (a model with NaN outputs made ``predict --format json`` unreadable).
    """
    import json
    import math

    def finite(o):
        if isinstance(o, float):
            return o if math.isfinite(o) else None
        if isinstance(o, dict):
            return {k: finite(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [finite(v) for v in o]
        if hasattr(o, "item") and getattr(o, "ndim", None) == 0:  # numpy scalars
            return finite(o.item())
        return o

    return json.dumps(finite(obj), allow_nan=False, **kwargs)
