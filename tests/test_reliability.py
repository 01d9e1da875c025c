"""Nothing destroyed, nothing silent (issue 41): outputs that are not regular files, Ctrl-C, outputs
that are inputs, containers on stdin, checkpoints whose numbers are not numbers, inputs that hang or
surprise, tracebacks instead of errors, accepted nonsense, and smaller ones. Sections follow the
issue's numbering; each test failed before its fix. No test writes to the real /dev/null: the
character device here is a pseudo-terminal this test opens."""
from __future__ import annotations

import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from amsnet_lib import cli
from amsnet_lib.atomic import atomic_write_bytes, atomic_write_text, check_writable
from amsnet_lib.errors import AmsnetError, AudioError, CheckpointError, ManifestError
from signals import REPO_ROOT, tone

LINUX = sys.platform.startswith("linux")


def _tones(folder: Path, n: int = 3, seconds: float = 1.0, labels=("high", "low")) -> list[tuple[Path, str]]:
    """``n`` tone WAVs per label under ``folder/<label>/``; ``(path, label)`` rows (not the tiny model's training files)."""
    rows = []
    for i in range(n):
        for label in labels:
            f0 = {"high": 330.0, "low": 115.0}.get(label, 200.0)
            path = folder / label / f"{label}{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone(seconds + 0.05 * i, f0 * (1 + 0.02 * i), seed=10 + i), 16000)
            rows.append((path, label))
    return rows


def _manifest(path: Path, rows) -> Path:
    pd.DataFrame({"path": [str(p) for p, _ in rows], "label": [lab for _, lab in rows]}).to_csv(path, index=False)
    return path


def _env(tmp_path) -> dict:
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO_ROOT)) if p)
    return dict(os.environ, AMSNET_NO_REEXEC="1", AMSNET_CACHE_DIR=str(tmp_path / "cache"),
                AMSNET_RUN_DIR=str(tmp_path / "runs"), PYTHONPATH=path, OMP_NUM_THREADS="1")


def _main(argv) -> int | str:
    """``cli.main(argv)``; a KeyboardInterrupt that escapes it is returned as text, not raised into pytest."""
    try:
        return cli.main(argv)
    except KeyboardInterrupt:
        return "KeyboardInterrupt escaped"


def _read_in_background(path: Path, into: dict) -> threading.Thread:
    thread = threading.Thread(target=lambda: into.setdefault("data", Path(path).read_bytes()), daemon=True)
    thread.start()
    return thread


# --------------------------------------------------------------------------- 1. outputs that are not regular files


def test_an_output_through_a_symbolic_link_is_written_through_and_the_link_stays(tmp_path):
    target = tmp_path / "real" / "out.csv"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target) and target.read_text() == "new"
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "made" / "by_link.csv")
    atomic_write_text(dangling, "created")  # a dangling link creates its target, as a shell's > does
    assert dangling.is_symlink() and (tmp_path / "made" / "by_link.csv").read_text() == "created"


