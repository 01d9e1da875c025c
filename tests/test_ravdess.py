"""RAVDESS as a named corpus, and EmoBox's folds as a protocol."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import amsnet_lib as ams
from amsnet_lib.data.corpora import ravdess
from amsnet_lib.data.protocols import emobox_folds, make_folds, validation_split
from amsnet_lib.errors import CorpusError, ManifestError


def _stem(actor: int, emotion: int, intensity: int = 1, statement: int = 1, repetition: int = 1) -> str:
    return f"Actor_{actor:02d}/03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}"


def _manifest(path: Path, rows: list[tuple[str, str, int, int]]) -> Path:
    """A manifest in the shipped layout: (official file, sha256, sample rate, frames)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["original_file", "sha256", "sample_rate", "channels", "frames"])
        for name, sha, sr, frames in rows:
            w.writerow([name, sha, sr, 1, frames])
    return path


def test_the_shipped_manifest_lists_the_official_release():
    rows = ravdess.read_manifest()
    assert len(rows) == 1440
    assert {r["sample_rate"] for r in rows.values()} == {48000}
    assert len({stem.split("/")[0] for stem in rows}) == 24


def test_ravdess_loads_with_every_emotion_actor_and_file_name_field(ravdess_dir):
    table = ams.load_corpus("ravdess", data_dir=ravdess_dir)
    assert len(table) == 1440 and table.attrs["corpus"] == "ravdess" and not table.attrs["skipped"]
    assert table.attrs["classes"] == ["anger", "disgust", "fear", "happiness", "sadness", "neutral", "calm", "surprise"]
    counts = table["label"].value_counts()
    assert counts["neutral"] == 96 and (counts.drop("neutral") == 192).all()
    assert table["speaker"].nunique() == 24 and (table.groupby("speaker").size() == 60).all()
    # odd actors male, even female
    genders = table.groupby("speaker")["gender"].first()
    assert genders["01"] == "m" and genders["02"] == "f" and (genders == "m").sum() == 12
    assert set(table["intensity"]) == {"normal", "strong"}
    assert set(table.loc[table["label"] == "neutral", "intensity"]) == {"normal"}
    assert set(table["text"]) == {"01", "02"} and table["statement"].str.endswith("by the door").all()
    row = table[table["path"].str.endswith("03-01-07-02-02-02-11.flac")].iloc[0]
    assert (row["label"], row["speaker"], row["intensity"], row["text"], row["repetition"]) == ("disgust", "11", "strong", "02", "02")


def test_a_folder_of_actor_folders_loads_as_ravdess_by_path(ravdess_dir):
    table = ams.load_corpus(ravdess_dir)
    assert table.attrs["corpus"] == "ravdess" and len(table) == 1440


def test_the_data_dir_comes_from_the_environment(ravdess_dir, monkeypatch):
    monkeypatch.setenv("AMSNET_RAVDESS_DIR", str(ravdess_dir))
    assert len(ams.load_corpus("ravdess")) == 1440


def test_an_incomplete_copy_is_refused_naming_the_missing_files(tmp_path, write_audio):
    for e in (1, 3):
        write_audio(_stem(1, e) + ".flac", duration=1.0)
    with pytest.raises(CorpusError, match=r"1438 missing file\(s\): Actor_01/03-01-01-01-01-02-01") as err:
        ravdess.load_ravdess(tmp_path, download=False)
    assert "AMSNET_RAVDESS_DIR" in str(err.value)


def test_a_converted_copy_is_checked_by_duration_and_an_official_one_by_sha256(tmp_path, write_audio):
    good = write_audio(_stem(1, 1) + ".flac", duration=1.0)
    cut = write_audio(_stem(1, 3) + ".flac", duration=0.5)   # the official file lasts 1 s
    official = write_audio(_stem(2, 4) + ".wav", duration=1.0)
    manifest = _manifest(tmp_path / "m.csv", [(_stem(1, 1) + ".wav", "0" * 64, 48000, 48000),
                                              (_stem(1, 3) + ".wav", "0" * 64, 48000, 48000),
                                              (_stem(2, 4) + ".wav", "f" * 64, 48000, 48000)])
    files = ravdess._audio_files(tmp_path)
    with pytest.raises(CorpusError) as err:
        ravdess._verify(tmp_path, files, manifest)
    message = str(err.value)
    assert "2 corrupt file(s)" in message
    assert f"{_stem(1, 3)}.flac (0.500 s, the official file 1.000 s)" in message
    assert f"{_stem(2, 4)}.wav (SHA-256 differs" in message
    assert f"{_stem(1, 1)}.flac" not in message and good.exists() and cut.exists() and official.exists()


