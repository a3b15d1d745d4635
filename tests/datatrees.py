"""Tiny on-disk datasets for the data tests: audio and faces written on the spot, never shipped."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
# Two well-separated face colours, so a test can tell which identity a face came from.
COLORS = {"alice": (220, 120, 60), "bob": (60, 140, 220), "carol": (90, 200, 90)}


def tone(seconds: float = 0.5, rate: int = RATE, freq: float = 220.0, channels: int = 1,
         amplitude: float = 0.5) -> np.ndarray:
    """A sine (one frequency per channel, rising by 1.5x) as ``[T, channels]`` float64."""
    t = np.arange(int(round(seconds * rate))) / rate
    return np.stack([amplitude * np.sin(2 * np.pi * freq * (1.5 ** c) * t) for c in range(channels)], axis=1)


def write_audio(path: Path, samples: np.ndarray | None = None, rate: int = RATE, **kwargs) -> Path:
    """Write ``samples`` (default: a short tone) with soundfile; kwargs go to ``sf.write``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone() if samples is None else samples, rate, **kwargs)
    return path


def write_opus(path: Path, samples: np.ndarray | None = None, rate: int = 48000) -> Path:
    """Opus in a WebM or Ogg container (by ``path``'s suffix), as a browser's MediaRecorder
    records it, encoded with PyAV; ``samples`` is mono ``[T]`` or ``[T, 1]`` at ``rate``."""
    import av

    mono = (tone(1.0, rate) if samples is None else samples).reshape(-1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=path.suffix.lstrip(".")) as container:
        stream = container.add_stream("libopus", rate=rate)
        stream.layout = "mono"
        for start in range(0, len(mono), rate // 50):  # 20 ms frames, as Opus wants
            frame = av.AudioFrame.from_ndarray(mono[None, start:start + rate // 50], format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def face_bytes(color=(200, 120, 90), size: int = 40, fmt: str = "JPEG") -> bytes:
    """A flat-coloured square with a darker centre, encoded as ``fmt``."""
    from PIL import Image

    image = np.full((size, size, 3), color, np.uint8)
    image[size // 4: 3 * size // 4, size // 4: 3 * size // 4] //= 2
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


def write_face(path: Path, color=(200, 120, 90), size: int = 40, fmt: str = "JPEG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(face_bytes(color, size, fmt))
    return path


def youtubers_tree(root: Path, identities=("bob", "alice"), frames=(3, 6, 9),
                   splits=("train", "test"), swapped: bool = True, fmt: str = "JPEG") -> Path:
    """The wav2pix layout; faces are JPEG bytes in .png files, red/blue swapped like the real data
    (``fmt="PNG", swapped=False`` gives what ``prepare`` writes: true PNGs in RGB)."""
    for split_index, split in enumerate(splits):
        for identity in identities:
            color = COLORS[identity][::-1] if swapped else COLORS[identity]
            for frame in frames:
                k = frame + 1000 * split_index
                write_face(root / split / identity / f"cropped_face_frame_{k}.png", color, fmt=fmt)
                write_audio(root / split / identity / f"preprocessed_frame_{k}.wav")
    return root


def folder_tree(root: Path, identities=("alice", "bob"), stems=("a1", "a2", "a3", "a4", "a5"),
                split: str | None = None) -> Path:
    """``<root>/[<split>/]<identity>/<stem>.wav`` beside ``<stem>.jpg``."""
    base = root / split if split else root
    for identity in identities:
        for stem in stems:
            write_face(base / identity / f"{identity}_{stem}.jpg", COLORS[identity])
            write_audio(base / identity / f"{identity}_{stem}.wav")
    return root


BAD_KINDS = ["missing", "directory", "empty", "header_only", "text", "image", "random", "nan", "inf",
             "silent", "too_short"]


def write_bad_audio(tmp_path: Path, kind: str):
    """Write one kind of unusable audio file; return its path and the error it must raise."""
    from zoo.media import audio

    path = tmp_path / f"{kind}.wav"
    if kind == "missing":
        return tmp_path / "nowhere.wav", audio.AudioNotFoundError
    if kind == "directory":
        path.mkdir()
        return path, audio.AudioNotFoundError
    if kind == "empty":
        path.write_bytes(b"")
        return path, audio.EmptyAudioError
    if kind == "header_only":
        return write_audio(path, np.zeros((0, 1))), audio.EmptyAudioError
    if kind == "text":
        path.write_text("this is a shopping list, not a recording\n" * 20)
        return path, audio.NotAudioError
    if kind == "image":
        path.write_bytes(face_bytes(fmt="PNG"))
        return path, audio.NotAudioError
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
        return path, audio.NotAudioError
    if kind == "nan":
        samples = tone(0.5)
        samples[100] = np.nan
        return write_audio(path, samples, subtype="FLOAT"), audio.InvalidSamplesError
    if kind == "inf":
        samples = tone(0.5)
        samples[100] = np.inf
        return write_audio(path, samples, subtype="FLOAT"), audio.InvalidSamplesError
    if kind == "silent":
        return write_audio(path, np.zeros((8000, 1))), audio.SilentAudioError
    if kind == "too_short":
        return write_audio(path, tone(0.1)), audio.AudioTooShortError
    raise ValueError(kind)
