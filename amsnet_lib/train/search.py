"""Validation-only training for recipe search: what a trial may look at, and nothing else.

A search trial trains a configuration on each fold's fit part and scores it on the fold's
validation split (drawn from the training part, :func:`amsnet_lib.data.protocols.validation_split`).
Unlike :func:`amsnet_lib.train.training.run_experiment`, nothing here evaluates a test fold: a trial
never computes a test metric, so choosing among trials cannot select on test data. The test folds
are read once, by ``run_experiment``, for the configuration the search chose.

Trial folds are stored apart from the run store of results, under ``<root>/<kind>-<key>/seed<s>/<fold>/``
(``val.json`` written last, the branch weights beside it for fusion trials), keyed like the run
store, so a resumed or repeated trial trains nothing twice.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
import torch

from ..atomic import atomic_write_bytes, atomic_write_text
from ..config import ExperimentConfig
from ..data.features import Features
from ..data.protocols import Fold, make_folds
from .devices import _training_device
from .runstore import (BRANCHES, RunStore, _finetune_identity, branch_key, experiment_fold_dir, fusion_dirs,
                       n_utterances)
from ..data.splits import stage_fold_data
from .training import (
    SINGLE_STAGE,
    _finetune,
    branch_model,
    evaluate_split,
    fit_late_weight,
    frozen_fusion_model,
    fusion_embeddings,
    seed_everything,
    train_fusion_head,
    train_model,
)

__all__ = ["TrialUnit", "ValidationScore", "table_name", "validation_score"]


@dataclass
class ValidationScore:
    """A configuration's validation figures, per fold and their mean (WA/UA in %)."""

    folds: pd.DataFrame

    @property
    def ua(self) -> float:
        return round(100 * float(self.folds["val_ua"].mean()), 2)

    @property
    def wa(self) -> float:
        return round(100 * float(self.folds["val_wa"].mean()), 2)

    @property
    def loss(self) -> float:
        return round(float(self.folds["val_loss"].mean()), 4)

    @property
    def seconds(self) -> float:
        return round(float(self.folds["seconds"].sum()), 1)


def _save(d: Path, record: dict, state: dict) -> None:
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(d / "model.pt", buf.getvalue())
    atomic_write_text(d / "val.json", json.dumps(record, indent=1))
    (d / "partial.pt").unlink(missing_ok=True)


def _record(model, fd, res, n_classes: int, seed: int, fold: str) -> dict:
    ev = evaluate_split(model, fd.val, n_classes)
    return {"seed": seed, "fold": fold, "val_loss": ev["loss"], "val_wa": ev["wa"], "val_ua": ev["ua"],
            "best_epoch": res.best_epoch if res else None, "seconds": res.seconds if res else 0.0}


def _unfinished(d: Path, exp: ExperimentConfig, stage: str, features: Features, fold, seed: int, device):
    """The fold's data (validation split drawn, normalised), seeded, when ``d`` holds no finished trial
    fold; None when it does (it is read back, not trained again)."""
    if (d / "val.json").is_file():
        return None
    fd = stage_fold_data(exp, stage, features, fold, seed, device)
    seed_everything(seed)
    return fd


def _branch_fold(name: str, exp: ExperimentConfig, features: Features, fold, seed: int, root: Path, device,
                 progress: bool, weights_from: RunStore | None = None) -> Path:
    key = branch_key(name, exp, n_utterances(features, exp))
    d = RunStore(root).fold_dir(name, key, seed, fold.name)
    fd = _unfinished(d, exp, name, features, fold, seed, device)
    if fd is None:
        return d
    n_classes = len(features.classes)
    model = branch_model(name, exp, n_classes).to(device)
    trained = weights_from.fold_dir(name, key, seed, fold.name) if weights_from is not None else None
    if trained is not None and (trained / "model.pt").is_file():
        # the run store's fold: the same key, seed and fit / validation split, so the same training;
        # only its weights are read (never its metrics, which hold the test fold's)
        model.load_state_dict(weights_from.load_state(trained, device))
        record = _record(model, fd, None, n_classes, seed, fold.name)
        _save(d, {**record, "weights_from": trained.relative_to(weights_from.root).as_posix()}, model.state_dict())
        return d
    res = train_model(model, fd.fit, fd.val, exp.stage_train(name), n_classes, seed=seed, progress=progress,
                      desc=f"{name} {fold.name} (validation)", resume_path=d / "partial.pt")
    _save(d, _record(model, fd, res, n_classes, seed, fold.name), model.state_dict())
    return d


