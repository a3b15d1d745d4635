"""The preprocessing cache: decode and resize once, then serve every epoch from memory maps.

``cached(dataset)`` returns a ``CachedDataset`` that reads uint8 faces and float16 (or float32)
waves from ``.npy`` files under ``$WAV2PIX_ZOO_CACHE`` (default ``~/.cache/wav2pix-zoo``),
building them first (with a progress bar) when absent. An entry is keyed by
``dataset.cache_key()`` (the dataset's name, root, split, image size, sample rate, clip length,
options and the size and modification time of every source file), the wave type, and the
versions of the code that decodes the data (ours, libsndfile, Pillow, numpy, torchaudio), so
editing a file or upgrading a decoder rebuilds the entry and nothing stale is ever served.

Every opening checks the entry against its ``meta.json`` (shapes, sizes, a checksum of sampled
rows); a damaged one is rebuilt with a one-line note. Building, checking and sweeping the
staging folders of killed builds live in ``zoo.data.cache_build``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo.callbacks import SILENT, Progress
from zoo.data.cache_build import META_NAME, DamagedEntry, build_entry, check_entry, sweep_staging
from zoo.errors import UsageError
from zoo.files import cache_root
from zoo.media.images import to_tensor

if TYPE_CHECKING:  # only for the annotation: zoo.data.loader imports this module's users
    from zoo.data.loader import ItemBatch

__all__ = ["CachedDataset", "META_NAME", "cached", "decoder_versions", "entry_for", "entry_name",
           "prune_superseded"]

FORMAT_VERSION = 2
# float16: 11 bits of mantissa, ~66 dB below a clip's peak, enough for speech and half the disk;
# float32 keeps the decoded samples exactly (an exact reproduction of a reference wants that).
WAVE_DTYPES = {"float16": np.float16, "float32": np.float32}
DEFAULT_WAVE_DTYPE = "float16"
# The libraries whose versions decide the decoded bytes (audio, images, arrays, resampling).
DECODERS = ("soundfile", "pillow", "numpy", "torchaudio")
CACHE_FIELDS = ("wave_dtype", "decoders")  # what ``full_key`` adds to a dataset's own key


@lru_cache(maxsize=1)
def decoder_versions() -> dict:
    """Versions of the code that turns source files into cached arrays: part of every key."""
    import soundfile

    from zoo import __version__

    versions = {"wav2pix-zoo": __version__, "libsndfile": soundfile.__libsndfile_version__}
    for name in DECODERS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def full_key(dataset, wave_dtype: str = DEFAULT_WAVE_DTYPE) -> dict:
    """The dataset's own key plus the wave type and the decoders' versions."""
    if wave_dtype not in WAVE_DTYPES:
        raise UsageError(f"wave_dtype must be one of {', '.join(WAVE_DTYPES)}, not {wave_dtype!r}")
    return {**dataset.cache_key(), "wave_dtype": wave_dtype, "decoders": decoder_versions()}


def entry_name(key: dict) -> str:
    """A readable, unique folder name for one cache key."""
    blob = json.dumps({"format": FORMAT_VERSION, **key}, sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    parts = [str(key.get(k)) for k in ("dataset", "split", "image_size") if key.get(k) is not None]
    readable = "-".join(p.replace(os.sep, "_") for p in parts) or "dataset"
    return f"{readable}-{digest}"


def entry_for(dataset, cache_dir: Optional[os.PathLike] = None, wave_dtype: str = DEFAULT_WAVE_DTYPE) -> Path:
    """The folder ``dataset``'s entry has (or would have) in the cache."""
    return cache_root(cache_dir) / entry_name(full_key(dataset, wave_dtype))


