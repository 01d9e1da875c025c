"""Typed configuration of every AMSNet experiment.

One place per experiment's hyper-parameters (SpeechBrain-style): each dataclass
is frozen and hashable, so a configuration can key caches and run stores.
Where the paper is silent or contradicts itself (see ``docs/DESIGN.md``), the
default chosen here is documented on the field.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


def _recipe_field(default, doc_source: str = ""):
    """A field added with the tuned recipe: left out of :func:`identity` while at its default, so the
    run keys of every configuration from before it (the paper recipe's committed runs) stay as they were."""
    return field(default=default, metadata={"omit_default": True, "source": doc_source})


def identity(obj) -> dict:
    """The JSON-able identity of a configuration dataclass: its fields, nested ones included, less the
    recipe fields (:func:`_recipe_field`) that are at their defaults. What run keys hash."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get("omit_default") and value == f.default:
            continue
        out[f.name] = identity(value) if dataclasses.is_dataclass(value) else value
    return out


@dataclass(frozen=True)
class FeatureConfig:
    """The two input streams of AMSNet (paper §4.2).

    Attributes:
        sample_rate: Hz; all audio is resampled to it, mono.
        duration: seconds; utterances are zero-padded ("silence") or cut to it
            before the spectrogram (paper: 3 s EmoDB, 5 s IEMOCAP).
        n_fft: STFT length in samples (paper: 800 = 50 ms).
        win_length: Hann window length in samples (paper: 800).
        hop_length: STFT hop in samples (paper: 400 = 25 ms).
        n_mels: mel bands. The paper does not give it (its "1 x 257 x 1000"
            input fits no stated setting); 128 is librosa's default.
        log_offset: added before the log of the mel power, avoids log(0).
        frame_hop_ms: openSMILE IS10 frame hop, ms (fixed by the feature set).
        max_frames: q, frames of the frame-level stream; ``None`` means
            ``duration * 100`` (the same span as the spectrogram).
        trim_db: beyond the paper: leading and trailing stretches quieter than this many dB
            below the file's peak are cut before the window is taken (``data.spectral.silence_span``, librosa's trim,
            50-ms frames); ``None``: no trimming (the paper; EmoDB's files hold little silence).
            RAVDESS's files open with about 0.8 s of silence: 40 dB keeps 92 % of its utterances
            whole within a 3-s window (measured on every 24th file), and is its setting
            (:meth:`for_corpus`); a choice of preprocessing, not searched.
    """

    sample_rate: int = 16000
    duration: float = 3.0
    n_fft: int = 800
    win_length: int = 800
    hop_length: int = 400
    n_mels: int = 128
    log_offset: float = 1e-6
    frame_hop_ms: float = 10.0
    max_frames: int | None = None
    trim_db: float | None = field(default=None, metadata={"omit_default": True})

    def __post_init__(self):
        # A zero or NaN duration, or no mel band, gave zero-size features that were cached and
        # trained on without a word (issue 41): refused here, whoever builds the configuration.
        import math
        import numbers

        if not (isinstance(self.duration, numbers.Real) and math.isfinite(self.duration) and self.duration > 0):
            raise ValueError(f"FeatureConfig.duration must be a positive number of seconds, got {self.duration!r}")
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"FeatureConfig.{name} must be a whole number of at least 1, got {value!r}")
        if self.max_frames is not None and (isinstance(self.max_frames, bool) or not isinstance(self.max_frames, numbers.Integral)
                                            or self.max_frames < 1):
            raise ValueError(f"FeatureConfig.max_frames must be None or at least 1, got {self.max_frames!r}")

    @property
    def q(self) -> int:
        """Number of frame-level time steps."""
        if self.max_frames is not None:
            return int(self.max_frames)
        return int(round(self.duration * 1000.0 / self.frame_hop_ms))

    @property
    def n_samples(self) -> int:
        return int(round(self.duration * self.sample_rate))

    @property
    def spec_frames(self) -> int:
        """Spectrogram frames (centred STFT): 1 + n_samples // hop."""
        return 1 + self.n_samples // self.hop_length

    @classmethod
    def for_corpus(cls, corpus: str, **overrides) -> "FeatureConfig":
        """The paper's setting for a corpus: 3 s EmoDB, 5 s IEMOCAP, 3 s otherwise; RAVDESS (beyond
        the paper) 3 s after its leading and trailing silence is trimmed at 40 dB. Corpora joined with
        ``+`` (one table, :func:`amsnet_lib.data.corpora.load_corpora`): the longest of their durations,
        and the trimming where one of them trims."""
        parts = corpus.split("+")
        duration = max({"emodb": 3.0, "iemocap": 5.0}.get(c, 3.0) for c in parts)
        trim = {"trim_db": 40.0} if "ravdess" in parts else {}
        return cls(**{"duration": duration, **trim, **overrides})


FRAME_DIM = 76  # IS10: 38 LLDs + 38 deltas


@dataclass(frozen=True)
class FRLMConfig:
    """Frame-level representation learning module (paper §3.2).

    Attributes:
        input_dim: frame feature dimension (76 for IS10).
        hidden_size: BLSTM units per direction; Fig. 7 finds 128-512 good. 128, the low
            end of that range, keeps a 5-fold run feasible on a CPU (the recurrence costs
            O(hidden²) per frame, 300 frames per utterance).
        peephole: Graves et al. (2013) peephole connections (paper), or plain
            ``nn.LSTM`` (cuDNN on GPU) when False.
        dropout: after attention pooling; not given by the paper.
        embedding_dim: branch output size (paper: 128).
        frame_stack: k consecutive 10-ms frames concatenated into one recurrent step (k·76 inputs,
            q/k steps); 1 = the paper. Tuned recipe: shortens the 300-step recurrence, which both
            eases optimisation and cuts training and inference time k-fold (frame stacking as in
            Sak et al. 2015, "Fast and accurate recurrent neural network acoustic models").
    """

    input_dim: int = FRAME_DIM
    hidden_size: int = 128
    peephole: bool = True
    dropout: float = 0.3
    embedding_dim: int = 128
    frame_stack: int = _recipe_field(1, "Sak et al. 2015")

    def __post_init__(self):
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {self.frame_stack}")


@dataclass(frozen=True)
class URLMConfig:
    """Utterance-level representation learning module (paper §3.3).

    Attributes:
        input_channels: mel bands of the spectrogram (channels of the 1-D
            temporal convolutions).
        filters: output channels of the three temporal conv blocks.
        kernels: their kernel sizes, in spectrogram frames.
        se_ratio: squeeze-and-excitation reduction ratio r (Table 3).
        dropout: before the dense layer; not given by the paper.
        embedding_dim: branch output size (paper: 128).
    """

    input_channels: int = 128
    filters: tuple[int, int, int] = (512, 256, 128)
    kernels: tuple[int, int, int] = (8, 5, 3)
    se_ratio: int = 16
    dropout: float = 0.3
    embedding_dim: int = 128


@dataclass(frozen=True)
class FusionConfig:
    """Connection-attention fusion head (paper §3.4, eqs 9-12).

    Attributes:
        hidden: sizes of the fully connected layers after fusion (paper: 64, 8).
        dropout: between them; not given by the paper.
    """

    hidden: tuple[int, ...] = (64, 8)
    dropout: float = 0.2


#: Training augmentations at audio level (:func:`amsnet_lib.data.channels.augmented_features`).
AUGMENTATIONS = ("none", "channels", "speed", "pitch")
#: Model-selection criteria on the validation split (``TrainConfig.monitor``).
MONITORS = ("val_loss", "val_ua")
OPTIMIZERS = ("rmsprop", "adam", "adamw", "sgd")
#: Learning-rate schedules (``TrainConfig.schedule``).
SCHEDULES = ("constant", "cosine", "onecycle")
#: How an epoch draws its training utterances (``TrainConfig.balance``).
BALANCES = ("none", "class", "corpus_class")
#: Training recipes: ``paper`` (the paper's stated settings) and ``tuned`` (beyond the paper,
#: chosen on validation; :func:`amsnet_lib.studies.experiment`).
RECIPES = ("paper", "tuned")


@dataclass(frozen=True)
class TrainConfig:
    """One training stage.

    Attributes:
        optimizer: ``rmsprop`` (paper), ``adam`` or ``sgd``.
        lr: learning rate (paper: 5e-5 to 1e-4).
        batch_size: utterances per step (paper: 256 EmoDB, 64/128 IEMOCAP).
        epochs: maximum epochs (not given by the paper). The defaults of every field are the
            paper profile's stage-1 training (the fusion head's: :data:`FUSION_TRAIN`).
        patience: early-stopping patience in epochs without improvement of ``monitor``;
            ``0`` disables early stopping (the best validation epoch is still kept).
        monitor: model-selection criterion on the validation split: ``val_loss`` (lowest;
            smooth even on EmoDB's ~40-utterance validation splits) or ``val_ua`` (highest,
            ties broken by lower loss).
        val_fraction: share of each fold's training part held out, stratified,
            for model selection; the test fold is never looked at.
        weight_decay: L2 penalty (decoupled for ``adamw``).

    The remaining fields belong to the tuned recipe (their defaults are the paper's training:
    none of it). Each is applied by :func:`amsnet_lib.train.training.train_model` to the training batches
    only; validation and test see the plain inputs.

    Attributes:
        schedule: learning rate over the run: ``constant`` (paper), ``cosine`` (linear warm-up
            then cosine decay to 0 at ``epochs``; Loshchilov & Hutter 2017) or ``onecycle``
            (Smith & Topin 2019, ``torch.optim.lr_scheduler.OneCycleLR`` with peak ``lr``).
        warmup: share of the steps spent warming up linearly (``cosine``; ``onecycle``'s pct_start).
        grad_clip: largest global gradient norm, 0 = no clipping (Pascanu et al. 2013).
        label_smoothing: ε of label-smoothed cross-entropy (Szegedy et al. 2016).
        mixup: α of mixup's Beta(α, α) mixing of inputs and targets, 0 = off (Zhang et al. 2018).
        time_mask: SpecAugment-style time masking (Park et al. 2019): per utterance, up to this
            share of its valid time steps (frames or spectrogram columns) in one span set to 0, the
            standardised mean.
        freq_mask: the same over feature dimensions: up to this share of the 76 frame features
            or of the mel bands, one contiguous band.
        noise_std: standard deviation of Gaussian noise added to the standardised inputs.
        class_weighting: ``none`` or ``balanced`` (cross-entropy weighted by inverse class
            frequency of the training part; UA weighs every class alike).
        augment: audio-level augmentation of this stage's training (:data:`AUGMENTATIONS`; ``speed``:
            copies at 0.9 and 1.1 times the speed, Ko et al. 2015; ``pitch``: copies shifted by -2 and +2
            semitones, duration kept, Schlüter & Grill 2015). The copies must be in the features
            (:func:`amsnet_lib.data.channels.augmented_features`); a stage with ``none`` trains without them,
            so one set of features serves every stage of an experiment. See
            :meth:`ExperimentConfig.stage_augment`.
        balance: how each epoch draws its training utterances: ``none`` (each once, shuffled: the
            paper), ``class`` (as many draws, with replacement, each class equally likely) or
            ``corpus_class`` (each corpus-and-class cell equally likely, for a table of several corpora,
            ``corpus`` column: :func:`amsnet_lib.data.corpora.load_corpus` of ``"emodb+ravdess"``; on one
            corpus the same as ``class``). Weighted sampling with replacement, as
            ``torch.utils.data.WeightedRandomSampler`` draws, from the loop's own generator.
    """

    optimizer: str = "rmsprop"
    lr: float = 1e-4
    batch_size: int = 256
    epochs: int = 300
    patience: int = 30
    val_fraction: float = 0.1
    weight_decay: float = 0.0
    monitor: str = "val_loss"
    schedule: str = _recipe_field("constant", "Loshchilov & Hutter 2017; Smith & Topin 2019")
    warmup: float = _recipe_field(0.0)
    grad_clip: float = _recipe_field(0.0, "Pascanu et al. 2013")
    label_smoothing: float = _recipe_field(0.0, "Szegedy et al. 2016")
    mixup: float = _recipe_field(0.0, "Zhang et al. 2018")
    time_mask: float = _recipe_field(0.0, "Park et al. 2019 (SpecAugment)")
    freq_mask: float = _recipe_field(0.0, "Park et al. 2019 (SpecAugment)")
    noise_std: float = _recipe_field(0.0)
    class_weighting: str = _recipe_field("none")
    augment: str = _recipe_field("none", "Ko et al. 2015 (speed perturbation); Schlüter & Grill 2015 (pitch shifting)")
    balance: str = _recipe_field("none")

    def __post_init__(self):
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be val_loss or val_ua, got {self.monitor!r}")
        if self.optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.class_weighting not in ("none", "balanced"):
            raise ValueError(f"class_weighting must be 'none' or 'balanced', got {self.class_weighting!r}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {self.augment!r}")
        if self.balance not in BALANCES:
            raise ValueError(f"balance must be one of {', '.join(BALANCES)}, got {self.balance!r}")
        for name in ("time_mask", "freq_mask", "warmup", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if min(self.mixup, self.noise_std, self.grad_clip) < 0:
            raise ValueError("mixup, noise_std and grad_clip must be >= 0")

    @property
    def augments(self) -> bool:
        """Whether training batches are altered (masking, noise or mixup)."""
        return bool(self.time_mask or self.freq_mask or self.noise_std or self.mixup)


#: Batch size of a corpus where the paper's differs from :attr:`TrainConfig.batch_size` (256, EmoDB):
#: IEMOCAP 64 (the paper: 64 or 128).
CORPUS_BATCH_SIZE = {"iemocap": 64}

#: The fusion head's training (stage 2) where it differs from stage 1: it starts from scratch on
#: fixed 128-d embeddings, and at the paper's learning rate it needs thousands of epochs (still
#: improving at 300 on EmoDB), which cost seconds since the embeddings are computed once per fold.
FUSION_TRAIN = dict(epochs=3000, patience=200)

#: The quick profile (CI smoke runs; accuracies mean nothing) as an overlay on the defaults above,
#: which are the paper profile: tiny networks, one epoch at a higher learning rate, both stages alike.
#: One epoch, not more: every stage's code path runs all the same (the loop, selection, every stage), and
#: the notebook checks (counts, sizes, parameter counts) do not depend on it, while the CI run's time does.
QUICK_TRAIN = dict(lr=1e-3, epochs=1, patience=0)
#: and the first second of each utterance: a third of the frames the recurrence steps through and of the
#: spectrogram the convolutions slide over, for the same code paths (the features of a quick run are cached
#: under their own key, apart from the full profile's).
QUICK_FEATURES = dict(duration=1.0)
QUICK_FRLM = dict(hidden_size=16, embedding_dim=16)
QUICK_URLM = dict(filters=(32, 16, 16), embedding_dim=16)
QUICK_FUSION = dict(hidden=(8, 8))

#: The classic baselines (beyond the paper, issue #37): openSMILE functionals of the whole utterance
#: (:mod:`amsnet_lib.data.functionals`) classified by a linear SVM (:mod:`amsnet_lib.train.classic`);
#: model name -> its ``opensmile.FeatureSet`` name.
CLASSIC_MODELS = {"compare-svm": "ComParE_2016", "egemaps-svm": "eGeMAPSv02"}
MODELS = ("frlm", "urlm", "concat", "early", "amsnet", "late", *CLASSIC_MODELS)
#: Late fusion's candidate weights of FRLM's probabilities (URLM's: 1 - w): 0 to 1 in steps of 0.05.
LATE_WEIGHTS = tuple(round(0.05 * i, 2) for i in range(21))
PROTOCOLS = ("paper", "loso", "loso_session", "split_file", "emobox", "corpus_folds")
#: Protocol ``corpus_folds`` (a table of several corpora, ``emodb+ravdess``): the protocol each corpus is split
#: by, its speaker-independent one (the folds a model of that corpus alone is measured on).
CORPUS_FOLDS = {"emodb": "loso", "ravdess": "emobox", "iemocap": "loso_session"}
#: How a fold's validation split is drawn from its training part (``ExperimentConfig.validation``).
VALIDATIONS = ("utterance", "speaker")
#: Label-free standardisation before the fold's corpus statistics (``ExperimentConfig.normalisation``).
NORMALISATIONS = ("corpus", "speaker", "utterance")
#: Member m of a seed ensemble trains with seed ``seed + MEMBER_SEED_STRIDE * m``: far above the
#: training seeds in use (0-4), so no member repeats another experiment's seed.
MEMBER_SEED_STRIDE = 1000


@dataclass(frozen=True)
class SVMConfig:
    """The classic baselines' classifier (:data:`CLASSIC_MODELS`; :mod:`amsnet_lib.train.classic`).

    Functionals standardised with the statistics of the training part, then a linear SVM
    (scikit-learn's ``SVC(kernel="linear")``: libsvm, hinge loss, one-vs-one, as the ComParE
    challenges' baseline); its complexity C and whether classes are weighted by inverse frequency
    are chosen together by cross-validation inside each fold's training part, scored by UA.

    Attributes:
        c_grid: the candidate complexities C (the ComParE baselines search 1e-5 to 1 on standardised
            functionals); ties in inner UA go to the smaller C (the stronger regularisation).
        class_weights: the candidate class weightings, ``none`` and/or ``balanced`` (inverse class
            frequency of the training part); ties go to the first listed.
        inner_folds: folds of the inner cross-validation; speaker-grouped (no speaker on both sides)
            when the outer fold is speaker-independent, stratified otherwise. Fewer when the training
            part has fewer speakers (grouped) or fewer utterances of a class (stratified).
    """

    c_grid: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    class_weights: tuple[str, ...] = ("none", "balanced")
    inner_folds: int = 5

    def __post_init__(self):
        if not self.c_grid or not all(float(c) > 0 for c in self.c_grid):
            raise ValueError(f"c_grid must be one or more positive values, got {self.c_grid!r}")
        if not self.class_weights or not set(self.class_weights) <= {"none", "balanced"}:
            raise ValueError(f"class_weights must be one or both of 'none', 'balanced', got {self.class_weights!r}")
        if self.inner_folds < 2:
            raise ValueError(f"inner_folds must be 2 or more, got {self.inner_folds}")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines one study's numbers, apart from the data.

    Attributes:
        corpus: ``emodb``, ``iemocap`` or a custom corpus name (for labelling results).
        model: one of ``frlm``, ``urlm``, ``concat``, ``early``, ``amsnet``, ``late`` (late
            fusion, beyond the paper: its weight is chosen on validation, ``fusion_train``'s
            optimiser settings are unused, its ``monitor`` is the criterion).
        protocol: ``paper`` (stratified random k-fold, speaker-dependent, as the paper),
            ``loso`` (leave one speaker out), ``loso_session`` (leave one session out),
            ``split_file`` (folds read from ``split_file``), ``emobox`` (EmoBox's published folds of
            EmoDB and RAVDESS, :func:`amsnet_lib.data.protocols.emobox_folds`).
        n_folds: folds of the ``paper`` protocol (paper: 5, i.e. 80/20).
        split_seed: seed of the fold assignment; the same for every model of a study.
        seeds: training seeds (initialisation, batching, validation split); results are
            averaged over folds and seeds.
        branch_train: stage 1, pre-training of FRLM and URLM (and end-to-end early fusion).
        frlm_train: FRLM's stage-1 training where it differs from ``branch_train`` (None: the
            same); the two branches overfit differently (see ``studies.experiment``). Early
            fusion, FRLM's architecture over both streams, trains with it too.
        fusion_train: stage 2, the fusion head over frozen branch embeddings.
        split_file: CSV ``path,fold`` for ``protocol="split_file"``.
        variant: free label distinguishing studies of the same model (e.g. ``r=8``).
        normalisation: ``corpus`` (paper; each fold standardised with the statistics of its
            training part), ``speaker`` (each speaker first standardised with their own
            statistics, see :func:`amsnet_lib.data.features.standardise_per_speaker`; not in the
            paper, and only for cross-validation: a model for new audio cannot know the
            speaker's statistics) or ``utterance`` (beyond the paper, issue #38: each utterance first
            standardised with its own statistics, per IS10 dimension over its valid frames and per
            mel band over the spectrogram frames that hold it: cepstral mean and variance
            normalisation per utterance, Viikki & Laurila 1998,
            :func:`amsnet_lib.data.features.standardise_utterance`). ``utterance`` needs no label and
            no speaker, so it is applied alike in training, in ``fit_final`` and at inference (each
            scored window, :class:`amsnet_lib.serve.predict.Recognizer`, ONNX models included). Built
            and tested, not yet chosen on validation speakers (no training has compared it).
        late_weights: late fusion's candidate weights w of FRLM's probabilities (URLM's: 1 − w),
            each in [0, 1]; the one with the best validation ``fusion_train.monitor`` is kept
            (:func:`amsnet_lib.train.training.fit_late_weight`). One value fixes w (``(0.5,)``: the
            plain average of the two branches). Used by ``model="late"`` only.
        recipe: ``paper`` or ``tuned`` (:data:`RECIPES`): which training recipe the stage
            configurations come from; a label of the results (``summary.csv``'s ``recipe``
            column), the training fields themselves decide the weights and the run keys.
        finetune: stage 3 of concatenation and AMSNet, beyond the paper (None: none, as the
            paper): after the head is trained on frozen branches, the whole model is trained end to
            end with this configuration (low learning rate, the branches' augmentation), the epoch
            chosen on validation as everywhere. The fold then keeps the whole model's weights.
        member: member of a seed ensemble (beyond the paper, :mod:`amsnet_lib.train.ensemble`). Member
            0 is the experiment itself; member m > 0 initialises and orders its batches with
            :meth:`init_seed` (``seed + 1000 m``) but draws the validation split of ``seed``, so
            that every member of an ensemble is selected, and the ensemble scored, on the same
            validation utterances. Part of the run key only when not 0.
        svm: the classic baselines' classifier (:class:`SVMConfig`; ``model`` of :data:`CLASSIC_MODELS`
            only). They have no network, so no training recipe: their ``recipe`` is ``paper``, the
            default, which for them means nothing (their ``summary.csv`` rows are found by model).
        augment: training-time augmentation at audio level of every stage (beyond the paper,
            :data:`AUGMENTATIONS`): ``none``; ``channels`` (a random-channel copy of each training
            utterance); ``speed`` (speed perturbation: copies at 0.9 and 1.1 times the speed, Ko et
            al. 2015); ``pitch`` (beyond the paper, issue #38: copies shifted by -2 and +2 semitones
            with their duration kept, ``librosa.effects.pitch_shift``, Schlüter & Grill 2015; built and
            tested, not yet chosen on validation speakers). The copies are made by
            :func:`amsnet_lib.data.channels.augmented_features` before training; folds are drawn over
            the originals, and the engine trains on a copy only when its original is in the fit part,
            and never validates or tests on one. One stage alone:
            its :attr:`TrainConfig.augment` (the tuned recipe's URLM). With this experiment-wide
            field, the normalisation statistics include the copies (as every run made with it
            was trained); with the per-stage field they are the originals' alone, so that every
            stage of a model sees its inputs standardised alike.
        validation: how each fold's validation split is drawn from its training part:
            ``utterance`` (stratified by label, the training speakers' utterances; the default and
            every run before this field) or ``speaker`` (whole training speakers held out, beyond
            the paper: selection for voices the model has not heard, as speaker-independent test
            folds ask; :func:`amsnet_lib.data.protocols.validation_split`).
    """

    corpus: str = "emodb"
    model: str = "amsnet"
    protocol: str = "paper"
    n_folds: int = 5
    split_seed: int = 0
    seeds: tuple[int, ...] = (0,)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    frlm: FRLMConfig = field(default_factory=FRLMConfig)
    urlm: URLMConfig = field(default_factory=URLMConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    branch_train: TrainConfig = field(default_factory=TrainConfig)
    fusion_train: TrainConfig = field(default_factory=lambda: TrainConfig(**FUSION_TRAIN))
    frlm_train: TrainConfig | None = None
    split_file: str | None = None
    variant: str = ""
    normalisation: str = "corpus"
    late_weights: tuple[float, ...] = LATE_WEIGHTS
    recipe: str = "paper"
    finetune: TrainConfig | None = None
    augment: str = "none"
    member: int = 0
    validation: str = field(default="utterance", metadata={"omit_default": True})
    svm: SVMConfig = field(default=SVMConfig(), metadata={"omit_default": True})

    def __post_init__(self):
        if self.validation not in VALIDATIONS:
            raise ValueError(f"validation must be one of {VALIDATIONS}, got {self.validation!r}")
        if self.member < 0:
            raise ValueError(f"member must be 0 or more, got {self.member!r}")
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {RECIPES}, got {self.recipe!r}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {self.augment!r}")
        kinds = {t.augment for t in self._trainings()} - {"none"}
        if len(kinds) > 1 or (self.augment != "none" and kinds - {self.augment}):
            raise ValueError(f"one audio augmentation per experiment: augment={self.augment!r} and stages with {sorted(kinds)}")
        if self.finetune is not None and self.finetune.augment != self.fusion_train.augment:
            raise ValueError("finetune trains on the fusion stage's fit part: its augment must equal fusion_train's")
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {self.normalisation!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if not self.late_weights or not all(0.0 <= float(w) <= 1.0 for w in self.late_weights):
            raise ValueError(f"late_weights must be one or more weights in [0, 1], got {self.late_weights!r}")
        if self.protocol == "split_file" and not self.split_file:
            raise ValueError("protocol 'split_file' needs split_file=<csv with path,fold>")
        if self.model in CLASSIC_MODELS:
            unused = {k: v for k, v in (("recipe", self.recipe), ("augment", self.augment), ("member", self.member),
                                        ("normalisation", self.normalisation)) if v != ExperimentConfig.__dataclass_fields__[k].default}
            if unused:
                raise ValueError(f"{self.model} is a classic baseline (openSMILE functionals and a linear SVM): "
                                 f"{', '.join(f'{k}={v!r}' for k, v in unused.items())} applies to the networks only. "
                                 "Fix: leave it at its default (recipe 'paper', augment 'none', member 0, normalisation 'corpus').")

    def init_seed(self, seed: int) -> int:
        """The seed of the initial weights, batch order and augmentation of training seed ``seed``
        (see ``member``); the validation split is always drawn with ``seed`` itself."""
        return seed + MEMBER_SEED_STRIDE * self.member

    def _trainings(self) -> list[TrainConfig]:
        return [t for t in (self.branch_train, self.fusion_train, self.frlm_train, self.finetune) if t is not None]

    def stage_augment(self, stage: str) -> str:
        """The audio augmentation a stage (``frlm``, ``urlm``, ``early`` or ``fusion``) trains with:
        :attr:`augment` when set (every stage), else the stage's own :attr:`TrainConfig.augment`."""
        return self.augment if self.augment != "none" else self.stage_train(stage).augment

    @property
    def audio_augment(self) -> str:
        """The augmentation whose copies the features must carry to train this experiment's model
        (``none``: none): that of any stage the model trains (a fusion: both branches and its head)."""
        stages = (self.model,) if self.model in ("frlm", "urlm", "early") else ("frlm", "urlm", "fusion")
        return next(iter(sorted({self.stage_augment(s) for s in stages} - {"none"})), "none")

    def stage_train(self, stage: str) -> TrainConfig:
        """The training configuration of a stage: ``frlm``, ``urlm``, ``early`` or ``fusion``."""
        if stage == "fusion":
            return self.fusion_train
        # early fusion is FRLM's attention BLSTM over both streams: it trains as FRLM does
        if stage in ("frlm", "early") and self.frlm_train is not None:
            return self.frlm_train
        return self.branch_train

    def with_training(self, **changes) -> "ExperimentConfig":
        """A copy with ``changes`` (e.g. ``lr=5e-5``) applied to the training of every stage."""
        return dataclasses.replace(
            self,
            branch_train=dataclasses.replace(self.branch_train, **changes),
            fusion_train=dataclasses.replace(self.fusion_train, **changes),
            frlm_train=None if self.frlm_train is None else dataclasses.replace(self.frlm_train, **changes),
        )


#: How window scores become a recording's score (:mod:`amsnet_lib.serve.windows`).
POOLINGS = ("mean_proba", "mean_logit", "max_proba", "first")


@dataclass(frozen=True)
class WindowConfig:
    """Scoring a whole recording with a model of fixed input length (beyond the paper; issue #38 item 3).

    The recording's leading and trailing silence is trimmed, then the model's window
    (``FeatureConfig.duration``) slides over it every ``hop`` seconds, with one more window ending at
    the recording's end so that no audio is left unscored (unless what is left is within the 50 ms the
    features read past a window's end); the windows' class probabilities are
    pooled into the recording's. A recording no longer than one window is one window, zero-padded,
    as in training.

    Attributes:
        hop: seconds between window starts (a third of EmoDB's 3-s window: every stretch of audio is
            seen by up to three windows; a cost choice, not searched).
        pooling: ``mean_proba`` (mean of the windows' probabilities), ``mean_logit`` (softmax of the
            mean logits, i.e. the normalised geometric mean of the probabilities), ``max_proba`` (each
            class's largest window probability, renormalised), ``first`` (the first window
            only: the behaviour before whole recordings were scored). On validation data (the shipped
            model on RAVDESS: results/tables/whole_recordings_validation.md) the rules tied; ``mean_proba``
            is the default as the simplest of them (docs/CLI.md, "Whole recordings").
        trim_db: silence trimming (``data.spectral.silence_span`` at this many dB below the peak) for a
            checkpoint trained without it; a checkpoint trained with ``FeatureConfig.trim_db`` always
            trims at its own level, as its training features did. ``None``: no trimming. 40 dB raised the
            shipped model's UA on RAVDESS (validation) by 2.3 points over none.
    """

    hop: float = 1.0
    pooling: str = "mean_proba"
    trim_db: float | None = 40.0

    def __post_init__(self):
        if not self.hop > 0:
            raise ValueError(f"hop must be a positive number of seconds, got {self.hop}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.trim_db is not None and not self.trim_db > 0:
            raise ValueError(f"trim_db must be a positive number of dB (or None: no trimming), got {self.trim_db}")
