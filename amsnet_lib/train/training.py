"""The one training loop and evaluation path of amsnet, and the two-stage AMSNet schedule.

Stage 1 pre-trains FRLM and URLM, each with its own classifier head, on a fold's training part.
Stage 2 freezes both, computes their 128-d embeddings once (they no longer change), and trains the
fusion head (connection attention, or concatenation) on them; late fusion, beyond the paper,
instead chooses one weight for the two branches' class probabilities on the validation split
(:func:`fit_late_weight`). Early fusion trains end to end in one stage. Every stage runs through :func:`train_model` and is evaluated by :func:`evaluate_split`.

Model selection and early stopping look at a validation split drawn from each fold's training
part (:func:`amsnet_lib.data.protocols.validation_split`); a fold's test part is touched once, by the
final evaluation. Everything a fold produces is written atomically to a :class:`~amsnet_lib.train.runstore.RunStore`, so a
second run skips finished folds and an interrupted one resumes at the fold it stopped in.
"""
from __future__ import annotations

import copy
import functools
import io
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..atomic import atomic_write_bytes
from ..data.augment import augment_batch, mixup_lambda
from ..config import CLASSIC_MODELS, LATE_WEIGHTS, MONITORS, ExperimentConfig, TrainConfig
from .classic import functionals_of, run_classic_fold
from .devices import _LEGACY_DEVICE, _join_devices, _training_device, device_name
from ..errors import AmsnetError
from ..data.features import Features, Normaliser
from ..metrics import confusion_matrix, per_class_recall, unweighted_accuracy, weighted_accuracy
from ..models import build_model, call_model
from ..data.protocols import Fold, make_folds, original_rows
from .runstore import (BRANCHES, SINGLE_STAGE, RunStore, _branch_identity, branch_key, corpus_relative_paths, _describe,
                       _finetune_identity, _member_identity, fusion_dirs, _late_identity, n_utterances, _stage1_done)
from ..data.splits import FoldData, _take, stage_fold_data

__all__ = [
    "ExperimentResult",
    "evaluate_split",
    "fit_final",
    "fit_late_weight",
    "run_experiment",
    "train_model",
]



# --------------------------------------------------------------------------- utilities


def seed_everything(seed: int) -> None:
    """Same seed, same data → same numbers on the same machine."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _make_optimizer(params, cfg: TrainConfig):
    name = cfg.optimizer.lower()
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer must be rmsprop, adam, adamw or sgd, got {cfg.optimizer!r}")


def _make_schedule(opt, cfg: TrainConfig, steps_per_epoch: int):
    """The learning-rate schedule of ``cfg.schedule``, stepped once per optimiser step (None: constant)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total,
                                                   pct_start=cfg.warmup or 0.3, anneal_strategy="cos")
    if cfg.schedule == "cosine":
        warm = int(round(cfg.warmup * total))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

        return torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return None


def _draw_weights(train: dict[str, torch.Tensor], cfg: TrainConfig) -> torch.Tensor | None:
    """Each training utterance's chance of a draw under ``cfg.balance`` (None: every one once, shuffled):
    one over the size of its class (``class``) or of its corpus-and-class cell (``corpus_class``, the
    ``corpus`` codes of a table of several corpora; without them, its class), so every class, or cell,
    is drawn alike."""
    if cfg.balance == "none":
        return None
    cells = train["labels"].long().cpu()
    if cfg.balance == "corpus_class" and "corpus" in train:
        cells = train["corpus"].long().cpu() * (int(cells.max()) + 1) + cells
    _, inverse, counts = torch.unique(cells, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse].double()


def _class_weights(labels: torch.Tensor, n_classes: int, cfg: TrainConfig) -> torch.Tensor | None:
    """Inverse class frequency of the training part, mean 1 over the utterances (``balanced``), or None."""
    if cfg.class_weighting != "balanced":
        return None
    counts = torch.bincount(labels, minlength=n_classes).float().clamp_min(1.0)
    return (len(labels) / (n_classes * counts)).to(labels.device)


# --------------------------------------------------------------------------- loop and evaluation


@torch.no_grad()
def predict_logits(model, data: dict[str, torch.Tensor], batch_size: int = 256):
    """Logits ``(N, C)`` and fusion weights ``(N, 2)`` (or None) in eval mode."""
    model.eval()
    n = len(data["labels"]) if "labels" in data else len(next(iter(data.values())))
    logits, alphas = [], []
    for s in range(0, n, batch_size):
        lg, al = call_model(model, {k: v[s : s + batch_size] for k, v in data.items()})
        logits.append(lg.float().cpu())
        if al is not None:
            alphas.append(al.float().cpu())
    if not logits:
        return torch.zeros(0, 0), None
    return torch.cat(logits), (torch.cat(alphas) if alphas else None)


