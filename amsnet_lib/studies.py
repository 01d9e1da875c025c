"""Every experiment of the paper, defined once: the configurations the notebooks and the CLI run.

Two profiles:
- ``full``: the paper's settings (RMSprop, lr 1e-4, batch 256 EmoDB / 64 IEMOCAP, r = 16) with
  our choices where the paper is silent (docs/DESIGN.md). These produce the reported numbers.
- ``quick``: a smoke run of the same pipeline for CI (tiny networks, one epoch): its accuracies
  mean nothing; counts, shapes and fold sizes are the same as in ``full``.

Studies (paper tables and figures) are lists of :class:`ExperimentConfig` that differ in one
factor; branch pre-training shared between them is trained once (the run store keys a
pre-trained branch by what determines its weights).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .config import (CORPUS_BATCH_SIZE, FUSION_TRAIN, QUICK_FEATURES, QUICK_FRLM, QUICK_FUSION, QUICK_TRAIN, QUICK_URLM, RECIPES, ExperimentConfig,
                     FeatureConfig, FRLMConfig, FusionConfig, TrainConfig, URLMConfig)

PROFILES = ("full", "quick")

ABLATION_MODELS = ("early", "frlm", "urlm", "concat", "amsnet")  # Tables 4-5, in the paper's order
SE_RATIOS = (2, 4, 8, 16, 32)  # Table 3
OPTIMIZERS = ("rmsprop", "adam", "sgd")  # Fig. 6
BATCH_SIZES = {"emodb": (32, 64, 128, 256), "iemocap": (32, 64, 128, 256)}  # Fig. 6
HIDDEN_SIZES = (32, 64, 128, 256, 512)  # Fig. 7
LEARNING_RATES = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3)  # §4.5
NORMALISATION_MODELS = ("frlm", "urlm", "concat", "amsnet")  # beyond the paper: early fusion costs most, adds least
TRAINING_SEEDS = (0, 1, 2)  # beyond the paper: the training seeds of the seed study
SEED_MODELS = ("frlm", "urlm", "concat", "amsnet")
#: Seed ensembles (beyond the paper, :mod:`amsnet_lib.train.ensemble`): members per ensemble, and the
#: models ensembled (Table 5's, AMSNet first so that a partial run has it).
ENSEMBLE_MEMBERS = 5
ENSEMBLE_MODELS = ("amsnet", "concat", "frlm", "urlm", "early")
#: The quick profile's seed study and seed ensembles (CI smoke runs): the fewest seeds and members that
#: still run every code path (more than one seed to average and spread; an ensemble size to choose
#: among several), since each further one only repeats what the first ones ran.
QUICK_TRAINING_SEEDS = (0, 1)
QUICK_ENSEMBLE_MEMBERS = 2


def ensemble_members(profile: str = "full") -> int:
    """Members per seed ensemble under ``profile`` (:data:`ENSEMBLE_MEMBERS`; quick: :data:`QUICK_ENSEMBLE_MEMBERS`)."""
    return QUICK_ENSEMBLE_MEMBERS if profile == "quick" else ENSEMBLE_MEMBERS


def experiment(corpus: str = "emodb", model: str = "amsnet", protocol: str = "paper", profile: str = "full",
               recipe: str = "paper", **overrides) -> ExperimentConfig:
    """The configuration of one experiment under a profile and a training recipe.

    Args:
        corpus: ``emodb``, ``iemocap`` or a custom corpus name.
        model: ``amsnet``, ``frlm``, ``urlm``, ``concat``, ``early`` or ``late``.
        protocol: ``paper``, ``loso``, ``loso_session`` or ``split_file``.
        profile: ``full`` or ``quick``.
        recipe: ``paper`` (the paper's stated training) or ``tuned`` (beyond the paper: the
            components of :class:`~amsnet_lib.config.TrainConfig` and frame stacking, their values
            chosen on validation by ``scripts/recipe_search.py``; :func:`tuned`).
        **overrides: fields of :class:`ExperimentConfig` to replace.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    # The paper profile is the configuration's defaults; quick overlays its changes (config.QUICK_*).
    batch = CORPUS_BATCH_SIZE.get(corpus, TrainConfig.batch_size)
    features = FeatureConfig.for_corpus(corpus)
    if profile == "full":
        branch = TrainConfig(batch_size=batch)
        fusion_train = TrainConfig(batch_size=batch, **FUSION_TRAIN)
        # FRLM overfits a fold of EmoDB (~385 training utterances) within ~100 epochs. Stronger
        # regularisation (dropout 0.5, with or without weight decay 1e-3) raised the mean
        # validation loss over the five folds (scripts/diagnostics/frlm_tuning.py, results/tables/
        # frlm_tuning.md), so FRLM keeps dropout 0.3 and no weight decay, as URLM.
        frlm, urlm, fusion = FRLMConfig(), URLMConfig(input_channels=features.n_mels), FusionConfig()
    else:
        features = dataclasses.replace(features, **QUICK_FEATURES)
        branch = TrainConfig(batch_size=batch, **QUICK_TRAIN)
        fusion_train = branch
        frlm = FRLMConfig(**QUICK_FRLM)
        urlm = URLMConfig(input_channels=features.n_mels, **QUICK_URLM)
        fusion = FusionConfig(**QUICK_FUSION)
    fields = dict(
        corpus=corpus,
        model=model,
        protocol=protocol,
        validation=validation_for(corpus, protocol),
        n_folds=5,
        features=features,
        frlm=frlm,
        urlm=urlm,
        fusion=fusion,
        branch_train=branch,
        fusion_train=fusion_train,
    )
    # one construction with the overrides in it: ExperimentConfig checks fields that belong
    # together (protocol "split_file" and its split_file) when it is built
    exp = ExperimentConfig(**{**fields, **overrides})
    if recipe == "tuned":  # the overrides again after the recipe: what the caller sets wins
        exp = dataclasses.replace(tuned(exp, quick=profile == "quick"), **overrides)
    return exp


