#!/usr/bin/env python
"""Train the shipped model: AMSNet, the paper's configuration, on ALL of EmoDB.

    python -m scripts.train_shipped_model --recipe tuned        # the shipped model (see below)
    python -m scripts.train_shipped_model                       # the paper recipe (hours on CPU)
    python -m scripts.train_shipped_model --quick --limit 14 --out /tmp/m.pt    # smoke run of the same path

Configuration: ``studies.experiment("emodb", "amsnet", "paper", "full")``, with ``--recipe tuned``
trained with the tuned recipe (``studies.tuned``, docs/RECIPE.md), by ``training.fit_final`` (every
utterance; a stratified 10 % validation split selects the epoch). The shipped model uses the recipe
whose AMSNet is more accurate on speakers never seen in training (the leave-one-speaker-out rows of
``summary.csv``, both recipes; the card quotes both).
Writes ``amsnet_lib/pretrained/amsnet_emodb.pt`` (see ``amsnet_lib.serve.checkpoint``), its ONNX
form ``amsnet_emodb.onnx`` (``amsnet_lib.serve.export.export_onnx``, checked against the checkpoint)
and ``amsnet_lib/pretrained/MODEL_CARD.md`` (``--onnx-only`` rewrites the ONNX file and the card from
the existing checkpoint). The model trained on everything has no test part, so
the accuracy the card and the checkpoint quote is the speaker-independent (leave-one-speaker-out)
cross-validation of the same configuration, read from ``results/tables/summary.csv`` (written by
``amsnet train --protocol loso`` / the notebooks): never typed in by hand. When that row does not
exist yet, both say "not yet measured"; run this script again after the LOSO study to fill them in
(``--card-only`` rewrites the card and the checkpoint's meta without retraining).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from amsnet_lib.serve.checkpoint import TRAINING_DIGESTS, config_to_dict, describe_training_data, load_checkpoint, save_checkpoint
from amsnet_lib.serve.predict import SHIPPED_CHECKPOINT
from amsnet_lib.report.tables import summary_row

NOT_MEASURED = "not yet measured"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def read_accuracy(summary: Path, protocol: str, model: str = "amsnet", corpus: str = "emodb", variant: str = "",
                  recipe: str = "paper") -> dict | None:
    """The summary.csv row of (corpus, protocol, recipe, model, variant) as a dict, or None when absent."""
    import pandas as pd

    if not summary.is_file():
        return None
    df = pd.read_csv(summary, keep_default_na=False)
    need = {"corpus", "protocol", "model", "wa", "ua"}
    if not need <= set(df.columns):
        return None
    if "variant" not in df.columns:
        df["variant"] = ""
    row = summary_row(df, corpus, protocol, model, variant, recipe)
    if row is None:
        return None
    r = row.to_dict()
    keep = ("wa", "ua", "wa_std", "ua_std", "n_folds", "n_seeds")
    out = {k: (float(r[k]) if k in ("wa", "ua", "wa_std", "ua_std") else int(r[k])) for k in keep if k in r and str(r[k]) != ""}
    out["source"] = str(summary.relative_to(ROOT) if summary.is_relative_to(ROOT) else summary)
    out["protocol"] = protocol
    out["recipe"] = recipe
    return out


def shipped_experiment(recipe: str = "paper", profile: str = "full"):
    """The shipped model's configuration: AMSNet on EmoDB, the paper's or the tuned recipe."""
    from amsnet_lib.studies import experiment, tuned

    exp = experiment("emodb", "amsnet", "paper", profile)
    return tuned(exp, quick=profile == "quick") if recipe == "tuned" else exp


def _acc_text(acc) -> str:
    if not isinstance(acc, dict):
        return str(acc)
    s = f"WA {acc['wa']:.2f} %"
    if "wa_std" in acc:
        s += f" ± {acc['wa_std']:.2f}"
    s += f", UA {acc['ua']:.2f} %"
    if "ua_std" in acc:
        s += f" ± {acc['ua_std']:.2f}"
    if "n_folds" in acc:
        s += f" ({acc['n_folds']} folds"
        s += f", {acc['n_seeds']} seed{'s' if acc.get('n_seeds', 1) != 1 else ''})" if "n_seeds" in acc else ")"
    return s + f"; from {acc.get('source', 'results/tables/summary.csv')}"


#: The card's limits, also carried in the ONNX file's metadata.
LIMITS = [
    "Acted German speech from only 10 speakers, recorded in an anechoic room. Expect clearly weaker "
    "results on spontaneous speech, on other languages, on other recording conditions and on noisy "
    "or telephone-band channels.",
    "Only the 7 EmoDB categories exist for the model; anything else (e.g. surprise, contempt, mixed "
    "or weak emotion) is forced into one of them.",
    "It was trained on 3-s utterances: a longer recording is judged window by window and pooled into "
    "one label, which hides changes of emotion within it (see `--windows` for the windows' own).",
    "Emotion recognition from voice is uncertain and culture-dependent: do not use its output for "
    "decisions about people.",
]


def _wrap(text: str, width: int = 100) -> str:
    import textwrap

    return textwrap.fill(text, width, initial_indent="- ", subsequent_indent="  ")


def export_shipped_onnx(checkpoint: Path) -> Path:
    """The checkpoint's ONNX form beside it, its metadata carrying the card's key facts."""
    from amsnet_lib.serve.export import card_facts, export_onnx

    model, info = load_checkpoint(checkpoint)
    card = {"name": "AMSNet trained on EmoDB", **card_facts(info), "limits": LIMITS,
            "model_card": "MODEL_CARD.md beside the file (amsnet_lib/pretrained/)"}
    return export_onnx((model, info), checkpoint.with_suffix(".onnx"), card=card)


def render_card(meta: dict | None, checkpoint_name: str = "amsnet_emodb.pt") -> str:
    """MODEL_CARD.md from a checkpoint's meta (None: the model has not been trained yet)."""
    m = meta or {}
    from amsnet_lib.report.report import training_text

    recipe = m.get("recipe", "paper")
    exp = shipped_experiment(recipe, "full")  # the configuration the card describes
    trained = bool(meta)
    loso = m.get("loso_accuracy", NOT_MEASURED)
    paper = m.get("paper_protocol_accuracy", NOT_MEASURED)
    other = m.get("other_recipe_loso_accuracy")
    if not trained:
        loso_text = ("to be filled from results/tables/summary.csv by scripts/train_shipped_model.py "
                     "(leave-one-speaker-out AMSNet row)")
        paper_text = "to be filled from results/tables/summary.csv by scripts/train_shipped_model.py"
    else:
        loso_text, paper_text = _acc_text(loso), _acc_text(paper)
    other_recipe = "tuned" if recipe == "paper" else "paper"
    other_text = (f"\n- The same architecture with the {other_recipe} recipe, leave one speaker out: {_acc_text(other)}"
                  if isinstance(other, dict) else "")
    finetune_text = ("" if exp.finetune is None else
                     f"\n  Then the whole model fine-tuned end to end (stage 3, beyond the paper): {training_text(exp.finetune)}.")
    status = (f"Trained {m.get('date', '?')} with amsnet {m.get('amsnet_version', '?')}"
              f"{', commit ' + m['git_commit'][:10] if m.get('git_commit') else ''}; profile `{m.get('profile', '?')}`."
              if trained else
              f"**Not trained yet.** `amsnet_lib/pretrained/{checkpoint_name}` is produced by "
              "`python -m scripts.train_shipped_model` (full paper configuration, several hours on CPU).")
    if trained and m.get("profile") != "full":
        status += " **This is a smoke-test model (quick profile): its predictions mean nothing.**"
    n_utt = m.get("n_utterances", 535)
    return f"""# Model card: AMSNet trained on EmoDB (`{checkpoint_name}`)

{status}

This file is written by `scripts/train_shipped_model.py`; its numbers come from the measured
summary (`results/tables/summary.csv`), never typed in by hand.

## Model
- **Architecture**: AMSNet (Chen et al., ESWA 2023): FRLM (IS10 frame features, 76 dims per 10 ms
  frame → bidirectional peephole LSTM → attention pooling → 128) and URLM (log-mel spectrogram,
  128 bands, 3 s → temporal convolutions with squeeze-and-excitation → 128), fused by connection
  attention (eqs 9-12). The output includes the fusion weights `alpha_frlm`, `alpha_urlm`.
- **Configuration**: `amsnet_lib.studies.experiment("emodb", "amsnet", "paper", "full")`{", trained with the tuned recipe (`studies.tuned`, docs/RECIPE.md)" if recipe == "tuned" else ", the paper's training recipe"}, stored in
  full inside the checkpoint (`amsnet_lib.serve.checkpoint.load_checkpoint(...)[1].experiment`).
- **Input**: any WAV/FLAC (any sample rate, any channel count; brought to 16 kHz mono). A file is
  scored whole: its leading and trailing silence trimmed, 3-s windows every 1 s, their scores pooled
  (docs/CLI.md, "Whole recordings"); a file of 3 s or less is one window, zero-padded, as in training.
  `amsnet stream FILE` gives the windows' predictions with their times as the audio comes in.
- **Output**: one of 7 classes: anger, boredom, disgust, fear, happiness, sadness, neutral, with
  a probability for each.

## Files
- `{checkpoint_name}`: the PyTorch checkpoint (weights, configuration, classes, normaliser, training
  files' digests): what `amsnet_lib.serve.checkpoint.load_checkpoint`, fine-tuning and `amsnet export`
  read. Needs PyTorch (`pip install 'amsnet[torch]'`).
- `{Path(checkpoint_name).with_suffix(".onnx").name}`: the same network in ONNX form, run by ONNX Runtime
  without PyTorch; its metadata carries the classes, the normaliser's statistics, the feature settings,
  the configuration and this card's key facts. `amsnet predict`, `evaluate` and `stream` use it when
  PyTorch is not installed (`pip install amsnet` alone), the checkpoint otherwise; its logits agree with
  the checkpoint's within 1e-4 (tested on EmoDB files). It is shipped built, not built at install or
  first use, because building it needs PyTorch and the ONNX exporter (`onnx`, `onnxscript`), which
  the inference install leaves out. `python -m scripts.train_shipped_model --onnx-only` rebuilds it
  from the checkpoint.

## Training data
- **EmoDB** (Berlin Database of Emotional Speech; Burkhardt et al., 2005): acted German speech,
  10 professional speakers (5 female, 5 male), 10 sentences, 7 emotions; all {n_utt} utterances
  are used for training (`amsnet_lib.train.training.fit_final`). The checkpoint records a digest of
  every training file, so `amsnet evaluate` leaves EmoDB's files out (training accuracy is no result).
- **Protocol**: two-stage training as in the paper (branches pre-trained, then the fusion head
  over frozen branches), the {recipe} recipe; FRLM: {training_text(exp.stage_train("frlm"))}{f"; {exp.frlm.frame_stack} frames per recurrent step" if exp.frlm.frame_stack > 1 else ""}.
  URLM: {training_text(exp.stage_train("urlm"))}. Fusion head: {training_text(exp.stage_train("fusion"))}.{finetune_text}
  Features standardised with statistics of the training utterances (stored in the checkpoint).

## Accuracy
The shipped model has seen every EmoDB utterance, so it cannot be tested on EmoDB. The figures
below are cross-validated accuracies of the **same configuration** trained on part of the data:

- **Speaker-independent** (leave one speaker out, 10 folds; the figure to expect on new speakers
  of the same kind of speech): {loso_text}
- Speaker-dependent (the paper's protocol: stratified random 5-fold, the same speakers in
  training and test; optimistic): {paper_text}{other_text}

WA = weighted accuracy (overall share correct), UA = unweighted accuracy (mean per-class recall).

## Other microphones, rooms and speakers
- How accuracy falls when the channel changes (telephone band, -20 dB, noise at 20 and 10 dB SNR, another
  microphone's response, a room), and what unsupervised adaptation recovers: the
  [channel-shift table](../../results/tables/{"channel_shift.md" if recipe == "paper" else "channel_shift_amsnet_tuned.md"}) (the same configuration trained on EmoDB
  speakers 03-11 and tested on 12-16; `python -m benchmarks.channel_shift{"" if recipe == "paper" else " --recipe tuned"}`). It is measured on that
  five-speaker model, not on this checkpoint, which has seen every EmoDB speaker.
- On another corpus: this model (and the tuned FRLM and URLM fitted like it) scored on RAVDESS, English actors it never
  heard, over the classes the two corpora share and over four, with each adaptation, beside the classic baseline:
  [cross_corpus.md](../../results/tables/cross_corpus.md); this model's own argmax against its scores restricted to
  RAVDESS's classes: [cross_corpus_scoring.md](../../results/tables/cross_corpus_scoring.md).
- To adapt to your own audio without labels: `amsnet evaluate ... --adapt corpus` (its default) or
  `--adapt speaker` (with a `speaker` column), `amsnet predict ... --adapt corpus` for a folder of 10 or more
  recordings ([how much audio it needs](../../results/tables/adapt_min_audio_urlm_val.md), chosen on a validation speaker). With labels: train on your
  own corpus, `amsnet fit --corpus mine.csv --out mine.pt`.

## Limits
{chr(10).join(_wrap(x) for x in LIMITS)}
"""


