"""An exported model run by ONNX Runtime: inference without PyTorch.

``amsnet export CHECKPOINT OUT.onnx --format onnx`` (:func:`amsnet_lib.serve.export.export_onnx`,
which needs torch) writes one self-contained file: the network as an ONNX graph, and in the
file's metadata (``metadata_props``) everything else a checkpoint holds: the classes, the
normaliser's statistics, the feature settings, the full experiment configuration and the model
card's key facts. This module reads such a file with ONNX Runtime and numpy only, so that an
install without torch (``pip install amsnet``) predicts, evaluates and streams with it:
:class:`~amsnet_lib.serve.predict.Recognizer` takes a ``.onnx`` path wherever it takes a ``.pt``.

The graph is the network alone (no normaliser, no softmax)::

    logits (B, C) float32, alpha (B, 2) float32 = graph(frames (B, q, 76) float32,
                                                        mask (B, q) bool, spec (B, n_mels, T) float32)

on *standardised* features (the Recognizer applies the normaliser from the metadata, exactly as
for a checkpoint, after the per-utterance standardisation when the experiment configuration's
``normalisation`` is ``utterance``: ``normalisation`` in the metadata says so too). ``alpha``
holds the fusion weights ``[frlm, urlm]`` (NaN for models without them); a single-branch model's
graph takes only the inputs it uses (``inputs`` in the metadata).

>>> m = OnnxModel("amsnet_emodb.onnx")                     # doctest: +SKIP
>>> m.info.classes, m.info.features.duration               # doctest: +SKIP
>>> logits, alpha = m(frames, mask, spec)                  # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..config import ExperimentConfig
from ..data.features import Normaliser
from ..errors import CheckpointError
from .checkpoint import CheckpointInfo, config_from_dict

__all__ = ["FORMAT", "FORMAT_VERSION", "META_KEYS", "OnnxModel", "is_onnx", "read_onnx_info"]

#: ``metadata_props["format"]`` of an amsnet ONNX file, and its layout version.
FORMAT = "amsnet-onnx"
FORMAT_VERSION = 1

#: Metadata keys (values are JSON text): what each holds.
META_KEYS = {
    "format": "amsnet-onnx",
    "format_version": "layout version of this metadata (an int)",
    "model": "model name (amsnet, frlm, urlm, concat, early, late)",
    "classes": "class names in output order (a list)",
    "inputs": "graph inputs in order, of frames (B, q, 76) float32, mask (B, q) bool, spec (B, n_mels, T) float32",
    "outputs": "logits (B, C) float32, alpha (B, 2) float32 ([frlm, urlm]; NaN without fusion)",
    "normalised_inside": "false: the graph takes features standardised with `normaliser`",
    "normalisation": "corpus: the raw features go to `normaliser` as they are; utterance: each utterance is first "
                     "standardised with its own statistics (per IS10 dimension over its valid frames, per mel band over "
                     "the spectrogram frames that hold it, std floored at 1e-3: amsnet_lib.data.features.standardise_utterance)",
    "normaliser": "frames_mean, frames_std (76), spec_mean, spec_std (n_mels): (x - mean) / std, padded frames 0",
    "features": "the feature settings (FeatureConfig): sample rate, duration, q, mel bands, STFT",
    "experiment": "the full ExperimentConfig the network was built and trained with",
    "card": "the model card's key facts: training data, recipe, cross-validated accuracy, limits",
    "meta": "the source checkpoint's free-form meta (training files' digests included)",
    "amsnet_version": "amsnet version that exported it",
    "torch_version": "torch version that exported it",
    "source_checkpoint": "file name of the checkpoint it was exported from",
}

_FIX = "export it again: amsnet export CHECKPOINT.pt OUT.onnx --format onnx (needs pip install 'amsnet[torch]')"


def is_onnx(path: str | os.PathLike) -> bool:
    """Whether a model path names an ONNX file (by its ``.onnx`` ending)."""
    return str(path).lower().endswith(".onnx")


def _session(path: Path, num_threads: int):
    try:
        import onnxruntime as ort
    except ImportError as error:  # a core dependency: only a broken install gets here
        raise CheckpointError(path, "running an ONNX model needs the onnxruntime package, which is not installed",
                              "pip install amsnet (onnxruntime is one of its dependencies)") from error
    opts = ort.SessionOptions()
    # One intra-op thread by default, for the reason Recognizer gives (small matrices, shared cores);
    # ONNX Runtime's spinning pool would take a core from openSMILE running beside it.
    opts.intra_op_num_threads = max(0, int(num_threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only: no per-session chatter on stderr
    if num_threads:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for bad files
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(path, f"cannot be read as an ONNX model ({first})", _FIX) from error


def _info(path: Path, props: dict) -> tuple[CheckpointInfo, list[str]]:
    """The :class:`CheckpointInfo` and the graph's input names from an amsnet ONNX file's metadata."""
    if props.get("format") != json.dumps(FORMAT):
        raise CheckpointError(path, "is an ONNX model but not one amsnet exported (its metadata has no "
                              f"format {FORMAT!r})", "pass a file written by amsnet export --format onnx, or " + _FIX)
    try:
        meta = {k: json.loads(v) for k, v in props.items() if k in META_KEYS}
    except json.JSONDecodeError as error:
        raise CheckpointError(path, f"has unreadable metadata ({error})", _FIX) from error
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(path, f"has amsnet-onnx format version {version!r}; this amsnet reads version "
                              f"{FORMAT_VERSION}", "use the amsnet version that exported it, or " + _FIX)
    try:
        exp = config_from_dict(ExperimentConfig, meta["experiment"], where="experiment")
        norm = Normaliser.from_state_dict({k: np.asarray(v, np.float32) for k, v in meta["normaliser"].items()})
        classes = tuple(str(c) for c in meta["classes"])
        inputs = [str(x) for x in meta["inputs"]]
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(path, f"has incomplete or invalid metadata ({type(error).__name__}: {error})",
                              _FIX) from error
    source = dict(meta.get("meta") or {})
    if meta.get("card"):
        source.setdefault("card", meta["card"])
    info = CheckpointInfo(path=str(path), model_name=str(meta.get("model", exp.model)), experiment=exp,
                          classes=classes, normaliser=norm, meta=source,
                          amsnet_version=str(meta.get("amsnet_version", "")),
                          torch_version=str(meta.get("torch_version", "")))
    return info, inputs


def read_onnx_info(path: str | os.PathLike) -> CheckpointInfo:
    """The :class:`~amsnet_lib.serve.checkpoint.CheckpointInfo` stored in an amsnet ONNX file."""
    return OnnxModel(path).info


class OnnxModel:
    """An amsnet ONNX file loaded into an ONNX Runtime session (CPU).

    Args:
        path: the ``.onnx`` file (:func:`amsnet_lib.serve.export.export_onnx`).
        num_threads: ONNX Runtime intra-op threads (default 1; 0: ONNX Runtime's default).

    Attributes:
        info: classes, normaliser, feature settings and configuration, as a checkpoint's.
        inputs: the graph's inputs, in order (a subset of ``frames``, ``mask``, ``spec``).

    Raises:
        CheckpointError: the file is missing, is not an ONNX model, or lacks amsnet's metadata.
    """

    runtime = "onnxruntime"

    def __init__(self, path: str | os.PathLike, num_threads: int = 1):
        path = Path(path).expanduser()
        if not path.is_file():
            raise CheckpointError(path, "ONNX model file does not exist" if not path.exists() else "is not a file",
                                  "check the path, or " + _FIX)
        self.path = path
        self.session = _session(path, num_threads)
        self.info, self.inputs = _info(path, dict(self.session.get_modelmeta().custom_metadata_map))
        graph_inputs = [i.name for i in self.session.get_inputs()]
        if graph_inputs != self.inputs:
            raise CheckpointError(path, f"has graph inputs {graph_inputs}, its metadata says {self.inputs}", _FIX)

    def __call__(self, frames: np.ndarray, mask: np.ndarray, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits ``(B, C)`` and fusion weights ``(B, 2)`` of standardised features.

        Args:
            frames: ``(B, q, 76)`` float32, standardised, zero on padded frames.
            mask: ``(B, q)`` bool, True on valid frames (a prefix of each row).
            spec: ``(B, n_mels, T)`` float32, standardised.
        """
        given = {"frames": np.ascontiguousarray(frames, np.float32), "mask": np.ascontiguousarray(mask, bool),
                 "spec": np.ascontiguousarray(spec, np.float32)}
        logits, alpha = self.session.run(["logits", "alpha"], {k: given[k] for k in self.inputs})
        return logits, alpha