# --------------------------------------------------------------------------- the tuned recipe
# Beyond the paper (docs/RECIPE.md). Its values are the ones scripts/recipe_search.py chose on the
# validation splits of the [paper] folds (results/tables/recipe_search_*.md); the test folds were
# read once, for these values. Defaults of every field not named here are the paper recipe's.

#: Stage 1, URLM (and the base of every stage): AdamW with warm-up and cosine decay, batch 32 (12
#: steps per epoch on an EmoDB fold instead of the paper's 2), a fixed budget with the best
#: validation epoch kept, clipping, label smoothing and the augmentation of augment.py.
TUNED_BRANCH = dict(optimizer="adamw", lr=1e-3, weight_decay=1e-2, batch_size=32, epochs=60, patience=0,
                    schedule="cosine", warmup=0.1, grad_clip=1.0, label_smoothing=0.1,
                    time_mask=0.2, freq_mask=0.15, noise_std=0.1, mixup=0.2)
#: URLM where it differs from TUNED_BRANCH (None: URLM keeps the paper recipe's training). The URLM
#: search's best trial by validation UA: trial 3 of results/tables/recipe_search_emodb_urlm.md, val UA
#: 86.11 against the paper training's 85.11 on the same splits. Until that trial's last folds had
#: finished, validation kept URLM's paper training (the two finished trials: 83.93 and 80.87); the
#: rows trained then are the study :func:`paper_urlm_study`. Speed perturbation of URLM's training audio
#: (``augment="speed"``, URLM's stage only) passed these values on validation: val UA 90.22 against 86.11,
#: higher on 4 of 5 folds (results/tables/recipe_search_emodb_urlm_speed.md); FRLM's validation refused
#: it (recipe_search_emodb_frlm_speed.md: 90.39 against 91.45), so FRLM trains without the copies. The
#: search trained every stage on the copies; URLM's own stage, as trained here, passes on validation too
#: (both validation UAs: results/tables/urlm_without_speed_emodb_paper.md). The rows trained before
#: speed perturbation joined are the study :func:`urlm_without_speed_study`.
TUNED_URLM: dict | None = dict(lr=3e-4, time_mask=0.1, freq_mask=0.1, noise_std=0.05, mixup=0.0, label_smoothing=0.1,
                               epochs=80, augment="speed")
#: ``tuned(..., urlm=PAPER_URLM)``: URLM trained as in the paper inside the tuned recipe.
PAPER_URLM = "paper"
#: The variant label of :func:`paper_urlm_study`'s rows.
PAPER_URLM_VARIANT = "URLM paper-trained"
#: The variant label of :func:`urlm_without_speed_study`'s rows.
URLM_WITHOUT_SPEED_VARIANT = "URLM without speed perturbation"
#: FRLM (and early fusion) where they differ from TUNED_BRANCH: trial 4 of the FRLM search, the
#: best of 6 finished trials on validation (results/tables/recipe_search_emodb_frlm.md).
TUNED_FRLM = dict(lr=1e-3, time_mask=0.1, freq_mask=0.0, noise_std=0.0, mixup=0.4, label_smoothing=0.0, epochs=60)
#: Frames stacked per recurrent step (FRLMConfig.frame_stack), from the same trial.
TUNED_FRAME_STACK = 4
#: Stage 2, the fusion head on frozen embeddings. Its optimiser, batch and label smoothing were set
#: before any search; its mixup of embeddings (0.2) and stage 3 below were chosen together by the
#: fusion search's grid of four on validation (results/tables/recipe_search_emodb_fusion.md: best
#: of four, val UA 90.51 against 90.14 without fine-tuning and 89.35 for the values before it).
TUNED_FUSION = dict(optimizer="adamw", lr=1e-3, weight_decay=1e-2, batch_size=32, epochs=200, patience=50,
                    schedule="constant", label_smoothing=0.1, mixup=0.2, time_mask=0.0, freq_mask=0.0, noise_std=0.0)
