"""One fold's tensors: its fit, validation and test parts, augmented copies, and normalisation.

:func:`fold_data` draws the validation split from a fold's training part
(:func:`amsnet_lib.data.protocols.validation_split`), adds to the fit part the augmented copies
(:func:`amsnet_lib.data.channels.augmented_features`) of its own utterances where the stage trains with
them, standardises every part with statistics of the fit part (after a label-free per-speaker or
per-utterance standardisation where the experiment asks for one), and puts the parts on a device.
:func:`stage_fold_data` does so for one stage of an experiment, as the engine trains it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import ExperimentConfig
from ..errors import AmsnetError
from .features import Features, Normaliser, standardise_per_speaker, standardise_per_utterance
from .protocols import Fold, original_rows, validation_groups, validation_split

__all__ = ["FoldData", "fold_data", "stage_fold_data"]


def _to_tensors(feats: Features, device) -> dict[str, torch.Tensor]:
    out = {
        "frames": torch.from_numpy(feats.frames).to(device),
        "mask": torch.from_numpy(feats.mask).to(device),
        "spec": torch.from_numpy(feats.spec).to(device),
        "labels": torch.from_numpy(feats.labels).to(device),
    }
    if "corpus" in feats.table.columns:  # a table of several corpora: each utterance's, as a code (sampling)
        names = feats.table["corpus"].astype(str).to_numpy()
        out["corpus"] = torch.from_numpy(np.unique(names, return_inverse=True)[1].astype(np.int64)).to(device)
    return out


def _take(data: dict[str, torch.Tensor], idx) -> dict[str, torch.Tensor]:
    return {k: v[idx] for k, v in data.items()}


@dataclass
class FoldData:
    """The parts of one fold, each ``{"frames", "mask", "spec", "labels"}`` tensors (and ``corpus``, each
    utterance's corpus as a code, for a table of several corpora); ``sizes``: their utterance counts and
    the fitted :class:`~amsnet_lib.data.features.Normaliser`."""

    fit: dict
    val: dict
    test: dict
    sizes: dict


def fold_data(features: Features, fold: Fold, val_fraction: float, seed: int, device,
              normalisation: str = "corpus", augment: str = "none", copy_statistics: bool = False,
              validation: str = "utterance") -> FoldData:
    """The fit, validation and test tensors of ``fold``.

    Args:
        features: the corpus, with any augmented copies (a ``source`` column).
        fold: its training and test rows (originals only, :func:`amsnet_lib.data.protocols.make_folds`).
        val_fraction: share of the training part held out, stratified, for model selection.
        seed: the validation split's seed.
        device: where the tensors go.
        normalisation: ``corpus``, ``speaker`` or ``utterance`` (:class:`~amsnet_lib.config.ExperimentConfig`):
            the label-free step before the fit part's statistics.
        augment: the audio augmentation the stage trains with: the copies of that kind whose
            original is in the fit part join it; ``none``: the fit part is the originals alone.
        copy_statistics: the normalisation statistics include those copies (an experiment-wide
            ``ExperimentConfig.augment``, as every run made with it was trained); otherwise they are
            the fit part's originals' alone, whatever the stage trains on.
        validation: ``utterance`` or ``speaker`` (whole training speakers held out,
            :func:`amsnet_lib.data.protocols.validation_split`).

    Raises:
        AmsnetError: ``augment`` asks for copies that ``features`` does not carry.
    """
    fit_idx, val_idx = validation_split(features.labels, fold.train, val_fraction, seed,
                                        **validation_groups(features.table, validation))
    fit_idx, val_idx, fold = _without_augmented_leaks(features, fit_idx, val_idx, fold, augment)
    if normalisation == "speaker":  # label-free, per speaker; then the usual fit-part statistics
        features = standardise_per_speaker(features)
    elif normalisation == "utterance":  # label-free, each utterance alone (as at inference); then the same
        features = standardise_per_utterance(features)
    # Normalisation statistics come from the fit part only: nothing of the test fold leaks in.
    stats_idx = fit_idx if copy_statistics else fit_idx[original_rows(features.table)[fit_idx]]
    norm = Normaliser.fit(features.subset(stats_idx))
    data = _to_tensors(norm.transform(features), device)
    return FoldData(
        fit=_take(data, torch.as_tensor(fit_idx)),
        val=_take(data, torch.as_tensor(val_idx)),
        test=_take(data, torch.as_tensor(fold.test)),
        sizes={"n_train": len(fit_idx), "n_val": len(val_idx), "n_test": len(fold.test), "normaliser": norm},
    )


def stage_fold_data(exp: ExperimentConfig, stage: str, features: Features, fold: Fold, seed: int, device,
                    fit: bool = True) -> FoldData:
    """:func:`fold_data` of ``stage`` (``frlm``, ``urlm``, ``early`` or ``fusion``) of ``exp``: its
    augmentation (:meth:`~amsnet_lib.config.ExperimentConfig.stage_augment`), the validation split of
    ``branch_train``'s fraction (the same for every stage) and the experiment's normalisation.

    ``fit=False``: only the validation and test parts are used (a trained model scored). They and the
    statistics are the same without the stage's copies, so none are needed, unless an experiment-wide
    augmentation put its copies into the statistics."""
    augment = exp.stage_augment(stage) if fit or exp.augment != "none" else "none"
    return fold_data(features, fold, exp.branch_train.val_fraction, seed, device, exp.normalisation,
                     augment=augment, copy_statistics=exp.augment != "none", validation=exp.validation)


def _without_augmented_leaks(features: Features, fit_idx, val_idx, fold: Fold, augment: str):
    """Augmented copies (table column ``source``, :mod:`amsnet_lib.data.channels`) train only with their original.

    A copy of kind ``augment`` (table column ``augment``; a table without it: every copy) is kept in
    the fit part only when its original is there too; other copies are dropped. Copies never validate
    or test, so neither early stopping nor a test score sees a perturbed copy of a fit utterance, and
    the fit part never holds a copy of a validation or test utterance.
    """
    table = features.table
    copy = ~original_rows(table)
    if augment != "none":
        kind = table["augment"].astype(str).to_numpy() if "augment" in table.columns else np.full(len(table), augment)
        ours = copy & (kind == augment)
        if not ours.any():
            raise AmsnetError(None, f"the stage trains with {augment} augmentation, but the features carry no {augment} copies: "
                                    "its run key would say that it trained on copies it never saw",
                              f"add them with amsnet_lib.data.channels.augmented_features(features, {augment!r}) "
                              "(amsnet pretrain, amsnet train and the notebooks do so for an experiment that asks for them)")
    if not copy.any():
        return fit_idx, val_idx, fold
    fit_originals = fit_idx[~copy[fit_idx]]
    if augment == "none":
        return fit_originals, val_idx[~copy[val_idx]], Fold(fold.name, fold.train, fold.test[~copy[fold.test]])
    source = table["source"].fillna("").astype(str).to_numpy()
    paths = table["path"].astype(str).to_numpy()
    copies_ok = np.flatnonzero(ours & np.isin(source, list(set(paths[fit_originals]))))
    return np.union1d(fit_originals, copies_ok), val_idx[~copy[val_idx]], Fold(fold.name, fold.train, fold.test[~copy[fold.test]])
