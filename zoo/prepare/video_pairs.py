"""One video through prepare: soundtrack, sampled frames, the face, the speech windows, the files.

The order of work keeps the expensive steps rare: the soundtrack is checked before any frame is
decoded; a sampled frame is converted only to a small grey image for the cascade, and to RGB only
when its face is kept; a face crop is PNG-encoded and written once, and its repeats (one per
window, as the youtubers layout wants) are hard links to that file where the file system allows.
"""

from __future__ import annotations

import hashlib
import os
import time
import wave
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from zoo.callbacks import Progress, Task
from zoo.media.faces import FaceDetector, crop, encode_png, square_crop_box
from zoo.prepare.state import VideoRecord
from zoo.media.video import (TARGET_RATE, Soundtrack, VideoError, frame_grey, frame_rgb, probe_video,
                       read_soundtrack, sample_frames)

SKIP_NO_AUDIO = "no audio at frame time"


@contextmanager
def _timed(timings: Counter, stage: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] += time.perf_counter() - started


def _timed_iteration(iterable, timings: Counter, stage: str):
    """Iterate ``iterable``, adding the time spent producing each item to ``timings[stage]``."""
    iterator = iter(iterable)
    while True:
        with _timed(timings, stage):
            item = next(iterator, StopIteration)
        if item is StopIteration:
            return
        yield item


def window_starts(centre: int, available: int, options, rng: np.random.Generator) -> np.ndarray | None:
    """Start samples of the random windows for a frame at sample ``centre``, or ``None``.

    The context of ``options.context_seconds`` is centred on the frame and shifted to stay inside
    the ``available`` samples; a frame outside the soundtrack, or a context shorter than one
    window, gives ``None``.
    """
    context = int(round(options.context_seconds * TARGET_RATE))
    window = int(round(options.window_seconds * TARGET_RATE))
    if not 0 <= centre < available:
        return None
    low = max(0, min(centre - context // 2, available - context))
    high = min(available, low + context)
    if high - low < window:
        return None
    return rng.integers(low, high - window + 1, size=options.windows)


def pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as 16-bit integers (clipped, rounded)."""
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> None:
    """Write mono 16-bit PCM as a WAV file.

    The standard library's ``wave`` rather than soundfile: libsndfile syncs every file to disk
    on close, which made writing the windows the slowest step of prepare.
    """
    with wave.open(str(path), "wb") as stream:
        stream.setnchannels(1)
        stream.setsampwidth(2)
        stream.setframerate(rate)
        stream.writeframes(pcm.astype("<i2", copy=False).tobytes())


def video_rng(seed: int, key: str) -> np.random.Generator:
    """A generator for ``key``'s windows: the same on every run, whatever the order of videos."""
    digest = int(hashlib.sha256(key.encode()).hexdigest()[:16], 16)
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, digest])


def _same_bytes(source: Path, target: Path, data: bytes) -> None:
    """Make ``target`` hold ``data`` (already in ``source``): a hard link where the file system
    allows, which saves the disk space and time of the face's repeats, else a copy."""
    try:
        os.link(source, target)
    except OSError:
        target.write_bytes(data)


class VideoPreparer:
    """Writes the pairs of one video at a time into ``out``; adds its counts to ``summary``."""

    def __init__(self, out: Path, options, summary):
        self.out = out
        self.options = options
        self.summary = summary
        self.detector = FaceDetector(options.min_face, options.min_confidence)
        self.window = int(round(options.window_seconds * TARGET_RATE))

    def run(self, job, split: str, first_k: int, progress: Progress) -> tuple[list[dict], VideoRecord]:
        """Prepare ``job``; return its manifest rows and its record (``rows_file`` left empty).

        Raises ``VideoError`` or ``NoAudioTrackError`` for a video that cannot be used.
        """
        duration = probe_video(job.path).duration
        with progress.task(f"  {job.key}", round(duration) or None) as task:
            return self._pairs(job, split, first_k, duration, task)

    def _pairs(self, job, split: str, first_k: int, duration: float, task: Task) -> tuple[list[dict], VideoRecord]:
        """``run``'s work, reporting the seconds read to ``task``."""
        import av

        timings = self.summary.timings
        with _timed(timings, "audio"):
            soundtrack = read_soundtrack(job.path)
        folder = self.out / split / job.identity
        folder.mkdir(parents=True, exist_ok=True)
        rng = video_rng(self.options.seed, job.key)
        rows, skipped, frames_seen, faces_kept, origin = [], Counter(), 0, 0, None
        try:
            for moment, frame in _timed_iteration(sample_frames(job.path, self.options.frame_every),
                                                   timings, "decode"):
                origin = moment if origin is None else origin
                frames_seen += 1
                task.update(int(moment - origin))
                reason = self._pair_frame(job, split, folder, first_k + len(rows), moment, frame,
                                          soundtrack, rng, rows)
                if reason:
                    skipped[reason] += 1
                else:
                    faces_kept += 1
        except av.FFmpegError as exc:
            raise VideoError(f"{job.path}: cannot convert a frame ({exc})") from None
        self._add_to_summary(frames_seen, faces_kept, len(rows), skipped, duration or soundtrack.duration)
        record = VideoRecord(job.identity, split, first_k, len(rows), frames_seen, faces_kept, "")
        return rows, record

    def _pair_frame(self, job, split: str, folder: Path, k: int, moment: float, frame,
                    soundtrack: Soundtrack, rng: np.random.Generator, rows: list) -> str | None:
        """Write the pairs of one sampled frame and extend ``rows``; return why not, if not."""
        starts = window_starts(soundtrack.index_at(moment), soundtrack.samples.size, self.options, rng)
        if starts is None:
            return SKIP_NO_AUDIO
        with _timed(self.summary.timings, "detect"):
            face, reason = self.detector.find(lambda w, h: frame_grey(frame, w, h), frame.width, frame.height)
        if face is None:
            return reason
        with _timed(self.summary.timings, "write"):
            box = square_crop_box(face, frame.width, frame.height, self.options.margin)
            png = encode_png(crop(frame_rgb(frame), box))
            common = {"split": split, "identity": job.identity, "source_video": job.key,
                      "time_seconds": round(moment, 3), "confidence": round(face.confidence, 3),
                      "crop_x": box.x, "crop_y": box.y, "crop_size": box.size}
            first_image = folder / f"cropped_face_frame_{k}.png"
            first_image.write_bytes(png)
            for offset, start in enumerate(starts):
                rows.append(self._write_pair(folder, k + offset, first_image, png, soundtrack,
                                             int(start), common))
        return None

    def _write_pair(self, folder: Path, k: int, first_image: Path, png: bytes,
                    soundtrack: Soundtrack, start: int, common: dict) -> dict:
        image = folder / f"cropped_face_frame_{k}.png"
        audio = folder / f"preprocessed_frame_{k}.wav"
        if image != first_image:
            _same_bytes(first_image, image, png)
        clip = soundtrack.samples[start:start + self.window]
        write_wav(audio, pcm16(clip), TARGET_RATE)
        return {**common, "k": k, "image": image.relative_to(self.out).as_posix(),
                "audio": audio.relative_to(self.out).as_posix(),
                "window_start": round(soundtrack.start + start / TARGET_RATE, 4)}

    def _add_to_summary(self, frames_seen: int, faces_kept: int, pairs: int, skipped: Counter,
                        seconds: float) -> None:
        self.summary.frames_seen += frames_seen
        self.summary.faces_kept += faces_kept
        self.summary.pairs_written += pairs
        self.summary.frames_skipped.update(skipped)
        self.summary.video_seconds += seconds
