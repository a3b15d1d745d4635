"""The identity classifier the evaluator judges faces with, trained here from scratch.

wav2pix measured its faces with a face classifier fine-tuned on the real faces of its speakers.
No wheel ships face-recognition weights and nothing may be downloaded, so ours is a small timm
backbone (``resnet10t`` by default) created with ``pretrained=False`` and trained on the
dataset's real *training* faces at the dataset's image size, with light augmentation (flips,
small shifts and zooms, brightness/contrast/saturation jitter). It takes a minute or two on a
laptop CPU and is cached, so the second evaluation of a dataset starts at once.

Cache: ``<cache dir>/face_classifier/<dataset>-<size>-<digest>.safetensors`` (the cache dir is
``$WAV2PIX_ZOO_CACHE``, default ``~/.cache/wav2pix-zoo``). The digest covers the training
split's identity (its ``cache_key()``: name, root, split, image size and every source file's
size and time; or name, root, size and identities for a dataset without one) and every
classifier setting, so changing either trains a new classifier. Weights are safetensors with
the settings and identities in the header: loading never unpickles.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zoo.callbacks import SILENT, Progress
from zoo.errors import DataError, UsageError
from zoo.files import cache_root, write_bytes

FORMAT = "wav2pix-zoo/face-classifier/1"
METADATA_KEY = "wav2pix_zoo_face_classifier"
SUBFOLDER = "face_classifier"


@dataclass(frozen=True)
class ClassifierSettings:
    """How the classifier is built and trained (all part of its cache key)."""

    arch: str = "resnet10t"  # timm backbone, always pretrained=False
    epochs: int = 4  # passes over the real training faces ...
    min_steps: int = 150  # ... but at least this many optimiser steps (small datasets)
    batch_size: int = 64
    lr: float = 2e-3  # AdamW peak learning rate, one-cycle schedule
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    augment: bool = True  # flips, shifts, zooms and colour jitter
    max_items: Optional[int] = None  # train on at most this many faces (None: all)
    seed: int = 0


def dataset_key(dataset) -> dict:
    """What identifies a training split's faces: its ``cache_key()`` or its description."""
    if hasattr(dataset, "cache_key"):
        return dict(dataset.cache_key())
    return {"dataset": getattr(dataset, "name", type(dataset).__name__),
            "root": str(getattr(dataset, "root", None)), "split": getattr(dataset, "split", None),
            "image_size": _image_size(dataset), "count": len(dataset),
            "identities": list(dataset.identities)}


def cache_path(train_dataset, settings: ClassifierSettings, cache_dir=None) -> Path:
    """Where the classifier of this training split and these settings is kept."""
    key = {"format": FORMAT, "data": dataset_key(train_dataset), "settings": asdict(settings),
           "identities": list(train_dataset.identities)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    name = str(getattr(train_dataset, "name", "dataset")).replace(os.sep, "_")
    return cache_root(cache_dir) / SUBFOLDER / f"{name}-{_image_size(train_dataset)}-{digest}.safetensors"


def _image_size(dataset) -> int:
    size = getattr(dataset, "image_size", None)
    return int(size) if size else int(dataset[0]["image"].shape[-1])


def build_backbone(arch: str, num_classes: int) -> nn.Module:
    """A timm model, randomly initialised: nothing is ever downloaded."""
    import timm

    try:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes)
    except RuntimeError as exc:  # timm's "Unknown model"
        raise UsageError(f"face classifier: timm has no model '{arch}' ({exc})") from None