#: Stage 3 (concatenation and AMSNet), end-to-end fine-tuning of the whole model after the frozen
#: stage, at a tenth of the branches' peak rate (search.FINETUNE_ON, the value the fusion search
#: tried); None = none.
TUNED_FINETUNE: dict | None = dict(lr=1e-4, epochs=15, warmup=0.1)


#: The tuned recipe's components, each as the change that removes it (the paper recipe's value), for
#: the ablation study :func:`recipe_ablation_study`: the name labels the variant ``without <name>``.
RECIPE_COMPONENTS: dict[str, dict] = {
    "adamw": {"branch": {"optimizer": "rmsprop", "weight_decay": 0.0}, "frlm": {"optimizer": "rmsprop", "weight_decay": 0.0}},
    "small batches": {"branch": {"batch_size": 256}, "frlm": {"batch_size": 256}},
    "cosine schedule": {"branch": {"schedule": "constant", "warmup": 0.0}, "frlm": {"schedule": "constant", "warmup": 0.0}},
    "clipping": {"branch": {"grad_clip": 0.0}, "frlm": {"grad_clip": 0.0}},
    "label smoothing": {"branch": {"label_smoothing": 0.0}, "frlm": {"label_smoothing": 0.0},
                        "fusion": {"label_smoothing": 0.0}},
    "masking": {"branch": {"time_mask": 0.0, "freq_mask": 0.0}, "frlm": {"time_mask": 0.0, "freq_mask": 0.0}},
    "noise": {"branch": {"noise_std": 0.0}, "frlm": {"noise_std": 0.0}},
    "mixup": {"branch": {"mixup": 0.0}, "frlm": {"mixup": 0.0}},
    "frame stacking": {"frame_stack": 1},
}
RECIPE_ABLATION_MODELS = ("frlm", "urlm", "amsnet")


def tuned(exp: ExperimentConfig, quick: bool = False, **components) -> ExperimentConfig:
    """``exp`` trained with the tuned recipe (``recipe="tuned"``).

    Args:
        exp: a paper-recipe configuration (:func:`experiment`).
        quick: keep the quick profile's epochs (a smoke run).
        **components: overrides of the recipe, for the search and the ablation: ``branch`` (every
            stage-1 branch) / ``urlm`` (URLM only; :data:`PAPER_URLM`: URLM trained as in the
            paper, whatever ``branch`` says) / ``frlm`` (FRLM only) / ``fusion`` / ``finetune``
            dicts of :class:`TrainConfig` fields, and ``frame_stack``.
    """
    def stage(base: TrainConfig, *changes: dict) -> TrainConfig:
        merged = {k: v for c in changes for k, v in c.items()}
        if quick:  # a smoke run: no audio-level copies to make either
            merged.update(epochs=base.epochs, patience=base.patience, augment=base.augment)
        return dataclasses.replace(base, **merged)

    if components.get("urlm") == PAPER_URLM or (TUNED_URLM is None and not {"branch", "urlm"} & set(components)):
        branch = exp.branch_train
    else:
        branch = stage(exp.branch_train, TUNED_BRANCH, TUNED_URLM or {}, components.get("branch", {}),
                       components.get("urlm", {}))
    frlm_train = stage(exp.branch_train, TUNED_BRANCH, TUNED_FRLM, components.get("branch", {}), components.get("frlm", {}))
    fusion = stage(exp.fusion_train, TUNED_FUSION, components.get("fusion", {}))
    ft = components.get("finetune", TUNED_FINETUNE)
    finetune = None if ft is None else stage(exp.fusion_train, TUNED_BRANCH, ft)
    frlm = dataclasses.replace(exp.frlm, frame_stack=int(components.get("frame_stack", TUNED_FRAME_STACK)))
    return dataclasses.replace(exp, recipe="tuned", branch_train=branch, frlm_train=frlm_train, fusion_train=fusion,
                               finetune=finetune, frlm=frlm)


# One function per studied factor: it changes the factor and names the variant, so a study, the
# CLI (`amsnet train --se-ratio 8`) and the summary rows they write agree on both.


def se_ratio_label(r: int) -> str:
    return f"r={r}"


def hidden_size_label(hidden: int) -> str:
    return f"hidden={hidden}"


def optimizer_batch_label(optimizer: str, batch_size: int) -> str:
    return f"{optimizer},bs={batch_size}"


def learning_rate_label(lr: float) -> str:
    return f"lr={lr:g}"


def _labelled(exp: ExperimentConfig, label: str) -> ExperimentConfig:
    return dataclasses.replace(exp, variant="; ".join(v for v in (exp.variant, label) if v))


def with_balance(exp: ExperimentConfig, balance: str) -> ExperimentConfig:
    """``exp`` with every stage's epochs drawn by ``balance`` (:attr:`~amsnet_lib.config.TrainConfig.balance`;
    beyond the paper); variant ``balance=<balance>`` (none: ``exp`` unchanged)."""
    if balance == "none":
        return exp
    exp = exp.with_training(balance=balance)
    if exp.finetune is not None:
        exp = dataclasses.replace(exp, finetune=dataclasses.replace(exp.finetune, balance=balance))
    return _labelled(exp, f"balance={balance}")


