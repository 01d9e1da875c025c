"""Audio loading: any file libsndfile reads (WAV, FLAC, ...) to a mono float32 signal.

The public API is small:

- :func:`load_audio` decodes a file to a mono ``float32`` signal at the requested sample
  rate (resampled with soxr, high quality);
- :func:`audio_info` reads duration, sample rate and channel count from the header
  without decoding the samples;
- :func:`inspect_audio` returns warnings about a decoded signal (``"silent"``, ``"clipped"``,
  ``"over full scale ..."``); :func:`load_audio` adds those about the file (``"truncated file ..."``).

Every problem with a file raises :class:`~amsnet_lib.errors.AudioError` naming the file and
the fix. The container format is detected from the file's content (libsndfile reads the
header), so a FLAC file named ``*.wav`` still loads.
"""
from __future__ import annotations

import errno
import math
import os
import re
import stat
from pathlib import Path

import numpy as np

from ..errors import AudioError

__all__ = ["AUDIO_EXTENSIONS", "MIN_DURATION", "load_audio", "audio_info", "inspect_audio"]

#: File name endings a folder scan collects (compared case-insensitively): the containers
#: libsndfile decodes that hold recordings (WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF). A file named
#: directly is read whatever its name; a folder scan lists every other file it passes over.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")

#: Shortest usable recording in seconds. Below this not even one 25 ms analysis frame
#: with context fits, and such files are almost always cut-off or broken recordings.
MIN_DURATION = 0.1

#: A signal whose absolute peak is below this (about -80 dBFS) is reported as silent.
SILENT_PEAK = 1e-4
#: Sample magnitude counted as clipped (full scale minus rounding of 16-bit PCM).
CLIP_LEVEL = 0.999
#: Fraction of clipped samples from which a signal is reported as clipped (0.1 %).
CLIP_FRACTION = 1e-3


def _soundfile():
    """soundfile and the errors it raises for files it cannot open or decode.

    Imported on first use: training from a saved feature bundle (:meth:`Features.load`, e.g. on
    a GPU machine without the audio libraries) imports this module but decodes nothing.
    """
    import soundfile as sf

    return sf, (sf.SoundFileError, RuntimeError, EOFError)

_FIX_UNREADABLE = (
    "check that the file is a complete, uncorrupted WAV or FLAC recording "
    "(re-export or re-copy it), or remove it from the corpus"
)


def load_audio(
    path: str | os.PathLike,
    sample_rate: int = 16000,
    max_duration: float | None = None,
    *,
    warnings: list[str] | None = None,
) -> np.ndarray:
    """Load an audio file as a mono ``float32`` signal.

    Args:
        path: audio file; any format libsndfile decodes (WAV PCM 16/24/32 bit or float,
            FLAC, ...). The format is detected from the content, not the extension.
        sample_rate: output sample rate in Hz. Other rates are resampled with soxr
            (``"HQ"`` quality).
        max_duration: if given, read at most this many seconds from the start of the file;
            only that much is read from disk, so memory stays bounded for very long files.
        warnings: a list that receives warnings about the file: ``"truncated file: ..."`` when
            its header announces more audio than it holds (the part present is decoded).

    Returns:
        Signal of shape ``(n_samples,)``, ``float32``, nominally in ``[-1, 1]``
        (float files are returned as stored). Several channels are averaged to mono.

    Raises:
        AudioError: the path does not exist, is a directory, is not decodable audio,
            holds no samples, holds non-finite samples, or is shorter than
            :data:`MIN_DURATION` seconds.
        ValueError: ``sample_rate`` or ``max_duration`` is not positive.
    """
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    if max_duration is not None and not max_duration > 0:
        raise ValueError(f"max_duration must be positive seconds or None, got {max_duration!r}")
    path = _check_path(path)
    sf, decode_errors = _soundfile()
    try:
        with sf.SoundFile(str(path)) as f:
            native_rate, n_frames = f.samplerate, f.frames
            _check_length(path, n_frames, native_rate)
            truncated = _truncation(f)
            if max_duration is not None:
                # Only the requested span is read from disk; the rest is never decoded.
                n_frames = min(n_frames, math.ceil(max_duration * native_rate))
            data = f.read(frames=n_frames, dtype="float32", always_2d=True)
            if truncated is None and 0 < data.shape[0] < n_frames:
                truncated = (f"truncated file: its header announces {f.frames / native_rate:.2f} s, "
                             f"{data.shape[0] / native_rate:.2f} s could be decoded")
    except AudioError:
        raise
    except decode_errors as error:
        raise AudioError(path, f"cannot be decoded as audio ({_reason(error)})", _FIX_UNREADABLE) from error
    if data.shape[0] == 0:
        # The header announced samples but the data chunk is missing (truncated file).
        raise AudioError(path, "contains no audio samples (truncated file?)", _FIX_UNREADABLE)
    # Mean over channels keeps the level of a dual-mono recording unchanged.
    signal = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    if not np.all(np.isfinite(signal)):
        raise AudioError(path, "contains NaN or infinite samples", _FIX_UNREADABLE)
    if truncated is not None and warnings is not None:
        warnings.append(truncated)
    if native_rate != sample_rate:
        import soxr

        signal = soxr.resample(signal, native_rate, int(sample_rate), quality="HQ")
    return np.ascontiguousarray(signal, dtype=np.float32)