def test_an_output_keeps_the_permissions_of_the_file_it_replaces(tmp_path):
    private = tmp_path / "private.csv"
    private.write_text("old")
    private.chmod(0o600)
    atomic_write_text(private, "new")
    assert private.read_text() == "new" and stat.S_IMODE(private.stat().st_mode) == 0o600
    fresh = tmp_path / "fresh.csv"
    atomic_write_text(fresh, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


@pytest.mark.skipif(not LINUX, reason="FIFOs as on Linux")
def test_a_fifo_output_is_streamed_into_not_replaced(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: dict = {}
    reader = _read_in_background(fifo, got)
    data = os.urandom(300_000)  # more than a pipe holds: the writer must stream
    atomic_write_bytes(fifo, data)
    reader.join(20)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced by a regular file"
    assert got.get("data") == data


@pytest.mark.skipif(not LINUX, reason="pseudo-terminals as on Linux")
def test_a_character_device_output_is_written_into_not_replaced(tmp_path):
    import tty

    master, slave = os.openpty()  # /dev/pts/N: a real character device this test owns, standing in for /dev/null
    try:
        tty.setraw(slave)  # bytes pass unchanged (no newline translation)
        device = os.ttyname(slave)
        data = b"label,p\nanger,0.9\n" * 20
        got = bytearray()

        def read():
            while len(got) < len(data):
                got.extend(os.read(master, 4096))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        link = tmp_path / "to_device"
        link.symlink_to(device)
        check_writable(link, "--out", "-")
        atomic_write_bytes(link, data)
        reader.join(20)
        assert stat.S_ISCHR(os.stat(device).st_mode) and link.is_symlink()
        assert bytes(got) == data
        assert not list(tmp_path.glob(".*tmp"))
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.skipif(not LINUX, reason="Unix sockets")
def test_a_socket_or_a_link_loop_as_output_is_refused_naming_it(tmp_path):
    where = Path(os.environ.get("TMPDIR", "/tmp")) / f"amsnet-sock-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(where))
        for write in (lambda: atomic_write_text(where, "x"), lambda: check_writable(where, "--out", "pick another")):
            with pytest.raises(AmsnetError, match="is a socket"):
                write()
        assert stat.S_ISSOCK(os.stat(where).st_mode)
    finally:
        sock.close()
        where.unlink(missing_ok=True)
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(AmsnetError, match="symbolic link loop"):
        check_writable(tmp_path / "a", "--out", "pick another")


def test_a_read_only_output_is_refused_before_any_work(tmp_path):
    locked = tmp_path / "keep.csv"
    locked.write_text("precious")
    locked.chmod(0o444)
    with pytest.raises(AmsnetError, match=r"read-only file \(mode 444\)"):
        check_writable(locked, "--out", "choose another")
    assert locked.read_text() == "precious"


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="FIFOs as on Linux")
def test_evaluate_and_export_write_through_links_into_fifos_and_keep_modes(tiny_ckpt, tmp_path, capsys):
    rows = _tones(tmp_path / "corpus", n=2) + _tones(tmp_path / "corpus", n=1, labels=("mid",))  # mid: left out
    manifest = _manifest(tmp_path / "m.csv", rows)
    fifo = tmp_path / "pred.fifo"
    os.mkfifo(fifo)
    figure = tmp_path / "figures" / "cm.png"
    figure.parent.mkdir()
    figure.write_bytes(b"old")
    (tmp_path / "cm_link.png").symlink_to(figure)
    left = tmp_path / "left.csv"
    left.write_text("old")
    left.chmod(0o600)
    got: dict = {}
    reader = _read_in_background(fifo, got)
    assert cli.main(["evaluate", str(manifest), "--checkpoint", str(tiny_ckpt), "--out", str(fifo), "--figure",
                     str(tmp_path / "cm_link.png"), "--left-out", str(left), "--quiet"]) == 0
    reader.join(20)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and b"corpus_label" in got["data"]
    assert (tmp_path / "cm_link.png").is_symlink() and figure.read_bytes()[:4] == b"\x89PNG"
    assert stat.S_IMODE(left.stat().st_mode) == 0o600 and "mid0.wav" in left.read_text()
    real = tmp_path / "exports" / "model.ts.pt"
    real.parent.mkdir()
    real.write_bytes(b"old")
    real.chmod(0o640)
    (tmp_path / "model_link.pt").symlink_to(real)
    assert cli.main(["export", str(tiny_ckpt), str(tmp_path / "model_link.pt")]) == 0
    assert (tmp_path / "model_link.pt").is_symlink() and stat.S_IMODE(real.stat().st_mode) == 0o640
    assert real.read_bytes()[:2] == b"PK"


# --------------------------------------------------------------------------- 2. Ctrl-C stops every command


def test_ctrl_c_inside_opensmile_interrupts_the_extraction(tmp_path):
    """A SIGINT while openSMILE calls back into Python was printed as "Exception ignored" and dropped a frame."""
    from amsnet_lib.config import FeatureConfig
    from amsnet_lib.data.features import frame_features

    signal_ = tone(60.0, 200.0)
    frame_features(signal_[:16000], FeatureConfig())  # openSMILE loaded: the next call is all extraction
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            frame_features(signal_, FeatureConfig())
    finally:
        timer.cancel()


_COMMANDS = {"features": "train", "train": "train", "compare": "train", "fit": "train", "pretrain": "train",
             "search": "train", "predict": "serve", "evaluate": "serve", "stream": "serve", "export": "serve"}


@pytest.mark.parametrize("command", list(_COMMANDS))
def test_every_command_stops_on_ctrl_c_with_exit_130(command, monkeypatch, capsys):
    import importlib

    module = importlib.import_module(f"amsnet_lib.cli.{_COMMANDS[command]}")

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, f"_cmd_{command}", interrupted)
    argv = {"compare": ["compare", "amsnet", "urlm"], "search": ["search", "--stage", "urlm"],
            "fit": ["fit", "--out", "x.pt"], "export": ["export", "a.pt", "b.pt"], "predict": ["predict", "a.wav"],
            "evaluate": ["evaluate", "m.csv"]}.get(command, [command])
    assert _main(argv) == 130
    assert "interrupted" in capsys.readouterr().err


