"""Sample sheets: fixed held-out clips, the real face beside the generated one, by identity.

The same clips every epoch, so a run's ``samples/`` folder reads as a film of its progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zoo.media.images import render_grid, write_png


@dataclass
class SampleSet:
    """Held-out clips in identity order: ``per_identity`` clips for each named row."""

    waves: torch.Tensor  # [K, T]
    images: torch.Tensor  # [K, 3, S, S] the real faces paired with the clips
    rows: list  # identity names, one per row
    per_identity: int


def pick_samples(dataset, identities, per_identity: int = 2, max_identities: int = 8) -> SampleSet:
    """The first ``per_identity`` items of each of the first ``max_identities`` identities."""
    chosen: dict[int, list[int]] = {}
    for index, label in enumerate(dataset.labels):
        if len(chosen.get(label, [])) < per_identity and (label in chosen or len(chosen) < max_identities):
            chosen.setdefault(label, []).append(index)
    complete = {label: items for label, items in sorted(chosen.items()) if len(items) == per_identity}
    items = [dataset[i] for indices in complete.values() for i in indices]
    if not items:
        raise ValueError("no identity has enough held-out clips for a sample sheet")
    return SampleSet(torch.stack([torch.as_tensor(it["wave"]) for it in items]),
                     torch.stack([torch.as_tensor(it["image"]) for it in items]),
                     [identities[label] for label in complete], per_identity)


SAMPLE_SEED = 0  # the noise of every sheet: the same faces-to-be, epoch after epoch


@torch.no_grad()
def generate_faces(model, waves: torch.Tensor, device: torch.device, batch_size: int = 64) -> torch.Tensor:
    """Faces for ``waves`` in eval mode (dropout off, running BatchNorm statistics), on the CPU.

    Drawn under a forked random state seeded with ``SAMPLE_SEED``: a generator with noise gets
    the same noise every epoch, and training's own random state is left exactly as it was (so a
    run resumed after a sheet continues as one that never stopped).
    """
    was_training = model.training
    model.eval()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(SAMPLE_SEED)
            faces = [model(chunk.to(device))[0].float().cpu() for chunk in waves.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(faces)


def sheet(samples: SampleSet, fakes: torch.Tensor) -> torch.Tensor:
    """Interleave real and generated faces: one row per identity, real then generated."""
    return torch.stack([samples.images, fakes.to(samples.images.dtype)], dim=1).flatten(0, 1)


def write_sample_grid(model, samples: SampleSet, path: Path, device: torch.device) -> np.ndarray:
    """Write the real-beside-generated sheet for ``samples`` to ``path``; return it as HWC uint8
    (the same picture, for TensorBoard)."""
    fakes = generate_faces(model, samples.waves, device)
    scale = 2 if samples.images.shape[-1] <= 64 else 1
    grid = render_grid(sheet(samples, fakes), nrow=2 * samples.per_identity, row_labels=samples.rows, scale=scale)
    write_png(grid, path)
    return grid
