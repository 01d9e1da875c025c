"""amsnet_lib.data.corpora: EmoDB (verification, download), IEMOCAP (label files), custom corpora."""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import threading
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from amsnet_lib.data.audio import audio_info
from amsnet_lib.data.corpora import CLASSES, COLUMNS, emodb, load_corpus, resolve_data_dir
from amsnet_lib.errors import AudioError, CorpusError, ManifestError
from signals import REPO_ROOT, sine


def _write_wav(path: Path, duration: float = 0.2, freq: float = 440.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), sine(duration, 16000, freq), 16000, subtype="PCM_16")
    return path


def _check_layout(table: pd.DataFrame, extra: tuple[str, ...] = ()) -> None:
    """The contract of docs/DESIGN.md, "Corpus table"."""
    assert list(table.columns) == COLUMNS + list(extra)
    assert set(table.attrs) >= {"corpus", "classes", "skipped"}
    assert set(table["label"]) <= set(table.attrs["classes"])
    assert all(isinstance(p, str) and os.path.isabs(p) for p in table["path"])
    assert set(table["gender"]) <= {"m", "f", None}
    assert table["duration"].dtype == np.float64
    if "improvised" in extra:
        assert table["improvised"].dtype == bool


# --- resolve_data_dir ----------------------------------------------------------------------