def _fusion_fold(exp: ExperimentConfig, features: Features, fold, seed: int, root: Path, device, progress: bool,
                 weights_from: RunStore | None = None) -> Path:
    """A fusion trial fold, built as the engine builds a fusion fold (the same keys, frozen model and
    stages), its branches trial folds of the same store; scored on validation only."""
    for b in BRANCHES:
        _branch_fold(b, exp, features, fold, seed, root, device, progress, weights_from)
    store = RunStore(root)  # the search's fold store has the run store's layout
    d, branch_dirs = fusion_dirs(exp, n_utterances(features, exp), seed, fold.name, store)
    fd = _unfinished(d, exp, "fusion", features, fold, seed, device)
    if fd is None:
        return d
    n_classes = len(features.classes)
    model = frozen_fusion_model(exp, n_classes, branch_dirs, store, device, seed)
    emb = fusion_embeddings(model, fd)
    if exp.model == "late":
        res = fit_late_weight(model.head, emb["val"], n_classes, exp.fusion_train.monitor, exp.late_weights, fit=emb["fit"])
    else:
        res = train_fusion_head(model, emb, exp, n_classes, seed, progress=progress, desc=f"{exp.model} {fold.name} (validation)")
    finetuned = bool(_finetune_identity(exp))
    if finetuned:
        res = _finetune(model, fd, exp, n_classes, seed, progress, desc=f"{exp.model} {fold.name} fine-tune (validation)")
    _save(d, _record(model, fd, res, n_classes, seed, fold.name), model.state_dict() if finetuned else model.head.state_dict())
    return d


#: Inside a trial's scratch store: the run store's weights it reuses (no ``<kind>-<key>`` folder is named so).
_DONOR = "_donor"


@dataclass(frozen=True)
class TrialUnit:
    """One trial fold of a search, an engine unit (:mod:`amsnet_lib.train.units`): ``exp`` trained on
    ``fold``'s fit part and scored on its validation split, into the search's fold store.

    A fusion trial trains (or finds) its branch trial folds in the same store first.
    ``weights_from``: a run store whose branch folds of the same key, seed and fold are taken,
    weights only, instead of training them again.
    """

    exp: ExperimentConfig
    fold: Fold
    seed: int
    weights_from: Path | None = None

    role: ClassVar[str] = "search trial fold"
    done_marker: ClassVar[str] = "val.json"

    @property
    def kind(self) -> str:
        return self.exp.model

    def _branches(self, store: RunStore, table) -> dict[str, Path]:
        n = n_utterances(table, self.exp)
        names = [self.exp.model] if self.exp.model in SINGLE_STAGE else list(BRANCHES)
        return {b: store.fold_dir(b, branch_key(b, self.exp, n), self.seed, self.fold.name) for b in names}

    def folders(self, store: RunStore, table) -> list[Path]:
        """Its own trial fold; a fusion trial's branch trial folds after it."""
        own = experiment_fold_dir(self.exp, n_utterances(table, self.exp), self.seed, self.fold.name, store)
        return [own] + [d for d in self._branches(store, table).values() if d != own]

    def done(self, store: RunStore, table) -> bool:
        return (self.folders(store, table)[0] / self.done_marker).is_file()

    def inputs(self, store: RunStore, table) -> dict[str, bytes]:
        """Its finished branch trial folds (``val.json``, ``model.pt``), and the run store's weights
        (``model.pt``, under ``_donor/``) of the branch folds it may reuse."""
        donor = RunStore(self.weights_from) if self.weights_from is not None else None
        out = {}
        for b, d in self._branches(store, table).items():
            if (d / "val.json").is_file():
                out.update({(d / f).relative_to(store.root).as_posix(): (d / f).read_bytes()
                            for f in ("val.json", "model.pt") if (d / f).is_file()})
            elif donor is not None:
                w = donor.root / d.relative_to(store.root) / "model.pt"  # the same key, seed and fold there
                if w.is_file():
                    out[f"{_DONOR}/{w.relative_to(donor.root).as_posix()}"] = w.read_bytes()
        return out

    def in_scratch(self, root: Path) -> "TrialUnit":
        return dataclasses.replace(self, weights_from=root / _DONOR) if self.weights_from is not None else self

    def train(self, features: Features, store: RunStore, device, progress: bool = False) -> Path:
        """Train (or read back) this trial fold in ``store``; returns its folder."""
        donor = RunStore(self.weights_from) if self.weights_from is not None else None
        if self.exp.model in SINGLE_STAGE:
            return _branch_fold(self.exp.model, self.exp, features, self.fold, self.seed, store.root, device,
                                progress, donor)
        return _fusion_fold(self.exp, features, self.fold, self.seed, store.root, device, progress, donor)


