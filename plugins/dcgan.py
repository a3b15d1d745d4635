"""wav2pix's DCGAN generator and discriminator, and a projection discriminator on the same trunk.

The generator and the ``dcgan`` discriminator reproduce wav2pix (Duarte et al., ICASSP 2019):
DCGAN-shaped stacks (Radford et al., ICLR 2016) of 4x4 convolutions with spectral normalisation
(Miyato et al., ICLR 2018) on every strided layer and no batch normalisation. The embedding enters
the generator as a 1x1 map and the discriminator tiled over its final 4x4 trunk map, as in the
text-to-image GAN of Reed et al. (ICML 2016) that wav2pix builds on. The ``projection``
discriminator conditions the same trunk by projection instead (Miyato and Koyama, ICLR 2018).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from zoo import Discriminator, Generator, hookimpl, init_weights

SIZES = (64, 128)
# Hidden widths, from the 4x4 map outwards (generator) or from the image inwards (discriminator).
GENERATOR_WIDTHS = {64: (512, 256, 128, 64), 128: (1024, 512, 256, 128, 64)}
DISCRIMINATOR_WIDTHS = {64: (64, 128, 256, 512), 128: (64, 128, 256, 512, 1024)}
TRUNK_SIZE = 4  # the discriminator trunk ends at 4x4


def check_image_size(image_size: int) -> int:
    """``image_size`` if this family supports it, else a ValueError naming the choices."""
    if image_size not in SIZES:
        raise ValueError(f"image_size {image_size} is not supported; choose from "
                         f"{', '.join(map(str, SIZES))}")
    return image_size


NORMALIZATIONS = ("spectral", "batch")
# How the generator doubles its maps: wav2pix's 4x4 stride-2 transposed convolution, or a
# nearest-neighbour resize then a 3x3 convolution, which cannot paint the checkerboard that
# uneven kernel overlap gives transposed convolutions (Odena et al., Distill 2016).
UPSAMPLINGS = ("transposed", "resize")
# Power iterations torch's spectral_norm runs when it is applied. wav2pix's own SpectralNorm
# (models/spectral_norm.py) ran none: its first forward iterated once from random vectors.
SN_WARMUP = 15


def spectral(module: nn.Module, warmup: int = SN_WARMUP, dim: int = 0) -> nn.Module:
    """``module`` with torch's spectral norm on its weight (viewed along ``dim``), its power
    iteration started from random vectors and run ``warmup`` times before the first forward.

    At torch's own 15 nothing is redrawn, so the default builds exactly what torch builds. In
    training mode every forward then runs one more iteration, as the reference's did.
    """
    module = spectral_norm(module, dim=dim)
    if warmup != SN_WARMUP:
        restart_power_iteration(module, warmup)
    return module


@torch.no_grad()
def restart_power_iteration(module: nn.Module, iterations: int) -> None:
    """Redraw a spectral-normed ``module``'s vectors u and v at random, then run ``iterations``
    power iterations (torch's order: u from v, then v from u)."""
    norm = module.parametrizations.weight[0]
    weight = module.parametrizations.weight.original
    matrix = weight.movedim(norm.dim, 0).flatten(1)
    u = F.normalize(torch.randn_like(norm._u), dim=0, eps=norm.eps)
    v = F.normalize(torch.randn_like(norm._v), dim=0, eps=norm.eps)
    for _ in range(iterations):
        u = F.normalize(matrix @ v, dim=0, eps=norm.eps)
        v = F.normalize(matrix.T @ u, dim=0, eps=norm.eps)
    norm._u.copy_(u)
    norm._v.copy_(v)


def check_sn_warmup(sn_warmup: int) -> int:
    """``sn_warmup`` if it is a count of iterations, else a ValueError."""
    if isinstance(sn_warmup, bool) or not isinstance(sn_warmup, int) or sn_warmup < 0:
        raise ValueError(f"sn_warmup must be a whole number of power iterations >= 0, not {sn_warmup!r}")
    return sn_warmup


def up_layer(in_channels: int, out_channels: int, first: bool, normalization: str = "spectral",
             sn_warmup: int = SN_WARMUP, upsampling: str = "transposed") -> nn.Module:
    """A 4x4 transposed convolution, no bias: 1x1 -> 4x4 first, then x2 (or, with
    ``upsampling="resize"``, x2 by a nearest resize and a 3x3 convolution).

    ``spectral``: wav2pix's spectral norm on the weight. The reference normalises every weight
    viewed along dim 0, transposed ones included (torch's default for ConvTranspose is dim 1),
    so dim=0 is passed explicitly. ``batch``: the plain convolution; the caller adds BatchNorm.
    """
    if upsampling == "resize" and not first:
        conv = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)
        conv = spectral(conv, sn_warmup) if normalization == "spectral" else conv
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv)
    stride, padding = (1, 0) if first else (2, 1)
    conv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride, padding, bias=False)
    return spectral(conv, sn_warmup, dim=0) if normalization == "spectral" else conv


