"""The preprocessing cache: decode and resize once, then serve every epoch from memory maps.

``cached(dataset)`` returns a ``CachedDataset`` that reads uint8 faces and float16 waves (float32
with ``wave_dtype="float32"``) from ``.npy`` files under ``$WAV2PIX_ZOO_CACHE`` (default
``~/.cache/wav2pix-zoo``), building them first (with a progress bar) when absent. An entry is
keyed by ``dataset.cache_key()``: the dataset's name, root, split, image size, sample rate, clip
length, options and the size and modification time of every source file, so editing a file
rebuilds the entry and nothing stale is ever served; a float32 entry's key also names its dtype,
so the two precisions never share an entry. Entries are written to a temporary folder and renamed into place, so an
interrupted build or two concurrent builds never leave a half-written entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from zoo.callbacks import SILENT, Progress
from zoo.errors import DataError, ZooError
from zoo.files import cache_root, replacing
from zoo.media.images import to_tensor, to_uint8

if TYPE_CHECKING:  # only for the annotation: zoo.data.loader imports this module's users
    from zoo.data.loader import ItemBatch

FORMAT_VERSION = 1
META_NAME = "meta.json"
# float16: 11 bits of mantissa, ~66 dB below a clip's peak, enough for speech at half the memory;
# float32: the decoded clip exactly, as wav2pix fed it (``--preset wav2pix_exact``).
WAVE_DTYPES = {"float16": np.float16, "float32": np.float32}
DEFAULT_WAVE_DTYPE = "float16"


def entry_name(key: dict) -> str:
    """A readable, unique folder name for one cache key."""
    blob = json.dumps({"format": FORMAT_VERSION, **key}, sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    parts = [str(key.get(k)) for k in ("dataset", "split", "image_size") if key.get(k) is not None]
    readable = "-".join(p.replace(os.sep, "_") for p in parts) or "dataset"
    return f"{readable}-{digest}"


class CachedDataset(Dataset):
    """Items served from a cache entry's memory maps; no JPEG or audio decoding per epoch.

    Carries the source dataset's description (``identities``, ``labels``, ``keys``, ``root``,
    ``split``, ``image_size``, ``sample_rate``, ``num_samples``), so it can stand in for it.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        meta = json.loads((self.directory / META_NAME).read_text())
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
            self._images = np.load(self.directory / "images.npy", mmap_mode="r")
            self._waves = np.load(self.directory / "waves.npy", mmap_mode="r")
        return self._images, self._waves

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_images"] = state["_waves"] = None
        return state

    def __len__(self) -> int:
        return len(self.labels)

    def cache_key(self) -> dict:
        """The key the entry was built under."""
        return dict(self.meta["key"])

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
    on CPU (a batch is one gather from the memory maps; workers only add copying). ``workers`` processes decode in parallel while building
    (default: every available core, at most 8). ``wave_dtype`` is how the waves are stored:
    ``"float16"`` or ``"float32"``.
    """
    if isinstance(dataset, CachedDataset) or not hasattr(dataset, "cache_key"):
        return dataset
    key = cache_key(dataset, wave_dtype)
    directory = cache_root(cache_dir)
    entry = directory / entry_name(key)
    if rebuild and entry.exists():
        shutil.rmtree(entry, ignore_errors=True)
    if not (entry / META_NAME).is_file():
        build_entry(dataset, key, entry, progress=progress, workers=workers, wave_dtype=wave_dtype)
        prune_superseded(entry)
    return CachedDataset(entry)


# What may change between two builds of the same dataset configuration: the source files.
_SOURCE_FIELDS = ("files", "count")


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
    return {k: v for k, v in key.items() if k not in _SOURCE_FIELDS}


class _RawItems(Dataset):
    """Storage-form items for the builder; errors come back as values, not worker tracebacks."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        try:
            if hasattr(self.dataset, "raw_item"):
                raw = self.dataset.raw_item(index)
                return index, np.asarray(raw["image"], np.uint8), np.asarray(raw["wave"], np.float32)
            item = self.dataset[index]
            return index, to_uint8(item["image"]), item["wave"].numpy().astype(np.float32)
        except ZooError as exc:
            return index, exc, None


def build_entry(dataset, key: dict, entry: Path, *, progress: Progress = SILENT,
                workers: Optional[int] = None, wave_dtype: str = DEFAULT_WAVE_DTYPE) -> Path:
    """Decode every item of ``dataset`` into ``entry`` (atomically: temp folder, then rename)."""
    from zoo.hardware import cpu_cores

    count, size = len(dataset), int(key.get("image_size") or dataset.image_size)
    num_samples = int(key.get("num_samples") or dataset.num_samples)
    with replacing(entry, folder=True) as staging:
        images = np.lib.format.open_memmap(staging / "images.npy", "w+", np.uint8, (count, size, size, 3))
        waves = np.lib.format.open_memmap(staging / "waves.npy", "w+", WAVE_DTYPES[wave_dtype],
                                          (count, num_samples))
        workers = min(8, cpu_cores()) if workers is None else max(0, int(workers))
        _fill(dataset, images, waves, workers if count >= 64 else 0, progress)
        images.flush(), waves.flush()
        del images, waves
        _write_meta(dataset, key, staging, size, num_samples)
    return entry


def _as_is(item):
    return item


def _fill(dataset, images: np.ndarray, waves: np.ndarray, workers: int, progress: Progress) -> None:
    loader = DataLoader(_RawItems(dataset), batch_size=None, num_workers=workers,
                        collate_fn=_as_is, prefetch_factor=8 if workers else None)
    label = f"caching {getattr(dataset, 'name', 'dataset')}/{getattr(dataset, 'split', '')} {images.shape[1]}px"
    with progress.task(label, total=len(images)) as task:
        for done, (index, image, wave) in enumerate(loader, start=1):
            if isinstance(image, ZooError):
                raise image
            if image.shape != images.shape[1:] or wave.shape != waves.shape[1:]:
                raise DataError(f"item {index} of {label[8:]} has shape {image.shape}/{wave.shape}, "
                                f"expected {images.shape[1:]}/{waves.shape[1:]}")
            images[index], waves[index] = image, wave
            task.update(done)


def _write_meta(dataset, key: dict, staging: Path, size: int, num_samples: int) -> None:
    labels = [int(label) for label in dataset.labels]
    keys = list(getattr(dataset, "keys", None) or [str(i) for i in range(len(labels))])
    meta = {"format": FORMAT_VERSION, "key": key, "identities": list(dataset.identities),
            "labels": labels, "keys": keys, "root": _optional_str(getattr(dataset, "root", None)),
            "split": getattr(dataset, "split", None), "image_size": size, "num_samples": num_samples,
            "sample_rate": getattr(dataset, "sample_rate", None)}
    # meta.json is written last: an entry without it is incomplete and never served.
    (staging / META_NAME).write_text(json.dumps(meta))


def _optional_str(value) -> Optional[str]:
    return None if value is None else str(value)