def test_resolve_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("AMSNET_EMODB_DIR", raising=False)
    assert resolve_data_dir("emodb") == REPO_ROOT / "data" / "emodb"
    monkeypatch.setenv("AMSNET_EMODB_DIR", "")  # empty counts as unset
    assert resolve_data_dir("emodb") == REPO_ROOT / "data" / "emodb"
    monkeypatch.setenv("AMSNET_EMODB_DIR", str(tmp_path / "env"))
    assert resolve_data_dir("EmoDB") == tmp_path / "env"
    assert resolve_data_dir("emodb", tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.setenv("AMSNET_IEMOCAP_DIR", str(tmp_path / "iemo"))
    assert resolve_data_dir("iemocap") == tmp_path / "iemo"
    monkeypatch.setenv("AMSNET_RAVDESS_DIR", str(tmp_path / "rav"))
    assert resolve_data_dir("ravdess") == tmp_path / "rav"
    with pytest.raises(ValueError, match="unknown corpus"):
        resolve_data_dir("savee")


def test_class_orders():
    assert CLASSES == {"emodb": ["anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"],
                       "iemocap": ["angry", "happy", "sad", "neutral"],
                       "ravdess": ["anger", "disgust", "fear", "happiness", "sadness", "neutral", "calm", "surprise"]}


def test_unknown_name_or_path(tmp_path):
    with pytest.raises(CorpusError, match="neither a known corpus name"):
        load_corpus(tmp_path / "nothing_here.csv")
    with pytest.raises(CorpusError, match="neither a known corpus name"):
        load_corpus("emodbb")


# --- EmoDB: the real copy ------------------------------------------------------------------

@pytest.mark.emodb
def test_real_emodb(emodb_dir):
    table = load_corpus("emodb", data_dir=emodb_dir)
    _check_layout(table)
    assert len(table) == 535 and table.attrs["corpus"] == "emodb" and table.attrs["skipped"] == []
    assert table.attrs["classes"] == CLASSES["emodb"]
    codes = Counter(Path(p).name[5] for p in table["path"])
    assert codes == {"W": 127, "L": 81, "E": 46, "A": 69, "F": 71, "T": 62, "N": 79}
    assert Counter(table["label"])["anger"] == 127
    assert table["speaker"].nunique() == 10
    genders = table.groupby("speaker")["gender"].first().to_dict()
    assert sorted(s for s, g in genders.items() if g == "m") == ["03", "10", "11", "12", "15"]
    row = table[table["path"].str.endswith("03a01Fa.wav")].iloc[0]
    assert row["duration"] == pytest.approx(1.89825)
    assert (row["label"], row["speaker"], row["text"], row["session"]) == ("happiness", "03", "a01", None)
    assert table["duration"].sum() / 60 == pytest.approx(24.8, abs=0.1)


@pytest.mark.emodb
def test_real_emodb_through_env_and_path(emodb_dir, monkeypatch):
    monkeypatch.setenv("AMSNET_EMODB_DIR", str(emodb_dir))
    assert len(load_corpus("emodb")) == 535
    # A folder that is an EmoDB copy is recognised when given as a path.
    by_path = load_corpus(emodb_dir)
    assert by_path.attrs["corpus"] == "emodb" and len(by_path) == 535


def test_shipped_manifest_matches_the_corpus_description():
    manifest = pd.read_csv(emodb.MANIFEST)
    assert list(manifest.columns) == ["file", "sha256", "size"] and len(manifest) == 535
    assert manifest["file"].is_unique and manifest["sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert Counter(manifest["file"].str[5]) == {"W": 127, "L": 81, "E": 46, "A": 69, "F": 71, "T": 62, "N": 79}
    assert sorted(manifest["file"].str[:2].unique()) == sorted(emodb.GENDERS)


@pytest.mark.emodb
def test_partial_real_copy_names_missing_files(emodb_dir, tmp_path):
    for name in ["03a01Fa.wav", "03a01Nc.wav", "16b10Wb.wav"]:
        shutil.copy(emodb_dir / "wav" / name, _mkdir(tmp_path / "emodb" / "wav") / name)
    with pytest.raises(CorpusError, match=r"532 missing file\(s\): 03a01Wa.wav, .* and 522 more") as info:
        load_corpus("emodb", data_dir=tmp_path / "emodb")
    assert "AMSNET_EMODB_DIR" in info.value.fix


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- EmoDB: verification and download on a synthetic copy ---------------------------------

_FAKE_NAMES = ["03a01Fa.wav", "03a01Wa.wav", "08b02Lb.wav", "09a05Ec.wav", "10b09Aa.wav", "13a04Ta.wav", "16b10Nb.wav"]


def _fake_emodb(root: Path) -> Path:
    """EmoDB-named tiny wavs (distinct content) in ``root/wav`` plus erklaerung.txt."""
    for i, name in enumerate(_FAKE_NAMES):
        _write_wav(root / "wav" / name, duration=0.2 + 0.05 * i, freq=200.0 + 50 * i)
    (root / "erklaerung.txt").write_text("synthetic test copy\n")
    return root


@pytest.fixture
def fake_emodb(tmp_path, monkeypatch):
    """A verified synthetic EmoDB in ``tmp_path/emodb``, with its own manifest swapped in."""
    root = _fake_emodb(tmp_path / "emodb")
    manifest = tmp_path / "manifest.csv"
    assert emodb._write_manifest(root / "wav", manifest) == len(_FAKE_NAMES)
    monkeypatch.setattr(emodb, "MANIFEST", manifest)
    return root


def test_fake_emodb_loads(fake_emodb):
    table = load_corpus("emodb", data_dir=fake_emodb)
    _check_layout(table)
    assert list(table["label"]) == ["happiness", "anger", "boredom", "disgust", "fear", "sadness", "neutral"]
    assert list(table["gender"]) == ["m", "m", "f", "f", "m", "f", "f"]
    assert table["duration"].tolist() == pytest.approx([0.2 + 0.05 * i for i in range(7)])


def test_emodb_missing_file(fake_emodb):
    (fake_emodb / "wav" / "09a05Ec.wav").unlink()
    with pytest.raises(CorpusError, match=r"1 missing file\(s\): 09a05Ec.wav") as info:
        load_corpus("emodb", data_dir=fake_emodb)
    assert info.value.path == str(fake_emodb / "wav")
    assert "re-download" in info.value.fix and "AMSNET_EMODB_DIR" in info.value.fix


def test_emodb_extra_file(fake_emodb):
    _write_wav(fake_emodb / "wav" / "03a01Fz.wav")
    with pytest.raises(CorpusError, match=r"1 unexpected file\(s\): 03a01Fz.wav"):
        load_corpus("emodb", data_dir=fake_emodb)


def test_emodb_corrupt_files(fake_emodb):
    flipped = fake_emodb / "wav" / "10b09Aa.wav"
    data = bytearray(flipped.read_bytes())
    data[-10] ^= 0xFF  # same size, different content: only the hash can tell
    flipped.write_bytes(bytes(data))
    truncated = fake_emodb / "wav" / "03a01Wa.wav"
    truncated.write_bytes(truncated.read_bytes()[:-100])
    with pytest.raises(CorpusError, match=r"2 corrupt \(size or SHA-256 mismatch\) file\(s\): 03a01Wa.wav, 10b09Aa.wav"):
        load_corpus("emodb", data_dir=fake_emodb)


def test_emodb_verification_is_cached_but_sees_changes(fake_emodb):
    load_corpus("emodb", data_dir=fake_emodb)
    load_corpus("emodb", data_dir=fake_emodb)  # cached: no hashing
    path = fake_emodb / "wav" / "16b10Nb.wav"
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))  # a different mtime invalidates the cached result
    with pytest.raises(CorpusError, match="16b10Nb.wav"):
        load_corpus("emodb", data_dir=fake_emodb)


