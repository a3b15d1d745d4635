"""Prepare's bookkeeping on disk: which videos are done, the pair numbering, the manifest.

Layout inside OUT:

    .prepare_state.json        options, next free pair number per identity, one entry per done video
    .prepare_rows/<id>.csv     the manifest rows of one done video
    manifest.csv               every done video's rows, rebuilt at the end of each run

A video counts as done only once its rows file and then the state are written (each atomically,
by rename). Pair numbers ``k`` are handed out per identity from ``next_k``, which advances only
when a video is recorded, so any pair file numbered ``next_k`` or above was left by a video that
did not finish; ``remove_unfinished`` deletes those, and the video is redone from scratch.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from zoo.errors import DataError, UsageError
from zoo.files import write_text

STATE_FILE = ".prepare_state.json"
ROWS_DIR = ".prepare_rows"
MANIFEST_FILE = "manifest.csv"
FORMAT_VERSION = 1
SPLITS = ("train", "test")
MANIFEST_COLUMNS = ("split", "identity", "k", "image", "audio", "source_video", "time_seconds",
                    "window_start", "confidence", "crop_x", "crop_y", "crop_size")
PAIR_FILE = re.compile(r"^(?:cropped_face_frame|preprocessed_frame)_(\d+)\.(?:png|wav)$")


def rows_to_csv(rows: list[dict]) -> str:
    """Manifest rows as CSV text with a header."""
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


@dataclass
class VideoRecord:
    """What the state remembers about one done video."""

    identity: str
    split: str
    first_k: int
    pairs: int
    frames_seen: int
    faces_kept: int
    rows_file: str


@dataclass
class PrepareState:
    """The contents of ``.prepare_state.json`` and the operations on it."""

    out: Path
    options: dict
    next_k: dict = field(default_factory=dict)
    videos: dict = field(default_factory=dict)

    @classmethod
    def open(cls, out: Path, options: dict) -> "PrepareState":
        """Load OUT's state, or start one for a new or empty OUT; refuse other folders."""
        path = out / STATE_FILE
        if not path.exists():
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                raise UsageError(f"{out}: exists and was not made by prepare; choose a new or empty folder")
            return cls(out, dict(options))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            videos = {key: VideoRecord(**entry) for key, entry in data["videos"].items()}
            state = cls(out, data["options"], dict(data["next_k"]), videos)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: unreadable prepare state ({type(exc).__name__}); "
                            "delete OUT to start over") from None
        state._check_options(options)
        return state

    def _check_options(self, options: dict) -> None:
        changed = [name for name, value in options.items() if self.options.get(name) != value]
        if changed:
            before = ", ".join(f"--{n.replace('_', '-')} {self.options.get(n)}" for n in changed)
            raise UsageError(f"{self.out} was prepared with {before}; "
                             "use the same options or a new OUT folder")

    def is_done(self, key: str) -> bool:
        """Whether ``key``'s video was finished by an earlier run."""
        return key in self.videos

    def first_free_k(self, identity: str) -> int:
        """The pair number the next video of ``identity`` starts at."""
        return int(self.next_k.get(identity, 0))

    def record(self, key: str, record: VideoRecord, rows: list[dict]) -> None:
        """Mark ``key`` done: its rows first, then the state, each written atomically."""
        write_text(self.out / ROWS_DIR / record.rows_file, rows_to_csv(rows))
        self.videos[key] = record
        self.next_k[record.identity] = record.first_k + record.pairs
        self.save()

    def save(self) -> None:
        """Write the state file atomically."""
        data = {"format": FORMAT_VERSION, "options": self.options, "next_k": self.next_k,
                "videos": {key: asdict(rec) for key, rec in sorted(self.videos.items())}}
        write_text(self.out / STATE_FILE, json.dumps(data, indent=1) + "\n")

    def remove_unfinished(self) -> int:
        """Delete pair files a run left unfinished (numbered at or past ``next_k``); return how many."""
        removed = 0
        for split in SPLITS:
            split_dir = self.out / split
            if not split_dir.is_dir():
                continue
            for identity_dir in (d for d in split_dir.iterdir() if d.is_dir()):
                limit = self.first_free_k(identity_dir.name)
                for file in identity_dir.iterdir():
                    match = PAIR_FILE.match(file.name)
                    if match and int(match.group(1)) >= limit:
                        file.unlink()
                        removed += 1
        return removed

    def write_manifest(self) -> int:
        """Rebuild ``manifest.csv`` from every done video's rows; return the number of rows."""
        rows = []
        ordered = sorted(self.videos.values(), key=lambda r: (r.split, r.identity, r.first_k))
        for record in ordered:
            with open(self.out / ROWS_DIR / record.rows_file, encoding="utf-8", newline="") as stream:
                rows.extend(csv.DictReader(stream))
        write_text(self.out / MANIFEST_FILE, rows_to_csv(rows))
        return len(rows)


def rows_file_name(key: str) -> str:
    """A file name for ``key``'s rows: readable, and unique thanks to a hash of the key."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[-60:]
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.csv"