def evaluate_split(model, data: dict[str, torch.Tensor], n_classes: int, batch_size: int = 256) -> dict:
    """The one evaluation path: loss, WA (eq 15), UA (eq 16), recall, confusion, predictions."""
    logits, alpha = predict_logits(model, data, batch_size)
    y = data["labels"].cpu()
    if len(y) == 0:  # e.g. the final model trained on all data has no test part
        nan = float("nan")
        return {"loss": nan, "wa": nan, "ua": nan, "recall": np.full(n_classes, np.nan), "confusion": np.zeros((n_classes, n_classes), np.int64),
                "pred": np.zeros(0, np.int64), "proba": np.zeros((0, n_classes), np.float32), "alpha": None}
    pred = logits.argmax(1)
    yn, pn = y.numpy(), pred.numpy()
    return {
        "loss": float(F.cross_entropy(logits, y)) if len(y) else float("nan"),
        "wa": weighted_accuracy(yn, pn),
        "ua": unweighted_accuracy(yn, pn, n_classes),
        "recall": per_class_recall(yn, pn, n_classes),
        "confusion": confusion_matrix(yn, pn, n_classes),
        "pred": pn,
        "proba": torch.softmax(logits, 1).numpy(),
        "alpha": None if alpha is None else alpha.numpy(),
    }


@dataclass
class TrainResult:
    """What :func:`train_model` returns: the best epoch's weights are loaded into the model."""

    curves: pd.DataFrame
    best_epoch: int
    seconds: float


def train_model(
    model,
    train: dict[str, torch.Tensor],
    val: dict[str, torch.Tensor] | None,
    cfg: TrainConfig,
    n_classes: int,
    *,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train",
    resume_path: str | os.PathLike | None = None,
    save_every: int = 5,
    on_epoch=None,
) -> TrainResult:
    """The one training loop: cross-entropy (eqs 13-14), mini-batches, model selection.

    The checkpoint kept is the epoch with the best ``cfg.monitor`` on the validation split;
    training stops after ``cfg.patience`` epochs without improvement. Without a validation set
    the last epoch is kept.

    Args:
        model: a module with ``inputs`` (names of the batch entries it takes).
        train, val: dicts of tensors on the model's device, with ``labels``.
        cfg: optimiser, learning rate, batch size, epochs, patience.
        n_classes: number of classes (for UA).
        seed: seeds initialisation-independent randomness: batch order, dropout.
        resume_path: where the loop's complete state (weights, optimiser, random generators,
            best epoch so far, curves) is saved atomically every ``save_every`` epochs. If the
            file exists, training continues from it, with the numbers an uninterrupted run gives.
        on_epoch: called as ``on_epoch(epoch)`` (1-based) after each epoch, for diagnostics that look
            at the model as it trains (``scripts/diagnostics/test_selection.py``); what it returns is ignored,
            so it cannot steer selection or stopping. It must leave the model's weights alone.
    """
    from tqdm.auto import tqdm

    seed_everything(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _make_optimizer(params, cfg)
    gen = torch.Generator().manual_seed(seed)
    n = len(train["labels"])
    sched = _make_schedule(opt, cfg, math.ceil(n / cfg.batch_size))
    weight = _class_weights(train["labels"], n_classes, cfg)
    draws = _draw_weights(train, cfg)
    has_val = val is not None and len(val["labels"]) > 0
    best = (-float("inf"), -float("inf"))
    best_state, best_epoch, since_best = None, 0, 0
    rows = []
    start, elapsed = 0, 0.0
    resume_path = Path(resume_path) if resume_path is not None else None
    if resume_path is not None and resume_path.is_file():
        fresh = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()),
                 None if sched is None else sched.state_dict(), gen.get_state(), torch.get_rng_state())
        try:
            # weights_only, like every checkpoint amsnet reads: a resume point is plain tensors, numbers and
            # lists, and a file put in the run store's place must not run code when it is loaded
            st = torch.load(resume_path, map_location="cpu", weights_only=True)
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            if sched is not None:
                sched.load_state_dict(st["scheduler"])
            gen.set_state(st["generator"])
            torch.set_rng_state(st["torch_rng"])
            best, best_state, best_epoch, since_best = st["best"], st["best_state"], st["best_epoch"], st["since_best"]
            rows, start, elapsed = st["rows"], st["epoch"], st["elapsed"]
        except Exception as error:  # unreadable or from another model: start this stage afresh, and say so
            import warnings

            warnings.warn(f"{resume_path}: resume point not used ({type(error).__name__}: {str(error)[:200]}); "
                          "this stage trains from its start", RuntimeWarning, stacklevel=2)
            model.load_state_dict(fresh[0])  # a half-applied resume point must not leak into the fresh start
            opt.load_state_dict(fresh[1])
            if sched is not None:
                sched.load_state_dict(fresh[2])
            gen.set_state(fresh[3])
            torch.set_rng_state(fresh[4])
            start, rows = 0, []
    t0 = time.perf_counter() - elapsed
    bar = tqdm(range(start, cfg.epochs), desc=desc, unit="ep", disable=not progress, leave=False, initial=start, total=cfg.epochs)
    for epoch in bar:
        model.train()
        # an epoch: every utterance once, shuffled; or (cfg.balance) as many weighted draws with replacement
        perm = (torch.randperm(n, generator=gen) if draws is None
                else torch.multinomial(draws, n, replacement=True, generator=gen)).to(train["labels"].device)
        total_loss, correct = 0.0, 0
        for s in range(0, n, cfg.batch_size):
            batch = _take(train, perm[s : s + cfg.batch_size])
            if len(batch["labels"]) < 2 and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
                continue  # batch norm cannot train on a single utterance
            y, y_mix, lam = batch["labels"], None, 1.0
            if cfg.augments:  # the tuned recipe's augmentation; validation and test see plain inputs
                lam = mixup_lambda(cfg.mixup, gen)
                batch, y_mix = augment_batch(batch, cfg, gen, lam)
            logits, _ = call_model(model, batch)
            loss = F.cross_entropy(logits, y, weight=weight, label_smoothing=cfg.label_smoothing)
            if y_mix is not None:  # mixup: the loss mixes as the inputs did
                loss = lam * loss + (1 - lam) * F.cross_entropy(logits, y_mix, weight=weight,
                                                                label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            if sched is not None:
                sched.step()
            total_loss += loss.item() * len(batch["labels"])
            correct += int((logits.argmax(1) == y).sum())
        row = {"epoch": epoch + 1, "train_loss": total_loss / n, "train_acc": correct / n}
        if has_val:
            ev = evaluate_split(model, val, n_classes, cfg.batch_size)
            row.update(val_loss=ev["loss"], val_wa=ev["wa"], val_ua=ev["ua"])
            # Higher is better: (-loss,) for val_loss; (UA, -loss) for val_ua.
            score = (-ev["loss"], 0.0) if cfg.monitor == "val_loss" else (ev["ua"], -ev["loss"])
            if score > best:
                best, best_epoch, since_best = score, epoch + 1, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                since_best += 1
            bar.set_postfix(val_loss=f"{ev['loss']:.3f}", val_ua=f"{ev['ua']:.3f}", best_epoch=best_epoch)
        rows.append(row)
        if on_epoch is not None:
            on_epoch(epoch + 1)
        if has_val and cfg.patience and since_best >= cfg.patience:
            break
        if resume_path is not None and (epoch + 1) % save_every == 0:
            buf = io.BytesIO()
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                        "scheduler": None if sched is None else sched.state_dict(),
                        "torch_rng": torch.get_rng_state(), "best": best, "best_state": best_state, "best_epoch": best_epoch,
                        "since_best": since_best, "rows": rows, "epoch": epoch + 1, "elapsed": time.perf_counter() - t0}, buf)
            atomic_write_bytes(resume_path, buf.getvalue())
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = len(rows)
    return TrainResult(pd.DataFrame(rows), best_epoch, time.perf_counter() - t0)


