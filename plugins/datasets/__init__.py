"""Datasets read from disk: ``youtubers`` (the wav2pix layout) and ``folder`` (the user's own).

Both find (audio, face) pairs their own way and serve them through ``PairedFilesDataset``, so
every item has the DESIGN.md section 3 shape and the core can cache and mix them alike.

- ``youtubers``: ``<root>/<split>/<identity>/cropped_face_frame_<k>.png`` with
  ``preprocessed_frame_<k>.wav``, as released with wav2pix (Duarte et al., ICASSP 2019). The
  "png" files are JPEG bytes with red and blue swapped; both are undone by default.
- ``folder``: ``<root>/[<split>/]<identity>/<stem>.{wav,flac,ogg,mp3}`` beside
  ``<stem>.{png,jpg}``, or a CSV manifest with columns audio, image, identity[, split]. Without
  split folders or a split column, each identity's pairs are split by a seeded shuffle.
"""

from __future__ import annotations

import csv
import re
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np

from plugins.datasets.paired_files import Pair, PairedFilesDataset, report_unpaired
from zoo import AUDIO_EXTENSIONS, FALLBACK_EXTENSIONS, IMAGE_EXTENSIONS, DataError, check_name, hookimpl

YOUTUBERS_IMAGE = re.compile(r"^cropped_face_frame_(\d+)\.png$")
YOUTUBERS_AUDIO = re.compile(r"^preprocessed_frame_(\d+)\.wav$")
SPLIT_NAMES = ("train", "test", "val", "valid", "validation")
MANIFEST_NAME = "manifest.csv"


def _existing_root(name: str, root: Optional[str], expected: str) -> Path:
    """The root as a Path, or a one-line DataError saying what was expected there."""
    if root is None or str(root).strip() == "":
        raise DataError(f"dataset '{name}' needs a root folder (--data): {expected}")
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{path}: dataset root not found (dataset '{name}' expects {expected})")
    return path


def _identity_folders(folder: Path, name: str) -> list[Path]:
    folders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{folder}: no identity folders inside (dataset '{name}')")
    return folders


# -- youtubers ----------------------------------------------------------------------------------------
def _youtubers_pairs(split_folder: Path) -> list[Pair]:
    pairs, unpaired = [], []
    for identity_folder in _identity_folders(split_folder, "youtubers"):
        images, audios = {}, {}
        for path in identity_folder.iterdir():
            if match := YOUTUBERS_IMAGE.match(path.name):
                images[int(match.group(1))] = path
            elif match := YOUTUBERS_AUDIO.match(path.name):
                audios[int(match.group(1))] = path
        for frame in sorted(images.keys() & audios.keys()):
            key = f"{identity_folder.name}_{frame}"
            pairs.append(Pair(audios[frame], images[frame], identity_folder.name, key))
        unpaired += [images[k] for k in sorted(images.keys() - audios.keys())]
        unpaired += [audios[k] for k in sorted(audios.keys() - images.keys())]
    report_unpaired(unpaired, split_folder)
    return pairs


def youtubers(root: str | None = None, split: str = "train", image_size: int = 64,
              sample_rate: int = 16000, num_samples: int = 16000,
              swap_red_blue: str | bool = "auto") -> PairedFilesDataset:
    """The wav2pix YouTubers layout.

    ``swap_red_blue="auto"`` swaps red and blue back where a ``.png`` face holds JPEG bytes (the
    upstream files, stored BGR) and keeps true PNGs (``prepare``'s output, already RGB);
    ``True``/``False`` force it either way (``False`` keeps every face as stored).
    """
    expected = "<root>/<split>/<identity>/cropped_face_frame_<k>.png + preprocessed_frame_<k>.wav"
    base = _existing_root("youtubers", root, expected)
    split_folder = base / split
    if not split_folder.is_dir():
        found = ", ".join(sorted(p.name for p in base.iterdir() if p.is_dir())) or "none"
        raise DataError(f"{base}: no '{split}' split folder (found: {found}); expected {expected}")
    pairs = _youtubers_pairs(split_folder)
    return PairedFilesDataset("youtubers", pairs, root=base, split=split, image_size=image_size,
                              sample_rate=sample_rate, num_samples=num_samples,
                              swap_channels=swap_red_blue)


# -- folder --------------------------------------------------------------------------------------------
def _pairs_in_identity_folder(folder: Path) -> tuple[list[Pair], list[Path]]:
    """Audio and image files of the same stem in one identity folder, and the leftovers."""
    by_stem: dict[str, dict[str, list[Path]]] = defaultdict(lambda: {"audio": [], "image": []})
    audio_kinds = AUDIO_EXTENSIONS + FALLBACK_EXTENSIONS
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in audio_kinds:
            by_stem[path.stem]["audio"].append(path)
        elif suffix in IMAGE_EXTENSIONS:
            by_stem[path.stem]["image"].append(path)
    pairs, leftovers = [], []
    for stem, files in sorted(by_stem.items()):
        if files["audio"] and files["image"]:
            pairs.append(Pair(files["audio"][0], files["image"][0], folder.name, stem))
            leftovers += files["audio"][1:] + files["image"][1:]  # a second a.flac beside a.wav
        else:
            leftovers += files["audio"] + files["image"]
    return pairs, leftovers


def _folder_pairs(folder: Path) -> list[Pair]:
    pairs, unpaired = [], []
    for identity_folder in _identity_folders(folder, "folder"):
        found, leftovers = _pairs_in_identity_folder(identity_folder)
        pairs += found
        unpaired += leftovers
    report_unpaired(unpaired, folder)
    return pairs


