"""The diagnostic scripts: frame-feature check and FRLM tuning table (their computations, on synthetic data)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_utterance_statistics_use_only_valid_frames():
    check = _script("check_frame_features")
    frames = np.zeros((2, 5, 3), np.float32)
    frames[0, :2] = [[1, 2, 3], [3, 4, 5]]
    frames[1, :5] = np.arange(15, dtype=np.float32).reshape(5, 3)
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
    x = check.utterance_statistics(frames, mask)
    assert x.shape == (2, 3 * 5)  # mean, std, 3 percentiles per dimension
    np.testing.assert_allclose(x[0, :3], [2, 3, 4])  # the padded zeros do not pull the mean down
    np.testing.assert_allclose(x[0, 3:6], [1, 1, 1])


def test_speaker_standardisation_is_per_speaker():
    check = _script("check_frame_features")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4))
    speakers = np.array(["a", "b"] * 20)
    x[speakers == "b"] = 10 + 3 * x[speakers == "b"]
    z = check.speaker_standardised(x, speakers)
    for s in ("a", "b"):
        np.testing.assert_allclose(z[speakers == s].mean(0), 0, atol=1e-9)
        np.testing.assert_allclose(z[speakers == s].std(0), 1, atol=1e-5)


def test_tuning_reads_the_epoch_early_stopping_keeps(tmp_path):
    tuning = _script("frlm_tuning")
    assert tuning.validation_row(tmp_path) is None  # fold not run
    pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.2], "train_acc": [0.5, 0.7, 0.9],
                  "val_loss": [1.2, 0.8, 0.9], "val_wa": [0.4, 0.6, 0.65], "val_ua": [0.3, 0.55, 0.6]}).to_csv(
        tmp_path / "curves.csv", index=False)
    (tmp_path / "metrics.json").write_text(json.dumps({"wa": 0.5, "ua": 0.5}))
    row = tuning.validation_row(tmp_path)
    assert row == {"best_epoch": 2, "epochs_run": 3, "val_loss": 0.8, "val_ua": 55.0, "val_wa": 60.0, "train_acc": 70.0}


def test_tuning_hidden_size_variant_is_the_fig7_study_run():
    """``0.3,0,256`` must land in the same run-store entry as the hidden-size study's 256 (no retraining)."""
    from amsnet_lib import studies
    from amsnet_lib.training import _branch_key

    tuning = _script("frlm_tuning")
    base = studies.experiment("emodb", "frlm", "paper", "full")
    fig7 = {c.frlm.hidden_size: c for c in studies.hidden_size_study("emodb")}
    v = tuning.variant(base, "0.3,0,256")
    assert v.frlm.hidden_size == 256 and v.variant.endswith("hidden=256")
    assert _branch_key("frlm", v, 535) == _branch_key("frlm", fig7[256], 535)
    assert _branch_key("frlm", tuning.variant(base, "0.3,0"), 535) == _branch_key("frlm", fig7[128], 535)