def test_emodb_bad_file_without_verification(fake_emodb):
    (fake_emodb / "wav" / "13a04Ta.wav").write_bytes(b"broken")
    table = load_corpus("emodb", data_dir=fake_emodb, verify=False)
    assert len(table) == 6 and table.attrs["skipped"][0][0].endswith("13a04Ta.wav")
    with pytest.raises(AudioError, match="13a04Ta.wav"):
        load_corpus("emodb", data_dir=fake_emodb, verify=False, skip_bad=False)


def test_emodb_absent_without_download(tmp_path):
    root = tmp_path / "no_emodb"
    with pytest.raises(CorpusError, match="download=False") as info:
        load_corpus("emodb", data_dir=root, download=False)
    assert info.value.path == str(root) and "AMSNET_EMODB_DIR" in info.value.fix
    assert emodb.DOWNLOAD_URL in info.value.fix
    assert not root.exists()


def test_emodb_folder_with_other_content_is_not_overwritten(tmp_path):
    (tmp_path / "emodb").mkdir()
    (tmp_path / "emodb" / "notes.txt").write_text("mine")
    with pytest.raises(CorpusError, match=r"does not hold EmoDB \(no wav/ folder\)"):
        load_corpus("emodb", data_dir=tmp_path / "emodb")
    assert (tmp_path / "emodb" / "notes.txt").read_text() == "mine"