def with_se_ratio(exp: ExperimentConfig, r: int) -> ExperimentConfig:
    """``exp`` with URLM's squeeze-and-excitation reduction ratio ``r`` (Table 3); variant ``r=<r>``."""
    return _labelled(dataclasses.replace(exp, urlm=dataclasses.replace(exp.urlm, se_ratio=r)), se_ratio_label(r))


def with_hidden_size(exp: ExperimentConfig, hidden: int) -> ExperimentConfig:
    """``exp`` with FRLM's BLSTM of ``hidden`` units per direction (Fig. 7); variant ``hidden=<n>``."""
    return _labelled(dataclasses.replace(exp, frlm=dataclasses.replace(exp.frlm, hidden_size=hidden)), hidden_size_label(hidden))


def with_optimizer_batch(exp: ExperimentConfig, optimizer: str | None = None, batch_size: int | None = None) -> ExperimentConfig:
    """``exp`` trained (every stage) with ``optimizer`` and ``batch_size`` (Fig. 6; None keeps
    the current one); variant ``<optimizer>,bs=<batch>``."""
    optimizer = optimizer or exp.branch_train.optimizer
    batch_size = batch_size or exp.branch_train.batch_size
    return _labelled(exp.with_training(optimizer=optimizer, batch_size=batch_size), optimizer_batch_label(optimizer, batch_size))


def with_learning_rate(exp: ExperimentConfig, lr: float) -> ExperimentConfig:
    """``exp`` trained (every stage) with learning rate ``lr`` (§4.5); variant ``lr=<lr>``."""
    return _labelled(exp.with_training(lr=lr), learning_rate_label(lr))


def with_stage_learning_rates(exp: ExperimentConfig, frlm: float | None = None, urlm: float | None = None,
                              fusion: float | None = None) -> ExperimentConfig:
    """``exp`` with a learning rate per stage (None keeps the stage's current one); variant
    ``lr frlm=<a>,urlm=<b>,fusion=<c>``. Not a paper study: the paper gives one learning rate, but
    its two branches converge at different rates (FRLM's validation loss is lowest at 1e-3, URLM's
    at 1e-4 in the learning-rate study; ``scripts/diagnostics/stage_lr.py`` chooses each on validation).

    FRLM's rate applies to early fusion too (FRLM's BLSTM over both streams, :attr:`ExperimentConfig.frlm_train`);
    URLM's is stage 1's ``branch_train``.
    """
    frlm_base = exp.stage_train("frlm")
    branch = exp.branch_train if urlm is None else dataclasses.replace(exp.branch_train, lr=urlm)
    frlm_train = frlm_base if frlm is None else dataclasses.replace(frlm_base, lr=frlm)
    fusion_train = exp.fusion_train if fusion is None else dataclasses.replace(exp.fusion_train, lr=fusion)
    out = dataclasses.replace(exp, branch_train=branch, fusion_train=fusion_train,
                              frlm_train=None if frlm_train == branch else frlm_train)
    label = "lr " + ",".join(f"{s}={t.lr:g}" for s, t in (("frlm", frlm_train), ("urlm", branch), ("fusion", fusion_train)))
    return _labelled(out, label)


def with_late_weight(exp: ExperimentConfig, weight: float) -> ExperimentConfig:
    """Late fusion ``exp`` with its weight of FRLM's probabilities fixed at ``weight`` (URLM's:
    1 − weight) instead of chosen on validation; variant ``w=<weight>`` (``w=0.5``: the plain
    average of the two branches' probabilities). Not in the paper."""
    return _labelled(dataclasses.replace(exp, late_weights=(float(weight),)), f"w={weight:g}")


def with_seeds(exp: ExperimentConfig, seeds) -> ExperimentConfig:
    """``exp`` trained with each of ``seeds`` (results: mean over folds and seeds); variant
    ``seeds=<s>,<s>...``. The folds stay those of ``exp.split_seed``: only the initial weights, the
    validation split and the batch order change with the seed."""
    seeds = tuple(int(x) for x in seeds)
    return _labelled(dataclasses.replace(exp, seeds=seeds), "seeds=" + ",".join(map(str, seeds)))


def with_member(exp: ExperimentConfig, member: int) -> ExperimentConfig:
    """Member ``member`` of a seed ensemble of ``exp`` (``ExperimentConfig.member``): its own initial
    weights and batch order, the validation split of member 0; variant ``member <m>`` (member 0 is
    ``exp`` itself)."""
    if not member:
        return exp
    return _labelled(dataclasses.replace(exp, member=int(member)), f"member {member}")


