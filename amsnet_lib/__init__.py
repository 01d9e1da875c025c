"""amsnet: reference implementation of AMSNet (Chen et al., ESWA 2023) for speech emotion recognition.

The public API is small; everything else lives in the sub-modules named after the paper's parts.
"""
from __future__ import annotations

from .audio import load_audio
from .config import ExperimentConfig, FeatureConfig, FRLMConfig, FusionConfig, TrainConfig, URLMConfig
from .corpora import load_corpus
from .errors import AmsnetError, AudioError, CheckpointError, CorpusError, ManifestError
from .features import Features, Normaliser, extract_features

__version__ = "0.1.0"

__all__ = [
    "AmsnetError",
    "AudioError",
    "CheckpointError",
    "CorpusError",
    "ExperimentConfig",
    "FRLMConfig",
    "FeatureConfig",
    "Features",
    "FusionConfig",
    "ManifestError",
    "Normaliser",
    "TrainConfig",
    "URLMConfig",
    "extract_features",
    "load_audio",
    "load_corpus",
]
