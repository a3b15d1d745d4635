"""The one place that reads sound: any common file in, mono float32 at the encoder's rate out.

Decoding uses soundfile (libsndfile: wav, flac, ogg and mp3 with no system FFmpeg). Containers
libsndfile cannot open (m4a, aac, webm ...) fall back to PyAV where it is installed. Every way a
file can be unusable raises an ``AudioError`` subclass whose message is one line naming the file
and the cause; nothing here prints a traceback or exits.

Policy for short clips (documented here because generation, training and evaluation share it):

- a file shorter than ``MIN_SECONDS`` (0.25 s) is an error (``AudioTooShortError``): too little
  speech to say anything about a face;
- a clip shorter than the encoder's window is zero-padded on both sides (speech stays centred, as
  the centre crop keeps it) with a ``ShortClipWarning``;
- a clip longer than the window is centre-cropped (``fit_length``) or cut into hopped windows
  (``sliding_windows``).

Peak normalisation follows wav2pix (Duarte et al., ICASSP 2019): each clip is divided by its
largest absolute sample, guarded so that silence never divides by zero.
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from zoo.errors import (AudioError, AudioNotFoundError, AudioTooLongError, AudioTooShortError, CorruptAudioError,
                        EmptyAudioError, InvalidSamplesError, NotAudioError, SilentAudioError)

PathLike = Union[str, os.PathLike]

MIN_SECONDS = 0.25
# -80 dBFS: quieter than one least-significant bit of 16-bit audio, so "nothing was recorded".
SILENCE_PEAK = 1e-4
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3")
# Containers libsndfile cannot read; PyAV (FFmpeg) decodes them when it is installed.
FALLBACK_EXTENSIONS = (".m4a", ".aac", ".mp4", ".webm", ".wma", ".mka", ".mkv")


class ShortClipWarning(UserWarning):
    """A clip shorter than the encoder's window was zero-padded."""


# -- decoding --------------------------------------------------------------------------------------
def read_audio(path: PathLike, max_seconds: Optional[float] = None) -> tuple[np.ndarray, int]:
    """Decode ``path`` to float32 samples ``[T, C]`` and its sample rate, validating the file.

    Raises an ``AudioError`` subclass for a missing path, a directory, an empty or header-only
    file, a truncated file, something that is not audio, and NaN or infinite samples; with
    ``max_seconds``, ``AudioTooLongError`` for a longer clip, found before it is decoded whole
    (a few megabytes of compressed sound can hold hours).
    """
    path = Path(path)
    _check_file(path)
    try:
        samples, rate = _decode_with_soundfile(path, max_seconds)
    except NotAudioError:
        if path.suffix.lower() not in FALLBACK_EXTENSIONS:
            raise
        samples, rate = _decode_with_pyav(path, max_seconds)
    if samples.shape[0] == 0:
        raise EmptyAudioError(f"{path}: the audio header announces no samples")
    if not np.isfinite(samples).all():
        raise InvalidSamplesError(f"{path}: the audio contains NaN or infinite samples")
    return samples, rate


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioNotFoundError(f"{path}: no such audio file")
    if path.is_dir():
        raise AudioNotFoundError(f"{path}: is a directory, not an audio file")
    if not path.is_file():
        raise AudioNotFoundError(f"{path}: is not a regular file")
    if path.stat().st_size == 0:
        raise EmptyAudioError(f"{path}: the file is empty (0 bytes)")


def _too_long(path: Path, frames: int, rate: int, max_seconds: Optional[float], *, whole: bool = True) -> None:
    """Refuse a clip over ``max_seconds``; ``whole``: ``frames`` is its whole length, not a part."""
    if max_seconds is not None and frames > max_seconds * rate:
        length = f"{frames / rate:.1f} s" if whole else f"more than {max_seconds:g} s"
        raise AudioTooLongError(f"{path}: the clip lasts {length}, over the {max_seconds:g} s limit; "
                                f"send a shorter clip")


