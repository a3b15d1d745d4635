"""Batching for every dataset: the epoch sampler, collation and the loader.

``make_loader`` batches items with seeded shuffling, worker processes capped to the cores, and
pinned memory on CUDA; ``EpochSampler`` yields ``(epoch, index)`` keys in an order a resumed run
reproduces exactly (``zoo.data.mismatch`` turns those keys into items with mismatched faces).
"""

from __future__ import annotations

import signal
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


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys: a seeded order per epoch, this rank's share, resumable.

    The order is a function of ``(seed, epoch)`` alone. Under torch.distributed each of
    ``world_size`` ranks takes every ``world_size``-th index of the same order, as
    DistributedSampler does, and every rank takes the same number, ``size // world_size``: the
    few items left over are dropped for that epoch (a different few each epoch), so all ranks run
    the same number of steps and meet at every collective. ``set_epoch(epoch, skip)`` starts an
    epoch ``skip`` items in, so a resumed run sees exactly the batches an uninterrupted one would.
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        self.size, self.seed, self.shuffle = int(size), int(seed), bool(shuffle)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip)

    @property
    def per_rank(self) -> int:
        """Items each rank sees per epoch (the same on every rank)."""
        return self.size // self.world_size

    def order(self) -> list:
        """This rank's indices for the current epoch, in order."""
        if not self.shuffle:
            everything = list(range(self.size))
        else:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            everything = torch.randperm(self.size, generator=generator).tolist()
        return everything[self.rank::self.world_size][:self.per_rank]

    def __iter__(self):
        return iter([(self.epoch, i) for i in self.order()[self.skip:]])

    def __len__(self) -> int:
        return max(0, self.per_rank - self.skip)


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


def quiet_worker(_worker_id: int) -> None:
    """Set up a loader worker: one thread, and deaf to Ctrl-C.

    Each worker does one item at a time; intra-op threads would only fight the trainer's. A
    terminal's Ctrl-C reaches the whole process group: a worker that died of it would turn the
    trainer's graceful stop (finish the step, save, exit 130) into a crash of the loader. The
    main process ends the workers itself when it stops.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
                 "worker_init_fn": quiet_worker}
    return ZooDataLoader(
        dataset, batch_size=batch_size, shuffle=bool(shuffle) and sampler is None, sampler=sampler,
        num_workers=workers, collate_fn=collate, pin_memory=torch.device(device).type == "cuda",
        drop_last=drop_last, generator=generator, **extra,
    )