# Runs `amsnet evaluate` in a child whose openSMILE run gets a SIGINT 2 ms after it starts, so the
# signal lands while openSMILE calls back into Python: before the fix the run went on and exited 0.
_INTERRUPT_IN_OPENSMILE = """
import os, signal, sys, threading
from opensmile.core import lib
real = lib.OpenSMILE.run
def run(self):
    threading.Timer(0.002, os.kill, (os.getpid(), signal.SIGINT)).start()
    return real(self)
lib.OpenSMILE.run = run
from amsnet_lib import cli
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="signals as on Linux")
def test_evaluate_interrupted_inside_opensmile_exits_130_and_writes_nothing(tiny_ckpt, tmp_path):
    manifest = _manifest(tmp_path / "m.csv", _tones(tmp_path / "corpus", n=2))
    out = tmp_path / "pred.csv"
    proc = subprocess.run([sys.executable, "-c", _INTERRUPT_IN_OPENSMILE, "evaluate", str(manifest), "--checkpoint",
                           str(tiny_ckpt), "--out", str(out), "--quiet"], env=_env(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr
    assert "interrupted" in proc.stderr and not out.exists() and not list(tmp_path.glob(".pred.csv*"))


@pytest.mark.skipif(not LINUX, reason="/proc and signals as on Linux")
def test_features_interrupted_stops_its_extraction_workers_at_once(tmp_path):
    rows = _tones(tmp_path / "corpus", n=25, seconds=2.5)
    manifest = _manifest(tmp_path / "m.csv", rows)
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-m", "amsnet_lib.cli", "features", "--corpus", str(manifest), "--jobs", "2",
                             "--cache-dir", str(cache)], env=_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(cache.rglob("*.npz")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert time.monotonic() - sent < 15 and "Traceback" not in err
    assert len(list(cache.rglob("*.npz"))) < len(rows)  # stopped, not run to the end


# --------------------------------------------------------------------------- 3. outputs that are inputs


def test_export_refuses_to_overwrite_its_checkpoint_however_named(tiny_ckpt, tmp_path, capsys):
    ck = tmp_path / "model.pt"
    ck.write_bytes(tiny_ckpt.read_bytes())
    before = ck.read_bytes()
    (tmp_path / "alias.pt").symlink_to(ck)
    os.link(ck, tmp_path / "hard.pt")
    (tmp_path / "sub").mkdir()
    for out in (ck, tmp_path / "alias.pt", tmp_path / "hard.pt", tmp_path / "sub" / ".." / "model.pt"):
        assert cli.main(["export", str(ck), str(out)]) == 2
        err = capsys.readouterr().err
        assert "is the checkpoint" in err and "writing it would destroy the input" in err and "Fix: give OUT" in err
    assert ck.read_bytes() == before


def test_evaluate_refuses_outputs_that_are_its_manifest_audio_or_each_other(tiny_ckpt, tmp_path, capsys, monkeypatch):
    from amsnet_lib.serve import evaluation as P

    rows = _tones(tmp_path / "corpus", n=1)
    manifest = _manifest(tmp_path / "m.csv", rows)
    before = manifest.read_bytes()
    monkeypatch.setattr(P, "evaluate", lambda *a, **k: pytest.fail("evaluated although an output is an input"))
    cases = [["--out", str(manifest)], ["--left-out", str(rows[0][0])], ["--figure", str(tiny_ckpt)],
             ["--out", str(tmp_path / "x.csv"), "--left-out", str(tmp_path / "x.csv")]]
    for extra in cases:
        assert cli.main(["evaluate", str(manifest), "--checkpoint", str(tiny_ckpt), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and ("is the " in err or "name the same file" in err), err
    assert manifest.read_bytes() == before and sf.info(str(rows[0][0])).frames > 0


def test_check_distinct_compares_files_not_names(tmp_path):
    from amsnet_lib.atomic import check_distinct

    a = tmp_path / "a.csv"
    a.write_text("x")
    (tmp_path / "alias.csv").symlink_to(a)
    with pytest.raises(AmsnetError, match=r"alias.csv: --out is the corpus manifest .*a\.csv \(the same file\)"):
        check_distinct([("--out", tmp_path / "alias.csv")], [("corpus manifest", a)])
    check_distinct([("--out", tmp_path / "new.csv")], [("corpus manifest", a)])  # a new file is never an input


# --------------------------------------------------------------------------- 4. stream - knows its input


def _stream_jsonl(argv, stdin_bytes: bytes | None, monkeypatch, capsys):
    if stdin_bytes is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin_bytes)))
    code = cli.main(argv + ["--format", "jsonl"])
    cap = capsys.readouterr()
    return code, [json.loads(line) for line in cap.out.splitlines() if line.startswith("{")], cap.err


def test_a_wav_piped_to_stream_is_decoded_like_the_file(tiny_ckpt, tmp_path, monkeypatch, capsys):
    path = tmp_path / "talk.wav"
    x = np.concatenate([tone(1.5, 330.0, sr=22050, seed=1), tone(1.5, 115.0, sr=22050, seed=2)])
    sf.write(path, np.stack([x, 0.5 * x], axis=1), 22050, subtype="PCM_24")  # stereo, 24 bit, 22.05 kHz
    common = ["--checkpoint", str(tiny_ckpt), "--hop", "0.5"]
    code, from_file, _ = _stream_jsonl(["stream", str(path), *common], None, monkeypatch, capsys)
    assert code == 0 and len(from_file) == 6  # 5 windows of 1 s every 0.5 s over 3 s of audio, and the summary
    code, from_pipe, _ = _stream_jsonl(["stream", "-", *common], path.read_bytes(), monkeypatch, capsys)
    assert code == 0
    keys = ("start", "end", "label", "probabilities")
    assert [{k: w[k] for k in keys} for w in from_pipe[:-1]] == [{k: w[k] for k in keys} for w in from_file[:-1]]


@pytest.mark.parametrize("fmt", ["FLAC", "OGG"])
def test_a_compressed_file_piped_to_stream_is_refused_naming_the_fix(fmt, tiny_ckpt, tmp_path, monkeypatch, capsys):
    buf = io.BytesIO()
    sf.write(buf, tone(2.0, 330.0), 16000, format=fmt)
    code, windows, err = _stream_jsonl(["stream", "-", "--checkpoint", str(tiny_ckpt)], buf.getvalue(), monkeypatch, capsys)
    assert code == 2 and not windows
    assert f"stdin: holds {'FLAC' if fmt == 'FLAC' else 'Ogg'}" in err and "pass the file as SOURCE" in err


# --------------------------------------------------------------------------- 5. checkpoints are checked


def _altered_checkpoint(tiny_ckpt: Path, out: Path, change) -> Path:
    payload = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    change(payload)
    torch.save(payload, out)
    return out


@pytest.mark.parametrize("case", ["nan mean", "zero std", "nan weight", "escape in a class"])
def test_a_checkpoint_with_unusable_numbers_or_names_is_refused_at_load(case, tiny_ckpt, tmp_path):
    from amsnet_lib.serve.checkpoint import load_checkpoint

    def change(p):
        if case == "nan mean":
            p["normaliser"]["frames_mean"][3] = float("nan")
        elif case == "zero std":
            p["normaliser"]["spec_std"][:] = 0.0
        elif case == "nan weight":
            k = next(k for k, v in p["state_dict"].items() if v.is_floating_point() and v.dim() == 2)
            p["state_dict"][k][0, 0] = float("nan")
        else:
            p["classes"] = ["\x1b[31mhigh", "low"]

    bad = _altered_checkpoint(tiny_ckpt, tmp_path / "bad.pt", change)
    want = {"nan mean": r"normaliser frames_mean holds 1 non-finite value", "zero std": r"spec_std holds \d+ standard "
            "deviation", "nan weight": "holds non-finite values", "escape in a class": "control characters"}[case]
    with pytest.raises(CheckpointError, match=want):
        load_checkpoint(bad)


def test_predict_json_is_valid_json_and_never_labels_nan_probabilities(tiny_ckpt, tmp_path, monkeypatch, capsys):
    from amsnet_lib.serve.predict import Recognizer

    real = Recognizer.infer

    def nan_infer(self, *a, **k):
        proba, alpha = real(self, *a, **k)
        return np.full_like(proba, np.nan), alpha

    monkeypatch.setattr(Recognizer, "infer", nan_infer)
    clip = tmp_path / "a.wav"
    sf.write(clip, tone(1.0, 300.0), 16000)
    assert cli.main(["predict", str(clip), "--checkpoint", str(tiny_ckpt), "--format", "json", "--quiet"]) == 1
    out = capsys.readouterr().out

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    (row,) = json.loads(out, parse_constant=refuse)
    assert row["label"] is None and row["probabilities"] is None and "non-finite probabilities" in row["error"]


# --------------------------------------------------------------------------- 6. inputs that hang or surprise


@pytest.mark.skipif(not LINUX, reason="FIFOs as on Linux")
def test_a_fifo_named_like_audio_is_refused_not_waited_on(tiny_ckpt, tmp_path):
    from amsnet_lib.serve.predict import predict

    fifo = tmp_path / "live.wav"
    os.mkfifo(fifo)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.setdefault("df", predict([fifo], checkpoint=tiny_ckpt, progress=False)),
                              daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # blocked opening the FIFO: release it, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail("predict waited on a FIFO")
    assert "FIFO (named pipe), not a regular file" in result["df"].loc[0, "error"]
    with pytest.raises(AudioError, match="FIFO"):
        from amsnet_lib.data.audio import load_audio

        load_audio(fifo)


def test_an_empty_path_is_an_error_not_the_current_folder(tiny_ckpt, tmp_path, monkeypatch):
    from amsnet_lib.data.corpora import load_corpus
    from amsnet_lib.errors import CorpusError
    from amsnet_lib.serve.predict import predict

    sf.write(tmp_path / "here.wav", tone(1.0, 300.0), 16000)
    monkeypatch.chdir(tmp_path)
    df = predict([""], checkpoint=tiny_ckpt, progress=False)
    assert list(df["path"]) == [""] and "an empty path" in df.loc[0, "error"]
    with pytest.raises(CorpusError, match="empty corpus"):
        load_corpus("")


def test_a_symbolic_link_loop_and_a_broken_link_are_named_as_such(tmp_path):
    from amsnet_lib.data.audio import load_audio

    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    (tmp_path / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    with pytest.raises(AudioError, match="symbolic link loop"):
        load_audio(tmp_path / "a.wav")
    with pytest.raises(AudioError, match=r"broken symbolic link \(to .*nowhere.wav"):
        load_audio(tmp_path / "gone.wav")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label\n{tmp_path / 'a.wav'},x\n")
    with pytest.raises(ManifestError, match="line 2: .*a.wav is a symbolic link loop"):
        from amsnet_lib.data.corpora import load_corpus

        load_corpus(manifest)


def test_folder_scans_read_ogg_and_mp3_and_list_what_they_pass_over(tiny_ckpt, tmp_path, capsys):
    from amsnet_lib.data.corpora import load_corpus

    folder = tmp_path / "clips"
    (folder / "high").mkdir(parents=True)
    sf.write(folder / "high" / "a.wav", tone(1.0, 330.0), 16000)
    sf.write(folder / "high" / "b.ogg", tone(1.0, 330.0, seed=3), 16000)
    sf.write(folder / "high" / "c.mp3", tone(1.0, 330.0, seed=4), 16000)
    (folder / "high" / "d.wav").symlink_to(folder / "missing.wav")
    (folder / "high" / "notes.txt").write_text("not audio")
    assert cli.main(["predict", str(folder), "--checkpoint", str(tiny_ckpt), "--format", "csv", "--quiet"]) == 0
    cap = capsys.readouterr()
    df = pd.read_csv(io.StringIO(cap.out), keep_default_na=False)
    assert sorted(Path(p).name for p in df["path"]) == ["a.wav", "b.ogg", "c.mp3", "d.wav"]
    errors = df.set_index("path")["error"]
    assert (errors == "").sum() == 3 and "broken symbolic link" in errors[str(folder / "high" / "d.wav")]
    assert "passed over 1 file(s)" in cap.err and "notes.txt: not read: not named as audio" in cap.err
    table = load_corpus(folder)  # a folder per label: the same files, the rest listed
    assert sorted(Path(p).name for p in table["path"]) == ["a.wav", "b.ogg", "c.mp3"]
    assert {Path(p).name for p, _ in table.attrs["skipped"]} == {"d.wav", "notes.txt"}


# --------------------------------------------------------------------------- 7. errors, not tracebacks


@pytest.mark.parametrize("option,value", [("--hop", "0"), ("--hop", "-1"), ("--hop", "nan"), ("--hop", "inf"),
                                          ("--hop", "1e-9"), ("--window", "1e7"), ("--window", "0")])
def test_stream_options_out_of_range_are_usage_errors(option, value, capsys):
    assert _main(["stream", "x.wav", option, value]) == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["features", "--duration", "nan"], ["features", "--duration", "-3"], ["features", "--duration", "0"],
    ["features", "--n-mels", "0"], ["features", "--jobs", "0"], ["train", "--folds", "1"], ["train", "--epochs", "0"],
    ["train", "--lr", "0"], ["train", "--seeds", "-1"], ["train", "--late-weight", "1.5"], ["fit", "--out", "x.pt", "--seed", "-2"],
    ["predict", "a.wav", "--batch-size", "0"], ["compare", "amsnet", "urlm", "--resamples", "0"],
    ["search", "--stage", "urlm", "--trials", "0"], ["pretrain", "--cpus", "0"]])
def test_numeric_options_are_checked_at_parse_time(argv, tmp_path, capsys):
    if argv[0] in ("features", "train", "fit", "compare", "search", "pretrain"):
        argv = [*argv, "--corpus", str(tmp_path / "nowhere.csv")]  # a command that got past parsing stops at once
    assert _main(argv) == 2
    err = capsys.readouterr().err
    option = next(a for a in reversed(argv) if a.startswith("--") and a != "--corpus")
    assert f"argument {option}" in err and ("out of range" in err or "finite" in err), err


def test_evaluate_checks_left_out_and_report_locations_before_any_work(tiny_ckpt, tmp_path, capsys, monkeypatch):
    from amsnet_lib.serve import evaluation as P

    manifest = _manifest(tmp_path / "m.csv", _tones(tmp_path / "corpus", n=1))
    monkeypatch.setattr(P, "evaluate", lambda *a, **k: pytest.fail("evaluated before checking where it writes"))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    (tmp_path / "folder.csv").mkdir()
    for extra, named in ([["--left-out", str(tmp_path / "folder.csv")], "folder.csv"],
                         [["--left-out", "/proc/amsnet_left_out.csv"], "/proc"]):
        assert cli.main(["evaluate", str(manifest), "--checkpoint", str(tiny_ckpt), *extra]) == 2
        assert named in capsys.readouterr().err
    monkeypatch.setenv("AMSNET_CACHE_DIR", str(blocker / "cache"))  # its reports/ folder cannot be made
    assert cli.main(["evaluate", str(manifest), "--checkpoint", str(tiny_ckpt)]) == 2
    assert str(blocker) in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="pipes as on Linux")
def test_predict_into_a_closed_pipe_stops_quietly(tiny_ckpt, tmp_path):
    clips = [tmp_path / f"c{i}.wav" for i in range(2)]
    for i, c in enumerate(clips):
        sf.write(c, tone(1.0, 200.0 + 50 * i), 16000)
    read, write = os.pipe()
    os.close(read)  # the reader (`| head -1`) is gone before anything is written
    proc = subprocess.run([sys.executable, "-m", "amsnet_lib.cli", "predict", *map(str, clips), "--checkpoint",
                           str(tiny_ckpt), "--quiet"], env=_env(tmp_path), stdout=write, stderr=subprocess.PIPE,
                          text=True, timeout=300)
    os.close(write)
    assert proc.returncode == 141 and "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- 8. accepted nonsense


def test_feature_settings_that_give_no_features_are_refused():
    from amsnet_lib.config import FeatureConfig

    for bad in ({"duration": 0}, {"duration": float("nan")}, {"duration": -3.0}, {"n_mels": 0}):
        with pytest.raises(ValueError, match="FeatureConfig"):
            FeatureConfig(**bad)


def test_a_file_with_nan_samples_is_left_out_and_listed_by_every_command(tiny_ckpt, tmp_path, capsys):
    rows = _tones(tmp_path / "corpus", n=2)
    bad = tmp_path / "corpus" / "high" / "nan.wav"
    x = tone(1.0, 330.0)
    x[100:200] = np.nan
    sf.write(bad, x, 16000, subtype="FLOAT")
    manifest = _manifest(tmp_path / "m.csv", rows + [(bad, "high")])
    reason = "contains NaN or infinite samples"
    assert cli.main(["features", "--corpus", str(manifest), "--jobs", "1", "--duration", "1.0",
                     "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 of 5 files" in out and f"{bad}: {reason}" in out and "utterances: 4" in out
    assert cli.main(["predict", str(bad), "--checkpoint", str(tiny_ckpt), "--quiet"]) == 1
    assert f"{bad}: {reason}" in capsys.readouterr().err
    left = tmp_path / "left.csv"
    assert cli.main(["evaluate", str(manifest), "--checkpoint", str(tiny_ckpt), "--left-out", str(left), "--quiet"]) == 0
    assert reason in pd.read_csv(left).set_index("path").loc[str(bad), "reason"]


# --------------------------------------------------------------------------- 9. smaller ones


def test_a_truncated_file_is_decoded_with_a_warning(tiny_ckpt, tmp_path):
    from amsnet_lib.data.audio import load_audio
    from amsnet_lib.serve.predict import predict

    whole = tmp_path / "whole.wav"
    sf.write(whole, tone(2.0, 300.0), 16000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: 44 + 2 * 16000])  # header of 2 s, 1 s of data
    warns: list[str] = []
    assert len(load_audio(cut, warnings=warns)) == 16000
    assert warns == ["truncated file: its header announces 2.00 s, it holds 1.00 s"]
    load_audio(whole, warnings=warns)
    assert len(warns) == 1
    df = predict([cut], checkpoint=tiny_ckpt, progress=False)
    assert df.loc[0, "error"] == "" and "truncated file: its header announces 2.00 s" in df.loc[0, "warnings"]


def test_float_audio_above_full_scale_is_not_called_clipped():
    from amsnet_lib.data.audio import inspect_audio

    t = np.arange(16000) / 16000
    (warning,) = inspect_audio((1.8 * np.sin(2 * np.pi * 200 * t)).astype(np.float32))
    assert warning.startswith("over full scale (peak 1.80)")


def test_a_torchscript_export_or_random_bytes_given_as_checkpoint_are_named(tmp_path):
    from amsnet_lib.serve.checkpoint import load_checkpoint

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch >= 2.10 prefers torch.export to TorchScript
        scripted = torch.jit.script(torch.nn.Linear(2, 2))
    ts = tmp_path / "model.ts.pt"
    scripted.save(str(ts))
    with pytest.raises(CheckpointError, match="is a TorchScript export, not a checkpoint") as info:
        load_checkpoint(ts)
    assert "load_exported" in str(info.value) and "corrupt" not in str(info.value)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(bytes(range(7, 256)) * 20)
    with pytest.raises(CheckpointError, match="neither a zip archive nor a pickle") as info:
        load_checkpoint(noise)
    assert "Python objects" not in str(info.value)


def test_a_label_with_control_characters_is_refused_by_the_manifest_loader(tmp_path):
    from amsnet_lib.data.corpora import load_corpus

    clip = tmp_path / "a.wav"
    sf.write(clip, tone(1.0, 300.0), 16000)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label\n{clip},\x1b[31manger\n")
    with pytest.raises(ManifestError, match="line 2: label .* holds control characters"):
        load_corpus(manifest)


class _Plant:
    """Unpickling it runs code: it creates the folder ``path``."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_a_resume_point_is_loaded_safely_and_a_refused_one_says_so(tmp_path):
    from amsnet_lib.config import TrainConfig
    from amsnet_lib.train.training import train_model

    class Tiny(torch.nn.Module):
        inputs = ("spec",)

        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, spec):
            return self.fc(spec)

    planted = tmp_path / "code_ran"
    resume = tmp_path / "partial.pt"
    torch.save({"model": _Plant(str(planted))}, resume)
    data = {"spec": torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), "labels": torch.tensor([0, 1] * 4)}
    cfg = TrainConfig(epochs=2, batch_size=4, patience=0)
    torch.manual_seed(0)
    fresh = train_model(Tiny(), data, None, cfg, 2, progress=False)
    torch.manual_seed(0)
    with pytest.warns(RuntimeWarning, match="resume point not used"):
        resumed = train_model(Tiny(), data, None, cfg, 2, progress=False, resume_path=resume)
    assert not planted.exists(), "loading the resume point ran code from it"
    pd.testing.assert_frame_equal(fresh.curves, resumed.curves)  # a fresh start, as if the file were absent


def test_the_emodb_download_is_protected_by_its_sha256_check_and_says_so():
    from amsnet_lib.data.corpora import emodb

    source = Path(emodb.__file__).read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    assert emodb.DOWNLOAD_URL.startswith("http://")
    assert "SHA-256 must match the manifest" in source and "plain HTTP" in readme and "SHA-256" in readme
