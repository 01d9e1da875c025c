"""TorchScript export: the exported file gives the eager model's outputs, on random and real inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from amsnet_lib import cli
from amsnet_lib.serve.checkpoint import load_checkpoint
from amsnet_lib.errors import CheckpointError
from amsnet_lib.serve.export import ExportWrapper, example_inputs, export_torchscript, load_exported
from amsnet_lib.serve.predict import Recognizer

from signals import TINY_FEATURES, tone



@pytest.fixture(autouse=True)
def one_thread():
    """Batch sizes of 1-7: one torch thread is much faster than two on a loaded 2-core machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def exported(tiny_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "tiny.ts.pt"
    export_torchscript(tiny_ckpt, out)  # check=True: already compared with the eager model
    return out


def _run(module, args):
    with torch.inference_mode(), torch.jit.optimized_execution(False):
        return module(*args)


def test_exported_equals_eager_on_random_inputs(tiny_ckpt, exported):
    module, meta = load_exported(exported)
    model, info = load_checkpoint(tiny_ckpt)
    eager = ExportWrapper(model, info).eval()
    for batch, full, seed in ((1, True, 10), (4, False, 11), (7, False, 12)):
        args = example_inputs(info, batch, seed=seed, full_mask=full)
        want, got = _run(eager, args), _run(module, args)
        assert got[0].shape == (batch, 2) and got[1].shape == (batch, 2)
        torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got[1], want[1], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got[0].sum(-1), torch.ones(batch), atol=1e-5, rtol=0)


def test_exported_equals_the_recognizer_on_real_features(tiny_ckpt, exported):
    """Raw features of real signals in -> the same probabilities and alphas as amsnet's own predictor."""
    rec = Recognizer(tiny_ckpt)
    module, meta = load_exported(exported)
    signals = [tone(0.9, 300.0, seed=1), tone(1.4, 110.0, seed=2), tone(0.3, 200.0, seed=3)]
    feats = [rec.features(x) for x in signals]
    f, m, s = (np.stack([x[i] for x in feats]) for i in range(3))
    proba, alpha = rec.infer(f, m, s)
    got = _run(module, (torch.from_numpy(f), torch.from_numpy(m), torch.from_numpy(s)))
    np.testing.assert_allclose(got[0].numpy(), proba, atol=1e-5)
    np.testing.assert_allclose(got[1].numpy(), alpha, atol=1e-5)


def test_metadata_travels_with_the_file(exported):
    _, meta = load_exported(exported)
    assert meta["classes"] == ["high", "low"] and meta["model"] == "amsnet"
    assert meta["q"] == 100 and meta["spec_frames"] == 41 and meta["normalised_inside"] is True
    assert len(meta["normaliser"]["frames_mean"]) == 76


def test_export_without_normaliser_takes_standardised_features(tiny_ckpt, tmp_path):
    out = export_torchscript(tiny_ckpt, tmp_path / "raw.pt", normalise=False)
    module, meta = load_exported(out)
    model, info = load_checkpoint(tiny_ckpt)
    args = example_inputs(info, 3, seed=4, full_mask=False)
    with torch.inference_mode():
        logits, alpha = model(*args)
    got = _run(module, args)
    torch.testing.assert_close(got[0], torch.softmax(logits, -1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got[1], alpha, atol=1e-5, rtol=1e-4)
    assert meta["normalised_inside"] is False


def test_cli_export_and_errors(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "cli.ts.pt"
    assert cli.main(["export", str(tiny_ckpt), str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and out.is_file()
    assert cli.main(["export", str(tmp_path / "none.pt"), str(tmp_path / "x.pt")]) == 2
    assert "none.pt" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
    with pytest.raises(CheckpointError, match="does not exist"):
        load_exported(tmp_path / "nothing.ts.pt")


def test_export_of_a_model_without_fusion_weights(tmp_path):
    """Concatenation fusion returns no alpha: the export gives NaN for it, at every batch size."""
    import dataclasses

    from amsnet_lib.serve.checkpoint import save_checkpoint
    from amsnet_lib.data.features import Normaliser
    from amsnet_lib.models import build_model
    from amsnet_lib.studies import experiment

    exp = dataclasses.replace(experiment("custom", "concat", "paper", "quick"), features=TINY_FEATURES)
    torch.manual_seed(0)
    model = build_model("concat", 3, frlm=exp.frlm, urlm=exp.urlm, fusion=exp.fusion, n_mels=128)
    norm = Normaliser(np.zeros(76, np.float32), np.ones(76, np.float32), np.zeros(128, np.float32), np.ones(128, np.float32))
    ckpt = save_checkpoint(tmp_path / "concat.pt", model, exp, ["a", "b", "c"], norm)
    module, meta = load_exported(export_torchscript(ckpt, tmp_path / "concat.ts.pt"))
    _, info = load_checkpoint(ckpt)
    proba, alpha = _run(module, example_inputs(info, 4, seed=1, full_mask=False))
    assert proba.shape == (4, 3) and alpha.shape == (4, 2) and torch.isnan(alpha).all()


def test_late_fusion_checkpoint_predicts_and_exports_its_weight(tmp_path, write_audio):
    """A late-fusion checkpoint (its weight chosen, here set to 0.3) round-trips: the Recognizer
    reports alpha = (0.3, 0.7) for every file, and the TorchScript export gives the eager model's
    probabilities and the same alpha."""
    import dataclasses

    from amsnet_lib.serve.checkpoint import save_checkpoint
    from amsnet_lib.data.features import Normaliser
    from amsnet_lib.models import build_model
    from amsnet_lib.studies import experiment

    exp = dataclasses.replace(experiment("custom", "late", "paper", "quick"), features=TINY_FEATURES)
    torch.manual_seed(0)
    model = build_model("late", 3, frlm=exp.frlm, urlm=exp.urlm, fusion=exp.fusion, n_mels=128)
    model.head.weight.fill_(0.3)
    norm = Normaliser(np.zeros(76, np.float32), np.ones(76, np.float32), np.full(128, -6.0, np.float32), np.full(128, 4.0, np.float32))
    ckpt = save_checkpoint(tmp_path / "late.pt", model, exp, ["a", "b", "c"], norm)
    loaded, info = load_checkpoint(ckpt)
    assert float(loaded.head.weight) == pytest.approx(0.3) and loaded.head.frlm_head is loaded.frlm.head
    df = Recognizer(ckpt).predict([write_audio("c.wav", tone(0.8, 200.0))], progress=False)
    np.testing.assert_allclose(df[["alpha_frlm", "alpha_urlm"]].to_numpy(), [[0.3, 0.7]], atol=1e-6)
    module, _ = load_exported(export_torchscript(ckpt, tmp_path / "late.ts.pt"))
    inputs = example_inputs(info, 4, seed=1, full_mask=False)
    proba, alpha = _run(module, inputs)
    np.testing.assert_allclose(alpha.numpy(), np.tile([0.3, 0.7], (4, 1)), atol=1e-6)
    torch.testing.assert_close(proba, _run(ExportWrapper(loaded, info).eval(), inputs)[0], atol=1e-5, rtol=1e-4)
