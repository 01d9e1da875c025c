"""Typed configuration of every AMSNet experiment.

One place per experiment's hyper-parameters (SpeechBrain-style): each dataclass
is frozen and hashable, so a configuration can key caches and run stores.
Where the paper is silent or contradicts itself (see ``docs/DESIGN.md``), the
default chosen here is documented on the field.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field


def config_hash(obj, length: int = 12) -> str:
    """Stable short hash of a (nested) dataclass configuration."""
    payload = json.dumps(dataclasses.asdict(obj), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


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
        """The paper's setting for a corpus: 3 s EmoDB, 5 s IEMOCAP, 3 s otherwise."""
        duration = {"emodb": 3.0, "iemocap": 5.0}.get(corpus, 3.0)
        return cls(**{"duration": duration, **overrides})


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
    """

    input_dim: int = FRAME_DIM
    hidden_size: int = 128
    peephole: bool = True
    dropout: float = 0.3
    embedding_dim: int = 128


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


#: Model-selection criteria on the validation split (``TrainConfig.monitor``).
MONITORS = ("val_loss", "val_ua")


@dataclass(frozen=True)
class TrainConfig:
    """One training stage.

    Attributes:
        optimizer: ``rmsprop`` (paper), ``adam`` or ``sgd``.
        lr: learning rate (paper: 5e-5 to 1e-4).
        batch_size: utterances per step (paper: 256 EmoDB, 64/128 IEMOCAP).
        epochs: maximum epochs (not given by the paper).
        patience: early-stopping patience in epochs without improvement of ``monitor``;
            ``0`` disables early stopping (the best validation epoch is still kept).
        monitor: model-selection criterion on the validation split: ``val_loss`` (lowest;
            smooth even on EmoDB's ~40-utterance validation splits) or ``val_ua`` (highest,
            ties broken by lower loss).
        val_fraction: share of each fold's training part held out, stratified,
            for model selection; the test fold is never looked at.
        weight_decay: L2 penalty.
    """

    optimizer: str = "rmsprop"
    lr: float = 1e-4
    batch_size: int = 256
    epochs: int = 200
    patience: int = 40
    val_fraction: float = 0.1
    weight_decay: float = 0.0
    monitor: str = "val_loss"

    def __post_init__(self):
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be val_loss or val_ua, got {self.monitor!r}")


MODELS = ("frlm", "urlm", "concat", "early", "amsnet", "late")
#: Late fusion's candidate weights of FRLM's probabilities (URLM's: 1 - w): 0 to 1 in steps of 0.05.
LATE_WEIGHTS = tuple(round(0.05 * i, 2) for i in range(21))
PROTOCOLS = ("paper", "loso", "loso_session", "split_file")
NORMALISATIONS = ("corpus", "speaker")


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
            ``split_file`` (folds read from ``split_file``).
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
            training part) or ``speaker`` (each speaker first standardised with their own
            statistics, see :func:`amsnet_lib.features.standardise_per_speaker`; not in the
            paper, and only for cross-validation: a model for new audio cannot know the
            speaker's statistics).
        late_weights: late fusion's candidate weights w of FRLM's probabilities (URLM's: 1 − w),
            each in [0, 1]; the one with the best validation ``fusion_train.monitor`` is kept
            (:func:`amsnet_lib.training.fit_late_weight`). One value fixes w (``(0.5,)``: the
            plain average of the two branches). Used by ``model="late"`` only.
        augment: training-time channel augmentation (beyond the paper): ``none``, or ``channels``
            (random-channel copies of the training utterances, made by
            :func:`amsnet_lib.augment.augmented_features` before training; the engine trains on a
            copy only when its original is in the fit part, and never validates or tests on one).
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
    fusion_train: TrainConfig = field(default_factory=TrainConfig)
    frlm_train: TrainConfig | None = None
    split_file: str | None = None
    variant: str = ""
    normalisation: str = "corpus"
    late_weights: tuple[float, ...] = LATE_WEIGHTS
    augment: str = "none"

    def __post_init__(self):
        if self.augment not in ("none", "channels"):
            raise ValueError(f"augment must be none or channels, got {self.augment!r}")
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