def validation_score(exp: ExperimentConfig, features: Features, root: str | os.PathLike, *, device=None,
                     progress: bool = True, folds: list[str] | None = None,
                     weights_from: str | os.PathLike | None = None, engine=None) -> ValidationScore:
    """Train ``exp`` on every fold's fit part and score it on the fold's validation split.

    Args:
        exp: any model of :data:`~amsnet_lib.config.MODELS`; fusion models train (or find) their
            branches the same way.
        features: the corpus' features.
        root: the search's fold store (not the run store of results).
        device: default CUDA when available.
        folds: only these folds (default: all of ``exp.protocol``).
        weights_from: a run store whose branch folds (same key, seed and fold) are taken, weights
            only, instead of training them again: they were trained on the same fit part with the
            same validation split. Their metrics files (which hold test figures) are not read.
        engine: an :class:`~amsnet_lib.train.engine.EngineConfig`: the unfinished folds run side by side as
            Ray tasks (a local Ray, or the cluster at its address), each returning its files to this
            process, which writes them into ``root``; None or ``serial``: one after another here.
            Both give the same figures for the same threads per training.

    Returns:
        The validation loss, WA and UA at the epoch each fold kept (the same validation split
        chose that epoch, as in every stage of the engine: the figures are optimistic in absolute
        terms, alike for every configuration compared). No test fold is evaluated.
    """
    store = RunStore(root)
    all_folds = make_folds(features.table, exp.protocol, n_folds=exp.n_folds, split_seed=exp.split_seed,
                           split_file=exp.split_file)
    chosen = [f for f in all_folds if folds is None or f.name in folds]
    donor = Path(weights_from) if weights_from is not None else None
    units = [TrialUnit(exp, fold, seed, donor) for seed in exp.seeds for fold in chosen]
    if engine is not None and not engine.serial:
        from .engine import run_units

        run_units(units, features, store, device=device, engine=engine, progress=progress,
                  desc=f"{exp.model} trial folds")
    device = _training_device(device)
    # each finished trial fold is read back here; without an engine, each trains here first
    rows = [json.loads((u.train(features, store, device, progress) / "val.json").read_text()) for u in units]
    return ValidationScore(pd.DataFrame(rows))


# --------------------------------------------------------------------------- the recipe search

#: The search space of each stage (categorical, so every value is a documented, countable choice):
#: components of the tuned recipe (:func:`amsnet_lib.studies.tuned`) and the values tried.
SPACES: dict[str, dict[str, tuple]] = {
    "frlm": {"lr": (3e-4, 1e-3, 3e-3), "frame_stack": (2, 3, 4), "time_mask": (0.0, 0.1, 0.2, 0.3),
             "freq_mask": (0.0, 0.1, 0.2), "noise_std": (0.0, 0.05, 0.1, 0.2), "mixup": (0.0, 0.2, 0.4),
             "label_smoothing": (0.0, 0.1), "epochs": (40, 60, 80)},
    "urlm": {"lr": (3e-4, 1e-3, 3e-3), "time_mask": (0.0, 0.1, 0.2, 0.3), "freq_mask": (0.0, 0.1, 0.15, 0.25),
             "noise_std": (0.0, 0.05, 0.1, 0.2), "mixup": (0.0, 0.2, 0.4), "label_smoothing": (0.0, 0.1),
             "epochs": (40, 60, 80)},
    # over the branches at the recipe's chosen values: the head's mixup of embeddings, and stage 3
    # (end-to-end fine-tuning, FINETUNE_ON) or none; every combination is tried (grid)
    "fusion": {"head_mixup": (0.0, 0.2), "finetune": (False, True)},
}

#: Stage 3 when the fusion search turns it on: the whole model at a tenth of the branches' peak
#: learning rate, with their augmentation, for a short budget (ExperimentConfig.finetune).
FINETUNE_ON = {"lr": 1e-4, "epochs": 15, "warmup": 0.1}
#: The model each stage's trials train.
STAGE_MODELS = {"frlm": "frlm", "urlm": "urlm", "fusion": "amsnet"}