def with_stopping(exp: ExperimentConfig, epochs: int | None = None, patience: int | None = None,
                  monitor: str | None = None) -> ExperimentConfig:
    """``exp`` with at most ``epochs`` epochs, early-stopping ``patience`` and model-selection
    criterion ``monitor`` (``val_loss`` or ``val_ua``, see :class:`TrainConfig`) in every stage
    (None keeps the current value); variant ``epochs=<n>`` / ``patience=<n>`` / ``monitor=<m>``.
    Not a paper study. An unknown ``monitor`` raises ``ValueError`` (:class:`TrainConfig`)."""
    changes = {k: v for k, v in (("epochs", epochs), ("patience", patience), ("monitor", monitor)) if v is not None}
    if not changes:
        return exp
    return _labelled(exp.with_training(**changes), ", ".join(f"{k}={v}" for k, v in changes.items()))


def branches_of(exp: ExperimentConfig) -> list[ExperimentConfig]:
    """FRLM alone and URLM alone, configured as the fusion experiment ``exp`` pre-trains them.

    Same settings, hence the same run keys as ``exp``'s branches: once ``exp`` has run, reading
    these back trains nothing. The variant label is kept (``summary.csv`` rows ``frlm``/``urlm``
    with ``exp``'s variant), so a study that varies both stages can show what each branch reached.
    """
    return [dataclasses.replace(exp, model=m) for m in ("frlm", "urlm")]


def ablations(corpus="emodb", protocol="paper", profile="full", recipe="paper") -> list[ExperimentConfig]:
    """Tables 4-5: early fusion, FRLM alone, URLM alone, concatenation, AMSNet (under ``recipe``)."""
    return [experiment(corpus, m, protocol, profile, recipe=recipe) for m in ABLATION_MODELS]


def recipe_ablation_study(corpus="emodb", protocol="paper", profile="full") -> list[ExperimentConfig]:
    """Beyond the paper: what carries the tuned recipe's gain. FRLM and AMSNet under the tuned recipe
    with each component of :data:`RECIPE_COMPONENTS` removed in turn from FRLM's and the fusion
    stage's training (variant ``without <component>``), training seeds :data:`TRAINING_SEEDS`; the
    full recipe with the same seeds is the reference row. A component a model does not use, or one
    the search left off, gives no row. The paper's protocol only.

    URLM is trained as in the paper in every row (:data:`PAPER_URLM`), as the tuned recipe was when
    the ablation was measured (~9 CPU-hours). URLM's own components (:data:`TUNED_URLM`, 1.0 point of
    validation UA above its paper training) are not taken apart: that would be ~105 more URLM
    trainings. URLM's row is its seeds only."""
    if protocol != "paper":
        return []
    quick = profile == "quick"
    out = []
    for model in RECIPE_ABLATION_MODELS:
        full = tuned(experiment(corpus, model, protocol, profile), quick=quick, urlm=PAPER_URLM)
        out.append(with_seeds(full, TRAINING_SEEDS))
        if model == "urlm":
            continue
        for name, change in RECIPE_COMPONENTS.items():
            change = {k: v for k, v in change.items() if k != "branch"}  # URLM's training stays the paper's
            base = tuned(experiment(corpus, model, protocol, profile), quick=quick, urlm=PAPER_URLM, **change)
            stages = (model,) if model == "frlm" else ("frlm", "urlm", "fusion")
            if all(base.stage_train(x) == full.stage_train(x) for x in stages) and base.frlm == full.frlm:
                # a component this model does not use, or one the search switched off
                continue
            out.append(_labelled(with_seeds(base, TRAINING_SEEDS), f"without {name}"))
    return out


def tuned_suite(corpus="emodb", protocol="paper", profile="full") -> list[ExperimentConfig]:
    """The tuned recipe's rows (beyond the paper): Tables 4-5's five models and late fusion (weight
    chosen on validation, and the plain average) trained with :func:`tuned`."""
    late = experiment(corpus, "late", protocol, profile, recipe="tuned")
    return ablations(corpus, protocol, profile, recipe="tuned") + [late, with_late_weight(late, 0.5)]


def paper_urlm_study(corpus="emodb", protocol="paper", profile="full") -> list[ExperimentConfig]:
    """Beyond the paper: the tuned recipe with URLM trained as in the paper (:data:`PAPER_URLM`), as
    it was before the URLM search's best trial finished (:data:`TUNED_URLM`): URLM, concatenation,
    AMSNet and late fusion (weight chosen on validation), under both protocols, to set beside the
    tuned rows. FRLM and early fusion do not use URLM's training."""
    quick = profile == "quick"
    return [dataclasses.replace(tuned(experiment(corpus, m, protocol, profile), quick=quick, urlm=PAPER_URLM),
                                variant=PAPER_URLM_VARIANT)
            for m in ("urlm", "concat", "amsnet", "late")]