# --------------------------------------------------------------------------- experiments


def summary_variant(c: ExperimentConfig) -> str:
    """The ``variant`` of ``c``'s row in ``summary.csv``: its own label, and a non-default
    normalisation or experiment-wide augmentation, which are part of what the row measures."""
    return ", ".join(v for v in (c.variant, f"normalisation={c.normalisation}" if c.normalisation != "corpus" else "",
                                 f"augment={c.augment}" if c.augment != "none" else "") if v)


@dataclass
class ExperimentResult:
    """All folds and seeds of one experiment.

    Attributes:
        config: the experiment.
        folds: one row per (seed, fold): wa, ua (fractions), recall_<class>, sizes, best epoch,
            seconds, device (what trained it: ``cpu``, ``cuda (<GPU>)``; a fusion fold names its
            branches' devices too) and feature_precision (``float16`` for a rounded feature bundle).
        curves: per-epoch curves, with ``seed``, ``fold`` and ``stage`` columns.
        predictions: one row per test utterance and seed: path (relative to the corpus's audio
            directory, see :func:`corpus_relative_paths`), true, pred, p_<class>, and for AMSNet
            the fusion weights alpha_frlm, alpha_urlm.
        classes: class names.
        missing: ``(seed, fold)`` not finished (only with ``finished_only``); a result with
            missing folds is not comparable with a complete one and its summary says so.
    """

    config: ExperimentConfig
    folds: pd.DataFrame
    curves: pd.DataFrame
    predictions: pd.DataFrame
    classes: list[str]
    missing: list = field(default_factory=list)

    @property
    def confusion(self) -> np.ndarray:
        """Confusion matrix summed over folds (and seeds): rows true, columns predicted."""
        return confusion_matrix(self.predictions["true"], self.predictions["pred"], len(self.classes))

    def summary(self) -> dict:
        """Mean and standard deviation over folds and seeds, in percent."""
        c = self.config
        wa, ua = 100 * self.folds["wa"], 100 * self.folds["ua"]
        return {
            "corpus": c.corpus,
            "protocol": c.protocol,
            "recipe": c.recipe,
            "model": c.model,
            "variant": summary_variant(c),
            "n_folds": int(self.folds["fold"].nunique()),
            "complete": not self.missing,
            "n_seeds": int(self.folds["seed"].nunique()),
            "wa": round(float(wa.mean()), 2),
            "ua": round(float(ua.mean()), 2),
            "wa_std": round(float(wa.std(ddof=0)), 2),
            "ua_std": round(float(ua.std(ddof=0)), 2),
            "train_seconds": round(float(self.folds["seconds"].sum()), 1),
            "trained_on": self._trained_on(),
        }

    def validation(self) -> dict:
        """The validation figures at the epoch each fold selected, mean over folds and seeds: loss
        (the default selection criterion, ``TrainConfig.monitor``), WA and UA (percent), of the
        experiment's own stage (a fusion's head, not its branches).

        What a study compares to choose a hyper-parameter without looking at the test folds. The
        fusion heads' validation split is the one their branches were early-stopped on, so their
        figures are optimistic in absolute terms, alike for every head compared.
        """
        own = self.curves[self.curves["stage"] == self.config.model]
        if own.empty:
            raise ValueError(f"no {self.config.model} curves in this result (stages: {sorted(self.curves['stage'].unique())})")
        chosen = self.folds[["seed", "fold", "best_epoch"]].rename(columns={"best_epoch": "epoch"})
        best = own.merge(chosen, on=["seed", "fold", "epoch"])
        if len(best) != len(chosen):
            raise ValueError(f"curves lack the selected epoch of {len(chosen) - len(best)} fold(s)")
        return {"val_loss": round(float(best["val_loss"].mean()), 4),
                "val_wa": round(100 * float(best["val_wa"].mean()), 2),
                "val_ua": round(100 * float(best["val_ua"].mean()), 2)}

    def _trained_on(self) -> str:
        """The devices that trained the folds (and their branches); float16-rounded features if any."""
        f = self.folds
        out = _join_devices(f["device"].fillna(_LEGACY_DEVICE) if "device" in f else [_LEGACY_DEVICE])
        if "feature_precision" in f and (f["feature_precision"] == "float16").any():
            out += ", float16 features"
        return out

    def fold_table(self) -> pd.DataFrame:
        """Per-fold WA/UA in percent, then the mean row."""
        t = self.folds[["seed", "fold", "wa", "ua"]].copy()
        t[["wa", "ua"]] *= 100
        mean = pd.DataFrame([{"seed": "", "fold": "mean", "wa": t["wa"].mean(), "ua": t["ua"].mean()}])
        return pd.concat([t, mean], ignore_index=True).round(2)