def trial_components(stage: str, params: dict) -> dict:
    """The :func:`amsnet_lib.studies.tuned` components of a trial's ``params`` for ``stage``."""
    if stage == "fusion":
        return {"fusion": {"mixup": params["head_mixup"]}, "finetune": FINETUNE_ON if params["finetune"] else None}
    train = {k: v for k, v in params.items() if k != "frame_stack"}
    if stage == "frlm":
        return {"frlm": train, **({"frame_stack": params["frame_stack"]} if "frame_stack" in params else {})}
    return {"branch": train}


def recipe_augment(stage: str, corpus: str = "emodb", protocol: str = "paper", profile: str = "full") -> str:
    """The audio augmentation the tuned recipe's own configuration of ``stage`` trains with (its
    ``TrainConfig.augment``; ``none`` for FRLM, ``speed`` for URLM and AMSNet's fusion over it)."""
    from .. import studies

    return studies.tuned(studies.experiment(corpus, STAGE_MODELS[stage], protocol, profile),
                         quick=profile == "quick").audio_augment


def study_name(stage: str, corpus: str = "emodb", protocol: str = "paper", profile: str = "full",
               augment: str = "none", validation: str | None = None) -> str:
    """The Optuna study (journal folder) of a search: ``<corpus>-<protocol>-<stage>``, then ``-<augment>``
    for a search with ``--augment``, or ``-with-<kind>`` when the recipe's own stage trains with audio
    augmentation (:func:`recipe_augment`), then ``-<validation>-validation`` when the validation split is
    drawn otherwise than the protocol's default: trials scored on other data never share a journal."""
    from .. import studies

    own = recipe_augment(stage, corpus, protocol, profile)
    suffix = f"-{augment}" if augment != "none" else (f"-with-{own}" if own != "none" else "")
    if studies.validation_override(corpus, protocol, validation):
        suffix += f"-{validation}-validation"
    return f"{corpus}-{protocol}-{stage}{suffix}"


def table_name(stage: str, corpus: str = "emodb", protocol: str = "paper", profile: str = "full",
               augment: str = "none", validation: str | None = None, own: str | None = None) -> str:
    """The trial table ``amsnet search`` writes (``results/tables/<name>.{csv,md}``), named as its journal
    (:func:`study_name`): ``recipe_search_<corpus>_<stage>``, then ``_<augment>`` for a search with
    ``--augment`` or ``_with_<own>`` when the recipe's stage trains with audio copies (``own``, default
    :func:`recipe_augment`), ``_<protocol>`` for folds other than the paper's, and ``_<validation>_validation``
    for a validation split other than the protocol's own."""
    from .. import studies

    own = recipe_augment(stage, corpus, protocol, profile) if own is None else own
    kind = f"_{augment}" if augment != "none" else (f"_with_{own}" if own != "none" else "")
    v = studies.validation_override(corpus, protocol, validation)
    return (f"recipe_search_{corpus}_{stage}{kind}" + (f"_{protocol}" if protocol != "paper" else "")
            + (f"_{v}_validation" if v else ""))