def urlm_without_speed_study(corpus="emodb", protocol="paper", profile="full") -> list[ExperimentConfig]:
    """Beyond the paper: the tuned recipe with URLM trained without speed perturbation, as it was before
    that augmentation joined :data:`TUNED_URLM`: URLM, concatenation, AMSNet and late fusion (weight
    chosen on validation), under both protocols, to set beside the tuned rows."""
    quick = profile == "quick"
    return [dataclasses.replace(tuned(experiment(corpus, m, protocol, profile), quick=quick, urlm={"augment": "none"}),
                                variant=URLM_WITHOUT_SPEED_VARIANT)
            for m in ("urlm", "concat", "amsnet", "late")]


def se_ratio_study(corpus="emodb", protocol="paper", profile="full") -> list[ExperimentConfig]:
    """Table 3: AMSNet with SE reduction ratio r in 2, 4, 8, 16, 32, with the paper recipe and then
    with the tuned one (beyond the paper; its r = 16 is the tuned recipe's AMSNet, nothing trained
    again)."""
    return [with_se_ratio(experiment(corpus, "amsnet", protocol, profile, recipe=recipe), r)
            for recipe in RECIPES for r in SE_RATIOS]


def optimizer_batch_study(corpus="emodb", protocol="paper", profile="full") -> list[ExperimentConfig]:
    """Fig. 6: AMSNet under each optimizer and batch size (both stages)."""
    base = experiment(corpus, "amsnet", protocol, profile)
    out = []
    for opt in OPTIMIZERS:
        for bs in BATCH_SIZES.get(corpus, BATCH_SIZES["emodb"]):
            out.append(with_optimizer_batch(base, opt, bs))
    return out


def hidden_size_study(corpus="emodb", protocol="paper", profile="full") -> list[ExperimentConfig]:
    """Fig. 7: FRLM alone with BLSTM hidden size 32 ... 512."""
    base = experiment(corpus, "frlm", protocol, profile)
    return [with_hidden_size(base, h) for h in HIDDEN_SIZES]


def learning_rate_study(corpus="emodb", protocol="paper", profile="full") -> list[ExperimentConfig]:
    """§4.5: AMSNet with learning rate 1e-5 ... 1e-3 (both stages)."""
    base = experiment(corpus, "amsnet", protocol, profile)
    return [with_learning_rate(base, lr) for lr in LEARNING_RATES]


def normalisation_study(corpus="emodb", protocol="paper", profile="full") -> list[ExperimentConfig]:
    """Beyond the paper: each model of :data:`NORMALISATION_MODELS` with the paper's corpus
    standardisation and with per-speaker standardisation (``normalisation="speaker"``).

    Per-speaker standardisation is the usual remedy for speaker variability in SER; it uses each
    speaker's unlabelled utterances (the test speaker's too), so it measures what a deployment that
    can enrol a speaker would reach, not the paper's setting. The corpus rows are the ablations'.
    """
    return [experiment(corpus, m, protocol, profile, normalisation=n) for m in NORMALISATION_MODELS
            for n in ("corpus", "speaker")]


def training_seed_study(corpus="emodb", protocol="paper", profile="full") -> list[ExperimentConfig]:
    """Beyond the paper: FRLM, URLM, Concat and AMSNet (:data:`SEED_MODELS`) each trained with the
    seeds :data:`TRAINING_SEEDS` on the same folds: how much of a difference between models one seed
    decides (the paper reports one number per model, without seeds or spread). Seed 0's folds are
    the ablations'. Under the paper's protocol only: leave-one-speaker-out has twice its folds. The quick
    profile: seeds :data:`QUICK_TRAINING_SEEDS`.
    """
    if protocol != "paper":
        return []
    seeds = QUICK_TRAINING_SEEDS if profile == "quick" else TRAINING_SEEDS
    return [with_seeds(experiment(corpus, m, protocol, profile), seeds) for m in SEED_MODELS]


def seed_ensemble_study(corpus="emodb", protocol="paper", profile="full") -> list[ExperimentConfig]:
    """Beyond the paper: the members of the tuned recipe's seed ensembles, :data:`ENSEMBLE_MEMBERS`
    per model of :data:`ENSEMBLE_MODELS` (member 0 is the tuned row itself, so these are members
    1, 2, ...). Whether an ensemble pays is decided on the members' shared validation splits
    (:func:`amsnet_lib.train.ensemble.validation_scores`). Under the paper's protocol only: each
    leave-one-speaker-out member costs twice as much (URLM ~8 CPU-min a fold). The quick profile:
    AMSNet's members only, :data:`QUICK_ENSEMBLE_MEMBERS` of them."""
    if protocol != "paper":
        return []
    models = ENSEMBLE_MODELS[:1] if profile == "quick" else ENSEMBLE_MODELS  # a smoke run: AMSNet's
    return [with_member(experiment(corpus, m, protocol, profile, recipe="tuned"), k)
            for m in models for k in range(1, ensemble_members(profile))]


