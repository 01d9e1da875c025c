"""Figures on synthetic data: each returns a Figure, saves a readable PNG atomically, titles kept."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from amsnet_lib.report import plotting

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _curves(models=("frlm", "urlm"), folds=3, epochs=6, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for m in models:
        for f in range(folds):
            n = epochs - f  # early stopping: folds of different lengths
            for e in range(1, n + 1):
                rows.append({"model": m, "fold": f"fold{f}", "seed": 0, "epoch": e, "train_loss": 2 / e + rng.random() * 0.1,
                             "train_acc": 1 - 1 / (e + 1), "val_loss": 2.2 / e, "val_wa": 0.5 + 0.05 * e, "val_ua": 0.45 + 0.05 * e})
    return pd.DataFrame(rows)


def _check_png(path):
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert not list(path.parent.glob(".tmp-*")), "temporary file left behind"


def test_spectrograms_saves_and_titles(tmp_path):
    rng = np.random.default_rng(0)
    specs = {c: rng.normal(size=(128, 121)).astype(np.float32) for c in ("anger", "happiness", "neutral", "sadness")}
    out = tmp_path / "fig" / "fig1.png"
    fig = plotting.spectrograms(specs, captions={"anger": "03a01Wa.wav"}, title="Fig. 1 (paper protocol)", save=out)
    assert isinstance(fig, Figure)
    _check_png(out)
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("anger") and "03a01Wa.wav" in t for t in titles)
    assert fig._suptitle.get_text() == "Fig. 1 (paper protocol)"
    # time axis in seconds: 121 frames at 25 ms
    assert fig.axes[0].get_xlim()[1] == pytest.approx(121 * 0.025)


def test_spectrograms_needs_data():
    with pytest.raises(ValueError):
        plotting.spectrograms({})


def test_confusion_matrix_row_normalised(tmp_path):
    m = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 5]])
    out = tmp_path / "cm.png"
    fig = plotting.confusion_matrix(m, ["a", "b", "c"], title="Fig. 4 [loso]", save=out)
    _check_png(out)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "80.0\n(8)" in texts and "75.0\n(3)" in texts and "100.0\n(5)" in texts
    assert "[loso]" in fig._suptitle.get_text()


def test_confusion_matrix_shape_checked():
    with pytest.raises(ValueError):
        plotting.confusion_matrix(np.zeros((2, 2)), ["a", "b", "c"])


def test_confusion_matrix_empty_row_is_not_nan():
    fig = plotting.confusion_matrix(np.array([[0, 0], [1, 1]]), ["a", "b"])
    assert "0.0\n(0)" in [t.get_text() for t in fig.axes[0].texts]


def test_training_curves_groups_and_bands(tmp_path):
    out = tmp_path / "curves.png"
    fig = plotting.training_curves(_curves(), by="model", title="Fig. 5", save=out)
    _check_png(out)
    acc, loss = fig.axes[:2]
    labels = [l.get_label() for l in acc.get_lines()]
    assert "frlm: train accuracy" in labels and "urlm: validation WA" in labels
    # accuracy in percent
    assert max(max(l.get_ydata()) for l in acc.get_lines()) > 1.0
    assert [l.get_label() for l in loss.get_lines()] == ["frlm: train loss", "frlm: validation loss", "urlm: train loss", "urlm: validation loss"]


def test_training_curves_single_group_and_missing_column():
    c = _curves(models=("amsnet",)).drop(columns=["model"])
    fig = plotting.training_curves(c, by=None)
    assert fig.axes[0].get_lines()
    with pytest.raises(ValueError):
        plotting.training_curves(c, by="model")


def test_study_bars_hue_and_errors(tmp_path):
    t = pd.DataFrame({"optimizer": ["rmsprop", "rmsprop", "adam", "adam"], "batch_size": [64, 256, 64, 256],
                      "wa": [80.0, 82.0, 78.0, 79.0], "wa_std": [1.0, 2.0, 1.5, 0.5], "loss": [0.6, 0.5, 0.7, 0.65]})
    out = tmp_path / "fig6.png"
    fig = plotting.study_bars(t, x="batch_size", y=["wa", "loss"], hue="optimizer", err={"wa": "wa_std"}, title="Fig. 6", save=out)
    _check_png(out)
    ax_wa, ax_loss = fig.axes[:2]
    assert len(ax_wa.patches) == 4 and ax_wa.get_ylabel() == "WA (%)" and ax_loss.get_ylabel() == "test loss"
    # one legend for the figure, outside the panels, so it never hides a bar
    assert ax_wa.get_legend() is None and len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["rmsprop", "adam"]


def test_study_bars_marks_a_listed_configuration_without_a_value_as_not_run():
    t = pd.DataFrame({"optimizer": ["rmsprop", "rmsprop", "sgd", "sgd"], "batch_size": [64, 256, 64, 256],
                      "wa": [80.0, 82.0, np.nan, 30.0]})
    fig = plotting.study_bars(t, x="batch_size", y="wa", hue="optimizer")
    assert [txt.get_text().strip() for txt in fig.axes[0].texts] == ["not run"]
    # a combination the table does not list at all is not claimed as planned
    fig = plotting.study_bars(t.iloc[[0, 1, 3]], x="batch_size", y="wa", hue="optimizer")
    assert not fig.axes[0].texts


def test_study_bars_single_measure():
    t = pd.DataFrame({"hidden_size": [32, 64, 128], "ua": [70.0, 75.0, 80.0]})
    fig = plotting.study_bars(t, x="hidden_size", y="ua")
    assert len(fig.axes[0].patches) == 3


def test_study_curves(tmp_path):
    c = _curves(models=("r=2", "r=16")).rename(columns={"model": "variant"})
    out = tmp_path / "sc.png"
    fig = plotting.study_curves(c, by="variant", save=out)
    _check_png(out)
    assert [l.get_label() for l in fig.axes[0].get_lines()] == ["r=2: validation WA", "r=16: validation WA"]


def test_fusion_weights(tmp_path):
    rng = np.random.default_rng(1)
    p = pd.DataFrame({"true": rng.integers(0, 3, 60), "alpha_frlm": rng.uniform(0.2, 0.9, 60)})
    p["alpha_urlm"] = 1 - p["alpha_frlm"]
    out = tmp_path / "alpha.png"
    fig = plotting.fusion_weights(p, ["a", "b", "c"], title="alpha [paper]", save=out)
    _check_png(out)
    assert f"{p['alpha_frlm'].mean():.3f}" in fig.axes[0].get_title()
    with pytest.raises(ValueError):
        plotting.fusion_weights(p.drop(columns=["alpha_frlm"]), ["a", "b", "c"])


def test_save_figure_replaces_atomically(tmp_path):
    out = tmp_path / "x.png"
    out.write_bytes(b"old")
    fig = Figure()
    fig.subplots().plot([0, 1])
    plotting.save_figure(fig, out)
    _check_png(out)


def test_significance_draws_each_measured_difference_with_its_interval(tmp_path):
    t = pd.DataFrame({"model": ["FRLM", "URLM", "Early fusion"], "ΔWA (pp)": ["17.94", "-2.24", "not run: unfinished folds"],
                      "ΔWA 95 % CI": ["13.64 to 22.43", "-4.67 to 0.19", None], "ΔUA (pp)": [21.18, -2.40, None],
                      "ΔUA 95 % CI": ["16.85 to 25.58", "-5.07 to 0.28", None]})
    fig = plotting.significance({"[paper]": t, "[loso]": t.iloc[:2]}, title="AMSNet vs", save=tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG_MAGIC and fig._suptitle.get_text() == "AMSNet vs"
    ax = fig.axes[0]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["FRLM", "URLM"]  # the unrun row is left out
    wa = ax.containers[0]  # ΔWA: points at the differences, bars to the interval's ends
    assert list(wa.lines[0].get_xdata()) == [17.94, -2.24]
    segments = wa.lines[2][0].get_segments()
    assert [tuple(np.round(s[:, 0], 2)) for s in segments] == [(13.64, 22.43), (-4.67, 0.19)]


def test_cross_corpus_draws_one_row_of_adaptations_per_model(tmp_path):
    rows = [{"model": m, "train": a, "test": b, "adapt": mode, "UA (%)": 30.0 + k}
            for k, m in enumerate(("AMSNet", "FRLM", "SVM")) for a, b in (("emodb", "ravdess"), ("ravdess", "emodb"))
            for mode in ("none", "speaker")]
    fig = plotting.cross_corpus(pd.DataFrame(rows), chance=25, save=tmp_path / "cc.png")
    heat = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in heat] == [f"{m}\n--adapt {mode}" for m in ("AMSNet", "FRLM", "SVM")
                                               for mode in ("none", "speaker")]
    # the cell of the second model's emodb -> ravdess pair holds that model's value; the diagonal stays blank
    assert "31.0" in [t.get_text() for t in heat[2].texts] and len(heat[2].texts) == 2
    one = plotting.cross_corpus(pd.DataFrame(rows[:4]))
    assert [ax.get_title() for ax in one.axes if ax.get_title()] == ["--adapt none", "--adapt speaker"]
    _check_png(tmp_path / "cc.png")
