"""amsnet: reference implementation of AMSNet (Chen et al., ESWA 2023) for speech emotion recognition.

The public API is small; everything else lives in sub-packages by job, each importing only the ones
below it: ``data`` (audio, corpora, features, protocols), ``models`` (the paper's networks),
``train`` (training loop, run store, engine, search), ``serve`` (checkpoints, predict, stream,
export), ``report`` (tables, figures, REPORT.md) and ``cli``; the modules at this root
(configuration, studies, metrics, errors, paths, atomic writes) serve every layer.
"""
from __future__ import annotations

from .data.audio import load_audio
from .config import ExperimentConfig, FeatureConfig, FRLMConfig, FusionConfig, TrainConfig, URLMConfig
from .data.corpora import load_corpus
from .errors import AmsnetError, AudioError, CheckpointError, CorpusError, ManifestError
from .data.features import Features, Normaliser, extract_features


# Training and inference pull in torch (or ONNX Runtime); their names load on first use so that
# ``import amsnet_lib`` stays light for corpus and feature work, and works without torch.
_LAZY = {
    "build_model": "models", "count_parameters": "models",
    "run_experiment": "train.training", "fit_final": "train.training",
    "pretrain": "train.engine", "EngineConfig": "train.engine",
    "experiment": "studies", "experiment_like": "train.like",
    "save_checkpoint": "serve.checkpoint", "load_checkpoint": "serve.checkpoint",
    "Recognizer": "serve.predict", "predict": "serve.predict", "evaluate": "serve.evaluation",
    "stream_predict": "serve.stream", "export_torchscript": "serve.export", "export_onnx": "serve.export",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        # Bound here once: later look-ups skip this function and always give the same object, even
        # if an import of a sub-module of the same name were to set the attribute meanwhile.
        globals()[name] = value
        return value
    raise AttributeError(f"module 'amsnet_lib' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "AmsnetError",
    "AudioError",
    "CheckpointError",
    "CorpusError",
    "EngineConfig",
    "ExperimentConfig",
    "FRLMConfig",
    "FeatureConfig",
    "Features",
    "FusionConfig",
    "ManifestError",
    "Normaliser",
    "TrainConfig",
    "URLMConfig",
    "Recognizer",
    "build_model",
    "count_parameters",
    "experiment",
    "experiment_like",
    "evaluate",
    "export_onnx",
    "export_torchscript",
    "extract_features",
    "fit_final",
    "load_audio",
    "load_checkpoint",
    "load_corpus",
    "predict",
    "pretrain",
    "run_experiment",
    "save_checkpoint",
    "stream_predict",
]