def late_fusion_study(corpus="emodb", protocol="paper", profile="full") -> list[ExperimentConfig]:
    """Beyond the paper: late fusion of the paper's pre-trained FRLM and URLM (the ablations'
    branches, nothing trained again), their class probabilities averaged with a weight chosen on
    each fold's validation split (:class:`~amsnet_lib.models.LateFusionHead`). The fusion the field
    uses as its first baseline, and the one that shows whether the learned heads make use of what
    the two branches get right on different utterances. Twice: the weight chosen on validation
    among :data:`~amsnet_lib.config.LATE_WEIGHTS`, and fixed at 0.5 (the plain average, chosen on
    nothing), since a validation split of a few dozen utterances may choose worse than no choice."""
    late = experiment(corpus, "late", protocol, profile)
    return [late, with_late_weight(late, 0.5)]


@dataclass(frozen=True)
class Study:
    """One study, registered once: the notebooks, ``run_all.sh``, the CLI and the report read it.

    Attributes:
        name: the study's name (``run_all.sh --skip-studies``, ``amsnet pretrain --studies``, the
            notebooks' ``studies`` parameter).
        configurations: ``(corpus, protocol, profile) -> list[ExperimentConfig]``.
        notebook: the notebook that runs and shows it: ``"03"`` (the ablations, studies beyond the
            paper; under each protocol) or ``"04"`` (the paper's hyper-parameter studies; its protocol only).
        title: what the study varies, for tables and the report.
        factors: the columns the study's tables show: name -> how to read it from a configuration.
        table_prefix: file-name prefix of the tables (and figures) the notebook writes for it
            (``<prefix><corpus>_<protocol>``), when the report quotes them by prefix.
        quick_variants: in the quick profile (CI) only these variants train (labels as in
            ``summary.csv``): the one notebooks 01-03 already trained, where there is one, and one
            more, so every code path runs within the CI budget; ``None``: every variant.
        quick_models: in the quick profile only these models' configurations train (the others
            repeat a code path one of these runs); ``None``: every model.
        own_seeds: its configurations fix their own training seeds (a session's seeds do not replace them).
        default: part of the whole suite (``run_all.sh``, ``amsnet pretrain --studies all``); a study
            that is not runs only when named.
    """

    name: str
    configurations: Callable[..., list[ExperimentConfig]]
    notebook: str
    title: str
    factors: Mapping[str, Callable[[ExperimentConfig], object]] = field(default_factory=dict)
    table_prefix: str | None = None
    quick_variants: tuple[str, ...] | None = None
    quick_models: tuple[str, ...] | None = None
    own_seeds: bool = False
    default: bool = True


def _model(c: ExperimentConfig):
    return c.model


#: Every study, in the order the notebooks run them. ``ablations`` (Tables 4-5) is always part of the suite.
STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("ablations", ablations, "03", "AMSNet and its ablations (Tables 4-5)", {"model": _model}),
    Study("se_ratio", se_ratio_study, "04", "SE reduction ratio r (Table 3)",
          {"recipe": lambda c: c.recipe, "r": lambda c: c.urlm.se_ratio},
          quick_variants=(se_ratio_label(8), se_ratio_label(16))),
    Study("optimizer_batch", optimizer_batch_study, "04", "optimizer and batch size (Fig. 6)",
          {"optimizer": lambda c: c.branch_train.optimizer, "batch_size": lambda c: c.branch_train.batch_size},
          table_prefix="fig6_optimizer_batch_",
          quick_variants=(optimizer_batch_label("rmsprop", 256), optimizer_batch_label("adam", 256))),
    Study("hidden_size", hidden_size_study, "04", "BLSTM hidden size (Fig. 7)", {"hidden_size": lambda c: c.frlm.hidden_size},
          table_prefix="fig7_hidden_size_", quick_variants=(hidden_size_label(32),)),
    Study("learning_rate", learning_rate_study, "04", "learning rate (Sec. 4.5)", {"lr": lambda c: f"{c.branch_train.lr:g}"},
          table_prefix="learning_rate_", quick_variants=(learning_rate_label(1e-4), learning_rate_label(1e-3))),
    Study("normalisation", normalisation_study, "03", "per-speaker normalisation (beyond the paper)",
          {"model": _model, "normalisation": lambda c: c.normalisation}),
    Study("training_seeds", training_seed_study, "03", "training seeds (beyond the paper)", {"model": _model},
          table_prefix="training_seeds_", own_seeds=True),
    Study("late_fusion", late_fusion_study, "03", "late fusion (beyond the paper)", {"model": _model},
          table_prefix="late_fusion_"),
    Study("tuned_recipe", tuned_suite, "03", "the tuned training recipe (beyond the paper, docs/RECIPE.md)",
          {"model": _model}, table_prefix="tuned_recipe_"),
    Study("paper_urlm", paper_urlm_study, "03", "the tuned recipe with URLM paper-trained (beyond the paper)",
          {"model": _model}, table_prefix="paper_urlm_", quick_models=("amsnet", "late")),
    Study("urlm_without_speed", urlm_without_speed_study, "03",
          "the tuned recipe with URLM trained without speed perturbation (beyond the paper)",
          {"model": _model}, table_prefix="urlm_without_speed_"),
    # ~5 CPU-hours of members (amsnet pretrain --studies seed_ensemble)
    Study("seed_ensemble", seed_ensemble_study, "03", "seed ensembles of the tuned recipe (beyond the paper)",
          {"model": _model, "member": lambda c: c.member}, table_prefix="seed_ensemble_"),
    # ~9 CPU-hours: run only when named (amsnet pretrain --studies recipe_ablation)
    Study("recipe_ablation", recipe_ablation_study, "03", "the tuned recipe without each of its components (beyond the paper)",
          {"model": _model}, table_prefix="recipe_ablation_", default=False),
)}


