"""openSMILE functionals of whole utterances: the inputs of the classic baselines (beyond the paper).

The standard paralinguistics baseline summarises each utterance by one fixed vector of statistics
("functionals") of its low-level descriptors, computed over the whole file:

- ``ComParE_2016``: the ComParE 2016 set (Schuller et al., Interspeech ComParE challenges 2013-2016),
  6373 functionals;
- ``eGeMAPSv02``: the extended Geneva Minimalistic Acoustic Parameter Set v02 (Eyben et al. 2016,
  IEEE Trans. Affective Computing), 88 functionals.

Both come from ``opensmile`` (opensmile-python 2.x with openSMILE 3, audEERING), a dependency of the
project, through its own ``opensmile.FeatureSet`` names; no openSMILE configuration file is copied into
this repository. openSMILE is licensed under the audEERING Research License Agreement (the
``LICENSE`` of the installed ``opensmile`` package): non-commercial use (teaching, academic research,
personal experimentation) and research-like commercial evaluation; any use in a product, features
extracted with it included, needs a commercial licence from audEERING, and publications are asked to
cite openSMILE (Eyben, Wöllmer & Schuller 2010). The same terms hold for AMSNet's IS10 stream
(:mod:`amsnet_lib.data.features`).

Each file is computed once per (audio content, feature set, sample rate, library versions) and kept
in the feature cache beside AMSNet's streams (:func:`amsnet_lib.data.features.cached_per_file`).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings

import numpy as np
import pandas as pd

from ..config import CLASSIC_MODELS
from .audio import load_audio
from .features import _versions, cached_per_file

__all__ = ["FUNCTIONAL_DIMS", "FUNCTIONAL_SETS", "extract_functionals", "functional_names", "utterance_functionals"]

#: The openSMILE feature sets of the classic baselines, by their ``opensmile.FeatureSet`` name.
FUNCTIONAL_SETS = tuple(dict.fromkeys(CLASSIC_MODELS.values()))

#: Functionals per utterance of each set (openSMILE 3's ComParE 2016 and eGeMAPS v02).
FUNCTIONAL_DIMS = {"ComParE_2016": 6373, "eGeMAPSv02": 88}

# Bumped when what an entry holds changes; part of the cache namespace.
_FUNCTIONALS_FORMAT = 1

_SMILES: dict = {}


def _check_set(feature_set: str) -> None:
    if feature_set not in FUNCTIONAL_DIMS:
        raise ValueError(f"feature_set must be one of {sorted(FUNCTIONAL_DIMS)}, got {feature_set!r}")


def _smile(feature_set: str):
    """One openSMILE functionals extractor per process and set (building it parses the configuration)."""
    if feature_set not in _SMILES:
        import opensmile

        _SMILES[feature_set] = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, feature_set),
                                               feature_level=opensmile.FeatureLevel.Functionals)
    return _SMILES[feature_set]


def functional_names(feature_set: str = "ComParE_2016") -> list[str]:
    """The names of the set's functionals, in the order of the columns :func:`extract_functionals` returns."""
    _check_set(feature_set)
    return list(_smile(feature_set).feature_names)


def utterance_functionals(signal: np.ndarray, feature_set: str = "ComParE_2016", sample_rate: int = 16000) -> np.ndarray:
    """The functionals of one whole utterance.

    Args:
        signal: mono audio, float32 ``(n_samples,)`` at ``sample_rate`` Hz.
        feature_set: ``ComParE_2016`` or ``eGeMAPSv02``.

    Returns:
        float32 ``(D,)``, D = :data:`FUNCTIONAL_DIMS` of the set; NaN and inf (openSMILE's output for
        a descriptor undefined on the utterance, e.g. audio shorter than one frame) become 0.
    """
    _check_set(feature_set)
    with warnings.catch_warnings():
        # opensmile warns on segments shorter than one frame; load_audio refuses audio that short
        warnings.simplefilter("ignore", UserWarning)
        out = _smile(feature_set).process_signal(signal, sample_rate).to_numpy(np.float32).reshape(-1)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def _compute_file(path: str, feature_set: str, sample_rate: int) -> tuple[np.ndarray, list[str]]:
    """One file's functionals over the whole file (no cut, no padding) and no warnings."""
    return utterance_functionals(load_audio(path, sample_rate=sample_rate), feature_set, sample_rate), []


def _namespace(feature_set: str, sample_rate: int) -> str:
    """The cache folder of one set: set, rate and library versions (distinct from AMSNet's streams')."""
    payload = json.dumps({"functionals": feature_set, "sample_rate": sample_rate, "format": _FUNCTIONALS_FORMAT,
                          "versions": _versions()}, sort_keys=True)
    return "functionals-" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def extract_functionals(
    table: pd.DataFrame,
    feature_set: str = "ComParE_2016",
    *,
    sample_rate: int = 16000,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    n_jobs: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """openSMILE functionals of every utterance of a corpus table, each over its whole file.

    Args:
        table: corpus table (its ``path`` column; :func:`amsnet_lib.load_corpus`).
        feature_set: ``ComParE_2016`` (6373 per utterance) or ``eGeMAPSv02`` (88).
        sample_rate: Hz; the audio is resampled to it, mono (:func:`amsnet_lib.load_audio`).
        cache_dir: the feature cache; default ``$AMSNET_CACHE_DIR`` or ``<repo>/.cache/features``.
        use_cache: read and write the cache.
        n_jobs: worker processes for the files not in the cache; default all cores.
        progress: a tqdm progress bar.

    Returns:
        float32 ``(N, D)``, row i the functionals of ``table["path"].iloc[i]``, in
        :func:`functional_names` order; unnormalised (a classifier standardises them on its own
        training part).

    Raises:
        AudioError: a file that cannot be decoded, naming it.
        AmsnetError: files to compute and a cache folder that cannot be written.
    """
    _check_set(feature_set)
    paths = [str(p) for p in table["path"]]
    results, _ = cached_per_file(paths, _namespace(feature_set, sample_rate),
                                 functools.partial(_compute_file, feature_set=feature_set, sample_rate=sample_rate),
                                 ("functionals",), cache_dir=cache_dir, use_cache=use_cache, n_jobs=n_jobs,
                                 progress=progress, desc=feature_set)
    if not results:
        return np.zeros((0, FUNCTIONAL_DIMS[feature_set]), dtype=np.float32)
    return np.stack([r[0] for r in results]).astype(np.float32, copy=False)