def audio_info(path: str | os.PathLike) -> tuple[float, int, int]:
    """Read a file's header without decoding its samples.

    Args:
        path: audio file (any format libsndfile reads).

    Returns:
        ``(duration_s, sample_rate, channels)``: duration in seconds (float), the file's
        native sample rate in Hz, the number of channels.

    Raises:
        AudioError: same conditions as :func:`load_audio` that can be seen from the header
            (missing, directory, not audio, empty, shorter than :data:`MIN_DURATION`).
    """
    path = _check_path(path)
    sf, decode_errors = _soundfile()
    try:
        # SoundFile reads only the header; soundfile.info would do the same plus extra
        # formatting work (about 2.5x slower on a 535-file corpus).
        with sf.SoundFile(str(path)) as f:
            rate, n_frames, channels = f.samplerate, f.frames, f.channels
    except decode_errors as error:
        raise AudioError(path, f"cannot be decoded as audio ({_reason(error)})", _FIX_UNREADABLE) from error
    _check_length(path, n_frames, rate)
    return n_frames / rate, int(rate), int(channels)


def inspect_audio(signal: np.ndarray) -> list[str]:
    """Warnings about a decoded signal.

    Args:
        signal: samples, shape ``(n_samples,)`` (any shape is flattened), nominal range
            ``[-1, 1]``.

    Returns:
        A list holding ``"silent"`` if the absolute peak is below :data:`SILENT_PEAK`
        (an empty signal counts as silent); ``"over full scale (peak P)"`` if samples exceed 1
        in magnitude (float audio: nothing was cut off, but openSMILE takes 16-bit samples, which
        cannot hold them); else ``"clipped"`` if at least :data:`CLIP_FRACTION` of the samples
        reach :data:`CLIP_LEVEL` in magnitude; empty when the signal looks fine.
    """
    x = np.abs(np.asarray(signal, dtype=np.float32).ravel())
    if x.size == 0 or not float(x.max()) >= SILENT_PEAK:
        return ["silent"]
    peak = float(x.max())
    if peak > 1.0:
        return [f"over full scale (peak {peak:.2f}): beyond the 16-bit range openSMILE reads, so its frame "
                "features are distorted; scale the recording down"]
    warnings = []
    # A single full-scale click is not clipping; a sustained share of samples is.
    if np.count_nonzero(x >= CLIP_LEVEL) >= CLIP_FRACTION * x.size:
        warnings.append("clipped")
    return warnings


def _check_path(path: str | os.PathLike) -> Path:
    """Return ``path`` as a ``Path`` or raise the AudioError explaining why it is unusable.

    Only regular files are read: a FIFO or a device named like a recording would make the
    decoder wait forever for data (raw audio from a pipe is ``amsnet stream -``'s job).
    """
    if not str(path).strip():
        raise AudioError(None, "an empty path was given (not a file name)", "give the audio file's path")
    path = Path(path).expanduser()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            raise AudioError(path, f"is a broken symbolic link (to {os.readlink(path)}, which does not exist)",
                             "point the link at an existing audio file, or remove it") from None
        raise AudioError(path, "file does not exist", "check the path (typo, moved file, or a relative path "
                         f"resolved against the wrong folder; the current folder is {os.getcwd()})") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise AudioError(path, "is a symbolic link loop (the links point at each other)",
                             "point the link at an audio file, or remove it") from None
        raise AudioError(path, f"cannot be read ({(error.strerror or type(error).__name__).lower()})",
                         "make the file and its folders readable") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(path, "is a directory, not an audio file", "pass one of the audio files inside it")
    if not stat.S_ISREG(st.st_mode):
        kind = "FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "device or socket"
        raise AudioError(path, f"is a {kind}, not a regular file: decoding it could wait forever",
                         "pass an audio file; to read raw PCM from a pipe, use `amsnet stream - < PIPE`")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "cannot be read (permission denied)", "make the file readable (chmod +r)")
    return path


def _check_length(path: Path, n_frames: int, rate: int) -> None:
    """Raise AudioError for a file without samples or shorter than MIN_DURATION."""
    if n_frames <= 0:
        raise AudioError(path, "contains no audio samples (empty recording)",
                         "remove the file from the corpus or replace it with the actual recording")
    if n_frames / rate < MIN_DURATION:
        raise AudioError(path, f"is too short ({n_frames / rate:.4f} s; at least {MIN_DURATION} s is needed)",
                         "remove the file from the corpus or use a longer recording")


_TRUNCATED = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _truncation(f) -> str | None:
    """The warning for a file whose header announces more audio than it holds, else None.

    libsndfile decodes such a WAV up to its end and only says so in its log ("data : 64000
    (should be 31978)"): the file was cut off while being copied or written (issue 41).
    """
    try:
        log = f.extra_info
    except Exception:  # pragma: no cover - a libsndfile without the log command
        return None
    m = _TRUNCATED.search(log)
    if m is None or not 0 < int(m.group(2)) < int(m.group(1)):
        return None
    held = f.frames / f.samplerate
    return f"truncated file: its header announces {held * int(m.group(1)) / int(m.group(2)):.2f} s, it holds {held:.2f} s"


def _reason(error: BaseException) -> str:
    """libsndfile's message without the repeated "Error opening '<path>':" prefix."""
    text = str(error)
    text = text.split(": ", 1)[1] if text.startswith("Error opening") and ": " in text else text
    return text.strip().rstrip(".")
