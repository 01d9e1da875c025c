"""Shared fixtures: synthetic audio files and the location of the real EmoDB copy."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from signals import REPO_ROOT, sine  # noqa: F401  (re-exported for fixtures below)


def pytest_collection_modifyitems(config, items):
    """The modules holding tests marked ``slow`` run first, those with the most first; each module's
    tests stay together and in file order.

    pytest-xdist's work stealing (./run_tests.sh) hands each worker a run of the collection in order
    and steals from the end of a queue, so the long tests start early and the last minutes are spent
    on short ones, which the idle worker can take over; and a module's fixtures (test_engine.py's
    Ray) are set up once, not again each time a worker comes back to the module."""
    slow: dict[str, int] = {}
    for item in items:
        slow[item.module.__name__] = slow.get(item.module.__name__, 0) + bool(item.get_closest_marker("slow"))
    first = {name: i for i, name in enumerate(dict.fromkeys(item.module.__name__ for item in items))}
    items.sort(key=lambda item: (-slow[item.module.__name__], first[item.module.__name__]))  # stable: file order within


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_as_in_a_terminal():
    """Ctrl-C raises KeyboardInterrupt in the tests and in the processes they start, as in a terminal.

    A shell starts a background job (``./run_tests.sh &``, ``nohup``) with SIGINT ignored, and every
    process it starts inherits that: the tests of what Ctrl-C does (tests/test_reliability.py) would
    then test an ignored signal and fail. Outside a background job this changes nothing."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture
def write_audio(tmp_path):
    """Factory writing an audio file and returning its path.

    ``write_audio(name, signal=None, sample_rate=16000, duration=0.5, freq=440, channels=1,
    subtype=None, format=None)``: ``signal`` (``(n,)`` or ``(n, channels)``) defaults to a sine
    of ``duration`` s copied to ``channels``; ``format`` (``"WAV"``, ``"FLAC"``) defaults to the
    name's extension, so a lying extension is written with ``format`` given explicitly.
    """

    def write(name, signal=None, sample_rate=16000, duration=0.5, freq=440.0, channels=1, subtype=None, format=None):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if signal is None:
            signal = sine(duration, sample_rate, freq)
            if channels > 1:
                signal = np.repeat(signal[:, None], channels, axis=1)
        if format is None:
            format = {".wav": "WAV", ".flac": "FLAC"}.get(path.suffix.lower(), "WAV")
        sf.write(str(path), signal, sample_rate, subtype=subtype, format=format)
        return path

    return write


@pytest.fixture(scope="session")
def emodb_dir() -> Path:
    """The real EmoDB folder (:func:`signals.find_emodb`: where the project finds it); skip if absent."""
    from signals import find_emodb

    found = find_emodb()
    if found is None:
        pytest.skip("EmoDB not available (set AMSNET_EMODB_DIR, or let ./run_all.sh download it to ./data/emodb)")
    return found


@pytest.fixture(scope="session")
def ravdess_dir() -> Path:
    """The real RAVDESS speech folder (``Actor_NN/``): ``$AMSNET_RAVDESS_DIR``, else ``./data/ravdess``,
    else ``../shared/data/ravdess``; skip if none holds it."""
    candidates = [os.environ.get("AMSNET_RAVDESS_DIR"), REPO_ROOT / "data" / "ravdess",
                  REPO_ROOT.parent / "shared" / "data" / "ravdess"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "Actor_01").is_dir():
            return Path(candidate)
    pytest.skip("RAVDESS not available (set AMSNET_RAVDESS_DIR)")


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A quick-profile AMSNet checkpoint trained by the real engine on tone WAVs, once per run: under
    pytest-xdist the workers share it (built by the first under a lock, in the folder above their
    own), so it is trained once, not once per worker; the tests only read it."""
    import fcntl

    from signals import tiny_checkpoint

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    with open(base / "tiny.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return tiny_checkpoint(base)
