"""Nothing lost, nothing silent (issue 26): concurrent writers of one table, killed extractions,
skipped files, unwritable output locations, the split-file protocol, and smaller failure modes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import amsnet_lib as ams
from amsnet_lib import cli
from amsnet_lib.data.corpora import load_corpus
from amsnet_lib.errors import AmsnetError, ManifestError
from amsnet_lib.data.features import extract_features
from signals import REPO_ROOT, TINY_FEATURES, tone

LINUX = sys.platform.startswith("linux")


def _tones(folder: Path, n: int = 6, seconds: float = 0.9) -> list[tuple[Path, str, str]]:
    """``n`` tone WAVs per class (high, low) under ``folder``; ``(path, label, speaker)`` rows."""
    rows = []
    for i in range(n):
        for label, f0 in (("high", 320.0), ("low", 110.0)):
            path = folder / label / f"{label}{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone(seconds + 0.05 * i, f0 * (1 + 0.03 * i), seed=i), 16000)
            rows.append((path, label, f"s{i % 3}"))
    return rows


def _manifest(path: Path, rows) -> Path:
    pd.DataFrame([{"path": str(p), "label": lab, "speaker": spk} for p, lab, spk in rows]).to_csv(path, index=False)
    return path


def _env(tmp_path) -> dict:
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO_ROOT)) if p)
    return dict(os.environ, AMSNET_NO_REEXEC="1", AMSNET_CACHE_DIR=str(tmp_path / "cache"),
                AMSNET_RUN_DIR=str(tmp_path / "runs"), PYTHONPATH=path)


# --------------------------------------------------------------------------- 1. parallel writers


_WRITER = """
import sys, time
from pathlib import Path
from amsnet_lib.report.timings import record_timing
from amsnet_lib.report.summary import update_summary
who, summary, timings, ready = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
(ready / who).touch()
deadline = time.time() + 120
while len(list(ready.iterdir())) < 2 and time.time() < deadline:  # both begin together: their updates interleave
    time.sleep(0.005)
for i in range(40):
    update_summary({"corpus": "c", "protocol": "p", "model": who, "variant": f"v{i:02d}", "wa": i, "ua": i}, summary)
    record_timing(timings, f"{who}-{i:02d}", "paper", "quick", float(i))