def test_emodb_offline_download_fails_clearly(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: connection refused, like offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/download.zip"
    root = tmp_path / "data" / "emodb"
    with pytest.raises(CorpusError, match="downloading it from .* failed") as info:
        load_corpus("emodb", data_dir=root, url=url)
    message = str(info.value)
    assert str(root) in message and url in message and "AMSNET_EMODB_DIR" in message
    assert not root.parent.exists()  # no partial download left, nor the folder made for it


@pytest.fixture
def http_folder(tmp_path):
    """Serve ``tmp_path/www`` on 127.0.0.1; yields ``(folder, base_url)``."""
    folder = _mkdir(tmp_path / "www")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def _zip_folder(source: Path, archive: Path, prefix: str = "") -> None:
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(source.rglob("*")):
            z.write(path, prefix + path.relative_to(source).as_posix())


@pytest.mark.parametrize("prefix", ["", "emodb_release/"])
def test_emodb_download_and_atomic_unpack(fake_emodb, http_folder, tmp_path, prefix):
    www, base = http_folder
    _zip_folder(fake_emodb, www / "download.zip", prefix)
    root = tmp_path / "downloaded" / "emodb"
    table = load_corpus("emodb", data_dir=root, url=f"{base}/download.zip")
    assert len(table) == len(_FAKE_NAMES) and all(p.startswith(str(root)) for p in table["path"])
    assert (root / "erklaerung.txt").is_file()
    assert [p.name for p in root.parent.iterdir()] == ["emodb"]  # no temp file or staging folder left
    # Present now: a second load neither downloads nor needs the server.
    (www / "download.zip").unlink()
    assert len(load_corpus("emodb", data_dir=root, url=f"{base}/download.zip")) == len(_FAKE_NAMES)


def test_emodb_download_into_empty_folder_via_module_url(fake_emodb, http_folder, tmp_path, monkeypatch):
    www, base = http_folder
    _zip_folder(fake_emodb, www / "download.zip")
    monkeypatch.setattr(emodb, "DOWNLOAD_URL", f"{base}/download.zip")
    root = _mkdir(tmp_path / "empty")
    assert len(load_corpus("emodb", data_dir=root, download=True)) == len(_FAKE_NAMES)


def test_emodb_download_of_a_corrupt_archive(fake_emodb, http_folder, tmp_path):
    www, base = http_folder
    (www / "download.zip").write_bytes(b"<html>not found</html>")
    root = tmp_path / "dl" / "emodb"
    with pytest.raises(CorpusError, match="could not be unpacked"):
        load_corpus("emodb", data_dir=root, url=f"{base}/download.zip")
    assert list(root.parent.iterdir()) == []
    # A valid zip that is not EmoDB leaves nothing behind either.
    with zipfile.ZipFile(www / "other.zip", "w") as z:
        z.writestr("readme.txt", "something else")
    with pytest.raises(CorpusError, match="holds no wav/ folder"):
        load_corpus("emodb", data_dir=root, url=f"{base}/other.zip")
    assert list(root.parent.iterdir()) == []
    # An archive with a member escaping the target folder is refused.
    with zipfile.ZipFile(www / "evil.zip", "w") as z:
        z.writestr("../escaped.txt", "x")
    with pytest.raises(CorpusError, match="outside the target folder"):
        load_corpus("emodb", data_dir=root, url=f"{base}/evil.zip")
    assert not (tmp_path / "dl" / "escaped.txt").exists() and list(root.parent.iterdir()) == []


@pytest.mark.emodb
def test_emodb_real_copy_verifies_once_per_process(emodb_dir, monkeypatch):
    """The real copy passes verification, and a second load hashes nothing (its time: benchmarks/bench_features.py)."""
    emodb._VERIFIED.clear()
    emodb._verify(emodb_dir / "wav")
    hashed = []
    monkeypatch.setattr(emodb, "_sha256", lambda path: hashed.append(path))
    emodb._verify(emodb_dir / "wav")
    assert hashed == []


# --- IEMOCAP -------------------------------------------------------------------------------

_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"

# dialog -> [(utterance suffix, code, transcription or None)]
_TREE = {
    "Ses01F_impro01": [("F000", "neu", "Excuse me."), ("M000", "ang", "What?"), ("F001", "exc", "Great!"),
                       ("M001", "fru", "Ugh."), ("F002", "xxx", "Hm.")],
    "Ses01M_script01_1": [("F000", "hap", None), ("M000", "sad", None), ("M001", "sur", None)],
    "Ses02M_impro02": [("F000", "sad", "Oh no."), ("M000", "neu", "Okay."), ("M001", "oth", "Eh."),
                       ("F001", "ang", "Stop it.")],
    "Ses02F_script02_2": [("M000", "exc", None), ("F000", "fea", None), ("M001", "dis", None)],
}


def _label_block(utt: str, code: str, start: float) -> str:
    return (f"[{start:.4f} - {start + 1.5:.4f}]\t{utt}\t{code}\t[2.5000, 3.0000, 2.0000]\n"
            "C-E2:\tNeutral;\t()\nC-F1:\tNeutral; Frustration;\t(curious)\n"
            "A-E3:\tval 3; act 2; dom  2;\t()\n\n")


def _make_iemocap(base: Path, tree: dict = _TREE, audio: bool = True) -> Path:
    """A tiny IEMOCAP_full_release under ``base`` in the real layout; returns the release folder."""
    root = base / "IEMOCAP_full_release"
    for dialog, utterances in tree.items():
        session = root / f"Session{int(dialog[3:5])}"
        labels = _mkdir(session / "dialog" / "EmoEvaluation")
        blocks, transcript = [], []
        for i, (suffix, code, text) in enumerate(utterances):
            utt = f"{dialog}_{suffix}"
            blocks.append(_label_block(utt, code, 2.0 * i))
            if text is not None:
                transcript.append(f"{utt} [{2.0 * i:08.4f}-{2.0 * i + 1.5:08.4f}]: {text}\n")
            if audio:
                _write_wav(session / "sentences" / "wav" / dialog / f"{utt}.wav", duration=0.2 + 0.01 * i)
        (labels / f"{dialog}.txt").write_text(_HEADER + "".join(blocks))
        if transcript:
            (_mkdir(session / "dialog" / "transcriptions") / f"{dialog}.txt").write_text("".join(transcript))
        # Files of the release that are not label files must be ignored.
        (_mkdir(labels / "Categorical") / f"{dialog}_e1_cat.txt").write_text(f"{dialog}_F000 :Neutral state; ()\n")
        (labels / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    return root


def test_iemocap_tiny_tree(tmp_path):
    root = _make_iemocap(tmp_path)
    table = load_corpus("iemocap", data_dir=root)
    _check_layout(table, extra=("improvised",))
    assert table.attrs["corpus"] == "iemocap" and table.attrs["classes"] == CLASSES["iemocap"]
    assert table.attrs["skipped"] == []
    utts = [Path(p).stem for p in table["path"]]
    assert utts == sorted(utts) and len(table) == 9
    assert Counter(table["label"]) == {"happy": 3, "angry": 2, "sad": 2, "neutral": 2}  # exc merged into happy
    by_utt = table.set_index(table["path"].map(lambda p: Path(p).stem))
    # The speaker is whoever speaks the utterance: the letter of its last part, not the dialog's.
    row = by_utt.loc["Ses01F_impro01_M000"]
    assert (row["label"], row["speaker"], row["gender"], row["session"]) == ("angry", "Ses01M", "m", "Session1")
    assert row["improvised"] and row["text"] == "What?"
    row = by_utt.loc["Ses02F_script02_2_M000"]
    assert (row["label"], row["speaker"], row["gender"], row["improvised"], row["text"]) == \
           ("happy", "Ses02M", "m", False, None)
    assert by_utt.loc["Ses01F_impro01_F001", "label"] == "happy"
    assert by_utt.loc["Ses01M_script01_1_F000", "speaker"] == "Ses01F"
    assert set(table["speaker"]) == {"Ses01F", "Ses01M", "Ses02F", "Ses02M"}
    assert sorted(set(table["session"])) == ["Session1", "Session2"]
    assert by_utt.loc["Ses02M_impro02_F001", "duration"] == pytest.approx(0.23)  # from the wav header
    # fru, xxx, sur, oth, fea, dis are left out.
    assert not {"Ses01F_impro01_M001", "Ses01F_impro01_F002", "Ses01M_script01_1_M001", "Ses02M_impro02_M001",
                "Ses02F_script02_2_F000", "Ses02F_script02_2_M001"} & set(by_utt.index)


def test_iemocap_root_can_be_the_parent_or_from_env(tmp_path, monkeypatch):
    _make_iemocap(tmp_path)
    assert len(load_corpus("iemocap", data_dir=tmp_path)) == 9
    monkeypatch.setenv("AMSNET_IEMOCAP_DIR", str(tmp_path))
    assert len(load_corpus("iemocap")) == 9
    assert load_corpus(tmp_path / "IEMOCAP_full_release").attrs["corpus"] == "iemocap"  # by path


def test_iemocap_without_audio_check_uses_label_times(tmp_path):
    root = _make_iemocap(tmp_path, audio=False)
    table = load_corpus("iemocap", data_dir=root, check_audio=False)
    assert len(table) == 9 and (table["duration"] == 1.5).all()


def test_iemocap_missing_wav_is_skipped_or_raises(tmp_path):
    root = _make_iemocap(tmp_path)
    missing = root / "Session2" / "sentences" / "wav" / "Ses02M_impro02" / "Ses02M_impro02_F000.wav"
    missing.unlink()
    broken = root / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / "Ses01F_impro01_F000.wav"
    broken.write_bytes(b"RIFF....garbage")
    table = load_corpus("iemocap", data_dir=root)
    assert len(table) == 7
    reasons = dict(table.attrs["skipped"])
    assert set(reasons) == {str(missing), str(broken)}
    assert "is missing" in reasons[str(missing)] and "cannot be decoded" in reasons[str(broken)]
    with pytest.raises(AudioError, match="Ses01F_impro01_F000.wav: cannot be decoded"):
        load_corpus("iemocap", data_dir=root, skip_bad=False)
    _write_wav(broken)
    with pytest.raises(CorpusError, match="Ses02M_impro02_F000.wav: is missing but Ses02M_impro02.txt labels it"):
        load_corpus("iemocap", data_dir=root, skip_bad=False)


@pytest.mark.parametrize("bad_line,problem", [
    ("[6.2901 - 8.2357]\tSes01F_impro01_F009\tneu\n", "malformed label line"),
    ("[6.2901 8.2357]\tSes01F_impro01_F009\tneu\t[2.5, 2.5, 2.5]\n", "malformed label line"),
    ("6.2901 - 8.2357]\tSes01F_impro01_F009\tneu\t[2.5, 2.5, 2.5]\n", "malformed label line"),
    ("[6.2901 - 8.2357]\tSes01F_impro01_F009\tjoy\t[2.5, 2.5, 2.5]\n", "unknown emotion code 'joy'"),
    ("[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5, 2.5, 2.5]\n", "labelled again .first on line 3"),
    ("[8.0 - 6.0]\tSes01F_impro01_F009\tneu\t[2.5, 2.5, 2.5]\n", "end time 6.0 is before start time 8.0"),
    ("[6.2901 - 8.2357]\tutterance_nine\tneu\t[2.5, 2.5, 2.5]\n", "not an IEMOCAP utterance id"),
])
def test_iemocap_malformed_label_file(tmp_path, bad_line, problem):
    root = _make_iemocap(tmp_path)
    label_file = root / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    lines = label_file.read_text().splitlines(keepends=True)
    lines.insert(7, bad_line)  # after the first label block: line 8
    label_file.write_text("".join(lines))
    with pytest.raises(ManifestError, match=f"line 8: .*{problem}") as info:
        load_corpus("iemocap", data_dir=root)
    assert info.value.path == str(label_file)


def test_iemocap_absent(tmp_path):
    with pytest.raises(CorpusError, match="does not hold IEMOCAP") as info:
        load_corpus("iemocap", data_dir=tmp_path / "nothing")
    assert "AMSNET_IEMOCAP_DIR" in info.value.fix and "sail.usc.edu" in info.value.fix


def test_iemocap_session_without_labels(tmp_path):
    root = _make_iemocap(tmp_path)
    _mkdir(root / "Session3" / "sentences")
    with pytest.raises(CorpusError, match="Session3/dialog/EmoEvaluation: is missing"):
        load_corpus("iemocap", data_dir=root)


def test_iemocap_full_size_label_set_gives_5531(tmp_path):
    """The label counts of the full release reproduce the paper's 1103/1636/1084/1708."""
    counts = {"ang": 1103, "hap": 595, "exc": 1041, "sad": 1084, "neu": 1708,
              "fru": 1849, "sur": 107, "fea": 40, "dis": 2, "oth": 3, "xxx": 2507}
    codes = np.random.default_rng(0).permutation([c for c, n in counts.items() for _ in range(n)])
    tree = {}
    for i, chunk in enumerate(np.array_split(codes, 150)):  # 30 dialogs per session
        session, kind = 1 + i % 5, ("impro" if i % 2 else "script")
        dialog = f"Ses{session:02d}{'FM'[i % 2]}_{kind}{i:03d}" + ("" if kind == "impro" else "_1")
        tree[dialog] = [(f"{'FM'[j % 2]}{j:03d}", str(code), None) for j, code in enumerate(chunk)]
    table = load_corpus("iemocap", data_dir=_make_iemocap(tmp_path, tree, audio=False), check_audio=False)
    assert len(table) == 5531
    assert Counter(table["label"]) == {"angry": 1103, "happy": 1636, "sad": 1084, "neutral": 1708}
    assert table["session"].nunique() == 5 and table["speaker"].nunique() == 10


# --- custom corpora ------------------------------------------------------------------------

def _clips(folder: Path) -> dict[str, Path]:
    return {name: _write_wav(folder / name, duration=0.3) for name in ["a.wav", "b.wav", "c.flac", "sub/d.wav"]}


def test_csv_manifest(tmp_path):
    _clips(tmp_path / "clips")
    absolute = _write_wav(tmp_path / "elsewhere" / "e.wav", duration=0.5)
    manifest = tmp_path / "corpus.csv"
    manifest.write_text(
        "\ufeffpath,label,Speaker,gender,session,text,notes\n"  # BOM, case, extra column
        "clips/a.wav,sad,s1,F,,hello,x\n"
        "clips/b.wav,angry,s2,male,day1,,\n"
        "\n"
        f"{absolute},sad,,,,,\n"
        'clips/sub/d.wav,angry,s1,,,"quoted, with comma",\n', encoding="utf-8")
    table = load_corpus(manifest)
    _check_layout(table)
    assert table.attrs == {"corpus": "corpus", "classes": ["angry", "sad"], "skipped": []}  # named after its file
    assert load_corpus(manifest, name="my_lab").attrs["corpus"] == "my_lab"
    (tmp_path / "emodb.csv").write_text(manifest.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_corpus(tmp_path / "emodb.csv").attrs["corpus"] == "emodb-custom"  # never a built-in corpus's name
    assert table["path"].tolist() == [str(tmp_path / "clips" / "a.wav"), str(tmp_path / "clips" / "b.wav"),
                                      str(absolute), str(tmp_path / "clips" / "sub" / "d.wav")]
    assert table["gender"].tolist() == ["f", "m", None, None]
    assert table["speaker"].tolist() == ["s1", "s2", None, "s1"]
    assert table["session"].tolist() == [None, "day1", None, None]
    assert table["text"].tolist() == ["hello", None, None, "quoted, with comma"]
    assert table["duration"].tolist() == pytest.approx([0.3, 0.3, 0.5, 0.3])
    # An explicit class order is kept; a label outside it is an error.
    assert load_corpus(manifest, classes=["sad", "angry", "calm"]).attrs["classes"] == ["sad", "angry", "calm"]
    with pytest.raises(ManifestError, match="line 2: label.*'sad'.* not among the given classes"):
        load_corpus(manifest, classes=["angry"])


def test_folder_per_label(tmp_path):
    root = tmp_path / "corpus"
    _clips(root / "neutral")
    _write_wav(root / "happy" / "x.WAV")
    _write_wav(root / "happy" / ".hidden.wav")
    _write_wav(root / ".cache" / "y.wav")
    (root / "happy" / "readme.txt").write_text("not audio")
    (root / "top_level.wav").write_bytes(b"")  # outside any label folder: ignored
    table = load_corpus(root)
    _check_layout(table)
    assert table.attrs["classes"] == ["happy", "neutral"]
    assert [Path(p).relative_to(root).as_posix() for p in table["path"]] == \
           ["happy/x.WAV", "neutral/a.wav", "neutral/b.wav", "neutral/c.flac", "neutral/sub/d.wav"]
    assert table["speaker"].isna().all() and table["duration"].tolist() == pytest.approx([0.2] + [0.3] * 4)


def test_bad_audio_in_custom_corpus_is_skipped_or_raises(tmp_path):
    root = tmp_path / "corpus"
    _clips(root / "calm")
    (root / "calm" / "broken.wav").write_bytes(b"not audio at all")
    sf.write(str(root / "calm" / "empty.wav"), np.zeros(0, np.float32), 16000)
    sf.write(str(root / "calm" / "short.flac"), np.zeros(160, np.float32), 16000)
    table = load_corpus(root)
    assert len(table) == 4
    reasons = {Path(p).name: reason for p, reason in table.attrs["skipped"]}
    assert set(reasons) == {"broken.wav", "empty.wav", "short.flac"}
    assert "cannot be decoded" in reasons["broken.wav"] and "no audio samples" in reasons["empty.wav"]
    assert "too short" in reasons["short.flac"]
    with pytest.raises(AudioError, match="broken.wav"):
        load_corpus(root, skip_bad=False)


def test_empty_folder(tmp_path):
    _mkdir(tmp_path / "corpus" / "happy")
    with pytest.raises(CorpusError, match=r"no label sub-folders with audio files \(\.wav, \.flac, "):
        load_corpus(tmp_path / "corpus")


@pytest.mark.parametrize("content,problem", [
    (b"", "is empty"),
    (b"path,label\n", "has a header but no rows"),
    (b"file,emotion\nclips/a.wav,sad\n", r"line 1: header .* lacks the column\(s\) \['path', 'label'\]"),
    (b"path,speaker\nclips/a.wav,s1\n", r"lacks the column\(s\) \['label'\]"),
    (b"path,label,label\nclips/a.wav,sad,sad\n", "appear more than once"),
    (b"path,label\nclips/a.wav,sad\nclips/missing.wav,sad\n", "line 3: audio file .*missing.wav does not exist"),
    (b"path,label\nclips/a.wav,sad,extra\n", "line 2: has 3 fields, the header has 2"),
    (b"path,label\nclips/a.wav,\n", "line 2: empty path or label"),
    (b"path,label,gender\nclips/a.wav,sad,x\n", "line 2: gender 'x'"),
    (b"path,label\nclips/a.wav,sad\nclips/a.wav,sad\n", "line 3: .*a.wav is listed again .first on line 2"),
    (b"path,label\nclips/a.wav,sad\nclips/b.wav,traurig \xe4\n", "line 3: is not valid UTF-8"),
    (b"\x00\x01\x02binary", "binary file"),
])
def test_malformed_manifest(tmp_path, content, problem):
    _clips(tmp_path / "clips")
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(content)
    with pytest.raises(ManifestError, match=problem) as info:
        load_corpus(manifest)
    assert info.value.path == str(manifest) and info.value.fix


def test_manifest_with_bad_audio_rows(tmp_path):
    _clips(tmp_path / "clips")
    (tmp_path / "clips" / "bad.wav").write_bytes(b"RIFF")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\nclips/a.wav,sad\nclips/bad.wav,sad\n")
    table = load_corpus(manifest)
    assert len(table) == 1 and table.attrs["skipped"][0][0] == str(tmp_path / "clips" / "bad.wav")
    assert audio_info(table["path"][0])[1] == 16000


def test_data_dir_is_refused_for_paths(tmp_path):
    _clips(tmp_path / "c" / "x")
    with pytest.raises(ValueError, match="data_dir"):
        load_corpus(tmp_path / "c", data_dir=tmp_path)
