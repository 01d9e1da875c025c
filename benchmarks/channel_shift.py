"""EmoDB under channel shift: what unsupervised adaptation (``--adapt``) recovers on audio that is not EmoDB's.

There is one corpus on this machine, so the shift is built: a model is trained on five EmoDB
speakers (03 08 09 10 11) and tested on the other five (12 13 14 15 16), whose audio is first passed
through a channel change:

  clean        the test audio as recorded
  telephone    resampled to 8 kHz and back (soxr), 300-3400 Hz band-pass (scipy.signal Butterworth, order 4)
  gain-20dB    20 dB quieter
  snr20, snr10 white Gaussian noise at 20 dB and 10 dB SNR (numpy's seeded generator)
  eq-tilt      another microphone's response: a linear-phase FIR (scipy.signal.firwin2) falling 12 dB from
               100 Hz to 8 kHz, i.e. a dull microphone
  reverb       a room: convolution (scipy.signal.fftconvolve) with an exponentially decaying noise
               impulse response, RT60 0.5 s. No library on this machine makes room responses
               (audiomentations' RoomSimulator needs pyroomacoustics, and audiomentations itself needs
               soxr < 1 against the project's soxr 1.1.0 pin), so the decaying-noise model (the standard
               statistical model of late reverberation) is written here in three lines.

Every condition is scored without adaptation and with each ``--adapt`` mode (``corpus``: statistics of
all five test speakers' shifted audio; ``speaker``: of each speaker's), through the public API
(:func:`amsnet_lib.serve.evaluation.evaluate`). The labels are read only to score.

    python -m benchmarks.channel_shift                      # train (once, resumable), then every condition
    python -m benchmarks.channel_shift --model urlm         # another model of the paper
    python -m benchmarks.channel_shift --recipe tuned       # another training recipe (see _configure)
    python -m benchmarks.channel_shift --augment channels   # a model trained with channel augmentation

Writes results/tables/channel_shift[_<tag>].{csv,md} and results/figures/channel_shift[_<tag>].png. The
model and the derived audio go to ``--cache`` (default ``.cache/channel_shift``, never committed); every
trained model and every scored condition is kept there, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
from amsnet_lib.data.channels import CONDITIONS

TRAIN_SPEAKERS = ("03", "08", "09", "10", "11")
TEST_SPEAKERS = ("12", "13", "14", "15", "16")
#: ``--split validation``: model choices (augmentation) are made here, inside the training speakers:
#: four of them train, the fifth (11) is scored under every condition. The test speakers are not used.
SPLITS = {"test": (TRAIN_SPEAKERS, TEST_SPEAKERS), "validation": (TRAIN_SPEAKERS[:4], TRAIN_SPEAKERS[4:])}
ADAPT_MODES = ("none", "corpus", "speaker")
RECIPES = ("paper", "tuned")


def _configure(exp, recipe: str, profile: str = "full"):
    """``exp`` (``studies.experiment``'s full profile, the paper recipe) under ``recipe``: ``tuned`` is
    :func:`amsnet_lib.studies.tuned` (docs/RECIPE.md), the shipped model's recipe."""
    from amsnet_lib import studies

    if recipe not in RECIPES:
        raise SystemExit(f"error: unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    return exp if recipe == "paper" else studies.tuned(exp, quick=profile == "quick")


def load_split(cache_dir=None, split: str = "test"):
    """EmoDB's features and the positions of the split's training and scored speakers: ``(features, train, test)``."""
    import amsnet_lib as ams

    train, test = SPLITS[split]
    table = ams.load_corpus("emodb", download=False)
    feats = ams.extract_features(table, cache_dir=cache_dir, progress=True)
    spk = feats.table["speaker"].astype(str).to_numpy()
    return feats, np.flatnonzero(np.isin(spk, train)), np.flatnonzero(np.isin(spk, test))


def model_tag(model: str, recipe: str, augment: str, profile: str, split: str = "test") -> str:
    parts = [model] + [p for p in (recipe if recipe != "paper" else "", augment if augment != "none" else "",
                                   profile if profile != "full" else "", "val" if split == "validation" else "") if p]
    return "_".join(parts)


def train(out_dir: Path, model: str = "amsnet", recipe: str = "paper", augment: str = "none", profile: str = "full",
          run_dir=None, feature_cache=None, split: str = "test") -> Path:
    """Train ``model`` on the five training speakers (``training.fit_final``) and write its checkpoint.

    Resumable: the run store keeps every finished stage (and the resume point of an interrupted
    one); a checkpoint already written is reused.
    """
    import amsnet_lib as ams
    from amsnet_lib import studies
    from amsnet_lib.serve.checkpoint import describe_training_data, save_checkpoint

    path = out_dir / f"model_{model_tag(model, recipe, augment, profile, split)}.pt"
    speakers = SPLITS[split][0]
    feats, tr, _ = load_split(feature_cache, split)
    train_feats = feats.subset(tr)
    exp = studies.experiment("emodb", model, "paper", profile, features=train_feats.config,
                             variant=f"channel_shift train={'+'.join(speakers)}")
    exp = _configure(exp, recipe, profile)
    if augment != "none":
        exp = dataclasses.replace(exp, augment=augment)
    if path.is_file():
        if _trained_as(path, exp):
            return path
        # the recipe changed since this model was trained (its scores are keyed by the file's digest)
        print(f"{path.name}: trained with another configuration than {recipe}'s current one; training again")
    originals = train_feats  # what the checkpoint records as its training data (the copies derive from them)
    if exp.audio_augment != "none":  # --augment, or a stage of the recipe (the tuned URLM's speed copies)
        from amsnet_lib.data.channels import augmented_features

        train_feats = augmented_features(train_feats, exp.audio_augment, audio_dir=out_dir / "augmented",
                                         feature_cache=feature_cache)
    net, normaliser = ams.fit_final(exp, train_feats, store=run_dir)
    meta = {"data": f"EmoDB speakers {' '.join(speakers)} (benchmarks/channel_shift.py)", "recipe": recipe,
            "augment": augment, "profile": profile}
    meta.update(describe_training_data(originals.table, originals.classes))
    save_checkpoint(path, net, exp, originals.classes, normaliser, meta)
    return path


def _trained_as(path: Path, exp) -> bool:
    """Whether the checkpoint ``path`` holds a model of configuration ``exp``."""
    from amsnet_lib.serve.checkpoint import config_to_dict, read_checkpoint_info

    return config_to_dict(read_checkpoint_info(path).experiment) == config_to_dict(exp)


def checkpoint_digest(path: Path) -> str:
    """The first 12 hex digits of ``path``'s SHA-256 (:func:`amsnet_lib.serve.checkpoint.file_digest`): the
    scores of a model are kept under it, so a model trained again (another recipe) is scored again."""
    from amsnet_lib.serve.checkpoint import file_digest

    return file_digest(path)[:12]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="amsnet", choices=["amsnet", "urlm", "frlm", "concat"])
    p.add_argument("--recipe", default="paper", choices=RECIPES, help="training recipe (default the paper's; tuned: the shipped model's)")
    p.add_argument("--augment", default="none", choices=["none", "channels"],
                   help="training-time channel augmentation (amsnet_lib.data.channels)")
    p.add_argument("--split", default="test", choices=list(SPLITS),
                   help="test: train on speakers 03-11, score 12-16 (the benchmark); validation: train on 03 08 09 10, "
                        "score 11 (for choices such as --augment, never made on the test speakers)")
    p.add_argument("--profile", default="full", choices=["full", "quick"])
    p.add_argument("--cache", default=str(ROOT / ".cache" / "channel_shift"), help="models, derived audio, scores")
    p.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--train-only", action="store_true", help="train the model and stop")
    p.add_argument("--out", default=str(ROOT / "results"), help="results folder (tables/, figures/)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    ckpt = train(cache, args.model, args.recipe, args.augment, args.profile, args.run_dir, split=args.split)
    print(f"model: {ckpt}")
    if args.train_only:
        return 0
    tag = model_tag(args.model, args.recipe, args.augment, args.profile, args.split)
    return run_benchmark(ckpt, cache, Path(args.out), tag, args)


# --------------------------------------------------------------------------- channels


def _seed(name: str, condition: str) -> int:
    """A fixed seed per file and condition: the same derived audio on every run."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{condition}/{name}".encode()).digest()[:4], "little")


def derived_table(table, condition: str, audio_dir: Path, progress: bool = True):
    """``table`` with each file passed through ``condition``, written (once) under ``audio_dir/condition``."""
    import soundfile as sf
    from tqdm.auto import tqdm

    from amsnet_lib.atomic import atomic_path
    from amsnet_lib.data.channels import apply_channel
    from amsnet_lib.data.audio import load_audio

    if condition == "clean":
        return table
    out = table.copy()
    paths = []
    for p in tqdm(list(table["path"]), desc=f"audio {condition}", unit="file", disable=not progress):
        dst = audio_dir / condition / f"{Path(p).stem}.wav"
        if not dst.is_file():
            y = apply_channel(load_audio(p, sample_rate=16000), condition, 16000, _seed(Path(p).name, condition))
            with atomic_path(dst) as tmp:
                sf.write(tmp, y, 16000, subtype="FLOAT", format="WAV")
        paths.append(str(dst))
    out["path"] = paths
    return out


# --------------------------------------------------------------------------- scoring


def score(rec, feats, adapt: str, speakers=True) -> dict:
    """WA / UA (%) of the checkpoint on ``feats`` with ``adapt``; the labels are read only here, to score."""
    from amsnet_lib.serve.adapt import adapt_features
    from amsnet_lib.metrics import unweighted_accuracy, weighted_accuracy

    spk = feats.table["speaker"].astype(str).to_numpy() if adapt == "speaker" else None
    frames, spec = rec.per_utterance(feats.frames, feats.mask, feats.spec)  # a checkpoint's normalisation="utterance"
    f, s, groups = adapt_features(rec.info.normaliser, frames, feats.mask, spec, adapt, spk)
    proba = np.concatenate([rec.infer(f[k:k + 64], feats.mask[k:k + 64], s[k:k + 64], normalised=True)[0]
                            for k in range(0, len(f), 64)])
    classes = list(rec.classes)
    y = np.array([classes.index(feats.classes[i]) for i in feats.labels])
    pred = proba.argmax(1)
    return {"wa": 100 * weighted_accuracy(y, pred), "ua": 100 * unweighted_accuracy(y, pred, len(classes)), "groups": len(groups)}


def min_audio_curve(rec, feats, sizes=(1, 3, 10, 30), draws: int = 5) -> list[dict]:
    """UA when the statistics come from only n utterances (drawn at random, ``draws`` times), applied to all.

    ``corpus``: n utterances of the whole test set; ``speaker``: n of each speaker, for that speaker.
    """
    from amsnet_lib.serve.adapt import FeatureMoments, blend, normalise
    from amsnet_lib.metrics import unweighted_accuracy

    classes = list(rec.classes)
    y = np.array([classes.index(feats.classes[i]) for i in feats.labels])
    spk = feats.table["speaker"].astype(str).to_numpy()
    frames, spec = rec.per_utterance(feats.frames, feats.mask, feats.spec)  # a checkpoint's normalisation="utterance"
    rows = []
    for mode in ("corpus", "speaker"):
        groups = {"all": np.arange(len(feats))} if mode == "corpus" else {g: np.flatnonzero(spk == g) for g in np.unique(spk)}
        for n in sizes:
            uas = []
            for d in range(draws):
                rng = np.random.default_rng(1000 * n + d)
                f, s = np.empty_like(frames), np.empty_like(spec)
                for idx in groups.values():
                    pick = rng.choice(idx, size=min(n, len(idx)), replace=False)
                    m = FeatureMoments.empty(f.shape[-1], s.shape[1]).add(frames[pick], feats.mask[pick], spec[pick])
                    f[idx], s[idx] = normalise(blend(rec.info.normaliser, m), frames[idx], feats.mask[idx], spec[idx])
                proba = np.concatenate([rec.infer(f[k:k + 64], feats.mask[k:k + 64], s[k:k + 64], normalised=True)[0]
                                        for k in range(0, len(f), 64)])
                uas.append(100 * unweighted_accuracy(y, proba.argmax(1), len(classes)))
            rows.append({"adapt": mode, "n": n, "ua": float(np.mean(uas)), "ua_sd": float(np.std(uas))})
    return rows


def run_benchmark(ckpt, cache, out, tag, args) -> int:
    """Every condition without and with each adaptation; table and figure into ``out``."""
    import pandas as pd

    from amsnet_lib.atomic import atomic_write_text
    from amsnet_lib.data.features import extract_features
    from amsnet_lib.serve.predict import Recognizer
    from amsnet_lib.report.tables import write_table

    rec = Recognizer(ckpt, num_threads=args.threads)
    feats, _, te = load_split(None, args.split)
    train_speakers, test_speakers = SPLITS[args.split]
    test_table = feats.table.iloc[te].reset_index(drop=True)
    test_table.attrs = dict(feats.table.attrs)
    scores_dir = cache / "scores" / tag / checkpoint_digest(ckpt)
    rows, curves = [], []
    for condition in CONDITIONS:
        done = scores_dir / f"{condition}.json"
        if done.is_file():
            rec_ = json.loads(done.read_text())
        else:
            table = derived_table(test_table, condition, cache / "audio")
            table.attrs = dict(test_table.attrs)
            shifted = extract_features(table, rec.config, n_jobs=1)  # derived audio's features cached like the rest
            rec_ = {"condition": condition}
            for mode in ADAPT_MODES:
                r = score(rec, shifted, mode)
                rec_[f"UA {mode} (%)"], rec_[f"WA {mode} (%)"] = round(r["ua"], 2), round(r["wa"], 2)
            if condition in ("clean", "telephone"):
                rec_["min_audio"] = min_audio_curve(rec, shifted)
            atomic_write_text(done, json.dumps(rec_, indent=1))
        for c in rec_.pop("min_audio", []):
            curves.append({"condition": condition, **c})
        rows.append(rec_)
        print(f"{condition}: " + ", ".join(f"UA {m} {rec_[f'UA {m} (%)']:.2f}" for m in ADAPT_MODES), flush=True)
    table = pd.DataFrame(rows)
    table = table[["condition"] + [f"UA {m} (%)" for m in ADAPT_MODES] + [f"WA {m} (%)" for m in ADAPT_MODES]]
    n_test = len(te)
    command = "python -m benchmarks.channel_shift" + "".join(
        f" --{k} {v}" for k, v in (("model", args.model), ("recipe", args.recipe), ("augment", args.augment),
                                  ("profile", args.profile), ("split", args.split)) if v not in ("amsnet", "paper", "none", "full", "test"))
    stem = "channel_shift" + ("" if tag == "amsnet" else f"_{tag}")
    notes = [
        f"Regenerate: `{command}` (trains the model once into its --cache, resumable).",
        f"{args.model} ({args.recipe} recipe, profile {args.profile}, augmentation {args.augment}) trained on EmoDB speakers "
        f"{' '.join(train_speakers)} (training.fit_final, a 10 % validation split of them selects the epoch); tested on the "
        f"{n_test} utterances of speakers {' '.join(test_speakers)}, passed through each condition. Mean of one training seed.",
        "none: the training statistics (the checkpoint's normaliser); corpus: statistics of all the test audio of the "
        "condition; speaker: of each test speaker's; both blended with the training statistics by n / (n + 10), n the "
        "utterances (amsnet_lib.serve.adapt). No label is read by adaptation.",
        "Conditions: telephone = 8 kHz + 300-3400 Hz band-pass; gain-20dB; snr20 / snr10 = white noise; eq-tilt = FIR falling "
        "12 dB from 100 Hz to 8 kHz; reverb = decaying-noise room response, RT60 0.5 s (benchmarks/channel_shift.py).",
        "The test speakers chose nothing here: the model is selected on its own training speakers' validation split.",
    ]
    write_table(table, out / "tables" / stem, caption=f"EmoDB under channel shift: UA and WA (%) without and with --adapt", notes=notes)
    _figure(table, out / "figures" / f"{stem}.png", f"{args.model}: EmoDB speakers {' '.join(test_speakers)} under channel shift")
    if curves:
        c = pd.DataFrame(curves)
        wide = c.pivot_table(index="n", columns=["condition", "adapt"], values="ua").round(2)
        wide.columns = [f"UA {cond} {mode} (%)" for cond, mode in wide.columns]
        wide = wide.reset_index().rename(columns={"n": "utterances for the statistics (per group)"})
        for cond in ("clean", "telephone"):
            wide[f"UA {cond} none (%)"] = float(table.loc[table["condition"] == cond, "UA none (%)"].iloc[0])
        write_table(wide, out / "tables" / f"adapt_min_audio{'' if tag == 'amsnet' else '_' + tag}",
                    caption="How much audio adaptation needs: UA (%) when the statistics come from n utterances",
                    notes=[f"Regenerate: `{command}`.",
                           "n utterances drawn at random (5 draws, mean) from all test audio (corpus) or from each test "
                           "speaker (speaker); the statistics, blended with training's by n / (n + 10), standardise all of "
                           "that group's utterances. 'none' is the same for every n.",
                           ("Measured on the validation speaker, inside the training speakers: the minimum amount of audio "
                            "each --adapt mode asks for (amsnet_lib.serve.adapt.MIN_UTTERANCES) is read here." if args.split == "validation"
                            else "Measured on the test speakers of the benchmark: it documents how much audio a user needs; the "
                            "minimum each --adapt mode asks for is chosen on the validation speaker (adapt_min_audio_*_val), "
                            "and the blending prior n0 = 10 was fixed beforehand.")])
    print(f"table: {out / 'tables' / stem}.md")
    if args.split == "validation":
        augmentation_table(cache, out, args)
    return 0


def augmentation_table(cache: Path, out: Path, args) -> None:
    """Without against with training augmentation, on the validation speaker (when both are scored).

    Written as ``results/tables/augmentation_validation_<model>.{csv,md}``: UA per condition and
    adaptation, and the mean over the six shifted conditions. The test speakers are not involved.
    """
    import pandas as pd

    from amsnet_lib.report.tables import write_table

    tags = {a: model_tag(args.model, args.recipe, a, args.profile, "validation") for a in ("none", "channels")}
    scores = {}
    for aug, tag in tags.items():
        model = cache / f"model_{tag}.pt"
        files = [cache / "scores" / tag / (checkpoint_digest(model) if model.is_file() else "-") / f"{c}.json"
                 for c in CONDITIONS]
        if not all(f.is_file() for f in files):
            return  # the other one has not been scored yet
        scores[aug] = {c: json.loads(f.read_text()) for c, f in zip(CONDITIONS, files)}
    rows = []
    for condition in CONDITIONS + ("mean of the 6 shifts",):
        row = {"condition": condition}
        for aug in ("none", "channels"):
            for mode in ADAPT_MODES:
                key = f"UA {mode} (%)"
                vals = ([scores[aug][c][key] for c in CONDITIONS if c != "clean"] if condition.startswith("mean")
                        else [scores[aug][condition][key]])
                row[f"UA adapt {mode}, augment {aug} (%)"] = round(float(np.mean(vals)), 2)
        rows.append(row)
    command = f"python -m benchmarks.channel_shift --model {args.model} --split validation [--augment channels]"
    train, val = SPLITS["validation"]
    write_table(pd.DataFrame(rows), out / "tables" / f"augmentation_validation_{args.model}",
                caption="Training-time channel augmentation, measured on a validation speaker: UA (%)",
                notes=[f"Regenerate: `{command}` (both; the second writes this table).",
                       f"{args.model} trained on EmoDB speakers {' '.join(train)} without and with `--augment channels` "
                       f"(one random-channel copy of every training utterance, amsnet_lib.data.channels.random_channel); scored on "
                       f"speaker {' '.join(val)} under each condition. The test speakers of the benchmark are not used. One "
                       "seed, one speaker (about 55 utterances): a small sample. With one speaker, corpus and speaker "
                       "adaptation use the same statistics.",
                       "The random channels' ranges overlap the fixed conditions (noise, tilt, room), so gains under shift "
                       "are optimistic for channels unlike them."])
    print(f"table: {out / 'tables' / f'augmentation_validation_{args.model}'}.md")


def _figure(table, path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    from amsnet_lib.report.plotting import save_figure

    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    x = np.arange(len(table))
    for k, mode in enumerate(ADAPT_MODES):
        ax.bar(x + (k - 1) * 0.27, table[f"UA {mode} (%)"], width=0.27, label=f"--adapt {mode}")
    ax.set_xticks(x, table["condition"])
    ax.set_ylabel("UA (%)")
    ax.axhline(100 / 7, color="grey", lw=0.8, ls=":", label="chance (7 classes)")
    ax.legend(fontsize=8, ncol=4, loc="upper right")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=10)
    save_figure(fig, path)


if __name__ == "__main__":
    raise SystemExit(main())