"""


@pytest.mark.slow
def test_parallel_writers_of_the_summary_and_the_timings_keep_every_row(tmp_path):
    summary, timings = tmp_path / "tables" / "summary.csv", tmp_path / "timings.csv"
    ready = tmp_path / "ready"  # each writer marks itself ready once it has imported torch and pandas
    ready.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, who, str(summary), str(timings), str(ready)],
                              env=_env(tmp_path)) for who in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    rows = pd.read_csv(summary, keep_default_na=False)
    assert len(rows) == 80 and set(rows["model"] + rows["variant"]) == {f"{w}v{i:02d}" for w in "ab" for i in range(40)}
    assert len(pd.read_csv(timings)) == 80


# --------------------------------------------------------------------------- 2. killed extraction


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not LINUX, reason="prctl(PR_SET_PDEATHSIG) and /proc are Linux's")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_extraction_workers_stop_when_amsnet_features_is_killed(tmp_path, sig):
    rows = _tones(tmp_path / "corpus", n=20, seconds=2.5)
    manifest = _manifest(tmp_path / "corpus.csv", rows)
    parent = subprocess.Popen([sys.executable, "-m", "amsnet_lib.cli", "features", "--corpus", str(manifest),
                               "--jobs", "2", "--cache-dir", str(tmp_path / "cache")],
                              env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while len(workers) < 2 and parent.poll() is None and time.monotonic() < deadline:
        workers = _children(parent.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, "the extraction pool never started its workers"
    os.kill(parent.pid, sig)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:
        os.kill(w, signal.SIGKILL)
    assert not survivors, f"extraction workers {survivors} outlived their killed parent"


# --------------------------------------------------------------------------- 3. skipped files


def test_train_and_fit_report_the_files_they_skip_and_the_checkpoint_lists_them(tmp_path, capsys):
    rows = _tones(tmp_path / "corpus", n=5)
    empty = tmp_path / "corpus" / "low" / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    garbage = tmp_path / "corpus" / "high" / "garbage.wav"
    garbage.write_bytes(b"RIFF but not audio")
    manifest = _manifest(tmp_path / "corpus.csv", rows + [(empty, "low", "s0"), (garbage, "high", "s1")])
    common = ["--corpus", str(manifest), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0",
              "--run-dir", str(tmp_path / "runs"), "--profile", "quick"]
    # nothing trained yet: train --finished-only stops at "no finished fold", after reading the corpus
    assert cli.main(["train", *common, "--model", "urlm", "--finished-only", "--summary", ""]) == 2
    out = capsys.readouterr().out
    assert "skipped 2 of 12 files" in out and f"{empty}: contains no audio samples" in out
    assert f"{garbage}: cannot be decoded" in out
    ckpt = tmp_path / "model.pt"
    assert cli.main(["fit", *common, "--model", "urlm", "--out", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 of 12 files" in out and "trained on all 10 utterances" in out and "2 unusable file(s) skipped" in out
    meta = ams.load_checkpoint(ckpt)[1].meta
    assert meta["n_utterances"] == 10
    assert {Path(p).name: reason.split(" (")[0] for p, reason in meta["skipped"]} == {
        "empty.wav": "contains no audio samples", "garbage.wav": "cannot be decoded as audio"}


def test_many_skipped_files_are_grouped_by_reason_with_a_count_and_an_example(tmp_path, capsys):
    table = pd.DataFrame({"path": ["ok.wav"], "label": ["a"]})
    table.attrs["skipped"] = ([(f"/c/bad{i}.wav", f"cannot be decoded as audio (error {i})") for i in range(12)]
                              + [("/c/empty.wav", "contains no audio samples (empty recording)")])
    from amsnet_lib.cli._common import _report_skipped

    _report_skipped(table, sys.stdout)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "skipped 13 of 14 files (not used):"
    assert out[1] == "  12 x cannot be decoded as audio (e.g. /c/bad0.wav: error 0)"
    assert out[2] == "  /c/empty.wav: contains no audio samples (empty recording)" and len(out) == 3


def test_skipped_files_and_warned_files_are_grouped_by_one_rule(tmp_path, capsys):
    """The corpus loader's skipped files and the feature warnings / evaluation's left-out utterances
    are shown by the same rule (errors.problem_lines): the same items, the same lines."""
    from amsnet_lib.cli._common import _report_grouped, _report_skipped

    items = ([(f"/c/clip{i}.wav", "clipped") for i in range(3)] + [("/c/odd.wav", "unreadable (error 7)")]
             + [(f"/c/long{i}.wav", f"truncated: only the first 3 s of {4 + i}.5 s are used") for i in range(2)])
    table = pd.DataFrame({"path": ["ok.wav"], "label": ["a"]})
    table.attrs["skipped"] = items
    _report_skipped(table, sys.stdout)
    skipped = capsys.readouterr().out.splitlines()[1:]
    _report_grouped(items, "warning(s)", None, stream=sys.stdout)
    warned = capsys.readouterr().out.splitlines()[1:]
    assert skipped == warned == ["  3 x clipped (e.g. /c/clip0.wav)",
                                 "  2 x truncated: only the first 3 s of 4.5 s are used (e.g. /c/long0.wav)",
                                 "  /c/odd.wav: unreadable (error 7)"]


# --------------------------------------------------------------------------- 4. output locations


@pytest.fixture
def tiny_manifest(tmp_path) -> Path:
    return _manifest(tmp_path / "corpus.csv", _tones(tmp_path / "corpus", n=4))


@pytest.mark.parametrize("case", ["summary", "run_dir", "cache_dir", "fit_out", "features_save"])
def test_an_unwritable_output_location_is_an_error_before_any_work(tmp_path, tiny_manifest, capsys, case):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    corpus = ["--corpus", str(tiny_manifest), "--jobs", "1", "--duration", "1.0"]
    train = ["train", *corpus, "--model", "urlm"]
    argv = {
        "summary": [*train, "--cache-dir", str(cache), "--run-dir", str(runs), "--summary", str(blocker / "t" / "s.csv")],
        "run_dir": [*train, "--cache-dir", str(cache), "--run-dir", str(blocker)],
        "cache_dir": [*train, "--cache-dir", str(blocker / "cache"), "--run-dir", str(runs), "--summary", ""],
        "fit_out": ["fit", *corpus, "--model", "urlm", "--cache-dir", str(cache), "--run-dir", str(runs),
                    "--out", str(blocker / "model.pt")],
        "features_save": ["features", *corpus, "--cache-dir", str(cache), "--save", str(blocker / "f.npz")],
    }[case]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(blocker) in err and "Fix: " in err and "Traceback" not in err
    assert not list(cache.rglob("*.npz")) and not list(runs.rglob("*"))  # nothing extracted, nothing trained


def test_check_writable_names_a_file_in_the_way_and_creates_missing_folders(tmp_path):
    from amsnet_lib.atomic import check_writable

    (tmp_path / "f").write_text("x")
    with pytest.raises(AmsnetError, match=r"f: the run store is a file, not a folder\. Fix: choose"):
        check_writable(tmp_path / "f", "run store", "choose another", folder=True)
    with pytest.raises(AmsnetError, match=r"the summary is a folder, not a file"):
        check_writable(tmp_path, "summary", "choose another")
    assert check_writable(tmp_path / "new" / "deep" / "s.csv", "summary", "-") == tmp_path / "new" / "deep" / "s.csv"
    assert (tmp_path / "new" / "deep").is_dir() and not list((tmp_path / "new" / "deep").iterdir())


# --------------------------------------------------------------------------- 5. split_file protocol


def test_experiment_accepts_the_split_file_protocol(tmp_path):
    split = tmp_path / "folds.csv"
    exp = ams.experiment("emodb", "amsnet", protocol="split_file", profile="quick", split_file=str(split))
    assert exp.protocol == "split_file" and exp.split_file == str(split)
    with pytest.raises(ValueError, match="needs split_file"):
        ams.experiment("emodb", "amsnet", protocol="split_file")


@pytest.mark.slow
@pytest.mark.parametrize("names", ["full paths", "bare file names"])
def test_train_runs_the_split_file_protocol(tmp_path, capsys, names):
    rows = _tones(tmp_path / "corpus", n=6)
    manifest = _manifest(tmp_path / "corpus.csv", rows)
    split = tmp_path / "folds.csv"
    pd.DataFrame({"path": [str(p) if names == "full paths" else p.name for p, _, _ in rows],
                  "fold": [f"part{int(p.stem[-1]) % 2}" for p, _, _ in rows]}).to_csv(split, index=False)
    threads = torch.get_num_threads()
    try:
        code = cli.main(["train", "--corpus", str(manifest), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1",
                         "--duration", "1.0", "--run-dir", str(tmp_path / "runs"), "--profile", "quick", "--model", "urlm",
                         "--protocol", "split_file", "--split-file", str(split), "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    out = capsys.readouterr().out
    assert "protocol split_file" in out and "(2 fold runs)" in out and "part0" in out and "part1" in out
    # the experiment the CLI ran is the one ams.experiment builds, and it finds its finished folds
    feats = extract_features(load_corpus(manifest), TINY_FEATURES, cache_dir=tmp_path / "cache", progress=False)
    exp = ams.experiment(feats.table.attrs["corpus"], "urlm", protocol="split_file", profile="quick", split_file=str(split),
                         features=feats.config)
    res = ams.run_experiment(exp, feats, store=tmp_path / "runs", finished_only=True, progress=False)
    assert not res.missing and sorted(res.folds["fold"]) == ["part0", "part1"]


# --------------------------------------------------------------------------- 6. smaller ones


def test_a_manifest_row_naming_a_directory_says_so(tmp_path):
    (tmp_path / "clips").mkdir()
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\nclips,angry\n")
    with pytest.raises(ManifestError, match=r"line 2: .*clips is a directory, not an audio file"):
        load_corpus(manifest)


def test_labels_differing_only_in_case_are_refused_naming_both(tmp_path):
    rows = _tones(tmp_path / "corpus", n=2)
    manifest = _manifest(tmp_path / "m.csv", [(p, lab.upper() if i == 0 else lab, s) for i, (p, lab, s) in enumerate(rows)])
    with pytest.raises(ManifestError, match=r"labels 'HIGH' \(line 2\), 'high' \(line 4\) differ only in case.*Fix: spell"):
        load_corpus(manifest)


def test_a_folder_in_place_of_a_cache_entry_is_replaced(tmp_path):
    rows = _tones(tmp_path / "corpus", n=1)
    table = load_corpus(_manifest(tmp_path / "m.csv", rows))
    first = extract_features(table, TINY_FEATURES, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    entries = sorted((tmp_path / "cache").rglob("*.npz"))
    assert len(entries) == 2
    entries[0].unlink()
    (entries[0] / "junk").mkdir(parents=True)  # a folder, not empty, where the entry belongs
    again = extract_features(table, TINY_FEATURES, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert again.cache_hits == 1 and entries[0].is_file() and np.array_equal(again.spec, first.spec)
    assert extract_features(table, TINY_FEATURES, cache_dir=tmp_path / "cache", n_jobs=1, progress=False).cache_hits == 2


def test_stream_of_empty_input_says_there_was_no_audio(tiny_ckpt, monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert cli.main(["stream", "-", "--checkpoint", str(tiny_ckpt)]) == 1
    cap = capsys.readouterr()
    assert "stdin: no audio" in cap.err and "nan" not in cap.out + cap.err


def test_checkpoint_errors_never_advise_weights_only_false_and_end_in_whole_sentences(tmp_path):
    from amsnet_lib.serve.checkpoint import CheckpointError, load_checkpoint

    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": "x", "obj": _Foreign()}, unsafe)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(unsafe)
    assert "weights_only" not in str(info.value) and "_Foreign" in str(info.value)
    assert "safe load refuses" in str(info.value)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04" + b"garbage" * 50)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(broken)
    cause = str(info.value).split("torch checkpoint: ", 1)[1].split(")", 1)[0]
    assert cause.endswith(("error", "directory", " ...")) and "If you are seeing" not in cause


class _Foreign:
    """An object ``torch.load(weights_only=True)`` refuses."""


def test_extraction_computes_with_one_blas_thread_whoever_calls_it(tmp_path, monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    from amsnet_lib.data import features as fmod

    seen = []
    real = fmod.log_mel_spectrogram

    def spy(signal, config):
        if config == TINY_FEATURES:  # an utterance (not the warm-up that loads the libraries first)
            seen.append(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
        return real(signal, config)

    monkeypatch.setattr(fmod, "log_mel_spectrogram", spy)
    table = load_corpus(_manifest(tmp_path / "m.csv", _tones(tmp_path / "corpus", n=3)))
    with threadpool_limits(limits=2):
        extract_features(table, TINY_FEATURES, use_cache=False, n_jobs=1, progress=False)
    assert seen and set(seen) == {1}


def test_one_and_two_extraction_jobs_give_bit_identical_features(tmp_path):
    table = load_corpus(_manifest(tmp_path / "m.csv", _tones(tmp_path / "corpus", n=4)))
    one = extract_features(table, TINY_FEATURES, use_cache=False, n_jobs=1, progress=False)
    two = extract_features(table, TINY_FEATURES, use_cache=False, n_jobs=2, progress=False)
    assert one.spec.tobytes() == two.spec.tobytes() and one.frames.tobytes() == two.frames.tobytes()
