"""The run store: finished fold runs on disk, under keys that hash everything that decides them.

``<root>/<kind>-<key>/seed<s>/<fold>/``: a key is the first 12 hex digits of the SHA-256 of the
JSON of the configuration values that determine a run's weights (:func:`amsnet_lib.config.identity`),
so two experiments that share a branch share its folds, and a rerun finds its finished folds.
Each experiment folder's ``config.json`` says what its key stands for. Changing what goes into a
key orphans every committed run: the identities below add a field only when it is not the default.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path

import pandas as pd
import torch

from ..atomic import atomic_write_bytes, atomic_write_text
from ..config import ExperimentConfig, identity
from ..paths import default_run_dir
from ..studies import validation_override
from ..data.protocols import original_rows

BRANCHES = ("frlm", "urlm")
SINGLE_STAGE = ("frlm", "urlm", "early")  # trained in one stage; the others fuse frozen branches



def _plain(o):
    """JSON form of a configuration dataclass (:func:`amsnet_lib.config.identity`; anything else: its str)."""
    return identity(o) if dataclasses.is_dataclass(o) else str(o)


def _key(*parts) -> str:
    payload = json.dumps(parts, sort_keys=True, default=_plain)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


class RunStore:
    """Directory of finished fold runs: ``<root>/<kind>-<key>/seed<s>/<fold>/``.

    Each fold directory holds ``model.pt``, ``curves.csv``, ``predictions.csv`` and, written
    last, ``metrics.json``: a fold is finished exactly when its ``metrics.json`` exists. A fusion
    fold's ``model.pt`` holds the fusion head only; the experiment's ``config.json`` names its
    branch runs (:func:`amsnet_lib.train.training.load_fold_model` puts them together).
    While a fold trains, ``partial.pt`` holds its resume point (see :func:`amsnet_lib.train.training.train_model`).
    All files are written atomically.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_run_dir()

    def fold_dir(self, kind: str, key: str, seed: int, fold: str) -> Path:
        return self.root / f"{kind}-{key}" / f"seed{seed}" / fold

    def done(self, d: Path) -> bool:
        return (d / "metrics.json").is_file()

    def save(self, d: Path, *, metrics: dict, curves: pd.DataFrame, predictions: pd.DataFrame, state: dict | None):
        if state is not None:
            buf = io.BytesIO()
            torch.save(state, buf)
            atomic_write_bytes(d / "model.pt", buf.getvalue())
        atomic_write_text(d / "curves.csv", curves.to_csv(index=False))
        atomic_write_text(d / "predictions.csv", predictions.to_csv(index=False))
        atomic_write_text(d / "metrics.json", json.dumps(metrics, indent=1))
        (d / "partial.pt").unlink(missing_ok=True)  # the fold is finished: its resume point is spent

    def load(self, d: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
        metrics = json.loads((d / "metrics.json").read_text())
        return metrics, pd.read_csv(d / "curves.csv"), pd.read_csv(d / "predictions.csv")

    def load_state(self, d: Path, device="cpu") -> dict:
        return torch.load(d / "model.pt", map_location=device, weights_only=True)


def corpus_relative_paths(paths) -> list[str]:
    """``paths`` relative to the deepest directory holding all of them (for EmoDB, ``wav/``).

    The run store is committed and shared: an absolute path would name the training machine's
    disk, a relative one names the utterance in any copy of the corpus. Already relative paths
    are returned unchanged.
    """
    paths = [str(p) for p in paths]
    absolute = [p for p in paths if os.path.isabs(p)]
    if not absolute:
        return paths
    root = os.path.commonpath([os.path.dirname(p) for p in absolute])
    return [os.path.relpath(p, root) if os.path.isabs(p) else p for p in paths]


def n_utterances(data, exp: ExperimentConfig) -> int:
    """The utterance count a run key holds for ``data`` (:class:`~amsnet_lib.data.features.Features` or its
    table): the corpus's recordings, without augmented copies, so that the keys of a stage that trains
    without them do not depend on whether the features carry another stage's copies. An
    experiment-wide augmentation (``exp.augment``) counts its copies, as its keys always have."""
    table = getattr(data, "table", data)
    return len(table) if exp.augment != "none" else int(original_rows(table).sum())


def branch_key(name: str, exp: ExperimentConfig, n_items: int) -> str:
    """Key of a pre-trained branch: everything that determines its weights, nothing else."""
    return _key(*_branch_identity(name, exp, n_items).values())


def _branch_identity(name: str, exp: ExperimentConfig, n_items: int) -> dict:
    arch = exp.frlm if name == "frlm" else exp.urlm
    if name == "early":
        arch = (exp.frlm, exp.features.n_mels)
    return {"model": name, "corpus": exp.corpus, "protocol": exp.protocol, "n_folds": exp.n_folds, "split_seed": exp.split_seed,
            "split_file": exp.split_file, "features": exp.features, "architecture": arch, "train": exp.stage_train(name),
            "n_utterances": n_items,
            # only when not the default, so the keys of every run before this option stay valid
            **({"normalisation": exp.normalisation} if exp.normalisation != "corpus" else {}),
            **({"augment": exp.augment} if exp.augment != "none" else {}),
            # a validation split other than the protocol's own chooses other epochs (only then: every
            # key before the option stays valid, RAVDESS's speaker-held-out splits included)
            **({"validation": v} if (v := validation_override(exp.corpus, exp.protocol, exp.validation)) else {}),
            **_member_identity(exp)}


def _member_identity(exp: ExperimentConfig) -> dict:
    """An ensemble member other than the first trains other weights: part of its keys (empty for
    member 0, so the keys of every run before ensembles stay valid)."""
    return {"member": exp.member} if exp.member else {}


def _describe(experiment_dir: Path, identity: dict) -> None:
    """``<kind>-<key>/config.json``: what the key stands for, so a committed run store explains itself."""
    path = experiment_dir / "config.json"
    if not path.is_file():
        atomic_write_text(path, json.dumps(identity, indent=1, default=_plain))


def _stage1_done(store: RunStore, d: Path, need_weights: bool) -> bool:
    """A stage-1 fold needs no training: finished, with its weights when a fusion will load them."""
    return store.done(d) and (not need_weights or (d / "model.pt").is_file())


def fusion_dirs(exp: ExperimentConfig, n_items: int, seed: int, fold: str, store: RunStore) -> tuple[Path, dict]:
    """Run-store directories of a fusion fold and of the branch folds it stands on."""
    branch_dirs = {b: store.fold_dir(b, branch_key(b, exp, n_items), seed, fold) for b in BRANCHES}
    key = _key(exp.model, [branch_dirs[b].parent.parent.name for b in BRANCHES], exp.fusion, exp.fusion_train,
               *_late_identity(exp).values(), *_finetune_identity(exp).values(), *_member_identity(exp).values())
    return store.fold_dir(exp.model, key, seed, fold), branch_dirs


def experiment_fold_dir(exp: ExperimentConfig, n_items: int, seed: int, fold: str, store: RunStore) -> Path:
    """The run-store folder of ``exp.model``'s own fold: its stage-1 fold (FRLM, URLM, early
    fusion) or its fusion head's fold."""
    if exp.model in SINGLE_STAGE:
        return store.fold_dir(exp.model, branch_key(exp.model, exp, n_items), seed, fold)
    return fusion_dirs(exp, n_items, seed, fold, store)[0]


def _finetune_identity(exp: ExperimentConfig) -> dict:
    """End-to-end fine-tuning decides the weights: part of the key and ``config.json`` when set (empty
    otherwise, so the keys of every head without it stay as they were)."""
    return {"finetune": exp.finetune} if exp.finetune is not None and exp.model in ("amsnet", "concat") else {}


def _late_identity(exp: ExperimentConfig) -> dict:
    """Late fusion's candidate weights decide its result: part of its key and ``config.json``
    (empty for the other heads, so their keys stay as they were)."""
    return {"late_weights": list(exp.late_weights)} if exp.model == "late" else {}