def default_studies() -> list[str]:
    """The studies the whole suite runs besides the ablations (``run_all.sh``, ``--studies all``)."""
    return [n for n, s in STUDIES.items() if s.default and n != "ablations"]


#: The paper's hyper-parameter studies (notebook 04) and the studies beyond the paper (notebook 03),
#: by name: views of :data:`STUDIES`.
HYPERPARAMETER_STUDIES = {n: s.configurations for n, s in STUDIES.items() if s.notebook == "04"}
BEYOND_PAPER_STUDIES = {n: s.configurations for n, s in STUDIES.items() if s.notebook == "03" and n != "ablations"}


#: Corpora whose test folds under these protocols hold speakers the training part lacks, and whose
#: validation split therefore holds out whole speakers (beyond the paper; a corpus added after the
#: EmoDB runs, so no existing run key changes). EmoDB under ``loso`` keeps the utterance split it
#: was run with.
SPEAKER_VALIDATION = {("ravdess", "emobox"), ("ravdess", "loso")}
#: The studies run on a corpus beyond the paper's two (RAVDESS): Table 5's models under both
#: recipes and late fusion; the paper's hyper-parameter studies stay EmoDB's.
SECOND_CORPUS_STUDIES = ("tuned_recipe", "late_fusion")
#: Each corpus's protocols in the suite: the main one first, then the speaker-independent one
#: (``loso``) that ``--no-loso`` leaves out. RAVDESS: EmoBox's speaker-independent folds; its
#: leave-one-actor-out is optional (``amsnet train --protocol loso``).
SUITE_PROTOCOLS = {"emodb": ("paper", "loso"), "iemocap": ("paper", "loso_session"), "ravdess": ("emobox",)}


def validation_for(corpus: str, protocol: str) -> str:
    """How the validation split of ``corpus`` under ``protocol`` is drawn (``ExperimentConfig.validation``)."""
    # corpora joined with "+" (a model for voices it never heard): speakers held out, under any protocol
    return "speaker" if (corpus, protocol) in SPEAKER_VALIDATION or "+" in corpus else "utterance"


def validation_override(corpus: str, protocol: str, validation: str | None) -> str | None:
    """``validation`` where it differs from the protocol's own split (:func:`validation_for`), else
    ``None``: what names the run keys, search journals and tables of a split drawn otherwise, so that
    every name from before the option stays as it was."""
    return validation if validation is not None and validation != validation_for(corpus, protocol) else None


def full_suite(corpus: str = "emodb", profile: str = "full", loso: bool = True,
               studies: tuple[str, ...] | list[str] | None = None) -> list[ExperimentConfig]:
    """Every experiment ``run_all.sh`` runs on a corpus: all studies under ``paper``, the ablations
    (and the studies beyond the paper) under ``loso`` too.

    Matches the notebooks' plan (01-04 under the paper's protocol, 02-03 again leave-one-speaker-out
    unless ``--no-loso``); used to count, cost and pre-train the whole suite. An experiment two
    studies share is listed once. RAVDESS (beyond the paper): :data:`SECOND_CORPUS_STUDIES` with the
    ablations, under EmoBox's folds (:data:`SUITE_PROTOCOLS`).

    Args:
        studies: names of the studies to include besides the ablations (keys of :data:`STUDIES`);
            default :func:`default_studies`.
    """
    known = {**HYPERPARAMETER_STUDIES, **BEYOND_PAPER_STUDIES}
    names = default_studies() if studies is None else list(studies)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown studies {unknown}; choose from {list(known)}")
    protocols = list(SUITE_PROTOCOLS.get(corpus, ("paper", "loso")))
    protocols = protocols[:1] + (protocols[1:] if loso else [])
    if corpus == "ravdess":
        names = [n for n in names if n in SECOND_CORPUS_STUDIES]
    suite = []
    for protocol in protocols:
        suite += ablations(corpus, protocol, profile)
        suite += [e for n in names if n in BEYOND_PAPER_STUDIES for e in BEYOND_PAPER_STUDIES[n](corpus, protocol, profile)]
        if protocol == "paper":
            suite += [e for n in names if n in HYPERPARAMETER_STUDIES for e in HYPERPARAMETER_STUDIES[n](corpus, protocol, profile)]
    return list(dict.fromkeys(suite))
