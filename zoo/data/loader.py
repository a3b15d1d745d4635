"""Data plumbing shared by every dataset: mismatched faces, batching and the loader.

The discriminator of a text/speech-conditioned GAN also sees real faces paired with the wrong
condition (the "matching-aware" discriminator of Reed et al., ICML 2016, kept by wav2pix).
``WithMismatch`` draws those faces here, the same way for every dataset, from ``labels`` alone:
a uniformly chosen item of any other identity. ``make_loader`` batches items for training with
seeded shuffling, worker processes capped to the cores, and pinned memory on CUDA.
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from zoo.errors import ZooError
from zoo.hardware import cpu_cores


class ItemBatch(list):
    """Items fetched together (``__getitems__``): a list of item dicts plus the batch already stacked.

    Datasets that can read many items in one go (the cache's memory maps) return one of these;
    ``collate`` then uses ``stacked`` directly instead of stacking the items again, while any
    other code can still treat it as the plain list of items PyTorch expects.
    """

    def __init__(self, stacked: dict):
        self.stacked = stacked
        # Per-item views; label tensors become plain ints, as single items carry them.
        columns = {key: value.tolist() if isinstance(value, torch.Tensor) and value.dim() == 1 else value
                   for key, value in stacked.items()}
        count = len(stacked["identity"])
        super().__init__({key: value[i] for key, value in columns.items()} for i in range(count))


class SingleIdentityWarning(UserWarning):
    """A dataset with one identity has no mismatched faces; that loss term is switched off."""


def _mix(*parts) -> np.ndarray:
    """A 64-bit hash of integer arrays (splitmix64's finaliser): cheap, stateless randomness."""
    with np.errstate(over="ignore"):
        h = np.uint64(0x9E3779B97F4A7C15)
        for part in parts:
            h = (h ^ np.asarray(part, dtype=np.uint64)) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(31))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(29))


class WithMismatch(Dataset):
    """Adds ``"wrong_image"`` (a real face of another identity) and ``"wrong_identity"`` to items.

    With a single identity there is nothing to mismatch: a ``SingleIdentityWarning`` is given,
    ``has_mismatch`` is False and items pass through unchanged (the trainer then drops the
    mismatched term). The draw for an item is a pure function of ``(seed, epoch, index)``: it
    changes every epoch, is identical with or without loader workers, and a resumed run draws
    exactly what an uninterrupted one would. Ask for ``data[(epoch, index)]`` (``EpochSampler``
    yields such keys); a plain ``data[index]`` is epoch 0.
    """

    def __init__(self, dataset, seed: int = 0, *, warn: bool = True):
        self.dataset, self.seed = dataset, int(seed)
        labels = np.asarray(list(dataset.labels), dtype=np.int64)
        if len(labels) != len(dataset):
            raise ValueError(f"dataset has {len(dataset)} items but {len(labels)} labels")
        # Items sorted by identity: the others of identity y are everything outside y's block.
        self._order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=len(dataset.identities)) if len(labels) else np.zeros(0, int)
        self._start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self._count = counts.astype(np.int64)
        self._labels = labels
        self.has_mismatch = int((counts > 0).sum()) >= 2
        if not self.has_mismatch and warn:
            name = getattr(dataset, "name", type(dataset).__name__)
            warnings.warn(f"dataset '{name}' has a single identity: no mismatched faces, so the "
                          f"discriminator's wrong-pair term is switched off", SingleIdentityWarning,
                          stacklevel=2)

    # The wrapped dataset's description passes through unchanged.
    def __getattr__(self, name):
        if name.startswith("__") or name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __len__(self) -> int:
        return len(self.dataset)

    def wrong_indices(self, indices, epoch: int = 0) -> np.ndarray:
        """For each item, a uniformly drawn item of another identity (fixed by seed and epoch)."""
        indices = np.asarray(indices, dtype=np.int64)
        labels = self._labels[indices]
        others = len(self._labels) - self._count[labels]
        picks = (_mix(self.seed, epoch, indices) % others.astype(np.uint64)).astype(np.int64)
        picks += np.where(picks >= self._start[labels], self._count[labels], 0)
        return self._order[picks]

    def wrong_index(self, index: int, epoch: int = 0) -> int:
        """One item's mismatched partner (see ``wrong_indices``)."""
        return int(self.wrong_indices([index], epoch)[0])

    def _image(self, index: int) -> torch.Tensor:
        loader = getattr(self.dataset, "load_image", None)
        return loader(index) if loader is not None else self.dataset[index]["image"]

    def __getitems__(self, keys: list) -> list:
        """Fetch a whole batch at once when the wrapped dataset can (the cache can)."""
        epochs, indices = zip(*(_epoch_and_index(k) for k in keys)) if keys else ((), ())
        fetch_many = getattr(self.dataset, "__getitems__", None)
        items = fetch_many(list(indices)) if fetch_many is not None else [self.dataset[i] for i in indices]
        if not self.has_mismatch:
            return items
        if len(set(epochs)) == 1:  # one epoch per batch, as EpochSampler yields: one vector draw
            wrong = self.wrong_indices(indices, epochs[0]).tolist()
        else:
            wrong = [self.wrong_index(i, e) for e, i in zip(epochs, indices)]
        if not isinstance(items, ItemBatch) or not hasattr(self.dataset, "load_images"):
            return [{**item, "wrong_image": self._image(j), "wrong_identity": int(self._labels[j])}
                    for item, j in zip(items, wrong)]
        return ItemBatch({**items.stacked, "wrong_image": self.dataset.load_images(wrong),
                          "wrong_identity": torch.as_tensor(self._labels[wrong])})

    def __getitem__(self, key) -> dict:
        epoch, index = _epoch_and_index(key)
        item = dict(self.dataset[index])
        if self.has_mismatch:
            wrong = self.wrong_index(index, epoch)
            item["wrong_image"] = self._image(wrong)
            item["wrong_identity"] = int(self._labels[wrong])
        return item


