"""The ONNX form of a model: export, metadata, agreement with the eager model, and inference
without PyTorch (issue #39: an inference install leaves torch out)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from signals import REPO_ROOT, tone

from amsnet_lib.errors import CheckpointError
from amsnet_lib.serve.predict import SHIPPED_CHECKPOINT, SHIPPED_ONNX, Recognizer

# Put in front of every import: `import torch` (and any torch.*) fails as on a machine without it,
# and so does every package the inference install (`pip install .`, pyproject's core) leaves out.
NOT_IN_THE_INFERENCE_INSTALL = ("torch", "librosa", "numba", "llvmlite", "scipy", "sklearn", "ray", "optuna",
                                "matplotlib", "seaborn", "onnx", "onnxscript")
NO_TORCH = textwrap.dedent(f'''
    import sys

    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {NOT_IN_THE_INFERENCE_INSTALL!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (made unimportable by the test)", name=name)
            return None

    sys.meta_path.insert(0, _NoTorch())
''')


def _without_torch(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "AMSNET_NO_REEXEC": "1"}
    return subprocess.run([sys.executable, "-c", NO_TORCH + textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _wavs(folder: Path, n: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"clip{i}.wav"
        sf.write(p, tone(1.5 + 0.5 * i, 120.0 + 60 * i, seed=i), 16000)
        out.append(p)
    return out


@pytest.mark.parametrize("package", ["torch", "librosa", "scipy.signal"])
def test_the_blocker_really_makes_torch_unimportable(tmp_path, package):
    out = _without_torch(f"import {package}\n", tmp_path)
    assert out.returncode != 0 and "made unimportable by the test" in out.stderr


@pytest.mark.slow
def test_predict_evaluate_and_stream_an_onnx_model_without_torch(tmp_path):
    """`amsnet predict` with the shipped ONNX model (the default when torch is absent), evaluate on it and
    stream with the two-corpus one named, in a process where torch cannot be imported: nothing may import it."""
    clips = _wavs(tmp_path / "audio")
    manifest = tmp_path / "labelled.csv"
    manifest.write_text("path,label\n" + "".join(f"{p},anger\n" for p in clips))
    out = _without_torch(f'''
        import contextlib, io, json
        from amsnet_lib.cli import main
        from amsnet_lib.serve.predict import shipped_checkpoint

        assert shipped_checkpoint().suffix == ".onnx", shipped_checkpoint()
        assert shipped_checkpoint("emodb+ravdess").suffix == ".onnx"  # the model of both corpora, by name
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["predict", {str(tmp_path / "audio")!r}, "--format", "json", "--quiet"]) == 0
            assert main(["evaluate", {str(manifest)!r}, "--checkpoint", {str(SHIPPED_ONNX)!r}, "--quiet",
                         "--adapt", "none", "--left-out", {str(tmp_path / "left.csv")!r}]) == 0
            assert main(["stream", {str(clips[-1])!r}, "--checkpoint", "emodb+ravdess", "--format", "jsonl"]) == 0
        text = buf.getvalue()
        rows = json.JSONDecoder().raw_decode(text)[0]
        print(json.dumps({{"rows": rows, "torch": "torch" in sys.modules, "text": text}}))
    ''', tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["torch"] is False
    assert len(got["rows"]) == 3 and all(r["error"] is None and r["label"] for r in got["rows"])
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in got["rows"])
    assert "WA " in got["text"] and '"summary"' in got["text"] and '"surprise"' in got["text"]  # a class of RAVDESS


def test_commands_that_need_torch_name_the_extra_to_install(tmp_path):
    clip = _wavs(tmp_path / "audio", 1)[0]
    out = _without_torch(f'''
        from amsnet_lib.cli import main
        codes = [main(["predict", {str(clip)!r}, "--checkpoint", {str(SHIPPED_CHECKPOINT)!r}, "--quiet"]),
                 main(["export", {str(SHIPPED_CHECKPOINT)!r}, {str(tmp_path / "m.onnx")!r}]),
                 main(["fit", "--corpus", {str(tmp_path)!r}, "--out", {str(tmp_path / "x.pt")!r}])]
        print(codes)
    ''', tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[2, 2, 2]"
    err = out.stderr
    assert "reading a .pt checkpoint needs PyTorch" in err and str(SHIPPED_CHECKPOINT) in err
    assert "amsnet export needs the torch package" in err and "pip install 'amsnet[torch]'" in err
    assert "amsnet fit needs the torch package" in err and "pip install 'amsnet[train]'" in err
    assert "Traceback" not in err


def test_shipped_onnx_metadata_carries_what_the_checkpoint_does():
    from amsnet_lib.serve.checkpoint import read_checkpoint_info
    from amsnet_lib.serve.onnx_model import OnnxModel

    onnx_info = OnnxModel(SHIPPED_ONNX).info
    pt = read_checkpoint_info(SHIPPED_CHECKPOINT)
    assert onnx_info.classes == pt.classes
    assert onnx_info.experiment == pt.experiment and onnx_info.features == pt.features
    for k in ("frames_mean", "frames_std", "spec_mean", "spec_std"):
        np.testing.assert_array_equal(getattr(onnx_info.normaliser, k), getattr(pt.normaliser, k))
    card = onnx_info.meta["card"]
    assert card["loso_accuracy"] == pt.meta["loso_accuracy"] and card["recipe"] == pt.meta["recipe"]
    assert card["limits"] and "EmoDB" in card["data"]
    assert onnx_info.meta["training_sha256"] == pt.meta["training_sha256"]  # evaluate still leaves training files out


@pytest.mark.emodb
@pytest.mark.slow
def test_shipped_onnx_logits_match_the_eager_model_on_20_emodb_files(emodb_dir):
    import torch

    eager = Recognizer(SHIPPED_CHECKPOINT)
    onnx = Recognizer(SHIPPED_ONNX)
    assert eager.runtime == "torch" and onnx.runtime == "onnxruntime"
    files = sorted((emodb_dir / "wav").glob("*.wav"))[::26][:20]
    assert len(files) == 20
    feats = [eager.features(eager.load(f)) for f in files]
    f, m, s = eager.normalise(*(np.stack(x) for x in zip(*feats)))
    with torch.inference_mode():
        want_logits, want_alpha = (t.numpy() for t in eager.model(*map(torch.from_numpy, (f, m, s))))
    got_logits, got_alpha = onnx.model(f, m, s)
    assert np.abs(got_logits - want_logits).max() <= 1e-4
    assert np.abs(got_alpha - want_alpha).max() <= 1e-4
    # one file at a time, through the predictor's own path
    p_eager, _ = eager.infer(f[:1], m[:1], s[:1], normalised=True)
    p_onnx, _ = onnx.infer(f[:1], m[:1], s[:1], normalised=True)
    assert np.abs(p_eager - p_onnx).max() <= 1e-4


@pytest.mark.slow
def test_export_onnx_from_the_command_line_round_trips(tiny_ckpt, tmp_path):
    from amsnet_lib.cli import main

    out = tmp_path / "tiny.onnx"
    assert main(["export", str(tiny_ckpt), str(out)]) == 0  # the format from the file name
    clips = _wavs(tmp_path / "audio")
    a = Recognizer(tiny_ckpt).predict(clips, progress=False)
    b = Recognizer(out).predict(clips, progress=False)
    cols = [c for c in a.columns if c.startswith("p_") or c.startswith("alpha_")]
    np.testing.assert_allclose(b[cols].to_numpy(float), a[cols].to_numpy(float), atol=1e-4)
    assert list(b["label"]) == list(a["label"])


def test_a_broken_onnx_file_is_a_clear_error(tmp_path):
    from amsnet_lib.serve.onnx_model import OnnxModel

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError) as info:
        OnnxModel(bad)
    assert str(bad) in str(info.value) and "amsnet export" in info.value.fix
    with pytest.raises(CheckpointError, match="does not exist"):
        Recognizer(tmp_path / "absent.onnx")
