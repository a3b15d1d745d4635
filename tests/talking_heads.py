"""Synthetic talking-head videos for the ``prepare`` tests (and any test that needs prepared data).

A real face from ../shared/data/youtubers is pasted over a plain background and drifts a few
pixels per frame; the soundtrack is a speech-like harmonic tone with syllable-rate amplitude
modulation. The two stereo channels are ``speech + probe`` and ``speech - probe``: their mean is
pure speech, so a pipeline that keeps one channel instead of averaging carries the probe tone and
a test can tell. Everything is made with PyAV, so the tests need nothing outside the wheels.

``build_prepared_folder`` runs the whole ``prepare`` pipeline on such videos; the lead's
"two training steps on the output" test can start from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BACKGROUND_RGB = (40, 110, 200)  # red far from blue: a channel swap cannot go unnoticed
PROBE_HZ = 3000.0                # the tone that cancels in the channel mean
SPEECH_F0_HZ = 140.0             # a low male-ish fundamental
SYLLABLES_PER_SECOND = 4.0


def load_youtuber_face(path: Path) -> np.ndarray:
    """A face crop from the shared data as RGB uint8 (its files are JPEG with R and B swapped)."""
    from PIL import Image

    with Image.open(path) as image:
        stored = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(stored[..., ::-1])


def pick_faces(youtubers_root: Path, per_identity: int = 3,
               face_size: int = 100) -> dict[str, list[np.ndarray]]:
    """Faces per identity of the shared data (RGB) that a plain Haar cascade finds when pasted.

    Many of the shared crops are cut tight around the face; the cascade misses some of them on a
    plain background, so candidates spread over each identity are checked with OpenCV directly.
    """
    faces = {}
    for identity_dir in sorted((youtubers_root / "train").iterdir()):
        files = sorted(identity_dir.glob("cropped_face_frame_*.png"),
                       key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        chosen = []
        for candidate in files[:: max(1, len(files) // 40)]:
            face = load_youtuber_face(candidate)
            if _cascade_finds(face, face_size):
                chosen.append(face)
            if len(chosen) == per_identity:
                break
        faces[identity_dir.name] = chosen
    return faces


def _cascade_finds(face: np.ndarray, face_size: int) -> bool:
    import cv2

    motion = Motion(240, 180, face_size)
    grey = cv2.cvtColor(_paste_frame(face, motion, 0.0), cv2.COLOR_RGB2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    found = cascade.detectMultiScale(cv2.equalizeHist(grey), 1.1, 5, minSize=(64, 64))
    return len(found) > 0


@dataclass(frozen=True)
class Motion:
    """Where the pasted face sits at time ``t``: a small slow drift around the frame centre."""

    width: int
    height: int
    face_size: int
    amplitude: float = 6.0

    def box(self, t: float) -> tuple[int, int, int]:
        """The pasted face's (x, y, size) at ``t`` seconds."""
        cx = (self.width - self.face_size) / 2 + self.amplitude * math.sin(2 * math.pi * 0.4 * t)
        cy = (self.height - self.face_size) / 2 + self.amplitude * 0.5 * math.cos(2 * math.pi * 0.3 * t)
        return int(round(cx)), int(round(cy)), self.face_size


def speech_like(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A harmonic tone (fundamental plus harmonics) gated at syllable rate, peak about 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    vibrato = 1 + 0.03 * np.sin(2 * np.pi * 5 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * SPEECH_F0_HZ * np.cumsum(vibrato) / sample_rate
    voiced = sum(np.sin(h * phase) / h for h in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * SYLLABLES_PER_SECOND / 2 * t + rng.uniform(0, 6)), 0, None) ** 2
    signal = voiced * (0.1 + 0.9 * envelope)
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32)


def stereo_with_probe(speech: np.ndarray, sample_rate: int, probe_level: float = 0.3) -> np.ndarray:
    """[2, T]: left = speech + probe, right = speech - probe (their mean is ``speech``)."""
    t = np.arange(speech.size) / sample_rate
    probe = (probe_level * np.sin(2 * np.pi * PROBE_HZ * t)).astype(np.float32)
    return np.stack([speech + probe, speech - probe])