def branch_model(name: str, exp: ExperimentConfig, n_classes: int):
    return build_model(name, n_classes, frlm=exp.frlm, urlm=exp.urlm, fusion=exp.fusion, n_mels=exp.features.n_mels)


def _prediction_frame(table: pd.DataFrame, idx, ev: dict, classes, seed, fold) -> pd.DataFrame:
    paths = np.asarray(table["path"].astype(str), dtype=object)
    # augmented copies live outside the corpus: paths relative to the corpus root, which the originals give
    original = original_rows(table)
    paths[original] = corpus_relative_paths(paths[original])
    path = paths[idx]
    df = pd.DataFrame({"seed": seed, "fold": fold, "path": path, "true": None, "pred": ev["pred"]})
    df["true"] = [int(v) for v in ev["true"]]
    for i, c in enumerate(classes):
        df[f"p_{c}"] = ev["proba"][:, i].round(5)
    if ev["alpha"] is not None:
        df["alpha_frlm"] = ev["alpha"][:, 0].round(5)
        df["alpha_urlm"] = ev["alpha"][:, 1].round(5)
    return df


def _metrics_record(ev: dict, classes, device, features: Features, **extra) -> dict:
    rec = {"wa": ev["wa"], "ua": ev["ua"], "loss": ev["loss"], "device": device_name(device),
           "feature_precision": features.table.attrs.get("feature_precision", "float32")}
    rec.update({f"recall_{c}": (None if np.isnan(r) else float(r)) for c, r in zip(classes, ev["recall"])})
    rec.update(extra)
    return rec


