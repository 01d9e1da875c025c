"""The configuration of a finished run, read back from its run-store folder (``amsnet fit --like RUN_DIR``).

Every experiment folder of the run store, ``<store>/<model>-<key>/``, holds a ``config.json`` that
says what its key stands for (:mod:`amsnet_lib.train.runstore`): a branch or early fusion
(:func:`~amsnet_lib.train.runstore._branch_identity`), a classic baseline
(:func:`~amsnet_lib.train.classic.classic_identity`), or a fusion head, which names its two branch
folders (``branch_runs``) and is completed by their ``config.json`` (found beside it). From these
:func:`experiment_like` rebuilds the :class:`~amsnet_lib.config.ExperimentConfig` and proves it: the
rebuilt configuration, keyed as the run store keys it with the utterance count the folder records,
must give back the folder's own name, or nothing is returned.

What a key does not hold is filled in as the run store's writers fill it: ``validation`` from the
corpus and protocol (:func:`amsnet_lib.studies.validation_for`), ``seeds`` from the folder's
``seed<s>/`` folders, ``recipe`` (a label) from the training components beyond the paper's, and the
parts of the configuration the model does not use (a branch run's fusion head) at their defaults.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..config import (CLASSIC_MODELS, LATE_WEIGHTS, MODELS, ExperimentConfig, FeatureConfig, FRLMConfig, FusionConfig,
                      SVMConfig, TrainConfig, URLMConfig)
from ..errors import AmsnetError
from .classic import classic_key
from .runstore import BRANCHES, SINGLE_STAGE, RunStore, branch_key, fusion_dirs

__all__ = ["experiment_dir_name", "experiment_like", "run_utterances"]

#: A branch run's ``config.json`` fields beyond the configuration (:func:`~amsnet_lib.train.runstore._branch_identity`).
_BRANCH_FIELDS = {"model", "corpus", "protocol", "n_folds", "split_seed", "split_file", "features", "architecture", "train",
                  "n_utterances", "normalisation", "augment", "member", "validation"}
#: What the two branch runs of one fusion head must share.
_SHARED = ("corpus", "protocol", "n_folds", "split_seed", "split_file", "features", "n_utterances", "normalisation",
           "augment", "member", "validation")


def experiment_like(run_dir) -> ExperimentConfig:
    """The configuration the run-store experiment folder ``run_dir`` (``runs/amsnet-<key>``, ``runs/urlm-<key>``,
    ``runs/late-<key>``, ``runs/compare-svm-<key>``...) was trained with.

    Keyed by :func:`experiment_dir_name` with :func:`run_utterances`, the result gives back
    ``run_dir``'s own name: checked here, so a renamed folder or an edited ``config.json`` is
    refused rather than read as something it is not.

    Raises:
        AmsnetError: ``run_dir`` is no run-store experiment folder (no ``config.json`` of one; an
            ensemble's folder, which names its members instead), a fusion head's branch folder is not
            beside it, or the rebuilt configuration keys to another name.
    """
    return _read(run_dir)[0]


def run_utterances(run_dir) -> int:
    """The utterance count ``run_dir``'s key holds (``n_utterances`` of its ``config.json``, or of its
    branches' for a fusion head): the corpus's recordings it was trained on (with an
    experiment-wide augmentation, their copies too)."""
    return _read(run_dir)[1]


def experiment_dir_name(exp: ExperimentConfig, n_items: int) -> str:
    """The run-store folder name (``<model>-<key>``) of ``exp``'s own runs on a corpus of ``n_items``
    utterances (:func:`~amsnet_lib.train.runstore.n_utterances`): a branch's or early fusion's, a
    fusion head's, or a classic baseline's."""
    if exp.model in CLASSIC_MODELS:
        return f"{exp.model}-{classic_key(exp, n_items)}"
    if exp.model in SINGLE_STAGE:
        return f"{exp.model}-{branch_key(exp.model, exp, n_items)}"
    return fusion_dirs(exp, n_items, 0, "fold", RunStore(Path("runs")))[0].parent.parent.name


# --------------------------------------------------------------------------- reading


def _read(run_dir) -> tuple[ExperimentConfig, int]:
    run_dir = Path(run_dir)
    if not run_dir.name:  # "." or "/"
        run_dir = run_dir.resolve()
    cfg = _config(run_dir)
    model = cfg.get("model")
    if "members" in cfg:
        raise AmsnetError(run_dir, "is the folder of a seed ensemble, which names its member runs instead of a configuration",
                          f"give the folder of one of its members (beside it: {', '.join(map(str, cfg['members']))})")
    if model not in MODELS:
        raise AmsnetError(run_dir, f"its config.json names no model amsnet trains ({model!r})",
                          "give a run-store experiment folder, <store>/<model>-<key>, e.g. runs/amsnet-05f41993d300")
    try:
        if model in CLASSIC_MODELS:
            exp, n = _classic(cfg)
        elif "branch_runs" in cfg:
            exp, n = _fusion(run_dir, cfg)
        else:
            exp, n = _single_stage(cfg)
    except (TypeError, ValueError, KeyError, IndexError) as e:
        if isinstance(e, AmsnetError):
            raise
        raise AmsnetError(run_dir / "config.json", f"is not the config.json of a run amsnet can read back ({type(e).__name__}: {e})",
                          "give a folder written by this version of amsnet (amsnet train), or fit without --like, "
                          "with the options of the run") from None
    exp = _with_seeds(exp, run_dir)
    name = experiment_dir_name(exp, n)
    if name != run_dir.name:
        raise AmsnetError(run_dir, f"its config.json rebuilds a configuration whose run-store folder is {name}, not this "
                                   "folder's own name, so it cannot be told what this run was trained with",
                          "give the folder as the run store wrote it (not renamed, its config.json and those of its "
                          "branches unedited), or fit without --like, with the options the run was trained with")
    return exp, n


def _config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise AmsnetError(run_dir, "is not a folder", "give a run-store experiment folder, <store>/<model>-<key>, "
                                                       "e.g. runs/amsnet-05f41993d300")
    if not path.is_file():
        hint = (" (a fold or seed folder: give the experiment folder above it)"
                if (run_dir / "metrics.json").is_file() or run_dir.name.startswith("seed") else "")
        raise AmsnetError(run_dir, f"holds no config.json: it is not a run-store experiment folder{hint}",
                          "give a folder <store>/<model>-<key> that amsnet train wrote, e.g. runs/amsnet-05f41993d300")
    try:
        cfg = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AmsnetError(path, f"cannot be read as JSON ({e})", "restore the file from the run store it came from") from None
    if not isinstance(cfg, dict):
        raise AmsnetError(path, "is not a JSON object", "restore the file from the run store it came from")
    return cfg


def _train(d: dict) -> TrainConfig:
    return TrainConfig(**d)


def _tuples(d: dict) -> dict:
    """JSON lists back to the tuples the configuration dataclasses hold."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def _common(cfg: dict) -> dict:
    """The :class:`ExperimentConfig` fields every branch identity records."""
    from ..studies import validation_for

    return dict(corpus=cfg["corpus"], protocol=cfg["protocol"], n_folds=cfg["n_folds"], split_seed=cfg["split_seed"],
                split_file=cfg["split_file"], features=FeatureConfig(**cfg["features"]),
                normalisation=cfg.get("normalisation", "corpus"), augment=cfg.get("augment", "none"),
                member=cfg.get("member", 0),
                # recorded only where it is not the protocol's own split (runstore._branch_identity)
                validation=cfg.get("validation", validation_for(cfg["corpus"], cfg["protocol"])))


def _single_stage(cfg: dict) -> tuple[ExperimentConfig, int]:
    """A branch (FRLM, URLM) or early fusion: its own stage-1 training."""
    unknown = sorted(set(cfg) - _BRANCH_FIELDS)
    if unknown:
        raise TypeError(f"unknown field(s) {unknown}")
    model, arch = cfg["model"], cfg["architecture"]
    common = _common(cfg)
    n_mels = common["features"].n_mels
    if model == "early":
        frlm, channels = arch
        if channels != n_mels:
            raise ValueError(f"early fusion over {channels} mel bands, features of {n_mels}")
        parts = dict(frlm=FRLMConfig(**frlm), urlm=URLMConfig(input_channels=n_mels))
    elif model == "frlm":
        parts = dict(frlm=FRLMConfig(**arch), urlm=URLMConfig(input_channels=n_mels))
    else:
        parts = dict(urlm=URLMConfig(**_tuples(arch)))
    exp = ExperimentConfig(model=model, branch_train=_train(cfg["train"]), **parts, **common)
    return _labelled(exp), cfg["n_utterances"]


def _fusion(run_dir: Path, cfg: dict) -> tuple[ExperimentConfig, int]:
    """A fusion head (AMSNet, concatenation, late fusion): its ``config.json`` and its branches'."""
    unknown = sorted(set(cfg) - {"model", "branch_runs", "fusion", "train", "late_weights", "finetune", "member"})
    if unknown:
        raise TypeError(f"unknown field(s) {unknown}")
    names = cfg["branch_runs"]
    if not (isinstance(names, list) and len(names) == len(BRANCHES)):
        raise ValueError(f"branch_runs must name {len(BRANCHES)} folders, got {names!r}")
    branches = {}
    for b, name in zip(BRANCHES, names):
        d = run_dir.parent / str(name)
        if not (d / "config.json").is_file():
            raise AmsnetError(d, f"the {b.upper()} run that {run_dir.name} stands on (its config.json's branch_runs) is not "
                                 "beside it, and a fusion head's configuration is in part its branches'",
                              "give the fusion folder inside the run store that holds its branch folders too "
                              "(the committed runs/ does)")
        branch = _config(d)
        if branch.get("model") != b or "branch_runs" in branch:
            raise AmsnetError(d, f"is named as {run_dir.name}'s {b.upper()} run but its config.json is a {branch.get('model')!r} run's",
                              "restore the run store's folders as amsnet train wrote them")
        branches[b] = branch
    differ = [k for k in _SHARED if branches["frlm"].get(k) != branches["urlm"].get(k)]
    if differ:
        raise AmsnetError(run_dir, f"its two branch runs differ in {', '.join(differ)}, which one fusion head's branches share",
                          "restore the run store's folders as amsnet train wrote them")
    if branches["frlm"].get("member", 0) != cfg.get("member", 0):
        raise ValueError("the head's member differs from its branches'")
    frlm_exp, n = _single_stage(branches["frlm"])
    urlm_exp, _ = _single_stage(branches["urlm"])
    frlm_train = frlm_exp.branch_train if frlm_exp.branch_train != urlm_exp.branch_train else None
    exp = ExperimentConfig(
        model=cfg["model"], frlm=frlm_exp.frlm, urlm=urlm_exp.urlm, fusion=FusionConfig(**_tuples(cfg["fusion"])),
        branch_train=urlm_exp.branch_train, frlm_train=frlm_train, fusion_train=_train(cfg["train"]),
        late_weights=tuple(cfg.get("late_weights", LATE_WEIGHTS)),
        finetune=_train(cfg["finetune"]) if cfg.get("finetune") is not None else None,
        **_common(branches["frlm"]))
    return _labelled(exp), n


def _classic(cfg: dict) -> tuple[ExperimentConfig, int]:
    from ..studies import validation_for

    if cfg.get("functionals") != CLASSIC_MODELS[cfg["model"]]:
        raise ValueError(f"{cfg['model']} reads {CLASSIC_MODELS[cfg['model']]}, its config.json {cfg.get('functionals')!r}")
    exp = ExperimentConfig(model=cfg["model"], corpus=cfg["corpus"], protocol=cfg["protocol"], n_folds=cfg["n_folds"],
                           split_seed=cfg["split_seed"], split_file=cfg["split_file"],
                           features=FeatureConfig.for_corpus(cfg["corpus"], sample_rate=cfg["sample_rate"]),
                           svm=SVMConfig(**_tuples(cfg["svm"])), validation=validation_for(cfg["corpus"], cfg["protocol"]))
    return exp, cfg["n_utterances"]


def _labelled(exp: ExperimentConfig) -> ExperimentConfig:
    """``recipe`` is a label, in no key: ``tuned`` where a stage uses a component beyond the paper's
    training (:func:`amsnet_lib.studies.tuned`: schedule, augmentation, ... frame stacking, fine-tuning)."""
    def beyond(t: TrainConfig) -> bool:
        return any(f.metadata.get("omit_default") and getattr(t, f.name) != f.default for f in dataclasses.fields(t))

    tuned = exp.finetune is not None or exp.frlm.frame_stack != 1 or any(beyond(t) for t in exp._trainings())
    return dataclasses.replace(exp, recipe="tuned") if tuned else exp


def _with_seeds(exp: ExperimentConfig, run_dir: Path) -> ExperimentConfig:
    """The training seeds whose folders the run holds (none yet: seed 0)."""
    seeds = sorted(int(p.name[4:]) for p in run_dir.glob("seed*") if p.is_dir() and p.name[4:].isdigit())
    return dataclasses.replace(exp, seeds=tuple(seeds) or (0,))