def _decode_with_soundfile(path: Path, max_seconds: Optional[float] = None) -> tuple[np.ndarray, int]:
    import soundfile

    quiet = _quiet_c_stderr() if path.suffix.lower() == ".mp3" else contextlib.nullcontext()
    try:
        with quiet, soundfile.SoundFile(str(path)) as handle:
            announced, rate = handle.frames, handle.samplerate
            _too_long(path, announced, rate, max_seconds)
            samples = handle.read(dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise _decode_error(path, exc) from None
    # libsndfile quietly shortens a cut-off file; compare with what the header announced.
    if 0 < samples.shape[0] < announced or _wav_is_truncated(path):
        raise CorruptAudioError(f"{path}: the audio file is truncated (fewer samples than its header announces)")
    return samples, int(rate)


def _decode_error(path: Path, exc: Exception) -> AudioError:
    message = " ".join(str(exc).split())
    unrecognised = ("not recognised", "does not exist or is not a regular file", "unknown format")
    if any(text in message.lower() for text in unrecognised):
        return NotAudioError(f"{path}: not a recognised audio file ({_what_it_looks_like(path)}); "
                             f"use wav, flac, ogg or mp3")
    return CorruptAudioError(f"{path}: the audio file is damaged or truncated ({message.split(': ')[-1]})")


def _what_it_looks_like(path: Path) -> str:
    """A guess at what a non-audio file is, so the message helps the user fix it."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    image_magic = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")
    if head.startswith(image_magic) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "it looks like an image"
    try:
        head.decode("utf-8")
        return "it looks like text"
    except UnicodeDecodeError:
        return "unknown format"


def _wav_is_truncated(path: Path) -> bool:
    """True when a RIFF/WAVE file's data chunk is longer than the bytes actually present."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if handle.read(12)[8:12] != b"WAVE":
            return False
        position = 12
        while position + 8 <= size:
            handle.seek(position)
            chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF mean "unknown length" (streamed writers): not truncated.
                return chunk_size not in (0, 0xFFFFFFFF) and position + 8 + chunk_size > size
            position += 8 + chunk_size + (chunk_size & 1)
    return False


@contextlib.contextmanager
def _quiet_c_stderr():
    """Silence libmpg123's notes (written by C code straight to fd 2) while one file decodes."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _decode_with_pyav(path: Path, max_seconds: Optional[float] = None) -> tuple[np.ndarray, int]:
    """Decode a container libsndfile cannot read (m4a, aac, webm, mka ...) with PyAV, if installed.

    Every frame is converted to planar float ("fltp": one row per channel, in [-1, 1]) first, as
    ``zoo.media.video`` does: decoders hand out packed (interleaved) and integer samples too, and
    reading those as they come scrambles the channels and leaves 16-bit values unscaled. Decoding
    stops as soon as the clip passes ``max_seconds``: a browser's recording announces no length,
    so its length is known only while decoding.
    """
    try:
        import av
    except ImportError:
        raise NotAudioError(f"{path}: this format needs PyAV (pip install av); "
                            f"or convert it to wav, flac, ogg or mp3") from None
    try:
        with av.open(str(path)) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise NotAudioError(f"{path}: the file holds no audio stream")
            to_float = av.AudioResampler(format="fltp")  # sample format only: rate and layout kept
            rate, chunks, frames = stream.rate, [], 0
            for frame in container.decode(stream):
                converted = [piece.to_ndarray() for piece in to_float.resample(frame)]
                chunks += converted
                frames += sum(piece.shape[1] for piece in converted)
                _too_long(path, frames, rate, max_seconds, whole=False)
            chunks += [converted.to_ndarray() for converted in to_float.resample(None)]  # the flush
    except AudioError:
        raise
    except Exception as exc:  # FFmpeg raises many error types; all mean "unreadable"
        raise NotAudioError(f"{path}: could not decode the audio ({' '.join(str(exc).split())})") from None
    if not chunks:
        raise EmptyAudioError(f"{path}: the audio stream has no samples")
    samples = np.concatenate(chunks, axis=1).T  # [channels, T] planes -> [T, channels]
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


# -- conversion --------------------------------------------------------------------------------------
def to_mono(samples: np.ndarray) -> np.ndarray:
    """The mean of the channels of ``samples[T, C]`` (wav2pix kept only the left channel)."""
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    return samples.mean(axis=1, dtype=np.float32)


def resample(wave: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample ``wave[..., T]`` with torchaudio's band-limited sinc (imported only when needed)."""
    if orig_rate == new_rate:
        return wave
    from torchaudio.functional import resample as sinc_resample

    return sinc_resample(wave, int(orig_rate), int(new_rate))


def peak_normalise(wave: torch.Tensor) -> torch.Tensor:
    """Divide each clip (the last axis) by its peak; near-silent clips are left as they are.

    The guard keeps a silent clip from dividing by zero (NaN) or amplifying noise to full scale.
    """
    peak = wave.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(peak > SILENCE_PEAK, 1.0 / peak.clamp_min(SILENCE_PEAK), torch.ones_like(peak))
    return wave * scale


def load_audio(path: PathLike, sample_rate: int = 16000, *, normalise: bool = True,
               allow_silent: bool = False, min_seconds: float = MIN_SECONDS,
               max_seconds: Optional[float] = None) -> torch.Tensor:
    """Read any supported file into a mono float32 tensor ``[T]`` at ``sample_rate``.

    Channels are averaged, the rate converted with torchaudio when it differs, and the clip
    peak-normalised (``normalise``). Raises ``AudioTooShortError`` under ``min_seconds``,
    ``AudioTooLongError`` over ``max_seconds`` (when given), and ``SilentAudioError`` for a
    silent file unless ``allow_silent`` (then it stays all zeros).
    """
    samples, rate = read_audio(path, max_seconds)
    if samples.shape[0] < min_seconds * rate:
        raise AudioTooShortError(f"{path}: the clip lasts {samples.shape[0] / rate:.3f} s; "
                                 f"at least {min_seconds:g} s of speech is needed")
    mono = to_mono(samples)
    if np.abs(mono).max() <= SILENCE_PEAK and not allow_silent:
        raise SilentAudioError(f"{path}: the clip is silent (every sample below -80 dBFS)")
    wave = resample(torch.from_numpy(np.ascontiguousarray(mono)), rate, sample_rate)
    return peak_normalise(wave) if normalise else wave


def fit_length(wave: torch.Tensor, num_samples: int, *, warn: bool = True) -> torch.Tensor:
    """Centre-crop or centre-zero-pad ``wave[T]`` to exactly ``num_samples``.

    The crop starts at ``(T - num_samples) // 2`` and keeps ``num_samples`` samples (the wav2pix
    crop was one sample off). Padding warns with ``ShortClipWarning`` unless ``warn`` is False.
    """
    length = wave.shape[-1]
    if length >= num_samples:
        start = (length - num_samples) // 2
        return wave[..., start:start + num_samples]
    if warn:
        warnings.warn(f"clip of {length} samples zero-padded to the {num_samples}-sample window",
                      ShortClipWarning, stacklevel=2)
    before = (num_samples - length) // 2
    return torch.nn.functional.pad(wave, (before, num_samples - length - before))


def sliding_windows(wave: torch.Tensor, num_samples: int, hop: int | None = None, *,
                    normalise: bool = True) -> torch.Tensor:
    """Cut ``wave[T]`` into windows ``[W, num_samples]`` every ``hop`` samples (default: half).

    A final window aligned to the end is added when the hops would miss the tail, so every
    sample is covered. A clip shorter than one window gives one zero-padded window. With
    ``normalise`` each window is peak-normalised on its own, as training clips are.
    """
    hop = int(hop or max(1, num_samples // 2))
    if hop <= 0:
        raise ValueError("hop must be a positive number of samples")
    if wave.shape[-1] <= num_samples:
        windows = fit_length(wave, num_samples).unsqueeze(0)
    else:
        windows = wave.unfold(-1, num_samples, hop)
        covered = (windows.shape[0] - 1) * hop + num_samples
        if covered < wave.shape[-1]:
            windows = torch.cat([windows, wave[-num_samples:].unsqueeze(0)])
    return peak_normalise(windows) if normalise else windows.clone()