def _run_single_stage(name, exp, features, fold, seed, store, device, progress, train=True, need_weights=False) -> Path | None:
    """Train FRLM, URLM or early fusion on one fold (stage 1); cached in the run store.

    ``need_weights``: the caller loads the weights (a fusion stage). A finished fold whose
    ``model.pt`` is absent (the committed run store holds results, not weights) is then trained
    again, with the same seed.
    """
    n_classes = len(features.classes)
    d = store.fold_dir(name, branch_key(name, exp, n_utterances(features, exp)), seed, fold.name)
    done = _stage1_done(store, d, need_weights)
    if not done and not train:
        return None  # a look at the store writes nothing to it
    _describe(d.parent.parent, _branch_identity(name, exp, n_utterances(features, exp)))
    if done:
        return d
    fd = stage_fold_data(exp, name, features, fold, seed, device)
    seed_everything(exp.init_seed(seed))
    model = branch_model(name, exp, n_classes).to(device)
    res = train_model(model, fd.fit, fd.val, exp.stage_train(name), n_classes, seed=exp.init_seed(seed), progress=progress, desc=f"{name} {fold.name}",
                      resume_path=d / "partial.pt")
    ev = evaluate_split(model, fd.test, n_classes)
    ev["true"] = fd.test["labels"].cpu().numpy()
    sizes = {k: v for k, v in fd.sizes.items() if k != "normaliser"}
    metrics = _metrics_record(ev, features.classes, device, features, seed=seed, fold=fold.name, best_epoch=res.best_epoch, seconds=res.seconds, **sizes,
                              normaliser=fd.sizes["normaliser"].state_dict())
    curves = res.curves.assign(stage=name)
    store.save(d, metrics=metrics, curves=curves, predictions=_prediction_frame(features.table, fold.test, ev, features.classes, seed, fold.name), state=model.state_dict())
    return d


@torch.no_grad()
def branch_embeddings(branches: dict, data: dict, batch_size: int = 256) -> dict:
    """Frozen branch outputs h1 (FRLM) and h2 (URLM), computed once per fold."""
    out = {"h1": [], "h2": []}
    if len(data["labels"]) == 0:
        return {"h1": data["frames"].new_zeros(0, 0), "h2": data["frames"].new_zeros(0, 0), "labels": data["labels"]}
    for s in range(0, len(data["labels"]), batch_size):
        b = {k: v[s : s + batch_size] for k, v in data.items()}
        out["h1"].append(branches["frlm"].embed(b["frames"], b["mask"]))
        out["h2"].append(branches["urlm"].embed(b["spec"]))
    res = {k: torch.cat(v) for k, v in out.items()}
    res.update({k: data[k] for k in ("labels", "corpus") if k in data})  # corpus: the head's sampling
    return res


def frozen_fusion_model(exp: ExperimentConfig, n_classes: int, branch_dirs: dict, store: RunStore, device, seed: int):
    """The fusion model of ``exp``: its head initialised from ``seed``, the branches' pre-trained
    weights (``branch_dirs``) loaded and frozen."""
    # seeded before the head is built: its initial weights must not depend on what this process
    # ran before (branches trained here or read back, a resumed run, a worker process)
    seed_everything(seed)
    model = branch_model(exp.model, exp, n_classes).to(device)
    model.frlm.load_state_dict(store.load_state(branch_dirs["frlm"], device))
    model.urlm.load_state_dict(store.load_state(branch_dirs["urlm"], device))
    model.frlm.eval()
    model.urlm.eval()
    for p in list(model.frlm.parameters()) + list(model.urlm.parameters()):
        p.requires_grad_(False)  # the paper holds pre-trained branch weights fixed
    return model


def fusion_embeddings(model, fd: FoldData) -> dict:
    """The frozen branches' outputs on the fold's fit and validation parts (computed once per fold)."""
    branches = {"frlm": model.frlm, "urlm": model.urlm}
    return {k: branch_embeddings(branches, getattr(fd, k)) for k in ("fit", "val")}


def train_fusion_head(model, emb: dict, exp: ExperimentConfig, n_classes: int, seed: int, progress: bool = False,
                       desc: str = "train", resume_path: Path | None = None, on_epoch=None) -> TrainResult:
    """Stage 2: ``model.head`` trained on the branch embeddings ``emb`` (batch order from ``seed``)."""
    seed_everything(seed)
    return train_model(model.head, emb["fit"], emb["val"], exp.fusion_train, n_classes, seed=seed, progress=progress,
                       desc=desc, resume_path=resume_path, on_epoch=on_epoch)


def _finetune(model, fd: FoldData, exp: ExperimentConfig, n_classes: int, seed: int, progress: bool = False,
              desc: str = "fine-tune", resume_path: Path | None = None) -> TrainResult:
    """Stage 3 (tuned recipe, ``exp.finetune``): the whole fusion model, branches unfrozen, trained
    end to end on the fold's inputs after its head was trained on frozen embeddings; the epoch with
    the best validation ``monitor`` is kept (its weights are loaded into ``model``)."""
    for p in model.parameters():
        p.requires_grad_(True)
    seed_everything(seed)
    res = train_model(model, fd.fit, fd.val, exp.finetune, n_classes, seed=seed, progress=progress, desc=desc,
                      resume_path=resume_path)
    model.eval()
    return res