class CachedDataset(Dataset):
    """Items served from a cache entry's memory maps; no JPEG or audio decoding per epoch.

    Carries the source dataset's description (``identities``, ``labels``, ``keys``, ``root``,
    ``split``, ``image_size``, ``sample_rate``, ``num_samples``), so it can stand in for it.
    """

    def __init__(self, directory: Path, meta: Optional[dict] = None):
        self.directory = Path(directory)
        if meta is None:
            meta = check_entry(self.directory, FORMAT_VERSION, WAVE_DTYPES)
        self.meta = meta
        self.name = meta["key"].get("dataset", "dataset")
        self.identities = list(meta["identities"])
        self.labels = list(meta["labels"])
        self.keys = list(meta["keys"])
        self.root = meta.get("root")
        self.split = meta.get("split")
        self.image_size = int(meta["image_size"])
        self.sample_rate = meta.get("sample_rate")
        self.num_samples = int(meta["num_samples"])
        self._images: Optional[np.ndarray] = None
        self._waves: Optional[np.ndarray] = None

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        # Opened lazily, so a DataLoader worker maps the files itself instead of unpickling a copy.
        if self._images is None:
            self._images = np.load(self.directory / "images.npy", mmap_mode="r", allow_pickle=False)
            self._waves = np.load(self.directory / "waves.npy", mmap_mode="r", allow_pickle=False)
        return self._images, self._waves

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_images"] = state["_waves"] = None
        return state

    def __len__(self) -> int:
        return len(self.labels)

    def cache_key(self) -> dict:
        """The source dataset's key (without the cache's own additions), so the cached dataset
        stands in for its source wherever a key identifies data (the face classifier's cache)."""
        return {k: v for k, v in self.meta["key"].items() if k not in CACHE_FIELDS}

    def load_image(self, index: int) -> torch.Tensor:
        """Only item ``index``'s face as float ``[3, S, S]`` in [-1, 1]."""
        return to_tensor(self._arrays()[0][index])

    def load_images(self, indices) -> torch.Tensor:
        """Several faces at once as float ``[B, 3, S, S]`` in [-1, 1] (one gather, one conversion)."""
        return to_tensor(self._arrays()[0][np.asarray(indices, dtype=np.int64)])

    def __getitems__(self, indices) -> "ItemBatch":
        """A whole batch in one gather from the memory maps: what the DataLoader asks for."""
        from zoo.data.loader import ItemBatch

        images, waves = self._arrays()
        rows = np.asarray(indices, dtype=np.int64)
        return ItemBatch({"wave": torch.from_numpy(waves[rows].astype(np.float32)),
                          "image": to_tensor(images[rows]),
                          "identity": torch.as_tensor([self.labels[i] for i in rows], dtype=torch.int64),
                          "key": [self.keys[i] for i in rows]})

    def __getitem__(self, index: int) -> dict:
        images, waves = self._arrays()
        return {"wave": torch.from_numpy(waves[index].astype(np.float32)),
                "image": to_tensor(images[index]), "identity": self.labels[index],
                "key": self.keys[index]}

    def __repr__(self) -> str:
        return f"CachedDataset({self.name!r}, split={self.split!r}, items={len(self)}, at={str(self.directory)!r})"


def cache_key(dataset, wave_dtype: str = DEFAULT_WAVE_DTYPE) -> dict:
    """The key of ``dataset``'s entry with waves stored as ``wave_dtype``. The default adds
    nothing, so float16 entries built before the option existed stay valid."""
    if wave_dtype not in WAVE_DTYPES:
        raise ValueError(f"wave_dtype must be one of {', '.join(WAVE_DTYPES)}, not {wave_dtype!r}")
    key = dataset.cache_key()
    return key if wave_dtype == DEFAULT_WAVE_DTYPE else {**key, "wave_dtype": wave_dtype}


def cached(dataset, *, cache_dir: Optional[os.PathLike] = None, progress: Progress = SILENT,
           workers: Optional[int] = None, rebuild: bool = False, wave_dtype: str = DEFAULT_WAVE_DTYPE):
    """The dataset served from the preprocessing cache, building the entry if needed.

    A dataset without ``cache_key()`` (a third-party one may have none) is returned unchanged,
    as is one that is already cached. Wrap the result, not the source, in ``WithMismatch``:
    ``WithMismatch(cached(dataset))``. For cached data ``num_workers=0`` is the fastest loader
    on CPU (a batch is one gather from the memory maps; workers only add copying). ``workers``
    processes decode in parallel while building (default: every available core, at most 8).
    ``rebuild`` builds the entry again even if it passes its checks; a damaged entry is always
    rebuilt, with a note through ``progress``. ``wave_dtype`` is "float16" or "float32".
    """
    if isinstance(dataset, CachedDataset) or not hasattr(dataset, "cache_key"):
        return dataset
    key = full_key(dataset, wave_dtype)
    entry = cache_root(cache_dir) / entry_name(key)
    sweep_staging(entry.parent)
    meta = None
    if not rebuild and entry.exists():
        try:
            meta = check_entry(entry, FORMAT_VERSION, WAVE_DTYPES)
        except DamagedEntry as damage:
            progress.message(f"cache: the entry {entry} is damaged ({damage}); rebuilding it")
    if meta is None:
        build_entry(dataset, key, entry, format_version=FORMAT_VERSION, wave_dtype=wave_dtype,
                    dtype=WAVE_DTYPES[wave_dtype], progress=progress, workers=workers)
        prune_superseded(entry)
    return CachedDataset(entry, meta)


# What may change between two builds of the same dataset configuration: the source files and
# the decoders' versions.
_SOURCE_FIELDS = ("files", "count", "decoders")


def prune_superseded(entry: Path) -> list[Path]:
    """Delete older entries of the same dataset configuration whose source files have changed.

    Safe while another process still reads one: on POSIX its open memory maps outlive the files.
    """
    mine = _config_of(entry)
    removed = []
    for other in entry.parent.iterdir():
        if other != entry and not other.name.startswith(".") and _config_of(other) == mine:
            shutil.rmtree(other, ignore_errors=True)
            removed.append(other)
    return removed


def _config_of(entry: Path) -> Optional[dict]:
    try:
        key = json.loads((entry / META_NAME).read_text())["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(key, dict):
        return None
    return {k: v for k, v in key.items() if k not in _SOURCE_FIELDS}
