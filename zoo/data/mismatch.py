"""Mismatched faces for the discriminator, drawn the same way for every dataset.

The discriminator of a text/speech-conditioned GAN also sees real faces paired with the wrong
condition (the "matching-aware" discriminator of Reed et al., ICML 2016, kept by wav2pix).
``WithMismatch`` draws those faces here from ``labels`` alone: a uniformly chosen item of any
other identity, as a pure function of ``(seed, epoch, index)`` so that loader workers and a
resumed run draw exactly what an uninterrupted run would.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo.data.loader import ItemBatch


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