@torch.no_grad()
def fit_late_weight(head, val: dict, n_classes: int, monitor: str = "val_loss",
                    weights=LATE_WEIGHTS, fit: dict | None = None) -> TrainResult:
    """Choose late fusion's weight w on held-out branch outputs; sets ``head.weight`` to it.

    Each candidate w (FRLM's share; URLM gets 1 − w) is scored on ``val`` by ``monitor``: the
    cross-entropy of the fused probabilities (``val_loss``, lower is better) or UA then
    cross-entropy (``val_ua``). Ties go to the w nearest 0.5, the plain average, so equally good
    branches are averaged. The test part is never seen.

    Args:
        head: a :class:`~amsnet_lib.models.LateFusionHead`.
        val: the validation split's branch outputs ``h1``, ``h2`` (N, dim) and ``labels`` (N,).
        n_classes: number of classes (for UA).
        monitor: ``val_loss`` or ``val_ua`` (``TrainConfig.monitor``).
        weights: the candidate w, each in [0, 1] (``ExperimentConfig.late_weights``); a single one
            is kept as it is (a fixed weight needs no validation split).
        fit: the training part's outputs, only for the ``train_loss``/``train_acc`` columns.

    Returns:
        A :class:`TrainResult` whose curves have one row per candidate (``epoch`` numbers the
        candidates from 1, ``weight`` is w) and whose ``best_epoch`` is the chosen one's number.
    """
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be val_loss or val_ua, got {monitor!r}")
    if len(val["labels"]) == 0 and len(weights) > 1:
        raise ValueError("late fusion chooses its weight on the validation split, which is empty. "
                         "Fix: set TrainConfig.val_fraction > 0.")
    t0 = time.perf_counter()
    rows, best, best_i = [], None, 0
    for i, w in enumerate(weights):
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"late fusion weights must lie in [0, 1], got {w}")
        head.weight.fill_(float(w))
        ev = evaluate_split(head, val, n_classes)
        row = {"epoch": i + 1, "weight": float(w)}
        if fit is not None and len(fit["labels"]):
            tr = evaluate_split(head, fit, n_classes)
            row.update(train_loss=tr["loss"], train_acc=tr["wa"])
        row.update(val_loss=ev["loss"], val_wa=ev["wa"], val_ua=ev["ua"])
        rows.append(row)
        score = (-ev["loss"],) if monitor == "val_loss" else (ev["ua"], -ev["loss"])
        score = (*score, -abs(w - 0.5))
        if best is None or score > best:
            best, best_i = score, i
    head.weight.fill_(float(weights[best_i]))
    return TrainResult(pd.DataFrame(rows), best_i + 1, time.perf_counter() - t0)


def _run_fusion(exp, features, fold, seed, store, device, progress, train=True, need_weights=False) -> Path | None:
    """Stage 2: connection attention (AMSNet), concatenation or late fusion over frozen pre-trained branches.

    ``need_weights``: as :func:`_run_single_stage`'s, for the fold's head (or fine-tuned model)."""
    n_classes = len(features.classes)
    d, branch_dirs = fusion_dirs(exp, n_utterances(features, exp), seed, fold.name, store)
    branch_runs = [branch_dirs[b].parent.parent.name for b in BRANCHES]
    done = _stage1_done(store, d, need_weights)
    if not done and not train:
        return None
    _describe(d.parent.parent, {"model": exp.model, "branch_runs": branch_runs, "fusion": exp.fusion, "train": exp.fusion_train,
                                **_late_identity(exp), **_finetune_identity(exp), **_member_identity(exp)})
    if done:
        return d
    for b in BRANCHES:  # pre-trained (or read back) first; retrained when only its results were kept
        _run_single_stage(b, exp, features, fold, seed, store, device, progress, need_weights=True)
    fd = stage_fold_data(exp, "fusion", features, fold, seed, device)
    model = frozen_fusion_model(exp, n_classes, branch_dirs, store, device, exp.init_seed(seed))
    emb = fusion_embeddings(model, fd)
    if exp.model == "late":
        res = fit_late_weight(model.head, emb["val"], n_classes, exp.fusion_train.monitor, exp.late_weights, fit=emb["fit"])
    else:
        res = train_fusion_head(model, emb, exp, n_classes, exp.init_seed(seed), progress=progress, desc=f"{exp.model} {fold.name}",
                                 resume_path=d / "partial.pt")
        if _finetune_identity(exp):
            head_seconds = res.seconds
            res = _finetune(model, fd, exp, n_classes, exp.init_seed(seed), progress, desc=f"{exp.model} {fold.name} fine-tune",
                            resume_path=d / "partial_finetune.pt")
            res.seconds += head_seconds
            (d / "partial.pt").unlink(missing_ok=True)
    ev = evaluate_split(model, fd.test, n_classes)  # end to end through the full model, as at inference
    ev["true"] = fd.test["labels"].cpu().numpy()
    sizes = {k: v for k, v in fd.sizes.items() if k != "normaliser"}
    branch_metrics = [json.loads((branch_dirs[b] / "metrics.json").read_text()) for b in BRANCHES]
    metrics = _metrics_record(ev, features.classes, device, features, seed=seed, fold=fold.name, best_epoch=res.best_epoch,
                              seconds=res.seconds + sum(m["seconds"] for m in branch_metrics), fusion_seconds=res.seconds,
                              **sizes, normaliser=fd.sizes["normaliser"].state_dict())
    # the fold's numbers come from its branches too: name every device that trained a part of it
    metrics["device"] = _join_devices([metrics["device"]] + [_LEGACY_DEVICE if "device" not in m else m["device"] for m in branch_metrics])
    # The fold keeps only the fusion head's weights; the branches' are those of the same seed and
    # fold of the branch runs its config.json names (the committed run store holds no copies).
    store.save(d, metrics=metrics, curves=res.curves.assign(stage=exp.model),
               predictions=_prediction_frame(features.table, fold.test, ev, features.classes, seed, fold.name),
               # fine-tuned: the branches changed too, so the fold keeps the whole model
               state=model.state_dict() if _finetune_identity(exp) else model.head.state_dict())
    (d / "partial_finetune.pt").unlink(missing_ok=True)
    return d