def _paste_frame(face: np.ndarray, motion: Motion, t: float) -> np.ndarray:
    import cv2

    frame = np.empty((motion.height, motion.width, 3), np.uint8)
    frame[:] = BACKGROUND_RGB
    x, y, size = motion.box(t)
    frame[y:y + size, x:x + size] = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    return frame


def _write_audio(container, stream, stereo: np.ndarray, sample_rate: int) -> None:
    import av

    block = 1024  # AAC's frame size
    for start in range(0, stereo.shape[1], block):
        chunk = np.ascontiguousarray(stereo[:, start:start + block])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate = sample_rate
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_talking_head(path: Path, face: np.ndarray, *, seconds: float = 3.0, fps: int = 15,
                       width: int = 240, height: int = 180, face_size: int = 100,
                       sample_rate: int = 44100, with_audio: bool = True, seed: int = 0,
                       gop: int = 250) -> Motion:
    """Write an H.264/AAC video of ``face`` drifting over a plain background; return its motion."""
    import av

    motion = Motion(width, height, face_size)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "18", "g": str(gop)}
        audio = container.add_stream("aac", rate=sample_rate, layout="stereo") if with_audio else None
        for index in range(int(round(seconds * fps))):
            frame = av.VideoFrame.from_ndarray(_paste_frame(face, motion, index / fps), format="rgb24")
            frame.pts = index
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio is not None:
            speech = speech_like(seconds, sample_rate, seed)
            _write_audio(container, audio, stereo_with_probe(speech, sample_rate), sample_rate)
    return motion


@dataclass(frozen=True)
class TalkingHead:
    """A generated video and what went into it, for checking what prepare made of it."""

    path: Path
    identity: str
    face: np.ndarray
    motion: Motion
    seconds: float
    seed: int

    def frame(self, t: float) -> np.ndarray:
        """The RGB frame as drawn at ``t`` (before video compression)."""
        return _paste_frame(self.face, self.motion, t)

    def speech(self, rate: int = 16000) -> np.ndarray:
        """The mono soundtrack as generated (the mean of its two channels), sampled at ``rate``."""
        return speech_like(self.seconds, rate, self.seed)


def make_videos(youtubers_root: Path, folder: Path, *, per_identity: int = 2,
                seconds: float = 3.0) -> dict[str, TalkingHead]:
    """Write ``per_identity`` talking heads per shared identity as ``folder/<identity>/clipN.mp4``.

    Returns them by key (``identity/clipN.mp4``, as prepare names videos).
    """
    heads = {}
    for identity, faces in pick_faces(youtubers_root, per_identity).items():
        (folder / identity).mkdir(parents=True, exist_ok=True)
        for index, face in enumerate(faces):
            path = folder / identity / f"clip{index}.mp4"
            seed = len(heads)
            motion = write_talking_head(path, face, seconds=seconds, seed=seed)
            heads[f"{identity}/{path.name}"] = TalkingHead(path, identity, face, motion, seconds, seed)
    return heads


def build_prepared_folder(youtubers_root: Path, workdir: Path, *, seconds: float = 3.0,
                          per_identity: int = 2, **prepare_options):
    """Make talking heads under ``workdir/videos`` and prepare them into ``workdir/out``.

    Returns ``(out, summary, heads)``; ``out`` then holds the youtubers layout with a train and
    a test split (one video of each identity in each by default). Keyword arguments go to
    ``zoo.prepare.runner.prepare`` (defaults here: 2 windows per face, half the videos for test).
    """
    from zoo.prepare.runner import prepare

    heads = make_videos(youtubers_root, workdir / "videos", per_identity=per_identity, seconds=seconds)
    options = {"windows": 2, "test_fraction": 0.5, **prepare_options}
    out = workdir / "out"
    summary = prepare(workdir / "videos", out, **options)
    return out, summary, heads
