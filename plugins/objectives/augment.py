"""Differentiable augmentation of every image the discriminator sees (Zhao et al., DiffAugment,
NeurIPS 2020).

With a few thousand faces of a few people, a discriminator memorises the real faces and its
gradients stop teaching the generator. Transforming real and generated faces alike, with
operations gradients flow through, keeps it from memorising without changing what it learns to
tell apart (the transforms are the same for both sides, so they do not leak into the faces).
Each image draws its own transform; images are in [-1, 1], ``[B, 3, H, W]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo import UsageError

POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ``("color", "translation")``; empty or ``none`` -> ``()``."""
    names = tuple(n.strip() for n in str(text).split(",") if n.strip() and n.strip() != "none")
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
    return names


def policy_option(text: str) -> tuple[str, ...]:
    """``--augment``'s transforms, or one ``UsageError`` line naming the valid ones."""
    try:
        return parse_policy(text)
    except ValueError as error:
        raise UsageError(f"--augment: {error}") from None


def _uniform(images: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.empty(len(images), 1, 1, 1, device=images.device, dtype=images.dtype).uniform_(low, high)


def color(images: torch.Tensor) -> torch.Tensor:
    """Random brightness, saturation and contrast, each image its own."""
    images = images + _uniform(images, -0.5, 0.5)
    grey = images.mean(dim=1, keepdim=True)
    images = (images - grey) * _uniform(images, 0.0, 2.0) + grey
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * _uniform(images, 0.5, 1.5) + mean


def translation(images: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y, filling with zeros."""
    shift = torch.empty(len(images), 2, device=images.device).uniform_(-2 * ratio, 2 * ratio)
    theta = torch.zeros(len(images), 2, 3, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = shift  # grid units: the image spans [-1, 1]
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid.to(images.dtype), mode="nearest", padding_mode="zeros", align_corners=False)


def cutout(images: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ``ratio`` of the size at a random place in each image."""
    batch, _, height, width = images.shape
    size_h, size_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    top = torch.randint(0, height - size_h + 1, (batch, 1, 1), device=images.device)
    left = torch.randint(0, width - size_w + 1, (batch, 1, 1), device=images.device)
    rows = torch.arange(height, device=images.device).view(1, height, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, width)
    inside = (rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w)
    return images * (~inside).unsqueeze(1).to(images.dtype)


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}


def augment(images: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """``images`` through each transform of ``policy`` in order; unchanged for an empty policy."""
    for name in policy:
        images = TRANSFORMS[name](images)
    return images