def load_fold_model(exp: ExperimentConfig, d: Path, n_classes: int, store: RunStore, device="cpu"):
    """The trained model of a finished fold directory ``d`` of ``exp``, in eval mode.

    A fusion fold (AMSNet, concatenation, late fusion) holds its head; its branches are the same seed and fold
    of the branch runs named in its experiment's ``config.json``.
    """
    model = branch_model(exp.model, exp, n_classes).to(device)
    if exp.model in SINGLE_STAGE:
        model.load_state_dict(store.load_state(d, device))
        return model.eval()
    if _finetune_identity(exp):  # fine-tuned end to end: the fold holds the whole model
        model.load_state_dict(store.load_state(d, device))
        return model.eval()
    branch_runs = json.loads((d.parent.parent / "config.json").read_text())["branch_runs"]
    for b, run in zip(BRANCHES, branch_runs):
        getattr(model, b).load_state_dict(store.load_state(store.root / run / d.parent.name / d.name, device))
    model.head.load_state_dict(store.load_state(d, device))
    return model.eval()


def run_fold(exp: ExperimentConfig, features: Features, fold: Fold, seed: int, store: RunStore, device, progress: bool = True,
             train: bool = True, functionals=None, need_weights: bool = False) -> Path | None:
    """Train and evaluate ``exp.model`` on one fold and seed; returns its run-store directory.

    With ``train=False`` nothing is trained: the directory of a finished fold, else ``None``.
    ``functionals``: a classic baseline's inputs, or a callable giving them (:mod:`amsnet_lib.train.classic`).
    ``need_weights``: the caller loads the fold's model, so a finished fold whose ``model.pt`` is absent
    (a fresh clone's run store holds results, not weights) is trained again, with the same seed.
    """
    if exp.model in CLASSIC_MODELS:  # scikit-learn on openSMILE functionals, no network
        return run_classic_fold(exp, features, fold, seed, store, train=train, functionals=functionals)
    if exp.model in SINGLE_STAGE:
        return _run_single_stage(exp.model, exp, features, fold, seed, store, device, progress, train, need_weights)
    return _run_fusion(exp, features, fold, seed, store, device, progress, train, need_weights)


def _check_trainable(features: Features) -> None:
    """Refuse a corpus no classifier can be trained on: one class, or a class of one utterance
    (which the validation split or a test fold takes whole, so that it is never learned)."""
    counts = {c: int((features.labels == i).sum()) for i, c in enumerate(features.classes)}
    present = {c: n for c, n in counts.items() if n}
    corpus = features.table.attrs.get("corpus", "given")
    if len(present) < 2:
        raise AmsnetError(None, f"the {corpus} corpus has {len(present)} class{'' if len(present) == 1 else 'es'} with "
                                 f"utterances ({present}); a classifier needs two or more",
                          "add utterances of the other classes, or check the labels (folder names, the manifest's "
                          "label column)")
    single = sorted(c for c, n in present.items() if n < 2)
    if single:
        raise AmsnetError(None, f"class(es) {single} of the {corpus} corpus have a single utterance, which a validation split or test fold "
                                 "takes whole, so the model could never learn them",
                          "give every class at least 2 utterances (far more for a useful model), or leave those "
                          "classes out of the manifest")