def strided_stack(widths: tuple, sn_warmup: int = SN_WARMUP) -> nn.Sequential:
    """Spectral-normed Conv 4x4 s2 (no bias) + LeakyReLU 0.2 from each width to the next:
    every step halves the image."""
    layers = []
    for a, b in zip(widths, widths[1:]):
        conv = nn.Conv2d(a, b, 4, stride=2, padding=1, bias=False)
        layers += [spectral(conv, sn_warmup), nn.LeakyReLU(0.2, inplace=True)]
    return nn.Sequential(*layers)


def down_trunk(image_size: int, sn_warmup: int = SN_WARMUP, width: int = 64) -> tuple[nn.Sequential, int]:
    """The ``strided_stack`` from the image down to 4x4; returns (trunk, C).

    ``width``: the first layer's channels (wav2pix's 64); every layer scales with it.
    """
    widths = (3,) + tuple(w * width // 64 for w in DISCRIMINATOR_WIDTHS[image_size])
    return strided_stack(widths, sn_warmup), widths[-1]


def check_width(width: int) -> int:
    """``width`` if it can be a discriminator's first-layer channels, else a ValueError."""
    if width < 8 or width % 8:
        raise ValueError(f"width is a multiple of 8, at least 8, not {width}")
    return width


def check_image_shape(image: torch.Tensor, image_size: int) -> None:
    """A ValueError unless ``image`` is ``image_size`` square, the size a discriminator was built for."""
    if image.shape[-2:] != (image_size, image_size):
        raise ValueError(f"discriminator built for {image_size}x{image_size} images got {tuple(image.shape)}")


class DCGANGenerator(Generator):
    """wav2pix's generator: embedding (+ optional noise) as a 1x1 map, up to ``image_size``.

    Each hidden layer is a spectral-normed transposed conv, Dropout, ReLU; no batch norm; Tanh
    out. With ``z_dim=0`` (wav2pix) it has 3,804,160 parameters at 64 and 13,241,344 at 128.
    ``sn_warmup``: power iterations before the first forward (torch's 15; wav2pix's 0).
    """

    def __init__(self, image_size: int = 64, embed_dim: int = 128, z_dim: int = 0,
                 dropout: float = 0.5, normalization: str = "spectral", sn_warmup: int = SN_WARMUP,
                 upsampling: str = "transposed"):
        super().__init__(image_size=check_image_size(image_size), embed_dim=embed_dim, z_dim=z_dim)
        check_sn_warmup(sn_warmup)
        if embed_dim < 1 or z_dim < 0 or not 0 <= dropout < 1:
            raise ValueError(f"need embed_dim >= 1, z_dim >= 0 and 0 <= dropout < 1; got "
                             f"{embed_dim}, {z_dim} and {dropout}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, not {normalization!r}")
        if upsampling not in UPSAMPLINGS:
            raise ValueError(f"upsampling must be one of {', '.join(UPSAMPLINGS)}, not {upsampling!r}")
        widths = (embed_dim + z_dim,) + GENERATOR_WIDTHS[image_size]
        layers = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers.append(up_layer(a, b, i == 0, normalization, sn_warmup, upsampling))
            if normalization == "batch":
                layers.append(nn.BatchNorm2d(b))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers.append(nn.ReLU(inplace=True))
        layers += [up_layer(widths[-1], 3, False, normalization, sn_warmup, upsampling), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)  # spectral-normed weights keep torch's default, as the reference

    def forward(self, embedding: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``embedding[B, embed_dim]``, ``z[B, z_dim]`` or None -> ``image[B, 3, S, S]`` in [-1, 1].

        With ``z_dim > 0`` and no ``z``, noise is drawn from the default generator on the
        embedding's device, so ``torch.manual_seed`` makes generation repeatable.
        """
        x = embedding
        if self.z_dim > 0:
            if z is None:
                z = torch.randn(len(embedding), self.z_dim, device=embedding.device,
                                dtype=embedding.dtype)
            x = torch.cat([embedding, z.to(embedding.dtype)], dim=1)
        elif z is not None and z.numel() > 0:
            raise ValueError("this generator was built with z_dim=0 and takes no noise")
        return self.net(x[:, :, None, None])


def group_spread(features: torch.Tensor, group: int) -> torch.Tensor:
    """The minibatch standard deviation of Karras et al. (ICLR 2018), as one more feature map.

    Consecutive runs of ``group`` samples (fewer where the batch does not divide: the largest
    divisor of its size up to ``group``) share one number, their features' standard deviation
    averaged over channels and positions, appended as a constant channel. A generator that draws
    one face for every clip of a speaker gives groups with too little spread, which the head can
    see. Runs are consecutive, so the GAN step's real, fake and mismatched parts, concatenated
    for one forward, never share a group.
    """
    batch, channels, height, width = features.shape
    size = max(g for g in range(1, min(group, batch) + 1) if batch % g == 0)
    grouped = features.float().view(batch // size, size, channels, height, width)
    spread = (grouped.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))
    spread = spread.repeat_interleave(size).to(features.dtype)
    return torch.cat([features, spread[:, None, None, None].expand(-1, 1, height, width)], dim=1)


class _TrunkDiscriminator(Discriminator):
    """The shared spectral-normed trunk; subclasses decide how the embedding conditions it.

    ``batch_spread``: the size of the groups whose spread (``group_spread``) the head also sees;
    0 (the default, and wav2pix's) leaves it out. ``width``: the trunk's first-layer channels
    (wav2pix's 64); the discriminator's cost grows with its square.
    """

    def __init__(self, image_size: int, embed_dim: int, sn_warmup: int = SN_WARMUP, batch_spread: int = 0,
                 width: int = 64):
        super().__init__(image_size=check_image_size(image_size), embed_dim=embed_dim)
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be positive, got {embed_dim}")
        if batch_spread < 0 or batch_spread == 1:
            raise ValueError(f"batch_spread is a group size of at least 2 (0: off), not {batch_spread}")
        self.trunk, self.trunk_channels = down_trunk(image_size, check_sn_warmup(sn_warmup), check_width(width))
        self.batch_spread = batch_spread
        self.head_channels = self.trunk_channels + (1 if batch_spread else 0)

    def head_features(self, features: torch.Tensor) -> torch.Tensor:
        """The trunk's features as the head sees them: with the group spread where asked."""
        return group_spread(features, self.batch_spread) if self.batch_spread else features

    def trunk_features(self, image: torch.Tensor) -> torch.Tensor:
        """``image[B, 3, S, S]`` -> trunk activations ``[B, C, 4, 4]``."""
        check_image_shape(image, self.image_size)
        return self.trunk(image)


class DCGANDiscriminator(_TrunkDiscriminator):
    """wav2pix's discriminator: trunk, embedding tiled 4x4 and concatenated, plain 4x4 conv.

    2,765,824 parameters at 64 and 11,162,624 at 128 (no bias anywhere, as the reference).
    ``sn_warmup``: power iterations before the first forward (torch's 15; wav2pix's 0).
    """

    def __init__(self, image_size: int = 64, embed_dim: int = 128, sn_warmup: int = SN_WARMUP,
                 batch_spread: int = 0, width: int = 64):
        super().__init__(image_size, embed_dim, sn_warmup, batch_spread, width)
        self.head = nn.Conv2d(self.head_channels + embed_dim, 1, TRUNK_SIZE, bias=False)
        init_weights(self)  # the plain head gets N(0, 0.02); spectral-normed layers keep torch's

    def forward(self, image: torch.Tensor, embedding: torch.Tensor):
        """-> (raw score ``[B]``, trunk features ``[B, C, 4, 4]``)."""
        features = self.trunk_features(image)
        tiled = embedding[:, :, None, None].expand(-1, -1, TRUNK_SIZE, TRUNK_SIZE)
        score = self.head(torch.cat([self.head_features(features), tiled], dim=1))
        return score.view(len(image)), features


class ProjectionDiscriminator(_TrunkDiscriminator):
    """The dcgan trunk conditioned by projection (Miyato and Koyama, ICLR 2018).

    ``score = w . phi + <V e, phi>`` with ``phi`` the trunk features summed over space and ``e``
    the speech embedding (a continuous condition, so ``V`` is a linear map, not a lookup table).
    """

    def __init__(self, image_size: int = 64, embed_dim: int = 128, sn_warmup: int = SN_WARMUP,
                 batch_spread: int = 0, width: int = 64):
        super().__init__(image_size, embed_dim, sn_warmup, batch_spread, width)
        self.linear = spectral(nn.Linear(self.head_channels, 1), sn_warmup)
        self.project = spectral(nn.Linear(embed_dim, self.head_channels, bias=False), sn_warmup)
        init_weights(self)

    def forward(self, image: torch.Tensor, embedding: torch.Tensor):
        """-> (raw score ``[B]``, trunk features ``[B, C, 4, 4]``)."""
        features = self.trunk_features(image)
        pooled = self.head_features(features).sum(dim=(2, 3))
        score = self.linear(pooled).squeeze(1) + (self.project(embedding) * pooled).sum(dim=1)
        return score, features


def dcgan_bn(image_size: int = 64, embed_dim: int = 128, z_dim: int = 0, dropout: float = 0.0,
             upsampling: str = "transposed") -> DCGANGenerator:
    """The same widths as Radford et al.'s DCGAN generator: BatchNorm + ReLU, no spectral norm.

    Measured on the synthetic data at 64 px: after 150 steps its faces are named correctly by a
    nearest-mean-face test 75-78% of the time, against 11-43% for wav2pix's spectral-normed,
    dropout generator at any of the learning rates tried; so it is the CPU default.
    """
    return DCGANGenerator(image_size, embed_dim, z_dim, dropout, normalization="batch", upsampling=upsampling)


def dcgan_half(image_size: int = 64, embed_dim: int = 128, sn_warmup: int = SN_WARMUP,
               batch_spread: int = 0) -> DCGANDiscriminator:
    """wav2pix's discriminator at half its widths (32 to 256 channels at 64 px, a quarter of the
    multiply-adds). Measured on youtubers at 64 px, 670 steps each: the same faces as the full
    width (verification 97.9% vs 97.7%, Fréchet 0.087 vs 0.088) at 1.6x the pairs per second,
    since the discriminator is four fifths of a default step's work; so it is the CPU default.
    """
    return DCGANDiscriminator(image_size, embed_dim, sn_warmup, batch_spread, width=32)


@hookimpl
def register_generators(register):
    """Register ``dcgan`` (wav2pix's generator) and ``dcgan_bn`` (Radford's, the CPU default)."""
    register("dcgan", DCGANGenerator, sizes=SIZES,
             description="wav2pix's spectral-normed DCGAN generator (Dropout, no BN), 64 or 128 px")
    register("dcgan_bn", dcgan_bn, sizes=SIZES,
             description="DCGAN generator with BatchNorm (Radford et al. 2016): learns in minutes on a CPU")


@hookimpl
def register_discriminators(register):
    """Register ``dcgan`` (wav2pix's, embedding concatenated), ``dcgan_half`` and ``projection``."""
    register("dcgan", DCGANDiscriminator, sizes=SIZES,
             description="wav2pix's spectral-normed DCGAN discriminator, embedding concatenated")
    register("dcgan_half", dcgan_half, sizes=SIZES,
             description="wav2pix's discriminator at half width (32-256 at 64 px): 1.6x faster steps; the CPU default")
    register("projection", ProjectionDiscriminator, sizes=SIZES,
             description="the dcgan trunk conditioned by projection (Miyato and Koyama 2018)")
