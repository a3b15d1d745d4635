"""What the training loop eats: the train split (cached, with mismatched faces) in batches on
the device, in an order that a resumed run reproduces exactly, plus the held-out sample clips.
"""

from __future__ import annotations

import warnings
from typing import Iterator

import torch

import registry
from zoo.callbacks import SILENT, Progress
from zoo.data.cache import cached
from zoo.data.loader import EpochSampler, make_loader
from zoo.data.mismatch import SingleIdentityWarning, WithMismatch
from zoo.errors import DataError, UsageError
from zoo.hardware import Processes, cpu_cores
from zoo.train.samples import SampleSet, pick_samples
from zoo.contracts import Batch
from zoo.train.context import MEMORY_FORMAT


CALIBRATION_CLIPS = 256  # enough: 256 and all 1,848 youtubers clips gave the same Fréchet distance


class TrainingData:
    """The train split as batches of ``Batch`` on the device, and a fixed ``SampleSet``."""

    def __init__(self, config, procs: Processes, device: torch.device, progress: Progress = SILENT,
                 workers_chosen: bool = False):
        self.config, self.procs, self.device, self.progress = config, procs, device, progress
        source = self._dataset("train")
        # The batch size is checked against the split's size before the cache is built.
        self.sampler = EpochSampler(len(source), config.seed, True, procs.rank, procs.world_size)
        self.steps_per_epoch = self._steps_per_epoch(self.sampler.per_rank)
        if config.cache:
            source = self._cached(source)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SingleIdentityWarning)
            self.train = WithMismatch(source, seed=config.seed)
        for warning in caught:
            progress.message(f"warning: {warning.message}")
        self.identities = list(source.identities)
        self.loader = make_loader(self.train, config.batch_size, self._workers(workers_chosen),
                                  seed=config.seed, device=device, drop_last=config.drop_last, sampler=self.sampler)
        self.samples = self._samples()

    def _steps_per_epoch(self, pairs: int) -> int:
        """Batches per epoch: whole batches only with ``drop_last``, else the last partial one too."""
        size = self.config.batch_size
        if pairs == 0 or (pairs < size and self.config.drop_last):
            raise UsageError(f"--batch-size {size} is larger than the {pairs} training pairs this process "
                             "gets; use a smaller batch")
        if not self.config.drop_last and pairs % size == 1:
            raise UsageError(f"--no-drop-last: {pairs} training pairs in batches of {size} leave a last batch "
                             "of one pair, on which BatchNorm cannot train; choose another --batch-size")
        return pairs // size if self.config.drop_last else -(-pairs // size)

    def _dataset(self, split: str):
        c = self.config
        return registry.create("dataset", c.dataset, root=c.data, split=split, image_size=c.image_size,
                               sample_rate=c.sample_rate, num_samples=c.num_samples, **c.dataset_args)

    def _cached(self, source):
        """Rank 0 builds the cache entry; the other ranks wait for it, then read it."""
        rebuild, dtype = self.config.rebuild_cache, self.config.wave_dtype
        if not self.procs.distributed:
            return cached(source, progress=self.progress, rebuild=rebuild, wave_dtype=dtype)
        if self.procs.is_main:
            source = cached(source, progress=self.progress, rebuild=rebuild, wave_dtype=dtype)
        torch.distributed.barrier()
        return source if self.procs.is_main else cached(source, wave_dtype=dtype)

    def _workers(self, chosen: bool) -> int:
        workers = min(self.config.num_workers, cpu_cores())
        if self.config.cache and self.device.type == "cpu" and not chosen and workers:
            # A cached batch is one gather from memory maps: worker processes only add copies.
            self.progress.message("data: cached batches are read in-process (--num-workers N to override)")
            return 0
        return workers

    def _samples(self) -> SampleSet:
        """Held-out clips from the test split (the train split when there is none)."""
        try:
            held_out = self._dataset("test")
        except DataError:
            held_out = self.train.dataset
        try:
            return pick_samples(held_out, list(held_out.identities))
        except ValueError:
            return pick_samples(held_out, list(held_out.identities), per_identity=1)

    def calibration_waves(self, count: int = CALIBRATION_CLIPS) -> Iterator[torch.Tensor]:
        """Batches of the waves of ``count`` training clips on the device, the same clips at
        every call (a seeded draw): what the weights' average measures its BatchNorm statistics
        on (``zoo.train.ema.recalibrate``)."""
        dataset = self.train.dataset
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.config.seed))
        chosen = order[:count].tolist()
        size = self.config.batch_size
        for start in range(0, len(chosen), size):
            waves = [torch.as_tensor(dataset[i]["wave"]) for i in chosen[start:start + size]]
            if len(waves) > 1:  # BatchNorm cannot measure a batch of one
                yield torch.stack(waves).to(self.device).float()

    def epoch(self, epoch: int, skip_batches: int = 0) -> Iterator[Batch]:
        """This process's batches of one epoch, starting ``skip_batches`` in."""
        self.sampler.set_epoch(epoch, skip_batches * self.config.batch_size)
        for index, items in enumerate(self.loader):
            if skip_batches + index >= self.steps_per_epoch:
                return
            yield self.to_batch(items)

    def to_batch(self, items: dict) -> Batch:
        """Move a collated batch to the device (non-blocking from pinned memory on CUDA)."""
        move = dict(device=self.device, non_blocking=True)
        wrong = items.get("wrong_image")
        return Batch(wave=items["wave"].to(**move).float(),
                     image=items["image"].to(**move).contiguous(memory_format=MEMORY_FORMAT),
                     wrong=None if wrong is None else wrong.to(**move).contiguous(memory_format=MEMORY_FORMAT),
                     identity=items["identity"].to(**move))
