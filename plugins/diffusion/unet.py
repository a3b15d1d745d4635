"""A small UNet that predicts the flow-matching velocity of a face, conditioned on speech.

The condition is one global vector per face (the speech embedding, plus the time), so it enters
every residual block by adaptive group normalisation: the block's GroupNorm output is scaled and
shifted by ``(1 + scale, shift)`` computed from that vector (FiLM, as in Dhariwal and Nichol's
ADM "AdaGN"). Cross-attention would attend over a sequence of condition tokens; with a single
token its softmax is constant and it reduces to a learned projection of that token added to every
position, which AdaGN already provides at less cost.

Widths are kept small enough to train on a two-core CPU: at 64 px three resolutions (64, 32, 16)
of ``width * (1, 2, 4)`` channels, at 128 px four (128, 64, 32, 16) of ``width * (1, 2, 2, 4)``,
with one self-attention block at 16x16 (switch off with ``attention=False``).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

# Channel multipliers of each resolution, from the image size down to 16x16.
LEVELS = {64: (1, 2, 4), 128: (1, 2, 2, 4)}
TIME_SCALE = 1000.0  # t in [0, 1] stretched so the sinusoids' frequencies cover it as in DDPM


def groups_for(channels: int) -> int:
    """GroupNorm groups: 8, or fewer for narrow layers, always dividing ``channels``."""
    for groups in (8, 4, 2, 1):
        if channels % groups == 0:
            return groups
    return 1


def time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features ``[B, dim]`` of times ``t[B]`` in [0, 1] (Transformer positions)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = (t.float() * TIME_SCALE)[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class AdaptiveGroupNorm(nn.Module):
    """GroupNorm whose scale and shift come from the condition vector (FiLM)."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups_for(channels), channels, affine=False)
        self.film = nn.Linear(cond_dim, 2 * channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
        return self.norm(x) * (1 + scale) + shift


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv; adaptive GroupNorm, SiLU, conv (zero-initialised); plus the input."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups_for(in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = AdaptiveGroupNorm(out_channels, cond_dim)
        # Not zero-initialised (as ADM does): a fresh model must already depend on its condition,
        # which the generator contract checks; GroupNorm keeps the start stable anyway.
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h, cond)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the positions of a feature map, residual."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.norm = nn.GroupNorm(groups_for(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        attended = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(attended.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """``velocity(x[B, 3, S, S], cond[B, cond_dim]) -> [B, 3, S, S]``: one residual block per
    resolution on the way down and on the way up (the skip concatenated), a middle block with
    optional attention, strided convolutions down and nearest-neighbour upsampling up."""

    def __init__(self, image_size: int, cond_dim: int, width: int = 32, attention: bool = True):
        super().__init__()
        channels = [width * m for m in LEVELS[image_size]]
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.down_blocks, self.downsamples = nn.ModuleList(), nn.ModuleList()
        previous = width
        for i, c in enumerate(channels):
            self.down_blocks.append(ResBlock(previous, c, cond_dim))
            last = i == len(channels) - 1
            self.downsamples.append(nn.Identity() if last else nn.Conv2d(c, c, 3, stride=2, padding=1))
            previous = c
        self.middle = ResBlock(previous, previous, cond_dim)
        self.attention = SelfAttention(previous) if attention else nn.Identity()
        self.up_blocks, self.upsamples = nn.ModuleList(), nn.ModuleList()
        for i, c in reversed(list(enumerate(channels))):
            self.up_blocks.append(ResBlock(previous + c, c, cond_dim))
            self.upsamples.append(nn.Conv2d(c, c, 3, padding=1) if i > 0 else nn.Identity())
            previous = c
        self.head_norm = nn.GroupNorm(groups_for(previous), previous)
        self.head = nn.Conv2d(previous, 3, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        skips = []
        for block, down in zip(self.down_blocks, self.downsamples):
            h = block(h, cond)
            skips.append(h)
            h = down(h)
        h = self.attention(self.middle(h, cond))
        for block, up in zip(self.up_blocks, self.upsamples):
            h = block(torch.cat([h, skips.pop()], dim=1), cond)
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.head(F.silu(self.head_norm(h)))


class Conditioning(nn.Module):
    """The condition vector of a time and a speech embedding (or the learned null embedding that
    stands for "no speech", for classifier-free guidance)."""

    def __init__(self, embed_dim: int, cond_dim: int):
        super().__init__()
        self.time_dim = cond_dim
        self.time = nn.Sequential(nn.Linear(cond_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        # LayerNorm first: encoders' embeddings differ in scale; the guidance must not depend on it.
        self.speech = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, cond_dim), nn.SiLU(),
                                    nn.Linear(cond_dim, cond_dim))
        self.null = nn.Parameter(torch.randn(embed_dim) * 0.02)

    def forward(self, t: torch.Tensor, embedding: torch.Tensor, keep: Optional[torch.Tensor]) -> torch.Tensor:
        """``keep[B]`` (bool) says which rows keep their embedding; the others get the null one."""
        embedding = embedding.float()
        if keep is not None:
            embedding = torch.where(keep[:, None], embedding, self.null.to(embedding.dtype).expand_as(embedding))
        return F.silu(self.time(time_features(t, self.time_dim)) + self.speech(embedding))