class FaceClassifier:
    """A trained identity classifier: logits and pooled features (its embedding) of faces."""

    def __init__(self, model: nn.Module, identities, image_size: int, info: dict,
                 device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.identities = list(identities)
        self.image_size = int(image_size)
        self.info = dict(info)

    @property
    def feature_dim(self) -> int:
        """Size of the embedding ``features`` returns."""
        return int(self.model.num_features)

    @torch.inference_mode()
    def outputs(self, images: torch.Tensor, batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features [N, F], logits [N, C])`` of faces ``[N, 3, S, S]`` in [-1, 1], on the CPU."""
        features, logits = [], []
        for chunk in images.split(batch_size):
            chunk = _fit(chunk.to(self.device).float(), self.image_size)
            pooled = self.model.forward_head(self.model.forward_features(chunk), pre_logits=True)
            features.append(pooled.float().cpu())
            logits.append(self.model.get_classifier()(pooled).float().cpu())
        if not features:
            return torch.zeros(0, self.feature_dim), torch.zeros(0, len(self.identities))
        return torch.cat(features), torch.cat(logits)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The pooled penultimate features ``[N, F]`` (the space of Fréchet, KID and recall@K)."""
        return self.outputs(images)[0]

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """The most likely identity index of each face ``[N]``."""
        return self.outputs(images)[1].argmax(dim=1)


def _fit(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize faces to the size the classifier was trained at (generators may differ)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


# -- training -------------------------------------------------------------------------------------
def load_training_faces(dataset, max_items: Optional[int] = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(uint8 faces [N, S, S, 3], labels [N])`` of a split, reading only the images."""
    from zoo.media.images import to_uint8

    indices = np.arange(len(dataset))
    if max_items is not None and max_items < len(indices):
        indices = np.sort(np.random.default_rng(seed).choice(indices, max_items, replace=False))
    loader = getattr(dataset, "load_image", None)
    faces = [to_uint8(loader(int(i)) if loader else dataset[int(i)]["image"]) for i in indices]
    if not faces:
        raise DataError(f"{getattr(dataset, 'root', 'dataset')}: no training faces for the face classifier")
    labels = torch.as_tensor([int(dataset.labels[int(i)]) for i in indices], dtype=torch.long)
    return torch.from_numpy(np.stack(faces)), labels


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Light augmentation of float faces ``[B, 3, S, S]``: flip, shift, zoom, colour jitter."""
    batch = images.shape[0]

    def uniform(low, high, *shape):
        return (torch.rand(batch, *shape, generator=generator) * (high - low) + low).to(images.device)

    flip = torch.where(uniform(0, 1) < 0.5, -1.0, 1.0)
    scale = uniform(0.9, 1.1)
    theta = torch.zeros(batch, 2, 3, device=images.device)
    theta[:, 0, 0], theta[:, 1, 1] = flip * scale, scale
    theta[:, :, 2] = uniform(-0.1, 0.1, 2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    grey = moved.mean(dim=1, keepdim=True)
    moved = grey + (moved - grey) * uniform(0.8, 1.2, 1, 1, 1)  # saturation
    mean = moved.mean(dim=(1, 2, 3), keepdim=True)
    moved = mean + (moved - mean) * uniform(0.8, 1.2, 1, 1, 1) + uniform(-0.2, 0.2, 1, 1, 1)
    return moved.clamp(-1, 1)


def training_steps(count: int, settings: ClassifierSettings) -> int:
    """Optimiser steps for ``count`` faces: ``epochs`` passes, at least ``min_steps``."""
    if count < 2:
        raise DataError(f"the face classifier needs at least two training faces, got {count}")
    full_batches = max(1, count // settings.batch_size + (count % settings.batch_size >= 2))
    return max(full_batches * max(1, settings.epochs), settings.min_steps)


def train_classifier(faces: torch.Tensor, labels: torch.Tensor, num_classes: int,
                     settings: ClassifierSettings, device: torch.device,
                     on_step: Callable[[int, int, float], None] = lambda step, total, loss: None) -> nn.Module:
    """Train a fresh backbone on uint8 faces ``[N, S, S, 3]``; returns it in eval mode."""
    from zoo.media.images import to_tensor

    generator = torch.Generator().manual_seed(settings.seed)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(settings.seed)
        model = build_backbone(settings.arch, num_classes).to(device)
    total = training_steps(len(faces), settings)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=settings.lr, total_steps=total,
                                                   pct_start=0.2)
    model.train()
    step = 0
    while step < total:
        order = torch.randperm(len(faces), generator=generator)
        for start in range(0, len(order), settings.batch_size):
            chosen = order[start:start + settings.batch_size]
            if step >= total:
                break
            if len(chosen) < 2:
                continue  # BatchNorm cannot train on a single face
            images = to_tensor(faces[chosen].numpy()).to(device)
            if settings.augment:
                images = augment(images, generator)
            loss = F.cross_entropy(model(images), labels[chosen].to(device),
                                   label_smoothing=settings.label_smoothing)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
            on_step(step, total, float(loss.detach()))
    return model.eval()


# -- caching ----------------------------------------------------------------------------------------
def save_classifier(classifier: FaceClassifier, path: Path, settings: ClassifierSettings) -> Path:
    """Write weights and description as safetensors, atomically."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in classifier.model.state_dict().items()}
    meta = {"format": FORMAT, "settings": asdict(settings), "identities": classifier.identities,
            "image_size": classifier.image_size, "info": classifier.info}
    # Serialised in memory and written by Python: a full disk is an OSError, hence one line.
    return write_bytes(path, save(tensors, metadata={METADATA_KEY: json.dumps(meta)}))


def load_classifier(path: Path, device: torch.device | str = "cpu") -> FaceClassifier:
    """Rebuild a cached classifier from its safetensors file alone."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads((handle.metadata() or {})[METADATA_KEY])
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a face classifier of format {FORMAT}")
    settings = ClassifierSettings(**meta["settings"])
    model = build_backbone(settings.arch, len(meta["identities"]))
    model.load_state_dict(load_file(str(path)), strict=True)
    return FaceClassifier(model, meta["identities"], meta["image_size"], meta["info"], device)


def load_or_train(train_dataset, *, settings: ClassifierSettings = ClassifierSettings(), cache_dir=None,
                  device: torch.device | str = "cpu", progress: Progress = SILENT) -> FaceClassifier:
    """The cached classifier of ``train_dataset``, training (and caching) it first if needed."""
    device = torch.device(device)
    path = cache_path(train_dataset, settings, cache_dir)
    if path.is_file():
        try:
            classifier = load_classifier(path, device)
            classifier.info["cache"] = str(path)
            classifier.info["cached"] = True
            return classifier
        except Exception:  # an unreadable or stale entry: train afresh and replace it
            path.unlink(missing_ok=True)
    started = time.perf_counter()
    faces, labels = load_training_faces(train_dataset, settings.max_items, settings.seed)
    label = f"training the face classifier ({settings.arch}, {len(faces)} real faces, {faces.shape[1]} px)"
    with progress.task(label) as task:
        def on_step(step: int, total: int, loss: float) -> None:
            task.update(step, total, loss=loss)

        model = train_classifier(faces, labels, len(train_dataset.identities), settings, device, on_step)
    info = {"arch": settings.arch, "train_items": len(faces), "epochs": settings.epochs,
            "train_seconds": round(time.perf_counter() - started, 1),
            "dataset": str(getattr(train_dataset, "name", "dataset")),
            "split": getattr(train_dataset, "split", None)}
    classifier = FaceClassifier(model, train_dataset.identities, faces.shape[1], info, device)
    info["train_accuracy"] = _accuracy(classifier, faces, labels)
    save_classifier(classifier, path, settings)
    classifier.info.update(cache=str(path), cached=False)
    return classifier


def _accuracy(classifier: FaceClassifier, faces: torch.Tensor, labels: torch.Tensor) -> float:
    from zoo.media.images import to_tensor

    predicted = classifier.predict(to_tensor(faces.numpy()))
    return float((predicted == labels).float().mean())
