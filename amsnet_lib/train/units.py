"""The units of a suite: every training an experiment list needs, each exactly once.

A stage-1 unit trains a branch (FRLM, URLM) or early fusion on one fold and seed; a fusion unit
trains one fusion head over its branch folds. Experiments that share a run key share its units,
as the run store shares its folds. :mod:`amsnet_lib.train.engine` runs them as Ray tasks.

What the engine asks of a unit (a search's trial fold,
:class:`amsnet_lib.train.search.TrialUnit`, is one too):

- ``kind``, ``exp``, ``fold``, ``seed``; ``role``: what it is, in a failure's message;
- ``folders(store, table)``: the run-store folders it writes, its own first (``table``: the corpus table);
- ``done_marker``: the file that, written last in its own folder, marks it finished;
- ``done(store, table)``: nothing to train;
- ``inputs(store, table)``: the files it stands on, ``{path relative to the store: bytes}``;
- ``in_scratch(root)``: the unit as it runs in a scratch store at ``root`` that holds its inputs;
- ``train(features, store, device, progress)``: train into ``store``; returns its own folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from ..config import CLASSIC_MODELS, ExperimentConfig
from ..data.features import Features
from ..data.protocols import Fold, make_folds
from .runstore import BRANCHES, RunStore, _stage1_done, branch_key, fusion_dirs, n_utterances
from .training import SINGLE_STAGE, _run_fusion, _run_single_stage


@dataclass(frozen=True)
class Stage1Unit:
    """One stage-1 training: a branch (or early fusion) on one fold and seed.

    ``need_weights``: a fusion experiment will load its weights (a finished fold kept without
    ``model.pt``, as in the committed run store, is then trained again).
    """

    kind: str
    key: str
    exp: ExperimentConfig
    fold: Fold
    seed: int
    need_weights: bool

    role: ClassVar[str] = "stage-1 training"
    done_marker: ClassVar[str] = "metrics.json"

    def folders(self, store: RunStore, table: pd.DataFrame) -> list[Path]:
        return [store.fold_dir(self.kind, self.key, self.seed, self.fold.name)]

    def done(self, store: RunStore, table: pd.DataFrame) -> bool:
        return _stage1_done(store, self.folders(store, table)[0], self.need_weights)

    def inputs(self, store: RunStore, table: pd.DataFrame) -> dict[str, bytes]:
        return {}

    def in_scratch(self, root: Path) -> "Stage1Unit":
        return self

    def train(self, features: Features, store: RunStore, device, progress: bool = False) -> Path:
        """Train this unit into ``store`` (finished folds are kept); returns its fold directory."""
        return _run_single_stage(self.kind, self.exp, features, self.fold, self.seed, store, device, progress,
                                 need_weights=self.need_weights)


def stage1_units(exps, table: pd.DataFrame, store: RunStore | None = None) -> list[Stage1Unit]:
    """Every stage-1 training the experiments ``exps`` need, each once.

    Experiments that share a branch (same run key: e.g. every SE ratio shares FRLM) share its
    trainings, as the run store does. ``table`` is the corpus table: its size is part of every
    run key, its folds are the protocols'. With ``store``, a branch fold needs its weights only
    while a fusion fold standing on it is unfinished (the committed store keeps finished fusion
    folds, not branch weights).
    """
    units: dict[tuple, Stage1Unit] = {}
    for exp in exps:
        if exp.model in CLASSIC_MODELS:  # no network: run_experiment fits them in seconds, in process
            continue
        fusion = exp.model not in SINGLE_STAGE
        keys = {kind: branch_key(kind, exp, n_utterances(table, exp)) for kind in (BRANCHES if fusion else (exp.model,))}
        for seed, fold in _seed_folds(exp, table):
            need = fusion and (store is None or not store.done(fusion_dirs(exp, n_utterances(table, exp), seed, fold.name, store)[0]))
            for kind, key in keys.items():
                old = units.get((kind, key, seed, fold.name))
                units[(kind, key, seed, fold.name)] = Stage1Unit(kind, key, exp, fold, seed, need or bool(old and old.need_weights))
    return list(units.values())


def _seed_folds(exp: ExperimentConfig, table: pd.DataFrame) -> list[tuple[int, Fold]]:
    """Every (seed, fold) ``exp`` trains on the corpus ``table``."""
    folds = make_folds(table, exp.protocol, n_folds=exp.n_folds, split_seed=exp.split_seed, split_file=exp.split_file)
    return [(seed, fold) for seed in exp.seeds for fold in folds]


@dataclass(frozen=True)
class FusionUnit:
    """One fusion-head training (stage 2): ``exp`` (AMSNet, concatenation or late fusion) on one fold and seed."""

    exp: ExperimentConfig
    fold: Fold
    seed: int

    role: ClassVar[str] = "fusion head"
    done_marker: ClassVar[str] = "metrics.json"

    @property
    def kind(self) -> str:
        return self.exp.model

    def folders(self, store: RunStore, table: pd.DataFrame) -> list[Path]:
        return [fusion_dirs(self.exp, n_utterances(table, self.exp), self.seed, self.fold.name, store)[0]]

    def branch_folders(self, store: RunStore, table: pd.DataFrame) -> dict[str, Path]:
        """The branch folds this head loads, by branch."""
        return fusion_dirs(self.exp, n_utterances(table, self.exp), self.seed, self.fold.name, store)[1]

    def done(self, store: RunStore, table: pd.DataFrame) -> bool:
        return store.done(self.folders(store, table)[0])

    def branches_ready(self, store: RunStore, table: pd.DataFrame) -> bool:
        """Both branch folds finished, with their weights."""
        return all(_stage1_done(store, d, need_weights=True) for d in self.branch_folders(store, table).values())

    def inputs(self, store: RunStore, table: pd.DataFrame) -> dict[str, bytes]:
        """The branch folds' files the head loads (``metrics.json`` and ``model.pt`` of each)."""
        return {(d / f).relative_to(store.root).as_posix(): (d / f).read_bytes()
                for d in self.branch_folders(store, table).values() for f in ("metrics.json", "model.pt")
                if (d / f).is_file()}

    def in_scratch(self, root: Path) -> "FusionUnit":
        return self

    def train(self, features: Features, store: RunStore, device, progress: bool = False) -> Path:
        """Train this head into ``store`` over its branch folds there (trained first if absent)."""
        return _run_fusion(self.exp, features, self.fold, self.seed, store, device, progress)


def fusion_units(exps, table: pd.DataFrame, store: RunStore | None = None) -> list[FusionUnit]:
    """Every fusion-head training the experiments ``exps`` need, each once (studies share
    configurations: the paper's AMSNet is in the ablations and in three studies). ``table`` as for
    :func:`stage1_units`; with ``store``, only the folds it has not finished."""
    paths = store if store is not None else RunStore(".")  # without one, only to name each head (its identity)
    units: dict[Path, FusionUnit] = {}
    for exp in exps:
        if exp.model in SINGLE_STAGE or exp.model in CLASSIC_MODELS:
            continue
        for seed, fold in _seed_folds(exp, table):
            d = fusion_dirs(exp, n_utterances(table, exp), seed, fold.name, paths)[0]
            if store is None or not store.done(d):
                units.setdefault(d, FusionUnit(exp, fold, seed))
    return list(units.values())

