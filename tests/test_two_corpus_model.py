"""The two-corpus model (issue #38 item 5): chosen by leaving one corpus out, the default only when better each way,
found by name."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from amsnet_lib.errors import CheckpointError
from amsnet_lib.serve import predict
from scripts import train_two_corpus_model as two

FRLM, URLM, AMSNET = (two.CANDIDATES[k] for k in ("frlm", "urlm", "amsnet"))


def _cross(rows) -> pd.DataFrame:
    """cross_corpus.csv rows: (model, train, test, classes, adapt, UA)."""
    return pd.DataFrame(rows, columns=["model", "train", "test", "classes", "adapt", "UA (%)"])


def _both(model, adapt, to_ravdess, to_emodb, classes="shared"):
    return [(model, "emodb", "ravdess", classes, adapt, to_ravdess), (model, "ravdess", "emodb", classes, adapt, to_emodb)]


def test_each_network_at_its_best_adaptation_and_the_best_mean_is_chosen():
    cross = _cross(
        _both(FRLM, "none", 20.0, 22.0) + _both(FRLM, "speaker", 36.0, 31.0) + _both(FRLM, "corpus", 45.0, 20.0)
        + _both(AMSNET, "speaker", 33.0, 33.0)
        + _both(URLM, "speaker", 90.0, 90.0, classes="four")  # another class set: not read
        + [(URLM, "emodb", "ravdess", "shared", "speaker", 80.0), (URLM, "ravdess", "emodb", "shared", "speaker", "not run")])
    loco = two.leave_one_corpus_out(cross)
    assert loco["key"].tolist() == ["frlm", "amsnet"]  # URLM: one direction not measured
    frlm = loco.set_index("key").loc["frlm"]
    assert frlm["adapt"] == "speaker" and frlm["mean UA"] == pytest.approx(33.5)  # corpus: 32.5, none: 21
    assert two.choose(loco) == "frlm"
    # a tie goes to the earlier (simpler) candidate
    tie = two.leave_one_corpus_out(_cross(_both(AMSNET, "speaker", 30.0, 40.0) + _both(FRLM, "speaker", 40.0, 30.0)))
    assert two.choose(tie) == "frlm"
    with pytest.raises(SystemExit, match="scripts.cross_corpus --networks"):
        two.choose(two.leave_one_corpus_out(_cross(_both(URLM, "speaker", 1.0, 1.0, classes="four"))))


def test_the_chosen_network_replaces_the_shipped_one_only_when_better_on_each_unseen_corpus():
    cross = _cross(_both(FRLM, "speaker", 35.76, 31.60) + _both(AMSNET, "speaker", 32.64, 32.97)
                   + _both(FRLM, "corpus", 50.0, 50.0) + _both(AMSNET, "corpus", 40.0, 40.0))
    kept = two.replaces_shipped(cross, "frlm", "speaker")
    assert not kept["replaces"] and "ravdess → emodb (31.60 against 32.97)" in kept["why"]
    assert "emodb → ravdess" not in kept["why"]
    assert two.replaces_shipped(cross, "frlm", "corpus")["replaces"]
    assert not two.replaces_shipped(cross, "amsnet", "speaker")["replaces"]
    missing = two.replaces_shipped(cross, "urlm", "speaker")  # nothing measured: never better
    assert not missing["replaces"] and all(math.isnan(d["chosen"]) for d in missing["directions"])


def test_a_shipped_model_is_found_by_name_and_a_missing_one_names_its_script(tmp_path, monkeypatch):
    both = tmp_path / "pretrained" / "emodb+ravdess.pt"
    monkeypatch.setitem(predict.SHIPPED_MODELS, "emodb+ravdess", both)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="scripts.train_two_corpus_model"):
        predict.checkpoint_path("emodb+ravdess")
    both.parent.mkdir()
    both.write_bytes(b"x")
    assert predict.checkpoint_path("emodb+ravdess") == both
    assert predict.checkpoint_path(None) == predict.shipped_checkpoint("emodb")
    assert predict.checkpoint_path("mine.pt") == tmp_path.joinpath("mine.pt").relative_to(tmp_path)
    (tmp_path / "emodb+ravdess").write_bytes(b"y")  # a file of that name where the user is: theirs
    assert predict.checkpoint_path("emodb+ravdess").resolve() == (tmp_path / "emodb+ravdess").resolve()
    with pytest.raises(CheckpointError, match="not a shipped model"):
        predict.shipped_checkpoint("iemocap")


def test_the_card_quotes_the_choice_the_folds_and_whether_it_is_the_default():
    loco = two.leave_one_corpus_out(_cross(_both(FRLM, "speaker", 35.76, 31.60) + _both(AMSNET, "speaker", 32.64, 32.97)))
    joint = pd.DataFrame([{"corpus": "emodb", "folds": "10 of 10", "WA alone (%)": 71.14, "UA alone (%)": 69.48,
                           "WA trained on both (%)": 73.49, "UA trained on both (%)": 70.51, "p (UA, bootstrap)": 0.5262}])
    cross = _cross(_both(FRLM, "speaker", 35.76, 31.60) + _both(AMSNET, "speaker", 32.64, 32.97))
    meta = {"choice": loco.to_dict("records"), "chosen": "frlm", "recommended_adapt": "speaker",
            "replaces_shipped": two.replaces_shipped(cross, "frlm", "speaker"), "per_corpus": joint.to_dict("records"),
            "shipped_loso_accuracy": {"wa": 73.63, "ua": 72.22, "n_folds": 10}, "profile": "full", "n_utterances": 1975,
            "corpus_utterances": 1975, "classes": ["anger", "calm"], "data": "emodb+ravdess: 1975 utterances"}
    card = two.render_card(meta)
    assert "| FRLM, tuned recipe | speaker | 35.76 | 31.60 | 33.68 |" in card
    assert "WA 73.49 %, UA 70.51 %" in card and "UA 69.48 %" in card and "UA 72.22 %" in card
    assert "It is **not** the default" in card and "smoke-test" not in card
    assert "smoke-test" in two.render_card({**meta, "n_utterances": 20})


def test_the_shipped_two_corpus_model_is_found_by_name_and_its_card_is_its_own():
    """The committed checkpoint, its card and the choice table agree (the card is rendered from the checkpoint)."""
    from amsnet_lib.serve.checkpoint import load_checkpoint

    path = predict.shipped_checkpoint("emodb+ravdess")
    if path.suffix == ".onnx":
        pytest.skip("PyTorch is not installed: the card is checked against the .pt checkpoint")
    _, info = load_checkpoint(path)
    meta = {**info.meta, "classes": list(info.classes)}
    assert (path.parent / "MODEL_CARD_emodb+ravdess.md").read_text() == two.render_card(meta, path.name)
    assert info.experiment.corpus == "emodb+ravdess" and info.experiment.model == meta["chosen"]
    assert set(info.classes) == {"anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral", "calm", "surprise"}
    choice = pd.read_csv(two.TABLES / "two_corpus_model_choice.csv")
    assert choice.loc[choice["mean UA"].idxmax(), "model"] == two.CANDIDATES[meta["chosen"]]
    assert path.with_suffix(".onnx").is_file()