def _unique_keys(pairs: list[Pair]) -> list[Pair]:
    """Keys are file stems; a stem used by two identities is prefixed with the identity."""
    counts: dict[str, int] = defaultdict(int)
    for pair in pairs:
        counts[pair.key] += 1
    return [pair if counts[pair.key] == 1 else Pair(pair.audio, pair.image, pair.identity,
                                                    f"{pair.identity}_{pair.key}") for pair in pairs]


def _seeded_split(pairs: list[Pair], split: str, test_fraction: float, seed: int) -> list[Pair]:
    """Each identity's pairs shuffled with a fixed seed; the first ``test_fraction`` are test."""
    if split not in ("train", "test"):
        raise DataError(f"split '{split}' needs split folders or a split column; without them the "
                        f"pairs are split into 'train' and 'test' only")
    by_identity: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_identity[pair.identity].append(pair)
    chosen = []
    for identity, members in sorted(by_identity.items()):
        members = sorted(members, key=lambda p: p.key)
        # crc32, not hash(): Python salts str hashes per process, and the split must not move.
        order = np.random.default_rng([seed, zlib.crc32(identity.encode())]).permutation(len(members))
        test_count = int(round(len(members) * test_fraction))
        if len(members) >= 2 and test_fraction > 0:
            test_count = min(max(test_count, 1), len(members) - 1)
        selected = order[:test_count] if split == "test" else order[test_count:]
        chosen += [members[i] for i in sorted(selected)]
    return chosen


def _manifest_pairs(manifest: Path, split: str, test_fraction: float, seed: int) -> list[Pair]:
    """Rows ``audio, image, identity[, split]`` of a CSV; paths are relative to the CSV's folder."""
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
            columns = {c.strip().lower() for c in (rows[0].keys() if rows else [])}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{manifest}: cannot read the manifest ({exc})") from None
    missing = {"audio", "image", "identity"} - columns
    if not rows or missing:
        raise DataError(f"{manifest}: the manifest needs columns audio, image, identity[, split]"
                        + (f"; missing: {', '.join(sorted(missing))}" if rows else "; it has no rows"))
    rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in rows]
    has_split = "split" in columns and all(row.get("split") for row in rows)
    pairs, absent = [], []
    for number, row in enumerate(rows, start=1):
        check_name(row["identity"], f"{manifest}: row {number}: identity")
        if has_split and row["split"] != split:
            continue
        audio, image = manifest.parent / row["audio"], manifest.parent / row["image"]
        absent += [p for p in (audio, image) if not p.is_file()]
        if audio.is_file() and image.is_file():
            pairs.append(Pair(audio, image, row["identity"], Path(row["audio"]).stem))
    report_unpaired(absent, manifest.parent)  # rows naming missing files: reported, then left out
    pairs = _unique_keys(pairs)
    return pairs if has_split else _seeded_split(pairs, split, test_fraction, seed)


def folder(root: str | None = None, split: str = "train", image_size: int = 64,
           sample_rate: int = 16000, num_samples: int = 16000, manifest: str | None = None,
           test_fraction: float = 0.2, seed: int = 0, swap_red_blue: bool = False) -> PairedFilesDataset:
    """Your own pairs: identity folders (optionally under split folders) or a CSV manifest."""
    expected = ("<root>/[<split>/]<identity>/<stem>.wav beside <stem>.png|jpg, "
                "or a CSV manifest with columns audio, image, identity[, split]")
    base = _existing_root("folder", root, expected)
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError("test_fraction must be in [0, 1)")
    manifest_path = _find_manifest(base, manifest)
    if manifest_path is not None:
        pairs = _manifest_pairs(manifest_path, split, test_fraction, seed)
        base = manifest_path.parent if base.is_file() else base
    elif (base / split).is_dir():
        pairs = _unique_keys(_folder_pairs(base / split))
    else:
        present = [name for name in SPLIT_NAMES if (base / name).is_dir()]
        if present:
            raise DataError(f"{base}: no '{split}' split folder (found: {', '.join(present)})")
        pairs = _seeded_split(_unique_keys(_folder_pairs(base)), split, test_fraction, seed)
    options = {"manifest": str(manifest_path) if manifest_path else None,
               "test_fraction": test_fraction, "seed": seed}
    return PairedFilesDataset("folder", pairs, root=base, split=split, image_size=image_size,
                              sample_rate=sample_rate, num_samples=num_samples,
                              swap_channels=swap_red_blue, options=options)


def _find_manifest(base: Path, manifest: Optional[str]) -> Optional[Path]:
    """The manifest to read: the option, the root itself if it is a CSV, or <root>/manifest.csv."""
    if manifest:
        path = Path(manifest).expanduser()
        path = path if path.is_absolute() or path.exists() else base / path
        if not path.is_file():
            raise DataError(f"{path}: manifest not found")
        return path
    if base.is_file():
        if base.suffix.lower() != ".csv":
            raise DataError(f"{base}: the root must be a folder or a CSV manifest")
        return base
    return base / MANIFEST_NAME if (base / MANIFEST_NAME).is_file() else None


@hookimpl
def register_datasets(register):
    """Register the on-disk datasets: ``youtubers`` and ``folder``."""
    register("youtubers", youtubers, needs_root=True,
             description="wav2pix YouTubers layout: JPEG faces with red/blue swapped, 1 s 16 kHz speech")
    register("folder", folder, needs_root=True,
             description="your own pairs: <identity>/<stem>.wav beside <stem>.png|jpg, or a CSV manifest")
