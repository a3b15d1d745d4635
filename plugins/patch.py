"""A patch discriminator: a shallow conditional critic that judges local texture, not whole faces.

The pixel loss that keeps a generated face on its paired face (``l1``) pulls it towards the
average of the faces a voice could have, which is blurred; pix2pix (Isola et al., CVPR 2017)
pairs such a loss with a "PatchGAN" critic whose receptive field covers only a patch, so the
critic models the high frequencies the pixel loss leaves soft. Here a few spectral-normed
strided convolutions (as the ``dcgan`` trunk's first layers) end at a map of patches, the speech
embedding is tiled over that map, and a 3x3 head scores every patch. The contract's one score
per image is the mean of the patch scores, so every patch's verdict counts alike.
"""

from __future__ import annotations

import torch
from torch import nn

from plugins.dcgan import (SIZES, SN_WARMUP, check_image_shape, check_image_size, check_sn_warmup, check_width,
                           strided_stack)
from zoo import Discriminator, hookimpl, init_weights

MAX_WIDTH = 256  # channels stop doubling here


def patch_trunk(depth: int, width: int, sn_warmup: int) -> tuple[nn.Sequential, int]:
    """The dcgan family's ``strided_stack``, ``depth`` layers from ``width`` channels doubling up
    to ``MAX_WIDTH``; returns (trunk, its output channels)."""
    widths = (3,) + tuple(min(width * 2 ** i, MAX_WIDTH) for i in range(depth))
    return strided_stack(widths, sn_warmup), widths[-1]


def receptive_field(depth: int) -> int:
    """The pixels one patch score sees: ``depth`` 4x4 stride-2 layers, then the 3x3 head."""
    field, jump = 1, 1
    for _ in range(depth):
        field, jump = field + 3 * jump, jump * 2
    return field + 2 * jump


class PatchDiscriminator(Discriminator):
    """Scores every patch of a face, conditioned on the speech; the image's score is their mean.

    ``depth`` strided layers (3: an 8x8 map of 38-pixel patches at 64 px, 16x16 at 128 px),
    ``width`` channels in the first (doubling to 256). ``sn_warmup``: power iterations before
    the first forward, as ``dcgan``'s. Measured on youtubers at 64 px (docs/RESULTS.md): 13%
    faster steps than ``dcgan_half`` and the same faces (14 minutes: verification 97.9% vs
    98.4%, Fréchet 7.5x vs 7.4x the floor), so not the default.
    """

    def __init__(self, image_size: int = 64, embed_dim: int = 128, depth: int = 3, width: int = 32,
                 sn_warmup: int = SN_WARMUP):
        super().__init__(image_size=check_image_size(image_size), embed_dim=embed_dim)
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be positive, got {embed_dim}")
        if not 1 <= depth <= 5:
            raise ValueError(f"depth is the number of strided layers, 1 to 5, not {depth}")
        self.trunk, channels = patch_trunk(depth, check_width(width), check_sn_warmup(sn_warmup))
        self.map_size = image_size // 2 ** depth
        self.head = nn.Conv2d(channels + embed_dim, 1, 3, padding=1, bias=False)
        init_weights(self)  # the plain head gets N(0, 0.02); spectral-normed layers keep torch's

    def patch_scores(self, image: torch.Tensor, embedding: torch.Tensor):
        """-> (raw score of every patch ``[B, M, M]``, trunk features ``[B, C, M, M]``)."""
        check_image_shape(image, self.image_size)
        features = self.trunk(image)
        tiled = embedding[:, :, None, None].expand(-1, -1, self.map_size, self.map_size)
        return self.head(torch.cat([features, tiled], dim=1)).squeeze(1), features

    def forward(self, image: torch.Tensor, embedding: torch.Tensor):
        """-> (mean patch score ``[B]``, trunk features ``[B, C, M, M]``)."""
        patches, features = self.patch_scores(image, embedding)
        return patches.mean(dim=(1, 2)), features


@hookimpl
def register_discriminators(register):
    """Register ``patch``."""
    register("patch", PatchDiscriminator, sizes=SIZES,
             description="a PatchGAN critic (Isola et al. 2017): scores 38-px patches; 13% faster steps than dcgan_half")
