"""Self-describing checkpoints: round trip, and every way a file can be wrong → CheckpointError.

The quick-profile model the inference tests share is the session fixture ``tiny_ckpt``
(conftest.py, built by :func:`signals.tiny_checkpoint`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from amsnet_lib.serve.checkpoint import (
    FORMAT_VERSION,
    TRAINING_DIGESTS,
    config_from_dict,
    config_to_dict,
    describe_training_data,
    file_digest,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from amsnet_lib.config import ExperimentConfig
from amsnet_lib.errors import CheckpointError
from signals import TINY_CLASSES, TINY_FEATURES, tone  # noqa: F401

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- round trip


def test_round_trip_restores_model_configs_classes_normaliser(tiny_ckpt):
    model, info = load_checkpoint(tiny_ckpt)
    assert not model.training
    assert info.model_name == "amsnet" and info.classes == tuple(TINY_CLASSES)
    assert info.features == TINY_FEATURES and info.features.q == 100
    assert info.experiment.frlm.hidden_size == 16  # quick profile
    assert info.normaliser.frames_mean.shape == (76,) and info.normaliser.spec_std.shape == (128,)
    assert info.meta["data"] == "synthetic tones"
    assert info.format_version == FORMAT_VERSION and info.amsnet_version
    # the weights are the saved ones: same outputs as a second load
    model2, _ = load_checkpoint(tiny_ckpt)
    x = torch.randn(2, 100, 76), torch.ones(2, 100, dtype=torch.bool), torch.randn(2, 128, 41)
    with torch.no_grad():
        a, b = model(*x), model2(*x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_config_dict_round_trip_keeps_tuples():
    exp = ExperimentConfig(seeds=(0, 1))
    back = config_from_dict(ExperimentConfig, config_to_dict(exp))
    assert back == exp and isinstance(back.urlm.filters, tuple)
    with pytest.raises(TypeError, match="unknown field"):
        config_from_dict(ExperimentConfig, {**config_to_dict(exp), "bogus": 1})


def test_optional_nested_configs_come_back_as_dataclasses():
    from amsnet_lib.config import TrainConfig

    exp = ExperimentConfig(frlm_train=TrainConfig(weight_decay=1e-3))  # FRLM trains with its own settings
    back = config_from_dict(ExperimentConfig, config_to_dict(exp))
    assert back == exp and back.stage_train("frlm").weight_decay == exp.frlm_train.weight_decay
    old = config_to_dict(ExperimentConfig())
    del old["frlm_train"]  # checkpoints written before the field existed
    assert config_from_dict(ExperimentConfig, old).frlm_train is None


def test_save_is_atomic_and_leaves_no_temp_files(tiny_ckpt, tmp_path):
    model, info = load_checkpoint(tiny_ckpt)
    out = tmp_path / "sub" / "m.pt"
    save_checkpoint(out, model, info.experiment, info.classes, info.normaliser, meta={"n": np.int64(3)})
    assert out.is_file() and [p.name for p in out.parent.iterdir()] == ["m.pt"]
    assert load_checkpoint(out)[1].meta == {"n": 3}


def test_training_data_is_described_by_counts_speakers_and_file_contents(tiny_ckpt, tmp_path):
    import pandas as pd

    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, tone(0.5, 200.0, seed=1), 16000)
    sf.write(b, tone(0.5, 200.0, seed=2), 16000)  # other noise: other bytes
    moved = tmp_path / "elsewhere" / "renamed.flac"
    moved.parent.mkdir()
    moved.write_bytes(a.read_bytes())
    assert file_digest(a) == file_digest(moved) != file_digest(b) and len(file_digest(a)) == 32
    table = pd.DataFrame({"path": [str(a), str(b)], "label": ["low", "low"], "speaker": ["s2", "s1"]})
    d = describe_training_data(table, ["high", "low"])
    assert d["n_utterances"] == 2 and d["class_counts"] == {"high": 0, "low": 2} and d["speakers"] == ["s1", "s2"]
    assert d[TRAINING_DIGESTS] == sorted([file_digest(a), file_digest(b)])
    # one file missing (features made on another machine): no partial list, a reason instead
    gone = describe_training_data(table.assign(path=[str(a), str(tmp_path / "gone.wav")]), ["high", "low"])
    assert isinstance(gone[TRAINING_DIGESTS], str) and "1 of 2 training files could not be read" in gone[TRAINING_DIGESTS]
    # save_checkpoint(training_table=...) puts it into the meta, beside what the caller gave
    model, info = load_checkpoint(tiny_ckpt)
    out = save_checkpoint(tmp_path / "m.pt", model, info.experiment, info.classes, info.normaliser,
                          meta={"data": "two tones"}, training_table=table)
    meta = read_checkpoint_info(out).meta
    assert meta["data"] == "two tones" and meta[TRAINING_DIGESTS] == d[TRAINING_DIGESTS]


def test_shipped_checkpoint_records_every_emodb_file_it_was_trained_on(emodb_dir):
    from amsnet_lib.data.corpora import load_corpus
    from amsnet_lib.serve.predict import SHIPPED_CHECKPOINT

    meta = read_checkpoint_info(SHIPPED_CHECKPOINT).meta
    table = load_corpus("emodb", data_dir=emodb_dir, download=False)
    assert meta["n_utterances"] == len(table) == len(meta[TRAINING_DIGESTS])
    assert set(meta[TRAINING_DIGESTS]) == {file_digest(p) for p in table["path"]}


def test_save_refuses_classes_that_do_not_fit_the_model(tiny_ckpt, tmp_path):
    model, info = load_checkpoint(tiny_ckpt)
    with pytest.raises(CheckpointError, match="3 classes"):
        save_checkpoint(tmp_path / "bad.pt", model, info.experiment, ["a", "b", "c"], info.normaliser)
    assert not (tmp_path / "bad.pt").exists()


# --------------------------------------------------------------------------- validation


def _payload(path):
    return torch.load(path, weights_only=True)


def _write(path, payload):
    torch.save(payload, path)
    return path


def test_missing_file_names_the_file_and_how_to_train(tmp_path):
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "nope.pt")
    assert "nope.pt" in str(e.value) and "does not exist" in str(e.value) and "train_shipped_model" in str(e.value)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated zip"])
def test_corrupt_file(tmp_path, content):
    p = tmp_path / "bad.pt"
    p.write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot be read as a checkpoint"):
        load_checkpoint(p)


def test_truncated_real_checkpoint(tiny_ckpt, tmp_path):
    p = tmp_path / "half.pt"
    p.write_bytes(tiny_ckpt.read_bytes()[: tiny_ckpt.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="half.pt: cannot be read"):
        load_checkpoint(p)


def test_bare_state_dict_is_not_a_checkpoint(tiny_ckpt, tmp_path):
    p = _write(tmp_path / "sd.pt", _payload(tiny_ckpt)["state_dict"])
    with pytest.raises(CheckpointError, match="not an amsnet checkpoint"):
        load_checkpoint(p)


def test_directory_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("version,fix", [(FORMAT_VERSION + 1, "upgrade amsnet"), (0, "re-create it")])
def test_wrong_format_version(tiny_ckpt, tmp_path, version, fix):
    payload = _payload(tiny_ckpt)
    payload["format_version"] = version
    with pytest.raises(CheckpointError, match=f"format version {version}") as e:
        load_checkpoint(_write(tmp_path / "v.pt", payload))
    assert fix in str(e.value)


def test_unknown_model(tiny_ckpt, tmp_path):
    payload = _payload(tiny_ckpt)
    payload["model"] = "transformer"
    with pytest.raises(CheckpointError, match="unknown model 'transformer'"):
        load_checkpoint(_write(tmp_path / "m.pt", payload))


def test_state_dict_not_matching_the_configuration(tiny_ckpt, tmp_path):
    payload = _payload(tiny_ckpt)
    payload["experiment"]["frlm"]["hidden_size"] = 32  # the weights are for 16
    with pytest.raises(CheckpointError, match="weights do not match the stored amsnet configuration.*wrong shape"):
        load_checkpoint(_write(tmp_path / "h.pt", payload))
    payload = _payload(tiny_ckpt)
    key = next(iter(payload["state_dict"]))
    del payload["state_dict"][key]
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(_write(tmp_path / "k.pt", payload))


def test_classes_inconsistent_with_the_head(tiny_ckpt, tmp_path):
    payload = _payload(tiny_ckpt)
    payload["classes"] = ["high", "low", "middle"]
    with pytest.raises(CheckpointError, match="lists 3 classes .* has 2 outputs"):
        load_checkpoint(_write(tmp_path / "c.pt", payload))
    payload["classes"] = ["same", "same"]
    with pytest.raises(CheckpointError, match="invalid class names"):
        load_checkpoint(_write(tmp_path / "d.pt", payload))


def test_normaliser_of_the_wrong_size(tiny_ckpt, tmp_path):
    payload = _payload(tiny_ckpt)
    payload["normaliser"]["spec_mean"] = torch.zeros(64)
    with pytest.raises(CheckpointError, match="spec_mean"):
        load_checkpoint(_write(tmp_path / "n.pt", payload))


def test_bad_configuration(tiny_ckpt, tmp_path):
    payload = _payload(tiny_ckpt)
    payload["experiment"]["features"]["colour"] = "blue"
    with pytest.raises(CheckpointError, match="invalid configuration"):
        load_checkpoint(_write(tmp_path / "x.pt", payload))


# --------------------------------------------------------------------------- shipped-model script


@pytest.fixture(scope="module")
def subset_cache(tmp_path_factory):
    """The feature cache of the shipped-model smoke runs: both train on the same 14 files, extracted once."""
    return tmp_path_factory.mktemp("subset") / "cache"


def _smoke_shipped_model(emodb_dir, tmp_path, cache, summary_csv: str, *args):
    """scripts/train_shipped_model.py on a 14-utterance EmoDB subset (2 per class), quick profile, into
    ``tmp_path`` (features in ``cache``): the script module, the checkpoint written, the summary it read, its exit code."""
    from scripts import train_shipped_model as script

    out = tmp_path / "ship" / "amsnet_emodb.pt"
    summary = tmp_path / "summary.csv"
    summary.write_text(summary_csv)
    threads = torch.get_num_threads()
    rc = script.main(["--quick", *args, "--limit", "14", "--out", str(out), "--data-dir", str(emodb_dir), "--no-download",
                      "--cache-dir", str(cache), "--run-dir", str(tmp_path / "runs"),
                      "--summary", str(summary), "--jobs", "1", "--threads", "1", "--quiet"])
    torch.set_num_threads(threads)
    return script, out, summary, rc


@pytest.mark.slow
@pytest.mark.emodb
def test_train_shipped_model_script_end_to_end(emodb_dir, tmp_path, subset_cache):
    """The real script on a 14-utterance EmoDB subset (2 per class) with the quick profile, into a temp folder."""
    script, out, summary, rc = _smoke_shipped_model(
        emodb_dir, tmp_path, subset_cache, "corpus,protocol,model,variant,n_folds,n_seeds,wa,ua,wa_std,ua_std,train_seconds\n"
                             "emodb,loso,amsnet,,10,1,71.5,68.25,5.0,6.0,100\n")
    assert rc == 0
    model, info = load_checkpoint(out)
    assert info.classes == ("anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral")
    assert info.meta["profile"] == "quick" and info.meta["n_utterances"] == 14
    assert len(info.meta[TRAINING_DIGESTS]) == 14  # its training files, for evaluate to keep out
    # a smoke model never quotes the cross-validated accuracy of the real configuration
    assert "not applicable" in info.meta["loso_accuracy"]
    card = (out.parent / "MODEL_CARD.md").read_text()
    assert "smoke-test model" in card and "acted German" in card
    # the card's numbers come from the summary: render it as the full model would
    meta = dict(info.meta, profile="full", loso_accuracy=script.read_accuracy(summary, "loso"))
    text = script.render_card(meta)
    assert "WA 71.50 % ± 5.00, UA 68.25 % ± 6.00 (10 folds, 1 seed)" in text
    assert "not yet measured" in script.render_card(dict(meta, loso_accuracy=script.NOT_MEASURED))
    # --card-only refuses a checkpoint whose configuration is not the one the summary measured
    # (this one: half of the subset held out for validation)
    assert script.main(["--card-only", "--out", str(out), "--summary", str(summary)]) == 2


@pytest.mark.slow
@pytest.mark.emodb
def test_train_shipped_model_with_the_tuned_recipe_quotes_each_recipes_own_rows(emodb_dir, tmp_path, subset_cache):
    script, out, summary, rc = _smoke_shipped_model(
        emodb_dir, tmp_path, subset_cache, "corpus,protocol,recipe,model,variant,n_folds,n_seeds,wa,ua\n"
                             "emodb,loso,paper,amsnet,,10,1,63.71,61.24\nemodb,loso,tuned,amsnet,,10,1,70.00,68.00\n",
        "--recipe", "tuned")
    assert rc == 0
    _, info = load_checkpoint(out)
    assert info.meta["recipe"] == "tuned" and info.experiment.recipe == "tuned" and info.experiment.frlm.frame_stack > 1
    assert script.read_accuracy(summary, "loso", recipe="tuned")["wa"] == 70.0
    assert script.read_accuracy(summary, "loso")["wa"] == 63.71  # the paper recipe's row, not the last one
    meta = dict(info.meta, profile="full", **script._accuracies(summary, "tuned"))
    card = script.render_card(meta)
    assert "trained with the tuned recipe" in card and "WA 70.00 %" in card
    assert "with the paper recipe, leave one speaker out: WA 63.71 %" in card
