"""SF2F's face decoder (Bai et al., ACM MM 2022; BAI-Yeqi/SF2F_PyTorch ``models/face_decoders.py``
``FaceGanDecoder`` and ``models/networks.py`` ``upBlock``), rebuilt.

A linear layer (no bias) lifts the embedding to ``2 * width`` maps of 4x4, BatchNorm1d and a gated
linear unit halve them to ``width``; then upsampling blocks, each nearest-neighbour x2, Conv 3x3
(no bias), BatchNorm and a gated linear unit, halve the width while doubling the size (four
blocks to 64 px, five to 128 px); a Conv 3x3 with LeakyReLU and a Conv 1x1 to RGB end it.
``width`` is their ``noise_dim`` (512, the embedding's size in their configuration).

Their configuration names ``activation: leakyrelu-0.1``, but ``FaceGanDecoder`` takes and ignores
it: the blocks' nonlinearity is the GLU and the last one PyTorch's default LeakyReLU (0.01). We
rebuild what their code runs. Theirs ends without a squashing function; ours ends in tanh,
because every generator here draws in [-1, 1] (the contract).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from zoo import Generator, init_weights

SIZES = (64, 128)


def up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Nearest x2, Conv 3x3 to twice the width, BatchNorm, GLU over channels (their ``upBlock``)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(in_channels, 2 * out_channels, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(2 * out_channels), nn.GLU(dim=1))


class Sf2fGenerator(Generator):
    """SF2F's upsampling decoder; see the module docstring."""

    def __init__(self, image_size: int = 64, embed_dim: int = 512, z_dim: int = 0, width: int = 512):
        if image_size not in SIZES:
            raise ValueError(f"image_size {image_size} is not supported; choose from 64, 128")
        super().__init__(image_size=image_size, embed_dim=embed_dim, z_dim=z_dim)
        blocks = int(math.log2(image_size)) - 2  # 4 px doubled to the image size
        if width % (1 << blocks):
            raise ValueError(f"width {width} must divide by {1 << blocks} at {image_size} px")
        self.width = int(width)
        self.fc = nn.Sequential(nn.Linear(embed_dim + z_dim, 2 * width * 16, bias=False),
                                nn.BatchNorm1d(2 * width * 16), nn.GLU(dim=1))
        widths = [width >> i for i in range(blocks + 1)]
        self.up = nn.Sequential(*(up_block(a, b) for a, b in zip(widths, widths[1:])))
        self.to_rgb = nn.Sequential(nn.Conv2d(widths[-1], widths[-1], 3, 1, 1), nn.LeakyReLU(),
                                    nn.Conv2d(widths[-1], 3, 1, 1, 0), nn.Tanh())
        init_weights(self)

    def forward(self, embedding: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``[B, embed_dim]`` (and noise) -> faces ``[B, 3, S, S]`` in [-1, 1]."""
        if self.z_dim:
            if z is None:
                z = torch.randn(embedding.shape[0], self.z_dim, device=embedding.device, dtype=embedding.dtype)
            embedding = torch.cat([embedding, z], dim=1)
        maps = self.fc(embedding).view(embedding.shape[0], self.width, 4, 4)
        return self.to_rgb(self.up(maps))
