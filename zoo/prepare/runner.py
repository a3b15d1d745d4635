"""Prepare: build a paired speech/face training set from raw talking-head videos.

This follows how wav2pix (Duarte et al., ICASSP 2019) built its YouTubers data: a frame about
once a second, a Haar-cascade face crop, and five random 1 s windows of the ~4 s of speech
around that frame, each window paired with the face. The output uses the same layout plus a
manifest, so the datasets read it with no new code (``folder`` through the manifest;
``youtubers`` through the layout, with its red/blue swap turned off, since these PNGs are true RGB):

    OUT/<split>/<identity>/cropped_face_frame_<k>.png   a real PNG, RGB in true order
    OUT/<split>/<identity>/preprocessed_frame_<k>.wav   16-bit PCM, mono, 16 kHz, window long
    OUT/manifest.csv                                    one row per pair (see prepare_state)

Each face crop is repeated under consecutive ``k``, once per window, as upstream does. ``k`` is
unique within an identity across both splits.

Train and test are split by video, never by frame (frames of one video are near-duplicates, so a
frame split leaks the test set into training). Per identity, the videos are ordered by a seeded
hash of their names and the first ``round(test_fraction x n)`` go to test, at least one when
the identity has two videos or more and at most all but one; an identity with a single video
goes to train. Re-running skips the videos already done (see ``zoo.prepare.state``); a video
that cannot be read, or has no audio track, is reported in the summary and skipped.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from zoo.callbacks import SILENT, Progress
from zoo.errors import DataError, UsageError, ZooError
from zoo.files import is_plain_name, storage_error
from zoo.media.faces import CASCADE_WINDOW, DEFAULT_MIN_CONFIDENCE
from zoo.prepare.state import PrepareState, rows_file_name
from zoo.prepare.video_pairs import VideoPreparer
from zoo.media.video import VIDEO_EXTENSIONS, probe_video


@dataclass(frozen=True)
class VideoJob:
    """One input video: ``key`` (``identity/relative path``) names it in the state and manifest."""

    key: str
    identity: str
    path: Path


@dataclass(frozen=True)
class PrepareOptions:
    """Everything that decides the contents of OUT (a re-run must use the same values)."""

    frame_every: float = 1.0        # seconds between sampled frames (wav2pix: about one)
    context_seconds: float = 4.0    # speech around each frame that windows are drawn from
    windows: int = 5                # windows (pairs) per kept face, as wav2pix
    window_seconds: float = 1.0     # length of each speech window
    margin: float = 0.2             # crop grows by this fraction of the face size on each side
    min_face: int = 64              # smallest face kept, in frame pixels
    test_fraction: float = 0.1      # share of each identity's videos that go to test
    seed: int = 0                   # split order and window positions
    min_confidence: float = DEFAULT_MIN_CONFIDENCE  # Haar last-stage weight a face must reach

    def validate(self) -> None:
        """Raise ``UsageError`` for values that cannot work."""
        checks = [
            (self.frame_every > 0, "--frame-every must be > 0"),
            (self.window_seconds > 0, "--window-seconds must be > 0"),
            (self.context_seconds >= self.window_seconds, "--context-seconds must be >= --window-seconds"),
            (self.windows >= 1, "--windows must be >= 1"),
            (0 <= self.margin <= 2, "--margin must be between 0 and 2"),
            (self.min_face >= CASCADE_WINDOW,
             f"--min-face must be >= {CASCADE_WINDOW} (the cascade's window)"),
            (0 <= self.test_fraction < 1, "--test-fraction must be in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)


@dataclass
class PrepareSummary:
    """What one ``prepare`` run did; counts are for this run unless named ``total``."""

    out: Path
    videos_found: int = 0
    videos_prepared: int = 0
    videos_already_done: int = 0
    failures: list = field(default_factory=list)          # (video key, reason)
    frames_seen: int = 0
    faces_kept: int = 0
    pairs_written: int = 0
    frames_skipped: Counter = field(default_factory=Counter)  # reason -> frames
    total_pairs: dict = field(default_factory=dict)        # split -> pairs in the manifest
    total_videos: dict = field(default_factory=dict)       # split -> done videos
    video_seconds: float = 0.0                              # video read this run
    seconds: float = 0.0                                    # wall time of the run
    timings: Counter = field(default_factory=Counter)       # stage -> seconds


# -- finding the videos ----------------------------------------------------------------------------
def find_videos(source: Path) -> list[VideoJob]:
    """The videos under ``source``: a folder of ``<identity>/<videos>`` or a CSV of identity,path."""
    source = Path(source)
    if source.is_dir():
        jobs = _videos_in_folder(source)
    elif source.is_file() and source.suffix.lower() == ".csv":
        jobs = _videos_in_csv(source)
    elif source.exists():
        raise DataError(f"{source}: VIDEOS must be a folder of <identity>/<videos> "
                        "or a .csv of identity,path")
    else:
        raise DataError(f"{source}: VIDEOS folder not found")
    if not jobs:
        raise DataError(f"{source}: no videos found ({', '.join(VIDEO_EXTENSIONS)} "
                        "under <identity>/ folders)")
    return jobs


def _videos_in_folder(root: Path) -> list[VideoJob]:
    jobs = []
    for identity_dir in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        for path in sorted(identity_dir.iterdir()):
            if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file() and not path.name.startswith("."):
                jobs.append(VideoJob(path.relative_to(root).as_posix(), identity_dir.name, path))
    return jobs


def _videos_in_csv(table: Path) -> list[VideoJob]:
    try:
        with open(table, encoding="utf-8-sig", newline="") as stream:
            lines = list(csv.reader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{table}: unreadable CSV ({type(exc).__name__})") from None
    jobs, seen = [], set()
    for number, fields in enumerate(lines, start=1):
        fields = [f.strip() for f in fields]
        if not any(fields) or fields[0].startswith("#"):
            continue
        if number == 1 and [f.lower() for f in fields] == ["identity", "path"]:
            continue
        if len(fields) != 2 or not fields[1] or not is_plain_name(fields[0]):
            raise DataError(f"{table}: line {number}: expected 'identity,path', got {','.join(fields)!r}")
        path = Path(fields[1]).expanduser()
        path = path if path.is_absolute() else table.parent / path
        key = f"{fields[0]}/{Path(fields[1]).as_posix().lstrip('/')}"
        if key not in seen:
            seen.add(key)
            jobs.append(VideoJob(key, fields[0], path))
    return jobs


# -- splitting by video ----------------------------------------------------------------------------
def _seeded_rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest()


def count_test_videos(videos: int, test_fraction: float) -> int:
    """How many of an identity's ``videos`` go to test (see the module docstring)."""
    if videos < 2 or test_fraction <= 0:
        return 0
    return min(videos - 1, max(1, round(test_fraction * videos)))


