"""Building, checking and sweeping preprocessing-cache entries (``zoo.data.cache`` serves them).

An entry is a folder of ``images.npy`` (uint8 ``[N, S, S, 3]``), ``waves.npy`` (``[N, T]`` in
float16 or float32) and ``meta.json``, written last. It is built in a staging folder beside its
final name, flushed to disk and renamed into place (``zoo.files.replacing``), so a reader sees a
whole entry or none. Before any byte is written the free space is checked and the arrays'
files are allocated in full, so a full disk is one ``StorageError`` line, never a crash
(writing into a memory map past the end of a full disk's space kills the process with SIGBUS).

Nothing on disk is trusted when an entry is opened: ``check_entry`` compares the arrays' shapes,
types and sizes with ``meta.json`` and re-computes a checksum of a sample of rows recorded at
build time, so a truncated, zero-filled or corrupt entry is found and rebuilt, not served.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from zoo.callbacks import SILENT, Progress
from zoo.data.loader import quiet_worker
from zoo.errors import DataError, StorageError, ZooError
from zoo.files import TEMPORARY_PREFIX, remove_path, replacing, storage_error
from zoo.media.images import to_uint8

META_NAME = "meta.json"
IMAGES_NAME, WAVES_NAME = "images.npy", "waves.npy"
OWNER_NAME = ".owner"  # "<host> <pid>" of the process building in a staging folder
SAMPLE_ROWS = 64  # rows checksummed at build time and checked at every opening
HEADROOM = 1.05  # free space asked for beyond the entry's size: the file system's own needs
# A staging folder is swept when its builder is gone from this machine, or (another machine's,
# or one whose owner is unknown) when nothing in it has changed for this long.
STALE_SECONDS = 6 * 3600


class DamagedEntry(Exception):
    """A cache entry failed its checks; the message says how, in a few words."""


# -- checking ----------------------------------------------------------------------------------------
def sample_rows(count: int) -> np.ndarray:
    """Which rows the checksum covers: evenly spread, always the first and the last."""
    return np.unique(np.linspace(0, max(count - 1, 0), num=min(count, SAMPLE_ROWS)).round().astype(np.int64))


def checksum(images: np.ndarray, waves: np.ndarray) -> str:
    """SHA-256 of the sampled rows of both arrays (a zero-filled or swapped file changes it)."""
    digest = hashlib.sha256()
    for row in sample_rows(len(images)):
        digest.update(np.ascontiguousarray(images[row]).tobytes())
        digest.update(np.ascontiguousarray(waves[row]).tobytes())
    return digest.hexdigest()


def read_meta(entry: Path) -> dict:
    """The entry's ``meta.json``, or ``DamagedEntry`` saying why it cannot be used."""
    try:
        meta = json.loads((entry / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise DamagedEntry(f"unreadable {META_NAME} ({type(exc).__name__})") from None
    needed = {"format": int, "key": dict, "identities": list, "labels": list, "keys": list,
              "image_size": int, "num_samples": int, "count": int, "wave_dtype": str, "checksum": str}
    if not isinstance(meta, dict) or any(not isinstance(meta.get(k), kind) for k, kind in needed.items()):
        raise DamagedEntry(f"{META_NAME} lacks fields or holds the wrong types")
    if not len(meta["labels"]) == len(meta["keys"]) == meta["count"]:
        raise DamagedEntry(f"{META_NAME} counts disagree")
    return meta


def check_entry(entry: Path, format_version: int, wave_dtypes: dict) -> dict:
    """Return the meta of a sound entry; raise ``DamagedEntry`` for anything else."""
    meta = read_meta(entry)
    if meta["format"] != format_version or meta["wave_dtype"] not in wave_dtypes:
        raise DamagedEntry(f"format {meta['format']}/{meta['wave_dtype']} is not this version's")
    count, size, length = meta["count"], meta["image_size"], meta["num_samples"]
    images = _open_array(entry / IMAGES_NAME, np.uint8, (count, size, size, 3))
    waves = _open_array(entry / WAVES_NAME, wave_dtypes[meta["wave_dtype"]], (count, length))
    if checksum(images, waves) != meta["checksum"]:
        raise DamagedEntry("its data does not match the checksum taken when it was built")
    return meta


def _open_array(path: Path, dtype, shape: tuple) -> np.ndarray:
    """A read-only memory map of ``path``, checked against the shape and type ``meta.json`` gives."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DamagedEntry(f"{path.name} is unreadable ({type(exc).__name__})") from None
    if array.dtype != np.dtype(dtype) or array.shape != tuple(shape):
        raise DamagedEntry(f"{path.name} holds {array.dtype}{list(array.shape)}, expected {np.dtype(dtype)}{list(shape)}")
    expected_bytes = array.offset + array.nbytes
    if path.stat().st_size != expected_bytes:
        raise DamagedEntry(f"{path.name} is {path.stat().st_size} bytes, expected {expected_bytes}")
    return array


# -- sweeping ------------------------------------------------------------------------------------------
def sweep_staging(directory: Path, now: Optional[float] = None) -> list[Path]:
    """Delete staging folders that killed builds left in the cache ``directory``.

    One whose builder (``.owner``) ran on this machine and is gone is deleted at once; any
    other (another machine's build, or no owner recorded) once nothing in it changed for
    ``STALE_SECONDS``. A live build is never touched.
    """
    now = time.time() if now is None else now
    removed = []
    if not directory.is_dir():
        return removed
    for staging in directory.glob(f"{TEMPORARY_PREFIX}*"):
        if _is_stale(staging, now):
            remove_path(staging)
            removed.append(staging)
    return removed


def _is_stale(staging: Path, now: float) -> bool:
    try:
        host, pid = (staging / OWNER_NAME).read_text().split()
        if host == socket.gethostname():
            return not _process_alive(int(pid))
    except (OSError, ValueError):
        pass  # no owner recorded (killed before writing it), or another machine's build
    return now - _newest_change(staging) > STALE_SECONDS


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _newest_change(path: Path) -> float:
    try:
        times = [path.lstat().st_mtime] + [p.lstat().st_mtime for p in path.rglob("*")]
    except OSError:
        return 0.0
    return max(times)


# -- building ------------------------------------------------------------------------------------------
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


def build_entry(dataset, key: dict, entry: Path, *, format_version: int, wave_dtype: str, dtype,
                progress: Progress = SILENT, workers: Optional[int] = None) -> Path:
    """Decode every item of ``dataset`` into ``entry`` (atomically: staging folder, then rename)."""
    from zoo.hardware import cpu_cores

    count, size = len(dataset), int(key.get("image_size") or dataset.image_size)
    num_samples = int(key.get("num_samples") or dataset.num_samples)
    shapes = {IMAGES_NAME: (np.uint8, (count, size, size, 3)), WAVES_NAME: (dtype, (count, num_samples))}
    check_free_space(entry.parent, sum(np.dtype(t).itemsize * int(np.prod(s)) for t, s in shapes.values()))
    with replacing(entry, folder=True) as staging:
        (staging / OWNER_NAME).write_text(f"{socket.gethostname()} {os.getpid()}")
        images, waves = (_allocated_array(staging / name, *shapes[name]) for name in (IMAGES_NAME, WAVES_NAME))
        workers = min(8, cpu_cores()) if workers is None else max(0, int(workers))
        _fill(dataset, images, waves, workers if count >= 64 else 0, progress)
        images.flush(), waves.flush()
        meta = _meta(dataset, key, format_version, size, num_samples, wave_dtype, checksum(images, waves))
        del images, waves
        (staging / OWNER_NAME).unlink()
        # meta.json is written last: an entry without it is incomplete and never served.
        (staging / META_NAME).write_text(json.dumps(meta))
    return entry


def check_free_space(folder: Path, needed: int) -> None:
    """One ``StorageError`` line naming ``folder`` unless it has room for ``needed`` bytes."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise storage_error(folder, exc) from None
    if free < needed * HEADROOM:
        raise StorageError(f"{folder}: the data cache needs {needed / 2**20:.1f} MiB here but only "
                           f"{free / 2**20:.1f} MiB is free; free some space, set $WAV2PIX_ZOO_CACHE "
                           "elsewhere or train with --no-cache")


def _allocated_array(path: Path, dtype, shape: tuple) -> np.ndarray:
    """A writable memory-mapped ``.npy`` whose every block is allocated up front, so filling it
    can never hit a full disk (that would be a SIGBUS, not an error)."""
    array = np.lib.format.open_memmap(path, "w+", dtype, shape)
    with open(path, "r+b") as handle:
        try:
            os.posix_fallocate(handle.fileno(), 0, os.path.getsize(path))
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise  # ENOSPC and the like: ``replacing`` turns it into one line
    return array


def _as_is(item):
    return item


def _fill(dataset, images: np.ndarray, waves: np.ndarray, workers: int, progress: Progress) -> None:
    # Its own generator: the loader draws a base seed per iteration, and drawing it from the
    # global one would make a cold cache and a warm one start training from different weights.
    loader = DataLoader(_RawItems(dataset), batch_size=None, num_workers=workers, collate_fn=_as_is,
                        prefetch_factor=8 if workers else None, generator=torch.Generator().manual_seed(0),
                        worker_init_fn=quiet_worker if workers else None)
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


def _meta(dataset, key: dict, format_version: int, size: int, num_samples: int, wave_dtype: str,
          digest: str) -> dict:
    labels = [int(label) for label in dataset.labels]
    keys = list(getattr(dataset, "keys", None) or [str(i) for i in range(len(labels))])
    root = getattr(dataset, "root", None)
    return {"format": format_version, "key": key, "identities": list(dataset.identities),
            "labels": labels, "keys": keys, "root": None if root is None else str(root),
            "split": getattr(dataset, "split", None), "image_size": size, "num_samples": num_samples,
            "sample_rate": getattr(dataset, "sample_rate", None), "count": len(labels),
            "wave_dtype": wave_dtype, "checksum": digest}