def _epoch_and_index(key) -> tuple[int, int]:
    if isinstance(key, tuple):
        return int(key[0]), int(key[1])
    return 0, int(key)


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys: a seeded order per epoch, this rank's share, resumable.

    The order is a function of ``(seed, epoch)`` alone. Under torch.distributed each of
    ``world_size`` ranks takes every ``world_size``-th index of the same order, as
    DistributedSampler does. ``set_epoch(epoch, skip)`` starts an epoch ``skip`` items in, so a
    resumed run sees exactly the batches an uninterrupted one would.
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        self.size, self.seed, self.shuffle = int(size), int(seed), bool(shuffle)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip)

    def order(self) -> list:
        if not self.shuffle:
            return list(range(self.size))[self.rank::self.world_size]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.size, generator=generator).tolist()[self.rank::self.world_size]

    def __iter__(self):
        return iter([(self.epoch, i) for i in self.order()[self.skip:]])

    def __len__(self) -> int:
        return max(0, len(range(self.rank, self.size, self.world_size)) - self.skip)


def collate(items: list) -> dict:
    """Stack items into a batch: tensors stacked, ints as int64, strings as a list."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    if isinstance(items, ItemBatch):
        return dict(items.stacked)
    batch = {}
    for key, first in items[0].items():
        values = [item[key] for item in items]
        if isinstance(first, torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(first, np.ndarray):
            batch[key] = torch.from_numpy(np.stack(values))
        elif isinstance(first, (bool, int, np.integer)):
            batch[key] = torch.tensor(values, dtype=torch.int64)
        elif isinstance(first, (float, np.floating)):
            batch[key] = torch.tensor(values, dtype=torch.float32)
        else:
            batch[key] = values
    return batch


def _quiet_worker(_worker_id: int) -> None:
    # Each worker does one item at a time; intra-op threads would only fight the trainer's.
    torch.set_num_threads(1)


class ZooDataLoader(DataLoader):
    """A DataLoader whose worker errors from our family come back as their own one line.

    PyTorch re-raises a worker's exception with the worker's traceback pasted into the message;
    a user error (a corrupt file met mid-epoch) should read exactly as it would without workers.
    """

    def __iter__(self):
        iterator = super().__iter__()
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except ZooError as exc:
                raise type(exc)(_original_message(exc)) from None
            yield batch


def _original_message(exc: Exception) -> str:
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    last = text.strip().splitlines()[-1]
    return last.split(": ", 1)[1] if ": " in last else last


def make_loader(dataset, batch_size: int = 64, num_workers: int = 0, shuffle: bool = True,
                seed: int = 0, device: str | torch.device = "cpu", drop_last: bool = False,
                sampler: Optional[Sampler] = None, prefetch_factor: int = 4) -> DataLoader:
    """A DataLoader for training or evaluation.

    ``num_workers`` is capped to the available cores; workers persist across epochs; memory is
    pinned when ``device`` is CUDA; shuffling follows ``seed``. Pass ``sampler`` (e.g. a
    DistributedSampler) to take over ordering, in which case ``shuffle`` is ignored.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    workers = max(0, min(int(num_workers), cpu_cores()))
    generator = torch.Generator().manual_seed(int(seed))
    extra = {}
    if workers > 0:
        extra = {"persistent_workers": True, "prefetch_factor": prefetch_factor,
                 "worker_init_fn": _quiet_worker}
    return ZooDataLoader(
        dataset, batch_size=batch_size, shuffle=bool(shuffle) and sampler is None, sampler=sampler,
        num_workers=workers, collate_fn=collate, pin_memory=torch.device(device).type == "cuda",
        drop_last=drop_last, generator=generator, **extra,
    )