def assign_splits(jobs: list[VideoJob], test_fraction: float, seed: int) -> dict[str, str]:
    """``{video key: "train" | "test"}``, whole videos per split, seeded, per identity."""
    by_identity: dict[str, list[VideoJob]] = {}
    for job in jobs:
        by_identity.setdefault(job.identity, []).append(job)
    splits = {}
    for group in by_identity.values():
        ordered = sorted(group, key=lambda j: _seeded_rank(seed, j.key))
        n_test = count_test_videos(len(ordered), test_fraction)
        for position, job in enumerate(ordered):
            splits[job.key] = "test" if position < n_test else "train"
    return splits


# -- the run ---------------------------------------------------------------------------------------
def prepare(videos: Path | str, out: Path | str, *, frame_every: float = 1.0,
            context_seconds: float = 4.0, windows: int = 5, window_seconds: float = 1.0,
            margin: float = 0.2, min_face: int = 64, test_fraction: float = 0.1, seed: int = 0,
            min_confidence: float = DEFAULT_MIN_CONFIDENCE,
            progress: Progress = SILENT) -> PrepareSummary:
    """Turn the talking-head videos in ``videos`` into face/speech pairs under ``out``.

    Raises ``DataError`` or ``UsageError`` for unusable inputs (missing folder, no videos, a
    malformed CSV, bad options, an OUT prepared with other options). Videos that cannot be read
    are not errors: they are listed in the summary's ``failures``.
    """
    options = PrepareOptions(frame_every, context_seconds, windows, window_seconds, margin,
                             min_face, test_fraction, seed, min_confidence)
    options.validate()
    jobs = find_videos(Path(videos))
    out = Path(out)
    state = PrepareState.open(out, asdict(options))
    state.remove_unfinished()
    summary = PrepareSummary(out=out, videos_found=len(jobs))
    started = time.perf_counter()
    usable = _usable_videos(jobs, state, summary)
    splits = assign_splits(usable, test_fraction, seed)
    preparer = VideoPreparer(out, options, summary)
    try:
        with progress.task("videos", len(jobs)) as videos:
            videos.update(len(jobs) - len(usable))
            for done, job in enumerate(usable, start=len(jobs) - len(usable) + 1):
                _prepare_one(job, splits[job.key], state, preparer, summary, progress)
                videos.update(done)
    finally:
        state.save()
        _count_totals(state, summary)
        summary.seconds = time.perf_counter() - started
    return summary


def _usable_videos(jobs: list[VideoJob], state: PrepareState, summary: PrepareSummary) -> list[VideoJob]:
    """The jobs whose headers show a video and an audio stream (or done before); report the rest.

    Checking first keeps an unreadable file from taking a place in the split by video.
    """
    usable = []
    for job in jobs:
        try:
            if not state.is_done(job.key):
                probe_video(job.path)
            usable.append(job)
        except ZooError as exc:
            _report_failure(job, exc, summary)
    return usable


def _report_failure(job: VideoJob, exc: ZooError, summary: PrepareSummary) -> None:
    summary.failures.append((job.key, _short_reason(exc, job.path)))


def _prepare_one(job: VideoJob, split: str, state: PrepareState, preparer: VideoPreparer,
                 summary: PrepareSummary, progress: Progress) -> None:
    if state.is_done(job.key):
        summary.videos_already_done += 1
        return
    first_k = state.first_free_k(job.identity)
    try:
        rows, record = preparer.run(job, split, first_k, progress)
    except ZooError as exc:
        state.remove_unfinished()
        _report_failure(job, exc, summary)
        return
    except OSError as exc:  # a full disk or an unwritable OUT: stop, keeping every finished video
        with contextlib.suppress(OSError):
            state.remove_unfinished()
        raise storage_error(exc.filename or preparer.out, exc) from None
    record.rows_file = rows_file_name(job.key)
    state.record(job.key, record, rows)
    summary.videos_prepared += 1


def _short_reason(exc: ZooError, path: Path) -> str:
    message = str(exc)
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _count_totals(state: PrepareState, summary: PrepareSummary) -> None:
    state.write_manifest()
    for record in state.videos.values():
        summary.total_videos[record.split] = summary.total_videos.get(record.split, 0) + 1
        summary.total_pairs[record.split] = summary.total_pairs.get(record.split, 0) + record.pairs