def test_without_verification_odd_names_are_skipped_and_listed(tmp_path, write_audio):
    write_audio(_stem(3, 5, 2) + ".flac", duration=1.0)
    write_audio("Actor_03/03-02-05-01-01-01-03.flac", duration=1.0)   # song, not speech
    write_audio("Actor_04/03-01-05-01-01-01-03.flac", duration=1.0)   # actor folder and name disagree
    table = ravdess.load_ravdess(tmp_path, download=False, verify=False)
    assert list(table["label"]) == ["anger"] and list(table["intensity"]) == ["strong"]
    assert sorted(Path(p).name for p, _ in table.attrs["skipped"]) == ["03-01-05-01-01-01-03.flac", "03-02-05-01-01-01-03.flac"]


def test_absent_ravdess_without_download_says_where_to_get_it(tmp_path):
    with pytest.raises(CorpusError, match="does not hold RAVDESS") as err:
        ravdess.load_ravdess(tmp_path / "none", download=False)
    assert "zenodo.org/record/1188976" in str(err.value)


def test_emobox_folds_of_ravdess_are_six_speaker_independent_folds(ravdess_dir):
    table = ams.load_corpus("ravdess", data_dir=ravdess_dir)
    folds = make_folds(table, "emobox")
    assert [f.name for f in folds] == [f"fold_{k}" for k in range(1, 7)]
    assert all(len(f.test) == 240 and len(f.train) == 1200 for f in folds)
    test_actors = [set(table["speaker"].iloc[f.test]) for f in folds]
    assert test_actors[0] == {"01", "11", "20", "21"}
    for f, actors in zip(folds, test_actors):
        assert not actors & set(table["speaker"].iloc[f.train])
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(1440))


def test_emobox_folds_of_emodb_are_five_folds_of_107(emodb_dir):
    table = ams.load_corpus("emodb", data_dir=emodb_dir)
    folds = make_folds(table, "emobox")
    assert len(folds) == 5 and all(len(f.test) == 107 for f in folds)


def test_emobox_refuses_a_corpus_it_has_no_folds_for_and_an_utterance_without_one():
    table = pd.DataFrame({"path": ["/x/a.wav", "/x/b.wav"], "label": ["a", "b"]})
    table.attrs["corpus"] = "savee"
    with pytest.raises(ManifestError, match="no EmoBox folds are shipped for the corpus 'savee'"):
        emobox_folds(table)
    table.attrs["corpus"] = "emodb"
    with pytest.raises(ManifestError, match=r"gives no fold for 2 utterance\(s\)"):
        emobox_folds(table)


def test_a_validation_split_by_speaker_holds_out_whole_training_speakers():
    speakers = np.repeat(np.array([f"s{i}" for i in range(10)]), 20)
    labels = np.tile(np.arange(4), 50)
    train = np.flatnonzero(~np.isin(speakers, ["s0", "s1"]))
    fit, val = validation_split(labels, train, 0.25, seed=3, groups=speakers)
    assert set(speakers[fit]).isdisjoint(speakers[val]) and len(set(speakers[val])) == 2
    assert set(fit) | set(val) == set(train) and not {"s0", "s1"} & set(speakers[val])
    again = validation_split(labels, train, 0.25, seed=3, groups=speakers)
    assert np.array_equal(again[1], val)
    # without groups the split takes utterances of every training speaker
    _, plain = validation_split(labels, train, 0.25, seed=3)
    assert len(set(speakers[plain])) > 2


def test_ravdess_experiments_select_on_held_out_speakers_and_trim_silence():
    exp = ams.experiment("ravdess", "amsnet", protocol="emobox", recipe="tuned")
    assert exp.validation == "speaker" and exp.features.trim_db == 40.0
    # EmoDB's configurations (and so their run keys) are as before
    from amsnet_lib.config import identity

    emodb = ams.experiment("emodb", "amsnet", protocol="loso")
    assert emodb.validation == "utterance" and "validation" not in identity(emodb)
    assert "trim_db" not in identity(emodb.features)


def test_trim_silence_cuts_leading_and_trailing_silence_only_when_configured():
    from amsnet_lib.config import FeatureConfig
    from amsnet_lib.data.features import trim_silence

    sr = 16000
    rng = np.random.default_rng(0)
    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr).astype(np.float32)
    quiet = (1e-4 * rng.standard_normal(sr // 2)).astype(np.float32)   # -74 dB below the tone
    signal = np.concatenate([quiet, tone, quiet])
    assert trim_silence(signal, FeatureConfig()) is signal
    trimmed = trim_silence(signal, FeatureConfig(trim_db=40.0))
    assert abs(len(trimmed) - sr) < 0.06 * sr  # the tone, within a 50-ms frame
    assert np.abs(trimmed[len(trimmed) // 2]) <= 0.5 and np.max(np.abs(trimmed)) > 0.49
