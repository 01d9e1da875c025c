"""The numbers the AMSNet paper reports, as data, for side-by-side comparison only.

Everything in this module is **reported by the paper** (Chen, Li, Liu, Wang, Wang & Zheng,
Expert Systems With Applications 213 (2023) 118943, doi:10.1016/j.eswa.2022.118943) and was
**not measured by this code**. The literature rows of Table 2 were not re-run by the paper's
authors either: they are quoted from the cited works. All values are percentages, except the
parameter counts of Table 3.

The paper evaluates with random, stratified 5-fold cross-validation (80 % train, 20 % test), so
the same speakers are in training and test: its numbers are **speaker-dependent**
(``PROTOCOL = "paper"``). Comparing them with a speaker-independent protocol (leave one speaker
out) measures a different thing; the report labels every number with its protocol.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ABLATIONS",
    "ABLATION_LABELS",
    "CITATION",
    "FINDINGS",
    "PROTOCOL",
    "REPORTED",
    "TABLE2",
    "TABLE3",
    "Table2Row",
]

#: Where the numbers come from.
CITATION = ("Chen, Li, Liu, Wang, Wang & Zheng (2023), Learning multi-scale features for speech emotion "
            "recognition with connection attention mechanism, Expert Systems With Applications 213, 118943")

#: Label carried by every value of this module.
REPORTED = "reported by the paper"

#: The paper's evaluation protocol (see :mod:`amsnet_lib.data.protocols`): speaker-dependent 5-fold CV.
PROTOCOL = "paper"


@dataclass(frozen=True)
class Table2Row:
    """One row of the paper's Table 2 (WA and UA in %, as printed)."""

    model: str
    corpus: str  # "iemocap" or "emodb"
    wa: float
    ua: float
    amsnet: bool = False  # the paper's own model (all other rows are quoted literature values)


#: Table 2: comparison with the literature. Rows with ``amsnet=False`` are literature values
#: quoted by the paper ("reported, not re-run" here and, as far as the paper says, there).
TABLE2: tuple[Table2Row, ...] = (
    Table2Row("FaceNet (Liu et al. 2021)", "iemocap", 68.96, 69.53),
    Table2Row("HGFM (Xu et al. 2020)", "iemocap", 66.54, 70.48),
    Table2Row("GA-GRU (Su et al. 2020)", "iemocap", 62.27, 63.80),
    Table2Row("3DCNN+ASRNN (Peng et al. 2020)", "iemocap", 61.90, 62.60),
    Table2Row("Dual Attention+BLSTM (Chen & Huang 2021)", "iemocap", 68.73, 70.29),
    Table2Row("AMSNet", "iemocap", 69.22, 70.51, amsnet=True),
    Table2Row("CNN (Issa et al. 2020)", "emodb", 86.10, 86.94),
    Table2Row("XGBoost+CNN+BLSTM (He & Ren 2021)", "emodb", 86.87, 86.03),
    Table2Row("AMSNet", "emodb", 88.34, 88.56, amsnet=True),
)


#: Table 3: SE reduction ratio r -> ACC (%) per corpus and the model's parameter count.
#: "ACC" is accuracy (WA, eq 15); the paper does not say which of its runs it is.
TABLE3: dict[int, dict[str, float]] = {
    2: {"iemocap": 70.34, "emodb": 87.94, "params": 23.1e6},
    4: {"iemocap": 70.41, "emodb": 88.32, "params": 15.6e6},
    8: {"iemocap": 70.53, "emodb": 88.59, "params": 12.5e6},
    16: {"iemocap": 70.51, "emodb": 88.54, "params": 11.2e6},
    32: {"iemocap": 70.39, "emodb": 88.42, "params": 10.8e6},
}

#: Tables 4 (IEMOCAP) and 5 (EmoDB): ablations, model -> (WA %, UA %). Keys are the model names
#: of :mod:`amsnet_lib.studies`.
ABLATIONS: dict[str, dict[str, tuple[float, float]]] = {
    "iemocap": {
        "early": (65.69, 66.36),
        "frlm": (65.02, 64.60),
        "urlm": (67.43, 67.92),
        "concat": (68.94, 69.21),
        "amsnet": (69.22, 70.51),
    },
    "emodb": {
        "early": (85.63, 86.32),
        "frlm": (84.14, 84.46),
        "urlm": (84.21, 84.52),
        "concat": (88.15, 87.02),
        "amsnet": (88.34, 88.56),
    },
}

#: The paper's names of the ablation models.
ABLATION_LABELS = {
    "early": "Early fusion",
    "frlm": "FRLM",
    "urlm": "URLM",
    "concat": "URLM+FRLM (Concat)",
    "amsnet": "AMSNet",
}

#: Studies the paper shows only as figures, without numbers: its stated conclusions.
FINDINGS = {
    "optimizer_batch": "Fig. 6: RMSprop is the best optimizer; batch size 64 or 128 is best for IEMOCAP, 256 for EmoDB.",
    "hidden_size": "Fig. 7: BLSTM hidden size below 128 performs poorly, above 512 overfits; 128-512 is good.",
    "learning_rate": "Sec. 4.5: the learning rate should be set between 5e-5 and 1e-4.",
    "se_ratio": "Table 3: r = 16 balances accuracy and parameter count.",
}