def run_search(stage: str, features: Features, root: str | os.PathLike, *, trials: int, corpus: str = "emodb",
               protocol: str = "paper", profile: str = "full", seed: int = 0, device=None, progress: bool = True,
               baseline: dict | None = None, weights_from: str | os.PathLike | None = None, engine=None,
               augment: str = "none", validation: str | None = None) -> pd.DataFrame:
    """A bounded, resumable Optuna search (TPE sampler) of the tuned recipe for one branch stage.

    Each trial is a :func:`validation_score` of the stage under :data:`SPACES`' values, maximising
    the mean validation UA over the protocol's folds (UA, not loss: label smoothing, a searched
    component, changes what the loss measures). Trials and their figures live in an Optuna journal
    (``<root>/<study>/journal.log``) beside their folds, so a killed search resumes: finished trials
    are kept, a trial that was running is tried again with the same values (its finished folds are
    read back, not retrained). No trial evaluates a test fold.

    Args:
        stage: ``frlm``, ``urlm`` or ``fusion`` (AMSNet's head and fine-tuning, over branches at the
            recipe's current values; a grid of every combination).
        trials: total finished trials wanted (those already in the journal count).
        baseline: the first trial's values (default: the recipe's current ones), so the search
            starts from what it is to improve on.
        weights_from: a run store whose finished branch folds are reused (:func:`validation_score`).
        engine: where a trial's folds train (:func:`validation_score`); trials run one after another,
            each one's folds side by side.
        augment: every trial trains with this audio-level augmentation (``ExperimentConfig.augment``;
            ``features`` must hold its copies, :func:`amsnet_lib.data.channels.augmented_features`): a
            search of its own (journal ``<corpus>-<protocol>-<stage>-<augment>``), whose trial 0,
            the recipe's current values, measures the augmentation alone. Folds are the originals'.
        validation: how each fold's validation split is drawn (``ExperimentConfig.validation``; default
            the protocol's, :func:`amsnet_lib.studies.validation_for`): ``speaker`` holds whole training
            speakers out, so that a search under ``loso`` chooses for speakers it has not heard (a journal
            of its own).

    Returns:
        One row per finished trial: number, values, val_ua, val_wa, val_loss, seconds.
    """
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from .. import studies

    if stage not in SPACES:
        raise ValueError(f"stage must be one of {sorted(SPACES)}, got {stage!r}")
    space = SPACES[stage]
    root = Path(root)
    name = study_name(stage, corpus, protocol, profile, augment, validation)
    chosen = {} if validation is None else {"validation": validation}  # experiment() defaults to the protocol's
    if augment != "none" and "source" not in features.table.columns:
        raise ValueError(f"augment={augment!r} but the features hold no augmented copies: "
                         "pass the features amsnet_lib.data.channels.augmented_features made for it")
    (root / name).mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(root / name / "journal.log")))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    # A resumed search must not draw its predecessors' values again: TPE's random start-up draws
    # come from the sampler's seed, so each process seeds it past the trials the journal holds (the
    # grid sampler reads the visited points from the journal itself).
    study.sampler = (optuna.samplers.GridSampler({k: list(v) for k, v in space.items()}, seed=seed) if stage == "fusion"
                     else optuna.samplers.TPESampler(seed=seed + len(study.trials), n_startup_trials=4))
    model = STAGE_MODELS[stage]
    states = optuna.trial.TrialState
    for t in study.get_trials(states=(states.RUNNING,)):
        # interrupted: fail it and run its values again (its finished folds are on disk)
        study._storage.set_trial_state_values(t._trial_id, states.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
    if not study.trials and stage != "fusion":  # a grid tries the current values among the rest
        base = studies.tuned(studies.experiment(corpus, model, protocol, profile, **chosen), quick=profile == "quick")
        current = {"frame_stack": base.frlm.frame_stack, **dataclasses.asdict(base.stage_train(stage)),
                   "head_mixup": base.fusion_train.mixup, "finetune": base.finetune is not None}
        start = baseline or current
        study.enqueue_trial({k: start[k] for k in space if start.get(k) in space[k]})

    def objective(trial) -> float:
        params = {k: trial.suggest_categorical(k, list(v)) for k, v in space.items()}
        exp = studies.tuned(studies.experiment(corpus, model, protocol, profile, **chosen), quick=profile == "quick",
                            **trial_components(stage, params))
        exp = dataclasses.replace(exp, augment=augment)
        score = validation_score(exp, features, root / "folds", device=device, progress=progress,
                                 weights_from=weights_from, engine=engine)
        trial.set_user_attr("val_wa", score.wa)
        trial.set_user_attr("val_loss", score.loss)
        trial.set_user_attr("seconds", score.seconds)
        trial.set_user_attr("val_ua_per_fold", [round(100 * v, 2) for v in score.folds["val_ua"]])
        return score.ua

    done = len(study.get_trials(states=(states.COMPLETE,)))
    if done < trials:
        study.optimize(objective, n_trials=trials - done, show_progress_bar=progress)
    return search_table(study)


def search_table(study) -> pd.DataFrame:
    """Finished trials of an Optuna study as a table, best first."""
    import optuna

    rows = []
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        rows.append({"trial": t.number, **t.params, "val_ua": t.value, "val_wa": t.user_attrs.get("val_wa"),
                     "val_loss": t.user_attrs.get("val_loss"), "seconds": t.user_attrs.get("seconds")})
    out = pd.DataFrame(rows)
    return out.sort_values(["val_ua", "val_wa"], ascending=False, kind="stable").reset_index(drop=True) if len(out) else out
