"""Self-describing model checkpoints: weights plus everything needed to use them on new audio.

A checkpoint is one ``torch.save`` file (a plain dict, loaded with ``weights_only=True``, so
loading never runs code from the file) holding:

- ``format`` / ``format_version``: what the file is and which layout it follows;
- ``model``: the model name (``amsnet``, ``frlm``, ``urlm``, ``concat``, ``early``, ``late``);
- ``experiment``: the full :class:`~amsnet_lib.config.ExperimentConfig` as a dict (feature,
  branch, fusion and training configurations), so the model is rebuilt exactly;
- ``state_dict``: the weights;
- ``classes``: class names in output order;
- ``normaliser``: the :class:`~amsnet_lib.data.features.Normaliser` statistics fitted on the
  training utterances;
- ``amsnet_version``, ``torch_version`` and ``meta`` (free dict: training data, protocol,
  cross-validated accuracy, date...). :func:`describe_training_data` fills in the training
  utterances: counts, speakers and, under ``training_sha256``, a digest of every training file's
  content, with which :func:`~amsnet_lib.serve.evaluation.evaluate` keeps training audio out of a test.

>>> save_checkpoint("model.pt", model, exp, classes, normaliser, meta={"data": "EmoDB"})  # doctest: +SKIP
>>> model, info = load_checkpoint("model.pt")                                              # doctest: +SKIP
>>> info.features.duration, info.classes                                                   # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import typing
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes
from ..config import ExperimentConfig, FeatureConfig
from ..errors import CheckpointError
from ..data.features import Normaliser

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "TORCH_EXTRA",
    "TRAINING_DIGESTS",
    "CheckpointInfo",
    "describe_training_data",
    "file_digest",
    "load_checkpoint",
    "read_checkpoint_info",
    "require_torch",
    "save_checkpoint",
]

FORMAT = "amsnet-checkpoint"
#: Layout version of the file. Bump it when the layout changes; loaders refuse other versions.
FORMAT_VERSION = 1

#: What to install for the commands and files that need PyTorch (the inference install leaves it out).
TORCH_EXTRA = "pip install 'amsnet[torch]' (CPU-only wheels: add --extra-index-url https://download.pytorch.org/whl/cpu)"


def require_torch(path: str | os.PathLike | None = None, what: str = "reading a .pt checkpoint"):
    """``torch``, imported; CheckpointError naming the extra to install (and the ONNX way) when it is absent.

    Imported here rather than at module level so that the checkpoint's description
    (:class:`CheckpointInfo`) serves an ONNX model in an install without PyTorch.
    """
    try:
        import torch
    except ImportError as error:
        raise CheckpointError(path or "torch", f"{what} needs PyTorch, which this install leaves out",
                              f"{TORCH_EXTRA}; or run the model's ONNX form (.onnx, e.g. the shipped "
                              "amsnet_emodb.onnx), which needs no torch") from error
    return torch


_FIX_RETRAIN = "re-create it with scripts/train_shipped_model.py or amsnet_lib.serve.checkpoint.save_checkpoint"


@dataclass(frozen=True)
class CheckpointInfo:
    """Everything in a checkpoint except the weights.

    Attributes:
        path: the file it was read from (``None`` if it never was).
        model_name: ``amsnet``, ``frlm``, ``urlm``, ``concat``, ``early`` or ``late``.
        experiment: the configuration the model was built and trained with.
        classes: class names in the order of the model's outputs.
        normaliser: feature standardisation fitted on the training utterances.
        meta: free-form description (training data, protocol, accuracy, date...).
        amsnet_version: version of amsnet that wrote the file.
        format_version: layout version of the file.
    """

    path: str | None
    model_name: str
    experiment: ExperimentConfig
    classes: tuple[str, ...]
    normaliser: Normaliser
    meta: dict = field(default_factory=dict)
    amsnet_version: str = ""
    torch_version: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def features(self) -> FeatureConfig:
        """The feature configuration new audio must be processed with."""
        return self.experiment.features

    @property
    def n_classes(self) -> int:
        return len(self.classes)


# --------------------------------------------------------------------------- dataclass <-> dict


def config_to_dict(obj) -> dict:
    """A (nested) configuration dataclass as plain dicts/lists/str/numbers (weights_only-safe)."""

    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(obj)


def config_from_dict(cls, data: dict, *, where: str = "config"):
    """Inverse of :func:`config_to_dict`: rebuild ``cls`` (nested dataclasses, tuples).

    Raises:
        TypeError: ``data`` is not a dict or has fields ``cls`` does not know.
    """
    if not isinstance(data, dict):
        raise TypeError(f"{where}: expected a dict, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise TypeError(f"{where}: unknown field(s) {unknown}")
    kwargs = {}
    for name, value in data.items():
        hint = hints.get(name)
        # X | None: the dataclass among the union's members (e.g. ExperimentConfig.frlm_train)
        options = [hint] + [a for a in typing.get_args(hint) if a is not type(None)]
        target = next((o for o in options if dataclasses.is_dataclass(o)), None)
        if target is not None and isinstance(value, dict):
            value = config_from_dict(target, value, where=f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


# --------------------------------------------------------------------------- training data

#: ``meta`` key of the training files' content digests (:func:`file_digest`), a sorted list; a
#: string instead says why they could not be recorded.
TRAINING_DIGESTS = "training_sha256"


def file_digest(path: str | os.PathLike) -> str:
    """Digest of a file's bytes: the first 32 hex digits (128 bits) of its SHA-256.

    Two copies of one recording have the same digest whatever their names or folders, so a
    renamed or moved training file is still recognised; a re-encoded or resampled copy is not
    (its bytes differ).
    """
    import stat

    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read forever
        raise OSError(f"{path} is not a regular file")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:32]


def describe_training_data(table, classes) -> dict:
    """``meta`` entries describing the utterances a model was trained on.

    Args:
        table: the training utterances, a corpus table (``path``, ``label``, optional
            ``speaker``) as :func:`~amsnet_lib.data.corpora.load_corpus` returns.
        classes: the model's classes, in output order.

    Returns:
        ``n_utterances``, ``class_counts`` (class -> utterances), ``speakers`` (sorted; when
        the table has them), ``skipped``: ``[path, reason]`` of every file of the corpus that the
        loader left out as unusable (``table.attrs["skipped"]``; empty when none), and
        :data:`TRAINING_DIGESTS`: every training file's
        :func:`file_digest`, sorted, or, when some file cannot be read here (features trained
        from a bundle made elsewhere), a sentence saying so: a partial list would let
        unlisted training files pass as unseen.
    """
    labels = [str(v) for v in table["label"]]
    out = {"n_utterances": len(table), "class_counts": {str(c): labels.count(str(c)) for c in classes}}
    if "speaker" in table.columns:
        out["speakers"] = sorted({str(s) for s in table["speaker"]})
    out["skipped"] = [[str(p), str(r)] for p, r in table.attrs.get("skipped") or []]
    digests, unreadable = [], []
    for p in table["path"]:
        try:
            digests.append(file_digest(p))
        except OSError:
            unreadable.append(str(p))
    out[TRAINING_DIGESTS] = sorted(digests) if not unreadable else (
        f"not recorded: {len(unreadable)} of {len(table)} training files could not be read where the model was "
        f"trained (e.g. {unreadable[0]})")
    return out


# --------------------------------------------------------------------------- save


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    exp: ExperimentConfig,
    classes,
    normaliser: Normaliser,
    meta: dict | None = None,
    *,
    training_table=None,
) -> Path:
    """Write a self-describing checkpoint atomically (a reader sees the old file or the new one).

    Args:
        path: destination file (``.pt``); parent folders are created.
        model: the trained model, as built by :func:`amsnet_lib.models.build_model` from
            ``exp`` (its ``state_dict`` is stored on CPU).
        exp: the experiment configuration the model was built and trained with.
        classes: class names, in the order of the model's outputs.
        normaliser: the feature standardisation fitted on the training utterances.
        meta: JSON-like description (training data, protocol, accuracy, date...).
        training_table: the training utterances (a corpus table); when given, ``meta`` gets
            :func:`describe_training_data`'s entries, so that :func:`~amsnet_lib.serve.evaluation.evaluate`
            can keep these files out of a test.

    Returns:
        The path written.

    Raises:
        CheckpointError: the model does not match ``exp``/``classes`` (so the file could not be
            loaded again).
    """
    import amsnet_lib

    path = Path(path)
    torch = require_torch(path, "writing a checkpoint")
    classes = [str(c) for c in classes]
    if len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"classes must be non-empty and unique, got {classes}")
    meta = dict(meta or {})
    if training_table is not None:
        meta.update(describe_training_data(training_table, classes))
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "amsnet_version": amsnet_lib.__version__,
        "torch_version": str(torch.__version__),
        "model": exp.model,
        "experiment": config_to_dict(exp),
        "classes": classes,
        "normaliser": {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in dataclasses.asdict(normaliser).items()},
        "state_dict": state,
        "meta": _plain(meta),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    # Refuse to write a file that would not load: read the bytes back as load_checkpoint does.
    buf.seek(0)
    _build_and_load(torch.load(buf, map_location="cpu", weights_only=True), path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _plain(obj):
    """JSON-like copy (dict/list/str/int/float/bool/None): numpy scalars become numbers, other objects strings."""

    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if dataclasses.is_dataclass(o):
            return config_to_dict(o)
        return str(o)

    return json.loads(json.dumps(obj, default=default))


# --------------------------------------------------------------------------- load


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MAX_CAUSE = 200


def _load_error_cause(error: BaseException) -> str:
    """``torch.load``'s error as one short clause, for a CheckpointError.

    Without PyTorch's advice to load with ``weights_only=False``: unpickling can run arbitrary
    code, so a user must never be told to do that with a file they did not make. A refused
    object is named instead; a long message keeps its whole sentences that fit (a first sentence
    too long on its own is cut at a word and marked "..."), never a sentence cut off.
    """
    text = _ANSI.sub("", str(error)).strip()
    refused = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\s+was not an allowed global|\.\s|\n|$)", text)
    if refused:
        cause = f"it holds Python objects a safe load refuses: {refused.group(1).strip()}"
    elif text.startswith("Weights only load failed"):
        cause = "it holds Python objects a safe load refuses"
    else:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "weights_only" not in ln]
        cause = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    if len(cause) > _MAX_CAUSE:  # whole sentences that fit, else the first one cut at a word
        sentences = re.split(r"(?<=\.)\s+", cause)
        kept = sentences[0]
        for sentence in sentences[1:]:
            if len(kept) + 1 + len(sentence) > _MAX_CAUSE:
                break
            kept += " " + sentence
        cause = kept if len(kept) <= _MAX_CAUSE else kept[:_MAX_CAUSE].rsplit(" ", 1)[0].rstrip(".,;:") + " ..."
    return cause.rstrip(".")


def _read_payload(path: Path, device) -> dict:
    if not path.exists():
        raise CheckpointError(path, "checkpoint file does not exist",
                              "check the path, or train one: python -m scripts.train_shipped_model "
                              "(writes amsnet_lib/pretrained/amsnet_emodb.pt)")
    if path.is_dir():
        raise CheckpointError(path, "is a directory, not a checkpoint file", "pass the .pt file inside it")
    _refuse_other_files(path)
    torch = require_torch(path)
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except (zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError) as error:  # torch raises a zoo of types for bad files
        raise CheckpointError(path, f"cannot be read as a checkpoint (corrupt or truncated file, or not a "
                              f"torch checkpoint: {_load_error_cause(error)})",
                              f"copy or download it again, or {_FIX_RETRAIN}") from error
    except Exception as error:  # weights_only unpickling errors have their own type per torch version
        raise CheckpointError(path, f"cannot be read as a checkpoint ({_load_error_cause(error)})",
                              f"copy or download it again, or {_FIX_RETRAIN}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        what = "a bare state dict or another program's file" if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(path, f"is not an amsnet checkpoint (it holds {what})",
                              f"pass a file written by amsnet_lib.serve.checkpoint.save_checkpoint, or {_FIX_RETRAIN}")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise CheckpointError(
            path, f"has checkpoint format version {version!r}; this amsnet reads version {FORMAT_VERSION}",
            ("upgrade amsnet (the file was written by amsnet " f"{payload.get('amsnet_version', '?')})") if newer
            else f"{_FIX_RETRAIN} with this amsnet version")
    missing = [k for k in ("model", "experiment", "classes", "normaliser", "state_dict") if k not in payload]
    if missing:
        raise CheckpointError(path, f"lacks the entries {missing}", f"the file is incomplete; {_FIX_RETRAIN}")
    return payload


#: First bytes of files that are surely not checkpoints, named in the error.
_MAGIC = {b"RIFF": "a WAV (RIFF) file", b"fLaC": "a FLAC file", b"OggS": "an Ogg file", b"ID3": "an MP3 file",
          b"\x93NUMPY": "a numpy .npy file", b"\x89HDF": "an HDF5 file", b"{": "JSON or text", b"#": "text"}


def _refuse_other_files(path: Path) -> None:
    """CheckpointError for what ``torch.load`` would misdescribe: not a regular file (a FIFO would
    block the load forever), an empty file, a TorchScript export, bytes that are neither of the
    two layouts ``torch.save`` writes (a zip archive; a pickle, first byte 0x80)."""
    import stat

    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(path, "cannot be read as a checkpoint: it is not a regular file (a FIFO, device or socket)",
                              "pass the checkpoint file itself")
    if st.st_size == 0:
        raise CheckpointError(path, "cannot be read as a checkpoint: it is empty (0 bytes)",
                              f"copy or download it again, or {_FIX_RETRAIN}")
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
                extra = next((n for n in names if n.endswith("/extra/amsnet.json")), None)
                source = json.loads(z.read(extra)).get("source_checkpoint") if extra else None
        except Exception:  # a damaged archive: torch.load names the damage
            return
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            origin = f" (exported from {source})" if source else ""
            raise CheckpointError(path, f"is a TorchScript export{origin}, not a checkpoint: it holds the traced model "
                                  "without the configuration, classes and normaliser amsnet reads",
                                  "pass the checkpoint it was exported from; to run the export itself, use "
                                  "amsnet_lib.serve.export.load_exported (or torch.jit.load)")
        return
    if head[:1] == b"\x80":  # a pickle: torch.save's legacy layout
        return
    what = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
    shown = " ".join(f"{b:02x}" for b in head[:4])
    raise CheckpointError(path, "cannot be read as a checkpoint: it is not a torch file ("
                          f"{what or f'neither a zip archive nor a pickle; it begins with the bytes {shown}'})",
                          f"pass a checkpoint written by amsnet fit or save_checkpoint, or {_FIX_RETRAIN}")


def _check_values(model: torch.nn.Module, norm: Normaliser, exp: ExperimentConfig, classes: tuple, path: Path) -> None:
    """CheckpointError unless the statistics, weights and outputs of a checkpoint are usable numbers.

    A normaliser with a NaN mean or a zero standard deviation loaded before and predicted NaN
    probabilities under a confident label (issue 41): every normaliser value must be finite, every
    standard deviation positive, every weight finite, and one utterance of the training
    statistics' own mean (standardised zeros, all frames valid) must give finite probabilities.
    """
    torch = require_torch(path)
    for k in ("frames_mean", "frames_std", "spec_mean", "spec_std"):
        v = np.asarray(getattr(norm, k))
        bad = np.flatnonzero(~np.isfinite(v))
        if len(bad):
            raise CheckpointError(path, f"normaliser {k} holds {len(bad)} non-finite value(s) (NaN or infinite; first at "
                                  f"index {bad[0]})", _FIX_RETRAIN)
        if k.endswith("_std") and (v <= 0).any():
            bad = np.flatnonzero(v <= 0)
            raise CheckpointError(path, f"normaliser {k} holds {len(bad)} standard deviation(s) of zero or below (first "
                                  f"at index {bad[0]}): standardising divides by them", _FIX_RETRAIN)
    for k, v in model.state_dict().items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise CheckpointError(path, f"weight {k} holds non-finite values (NaN or infinite): the training diverged",
                                  f"train again (a lower learning rate), or {_FIX_RETRAIN}")
    fc = exp.features
    named = {"frames": torch.zeros(1, fc.q, exp.frlm.input_dim), "mask": torch.ones(1, fc.q, dtype=torch.bool),
             "spec": torch.zeros(1, fc.n_mels, fc.spec_frames)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small forward pass: one thread is the fast choice (serve.predict.Recognizer)
    try:
        with torch.inference_mode():
            out = model.eval()(*(named[k] for k in getattr(model, "inputs", ("frames", "mask", "spec"))))
    finally:
        torch.set_num_threads(threads)
    logits = out[0] if isinstance(out, tuple) else out
    if tuple(logits.shape) != (1, len(classes)) or not bool(torch.isfinite(logits).all()):
        raise CheckpointError(path, f"gives non-finite or misshaped outputs {tuple(logits.shape)} on an utterance of its "
                              "training statistics' mean", _FIX_RETRAIN)


def _build_and_load(payload: dict, path: Path):
    """Rebuild the model from the stored configs and load the weights; every mismatch → CheckpointError."""
    from ..config import MODELS

    torch = require_torch(path)
    from ..models import build_model

    name = payload["model"]
    if name not in MODELS:
        raise CheckpointError(path, f"holds an unknown model {name!r} (known: {', '.join(MODELS)})",
                              "use the amsnet version that wrote it, or " + _FIX_RETRAIN)
    try:
        exp = config_from_dict(ExperimentConfig, payload["experiment"], where="experiment")
    except (TypeError, ValueError) as error:
        raise CheckpointError(path, f"has an invalid configuration ({error})",
                              "use the amsnet version that wrote it, or " + _FIX_RETRAIN) from error
    if exp.model != name:
        raise CheckpointError(path, f"names model {name!r} but its configuration is for {exp.model!r}", _FIX_RETRAIN)
    classes = payload["classes"]
    if not isinstance(classes, (list, tuple)) or not classes or len(set(map(str, classes))) != len(classes):
        raise CheckpointError(path, f"has invalid class names {classes!r} (need a non-empty list of unique names)",
                              _FIX_RETRAIN)
    classes = tuple(str(c) for c in classes)
    unprintable = [c for c in classes if not c.isprintable() or not c.strip()]
    if unprintable:  # escape sequences in a class name would reach the terminal with every prediction
        raise CheckpointError(path, f"has class names that are blank or hold control characters {unprintable!r}",
                              _FIX_RETRAIN + " with printable class names")
    try:
        norm = Normaliser.from_state_dict({k: np.asarray(torch.as_tensor(v).cpu(), dtype=np.float32)
                                          for k, v in payload["normaliser"].items()})
    except (TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(path, f"has an invalid normaliser ({error})", _FIX_RETRAIN) from error
    fc = exp.features
    expect = {"frames_mean": exp.frlm.input_dim, "frames_std": exp.frlm.input_dim,
              "spec_mean": fc.n_mels, "spec_std": fc.n_mels}
    for k, n in expect.items():
        if getattr(norm, k).shape != (n,):
            raise CheckpointError(path, f"normaliser {k} has shape {getattr(norm, k).shape}, the configuration "
                                  f"needs ({n},)", _FIX_RETRAIN)
    model = build_model(name, len(classes), frlm=exp.frlm, urlm=exp.urlm, fusion=exp.fusion, n_mels=fc.n_mels)
    state = payload["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(path, "has a state_dict that is not a dict", _FIX_RETRAIN)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state)
                   if not isinstance(state[k], torch.Tensor) or tuple(state[k].shape) != tuple(expected[k].shape))
    if wrong and not missing and not unexpected:
        # A head whose output size differs from the number of class names: say so plainly.
        heads = [k for k in wrong if expected[k].dim() >= 1 and expected[k].shape[0] == len(classes)
                 and isinstance(state[k], torch.Tensor) and state[k].dim() == expected[k].dim()
                 and tuple(state[k].shape[1:]) == tuple(expected[k].shape[1:])]
        if heads == wrong:
            n_out = int(state[heads[0]].shape[0])
            raise CheckpointError(path, f"lists {len(classes)} classes {list(classes)} but the model's output layer "
                                  f"has {n_out} outputs ({heads[0]})",
                                  "the class list and the weights come from different trainings; " + _FIX_RETRAIN)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            k = wrong[0]
            got = tuple(state[k].shape) if isinstance(state[k], torch.Tensor) else type(state[k]).__name__
            parts.append(f"{len(wrong)} with the wrong shape (e.g. {k}: {got} vs {tuple(expected[k].shape)})")
        raise CheckpointError(path, f"weights do not match the stored {name} configuration: " + "; ".join(parts),
                              "the weights and the configuration come from different models; " + _FIX_RETRAIN)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(path, f"weights do not load into the {name} model ({str(error)[:300]})",
                              _FIX_RETRAIN) from error
    _check_values(model, norm, exp, classes, path)
    meta = payload.get("meta") or {}
    info = CheckpointInfo(
        path=str(path), model_name=name, experiment=exp, classes=classes, normaliser=norm,
        meta=dict(meta) if isinstance(meta, dict) else {"meta": meta},
        amsnet_version=str(payload.get("amsnet_version", "")), torch_version=str(payload.get("torch_version", "")),
        format_version=int(payload["format_version"]),
    )
    return model, info


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Load a checkpoint written by :func:`save_checkpoint`, checking it thoroughly.

    Args:
        path: the ``.pt`` file.
        device: where the model's weights go.

    Returns:
        ``(model, info)``: the model in eval mode on ``device``, and its
        :class:`CheckpointInfo` (feature configuration, classes, normaliser, meta).

    Raises:
        CheckpointError: the file is missing, unreadable or corrupt, has another format version,
            names an unknown model, holds weights that do not fit its configuration, or lists a
            number of classes that differs from the model's output size. The message names the
            file and the fix.
    """
    path = Path(path).expanduser()
    payload = _read_payload(path, "cpu")
    model, info = _build_and_load(payload, path)
    return model.to(device).eval(), info


def read_checkpoint_info(path: str | os.PathLike) -> CheckpointInfo:
    """The :class:`CheckpointInfo` of a checkpoint (validated like :func:`load_checkpoint`)."""
    return load_checkpoint(path)[1]