def run_experiment(
    exp: ExperimentConfig,
    features: Features,
    *,
    store: RunStore | str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    finished_only: bool = False,
    only_folds: list[str] | None = None,
    functionals=None,
) -> ExperimentResult:
    """Train and evaluate a model under a protocol, over all folds and seeds.

    Finished folds are read back from the run store instead of retrained.

    Args:
        exp: the experiment configuration.
        features: the corpus' features (unnormalised; each fold normalises on its own training
            part).
        store: run store or its directory; default ``$AMSNET_RUN_DIR`` or ``<repo>/runs``.
        device: default CUDA when available, else CPU.
        progress: tqdm bars over folds and epochs.
        finished_only: train nothing; collect the folds the run store already holds (a look at a
            run still in progress). The result's ``missing`` lists the others.
        only_folds: run just these folds (by name, e.g. ``["fold0"]`` or speakers ``["03"]``);
            separate processes can so share the folds of one experiment and one run store.
        functionals: a classic baseline's (``exp.model`` in :data:`~amsnet_lib.config.CLASSIC_MODELS`)
            float32 ``(N, D)`` openSMILE functionals of ``features.table``, or a callable returning
            them (called when a fold first needs them); default: computed from the audio through the
            feature cache (:func:`amsnet_lib.train.classic.functionals_of`).
    """
    from tqdm.auto import tqdm

    if not finished_only:
        _check_trainable(features)
    store = store if isinstance(store, RunStore) else RunStore(store)
    device = _training_device(device)
    folds = make_folds(features.table, exp.protocol, n_folds=exp.n_folds, split_seed=exp.split_seed, split_file=exp.split_file)
    if only_folds:
        unknown = sorted(set(only_folds) - {f.name for f in folds})
        if unknown:
            raise ValueError(f"unknown folds {unknown}; this protocol has {[f.name for f in folds]}")
        folds = [f for f in folds if f.name in set(only_folds)]
    rows, curves, preds, missing = [], [], [], []
    jobs = [(s, f) for s in exp.seeds for f in folds]
    # a classic baseline's functionals: computed (or read from the cache) once, when a fold first needs them
    if exp.model in CLASSIC_MODELS and functionals is None:
        functionals = functools.cache(lambda: functionals_of(exp, features, progress))
    for seed, fold in tqdm(jobs, desc=f"{exp.model} {exp.protocol}", unit="fold", disable=not progress):
        d = run_fold(exp, features, fold, seed, store, device, progress, train=not finished_only, functionals=functionals)
        if d is None:
            missing.append((seed, fold.name))
            continue
        m, c, p = store.load(d)
        m.pop("normaliser", None)
        rows.append(m)
        curves.append(c.assign(seed=seed, fold=fold.name))
        preds.append(p)
    if not rows:
        raise AmsnetError(store.root, f"holds no finished fold of {exp.model} under protocol {exp.protocol}",
                          "train it first (run_experiment without finished_only; amsnet train without --finished-only)")
    return ExperimentResult(exp, pd.DataFrame(rows), pd.concat(curves, ignore_index=True), pd.concat(preds, ignore_index=True),
                            list(features.classes), missing)


def fit_final(
    exp: ExperimentConfig,
    features: Features,
    *,
    store: RunStore | str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    seed: int | None = None,
    progress: bool = True,
):
    """Train ``exp.model`` on all of a corpus (the validation split still selects the epoch).

    This is how a model for use on new audio is made; it has no test part, so it reports no
    accuracy: quote the cross-validated figures of the same configuration instead.

    ``normalisation="utterance"`` is allowed (each utterance is standardised with its own statistics
    before the fitted ones, and the checkpoint's configuration tells inference to do the same);
    ``speaker`` is refused.

    Returns:
        ``(model, normaliser)``: the trained model in eval mode on ``device``, and the
        normalisation fitted on its training utterances (after the per-utterance step, if any).
    """
    if exp.model in CLASSIC_MODELS:
        raise AmsnetError(None, f"fit_final: {exp.model} is a baseline measured by cross-validation only; there is no "
                                "checkpoint of it to serve", "train a network (e.g. --model amsnet) for new audio, "
                                "or quote the baseline's cross-validated figures (amsnet train --model " + exp.model + ")")
    if exp.normalisation == "speaker":
        raise ValueError(
            f"fit_final: normalisation={exp.normalisation!r} needs each test speaker's statistics, which a model "
            "for new audio does not have. Fix: train the final model with normalisation='corpus' or "
            "normalisation='utterance' (each utterance standardised alone, at inference as in training)."
        )
    _check_trainable(features)
    store = store if isinstance(store, RunStore) else RunStore(store)
    device = _training_device(device)
    seed = exp.seeds[0] if seed is None else seed
    # every recording; augmented copies join the fit part of the stages that train with them
    everything = Fold("all", np.flatnonzero(original_rows(features.table)), np.zeros(0, dtype=np.int64))
    d = run_fold(exp, features, everything, seed, store, device, progress, need_weights=True)
    if exp.model not in SINGLE_STAGE:  # weights of branches read back from a committed store
        for b in BRANCHES:
            _run_single_stage(b, exp, features, everything, seed, store, device, progress, need_weights=True)
    metrics = json.loads((d / "metrics.json").read_text())
    model = load_fold_model(exp, d, len(features.classes), store, device)
    return model, Normaliser.from_state_dict(metrics["normaliser"])