def _accuracies(summary: Path, recipe: str) -> dict:
    """The card's cross-validated figures of ``recipe``'s AMSNet, and the other recipe's under LOSO."""
    other = "tuned" if recipe == "paper" else "paper"
    return {"loso_accuracy": read_accuracy(summary, "loso", recipe=recipe) or NOT_MEASURED,
            "paper_protocol_accuracy": read_accuracy(summary, "paper", recipe=recipe) or NOT_MEASURED,
            "other_recipe_loso_accuracy": read_accuracy(summary, "loso", recipe=other) or NOT_MEASURED}


def _subset(table, limit: int):
    """A stratified subset of about ``limit`` utterances, at least 2 per class (smoke runs only)."""
    per_class = max(2, limit // max(1, table["label"].nunique()))
    sub = table.groupby("label", sort=False, group_keys=False).head(per_class).reset_index(drop=True)
    sub.attrs = dict(table.attrs)
    return sub


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="quick profile (tiny networks, one epoch): a smoke test of this script")
    ap.add_argument("--recipe", default="paper", choices=["paper", "tuned"],
                    help="training recipe (the shipped model: the one more accurate under leave-one-speaker-out)")
    ap.add_argument("--out", default=str(SHIPPED_CHECKPOINT), help="checkpoint to write (default: the shipped one)")
    ap.add_argument("--card", default=None, help="model card to write (default: MODEL_CARD.md next to --out)")
    ap.add_argument("--data-dir", default=None, help="EmoDB folder (default: $AMSNET_EMODB_DIR, else ./data/emodb)")
    ap.add_argument("--no-download", action="store_true")
    ap.add_argument("--cache-dir", default=None, help="feature cache (default: $AMSNET_CACHE_DIR or ./.cache/features)")
    ap.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    ap.add_argument("--summary", default=str(ROOT / "results" / "tables" / "summary.csv"),
                    help="measured summary the accuracies are read from")
    ap.add_argument("--device", default=None)
    ap.add_argument("--jobs", type=int, default=None, help="feature extraction processes")
    ap.add_argument("--limit", type=int, default=None,
                    help="train on a stratified subset of about N utterances, half held out for validation (smoke tests only)")
    ap.add_argument("--card-only", action="store_true",
                    help="do not train: refresh the accuracies in the existing checkpoint's meta and rewrite the card")
    ap.add_argument("--onnx-only", action="store_true",
                    help="do not train: rewrite the checkpoint's ONNX form (.onnx beside --out) and the card")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for training (default: torch's default)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    import amsnet_lib

    out = Path(args.out)
    card = Path(args.card) if args.card else out.parent / "MODEL_CARD.md"
    summary = Path(args.summary)
    profile = "quick" if args.quick else "full"

    if args.onnx_only:
        onnx_path = export_shipped_onnx(out)
        card.write_text(render_card(load_checkpoint(out)[1].meta, out.name))
        print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB) and {card}")
        return 0

    if args.card_only:
        model, info = load_checkpoint(out)
        meta = dict(info.meta)
        recipe = meta.get("recipe", "paper")
        current = shipped_experiment(recipe, meta.get("profile", "full"))
        if info.experiment != dataclasses.replace(current, features=info.experiment.features):
            print(f"error: {out} was trained with another configuration than today's {recipe}-recipe "
                  f'studies.experiment("emodb", "amsnet", "paper", "{meta.get("profile", "full")}"), which the '
                  "measured accuracies and the card describe. Fix: retrain it (python -m scripts.train_shipped_model).",
                  file=sys.stderr)
            return 2
        if meta.get("profile") == "full" and meta.get("n_utterances") == meta.get("corpus_utterances"):
            meta.update(_accuracies(summary, recipe))
        if not isinstance(meta.get(TRAINING_DIGESTS), list) and meta.get("n_utterances") == meta.get("corpus_utterances"):
            # trained on the whole corpus: its files are EmoDB's, whose counts must still agree
            from amsnet_lib.data.corpora import load_corpus

            table = load_corpus("emodb", data_dir=args.data_dir, download=False if args.no_download else "auto")
            described = describe_training_data(table, info.classes)
            if (described["n_utterances"], described["class_counts"]) != (meta["n_utterances"], meta.get("class_counts")):
                print(f"error: the EmoDB found ({described['n_utterances']} utterances, {described['class_counts']}) is "
                      f"not the one {out} was trained on ({meta['n_utterances']}, {meta.get('class_counts')}); its "
                      "training files are not recorded. Fix: point --data-dir at that copy, or retrain.", file=sys.stderr)
                return 2
            meta[TRAINING_DIGESTS] = described[TRAINING_DIGESTS]
        save_checkpoint(out, model, info.experiment, info.classes, info.normaliser, meta)
        export_shipped_onnx(out)  # its metadata carries the card's figures
        card.write_text(render_card(meta, out.name))
        print(f"updated {out} meta, its ONNX form and {card}")
        return 0

    from amsnet_lib.data.corpora import load_corpus
    from amsnet_lib.data.features import extract_features
    from amsnet_lib.train.training import fit_final

    table = load_corpus("emodb", data_dir=args.data_dir, download=False if args.no_download else "auto")
    n_corpus = len(table)
    if args.limit:
        table = _subset(table, args.limit)
    exp = shipped_experiment(args.recipe, profile)
    if args.limit:
        # A handful of utterances per class: hold out half of them for validation so that the
        # stratified split still holds every class (smoke runs only; never the shipped model).
        exp = dataclasses.replace(exp, branch_train=dataclasses.replace(exp.branch_train, val_fraction=0.5),
                                  fusion_train=dataclasses.replace(exp.fusion_train, val_fraction=0.5),
                                  **({"frlm_train": dataclasses.replace(exp.frlm_train, val_fraction=0.5)}
                                     if exp.frlm_train is not None else {}))
    feats = extract_features(table, exp.features, cache_dir=args.cache_dir, n_jobs=args.jobs, progress=not args.quiet)
    train_feats = feats
    if exp.audio_augment != "none":  # the tuned URLM's speed-perturbed copies (its stage alone trains on them)
        from amsnet_lib.data.channels import augmented_features

        train_feats = augmented_features(feats, exp.audio_augment, feature_cache=args.cache_dir, progress=not args.quiet)
    t0 = _dt.datetime.now(_dt.timezone.utc)
    model, normaliser = fit_final(exp, train_feats, store=args.run_dir, device=args.device, progress=not args.quiet)
    seconds = (_dt.datetime.now(_dt.timezone.utc) - t0).total_seconds()
    full_data = len(table) == n_corpus
    # Cross-validated figures describe the shipped model only when it IS that configuration on
    # all the data; a quick or subset smoke model must not quote them.
    real = profile == "full" and full_data
    meta = {
        "data": f"EmoDB (Berlin Database of Emotional Speech): acted German, 10 speakers, 7 classes; "
                f"{len(table)} of {n_corpus} utterances used for training",
        "corpus": "emodb",
        "corpus_utterances": n_corpus,
        **describe_training_data(feats.table, feats.classes),  # counts, speakers, each file's digest
        "protocol": "trained on all given utterances (training.fit_final); a stratified 10 % validation split selects the epoch",
        "configuration": 'studies.experiment("emodb", "amsnet", "paper", "%s")' % profile
                         + (", studies.tuned" if args.recipe == "tuned" else ""),
        "recipe": args.recipe,
        "profile": profile,
        "date": t0.isoformat(timespec="seconds"),
        "training_seconds": round(seconds, 1),
        "amsnet_version": amsnet_lib.__version__,
        "git_commit": _git_commit(),
        **(_accuracies(summary, args.recipe) if real else
           {"loso_accuracy": "not applicable (smoke model)", "paper_protocol_accuracy": "not applicable (smoke model)"}),
        "features": config_to_dict(exp.features),
    }
    save_checkpoint(out, model, exp, feats.classes, normaliser, meta)
    export_shipped_onnx(out)
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(render_card(meta, out.name))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {card}")
    print(f"speaker-independent (LOSO) accuracy quoted: {_acc_text(meta['loso_accuracy']) if isinstance(meta['loso_accuracy'], dict) else meta['loso_accuracy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
