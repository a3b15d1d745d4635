"""A dataset over (audio file, face image) pairs on disk: the common half of youtubers and folder.

Not an entry point: ``plugins.datasets`` finds the pairs (each layout its own way) and this
module serves them in the DESIGN.md section 3 item shape, with everything the core needs around
it: sorted identities, labels without loading, a stable key per item, image-only loading for
mismatched faces, and a ``cache_key()`` that changes whenever a source file does.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo import DataError, check_name, fit_length, load_audio, load_face, peak_normalise, to_tensor

MAX_NAMED_IN_WARNING = 5


@dataclass(frozen=True)
class Pair:
    """One item on disk: a speech file, the face seen while it was spoken, and who it is."""

    audio: Path
    image: Path
    identity: str
    key: str


class UnpairedFilesWarning(UserWarning):
    """Some files had no partner (audio without a face or a face without audio)."""


def report_unpaired(unpaired: Sequence[Path], where: Path) -> None:
    """Warn, naming a few, about files that were left out because they have no partner."""
    if not unpaired:
        return
    names = ", ".join(str(p.relative_to(where)) if p.is_relative_to(where) else str(p)
                      for p in list(unpaired)[:MAX_NAMED_IN_WARNING])
    more = f" and {len(unpaired) - MAX_NAMED_IN_WARNING} more" if len(unpaired) > MAX_NAMED_IN_WARNING else ""
    warnings.warn(f"{where}: {len(unpaired)} file(s) without a partner left out: {names}{more}",
                  UnpairedFilesWarning, stacklevel=3)


def _is_jpeg_named_png(path: Path) -> bool:
    """wav2pix's quirk: its ``.png`` faces are JPEG bytes saved in BGR order. True PNGs (what
    ``prepare`` writes) are already RGB."""
    if path.suffix.lower() != ".png":
        return False
    with open(path, "rb") as handle:
        return handle.read(3) == b"\xff\xd8\xff"


class PairedFilesDataset(Dataset):
    """Serves ``{"wave", "image", "identity", "key"}`` items from a list of ``Pair``s.

    Identities are the sorted names found, so labels never depend on scan order (wav2pix built
    them from an unordered set). ``swap_channels`` undoes red/blue-swapped faces on disk.
    """

    def __init__(self, name: str, pairs: Sequence[Pair], *, root: Path, split: str, image_size: int,
                 sample_rate: int, num_samples: int, swap_channels: bool = False,
                 options: Optional[dict] = None):
        if not pairs:
            raise DataError(f"{root}: dataset '{name}' found no audio/image pairs for split '{split}'")
        if image_size < 4 or sample_rate <= 0 or num_samples <= 0:
            raise ValueError("image_size, sample_rate and num_samples must be positive (image_size >= 4)")
        for pair in pairs:  # names, never paths: a writer may make a file name of either
            check_name(pair.identity, f"{root}: dataset '{name}': identity")
            check_name(pair.key, f"{root}: dataset '{name}': key")
        self.name = name
        self.pairs = list(pairs)
        self.root, self.split = Path(root), split
        self.image_size, self.sample_rate, self.num_samples = int(image_size), int(sample_rate), int(num_samples)
        self.swap_channels = swap_channels if swap_channels == "auto" else bool(swap_channels)
        self.options = dict(options or {})
        self.identities = sorted({pair.identity for pair in self.pairs})
        index_of = {name: index for index, name in enumerate(self.identities)}
        self.labels = [index_of[pair.identity] for pair in self.pairs]
        self.keys = [pair.key for pair in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def load_wave(self, index: int) -> np.ndarray:
        """Item ``index``'s clip as float32 ``[num_samples]``, centre-cropped and peak-normalised."""
        # A silent clip in a training set is odd but harmless: it stays zeros instead of stopping
        # an epoch; the user-facing commands load with the strict default.
        wave = load_audio(self.pairs[index].audio, self.sample_rate, normalise=False, allow_silent=True)
        return peak_normalise(fit_length(wave, self.num_samples)).numpy()

    def load_face(self, index: int) -> np.ndarray:
        """Item ``index``'s face as ``uint8 [S, S, 3]`` RGB."""
        path = self.pairs[index].image
        swap = _is_jpeg_named_png(path) if self.swap_channels == "auto" else self.swap_channels
        return load_face(path, self.image_size, swap_channels=swap)

    def raw_item(self, index: int) -> dict:
        """The item in storage form (uint8 face, float32 wave): what the cache keeps."""
        return {"wave": self.load_wave(index), "image": self.load_face(index),
                "identity": self.labels[index], "key": self.keys[index]}

    def load_image(self, index: int) -> torch.Tensor:
        """Only item ``index``'s face as float ``[3, S, S]`` in [-1, 1] (for mismatched pairs)."""
        return to_tensor(self.load_face(index))

    def __getitem__(self, index: int) -> dict:
        raw = self.raw_item(index)
        return {"wave": torch.from_numpy(raw["wave"]), "image": to_tensor(raw["image"]),
                "identity": raw["identity"], "key": raw["key"]}

    def source_files(self) -> list[Path]:
        """Every file an item is read from."""
        return [path for pair in self.pairs for path in (pair.audio, pair.image)]

    def cache_key(self) -> dict:
        """What decides the preprocessed content: options plus every source file's size and time."""
        digest = hashlib.sha256()
        for path in self.source_files():
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return {"dataset": self.name, "root": str(self.root.resolve()), "split": self.split,
                "image_size": self.image_size, "sample_rate": self.sample_rate,
                "num_samples": self.num_samples, "swap_red_blue": self.swap_channels,
                "options": self.options, "count": len(self), "files": digest.hexdigest()}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, split={self.split!r}, items={len(self)}, "
                f"identities={len(self.identities)}, root={str(self.root)!r})")
