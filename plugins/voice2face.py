"""voice2face's generator and discriminator (Wen, Singh and Raj, "Face Reconstruction from Voice
using Generative Adversarial Networks", NeurIPS 2019; cmu-mlsp/reconstructing_faces_from_voices),
rebuilt from the paper and code.

- Generator: the unit speech embedding as a 1x1 map, transposed convolutions 4x4 (stride 1, then
  2) with ReLU, 64 -> 1024 -> 512 -> 256 -> 128 -> 64, and a 1x1 transposed convolution to RGB.
  During training, Gaussian noise (0.05) is added to the embedding and it is renormalised, as
  their training loop does. Theirs ends without a squashing function; ours ends in tanh, because
  every generator here draws in [-1, 1] (the contract).
- Discriminator: an unconditional face network, Conv 1x1 3 -> 32, then 4x4 stride-2 convolutions
  with LeakyReLU 0.2, 32 -> 64 -> 128 -> 256 -> 512, and a 4x4 convolution to a 64-d face
  embedding; two linear heads without bias on it: real/fake, and a classifier over the training
  identities (``classify``), trained on real faces. The generator is trained to fool the first
  head and to make the classifier name the speaker (the ``face_identity`` term).
At 128 px each network gains one more stride-2 stage (64 -> 32 channels), an extension of ours.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from zoo import Discriminator, Generator, hookimpl, init_weights

SIZES = (64, 128)
GENERATOR_WIDTHS = (1024, 512, 256, 128, 64)
DISCRIMINATOR_WIDTHS = (32, 64, 128, 256, 512)
FACE_EMBEDDING = 64


def _check(image_size: int) -> int:
    if image_size not in SIZES:
        raise ValueError(f"image_size {image_size} is not supported; choose from 64, 128")
    return image_size


class Voice2FaceGenerator(Generator):
    """voice2face's generator; see the module docstring."""

    def __init__(self, image_size: int = 64, embed_dim: int = 64, z_dim: int = 0, condition_noise: float = 0.05):
        super().__init__(image_size=_check(image_size), embed_dim=embed_dim, z_dim=z_dim)
        widths = GENERATOR_WIDTHS + ((32,) if image_size == 128 else ())
        layers = [nn.ConvTranspose2d(embed_dim + z_dim, widths[0], 4, 1, 0), nn.ReLU(inplace=True)]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 1, 1, 0), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.condition_noise = float(condition_noise)
        init_weights(self)

    def forward(self, embedding: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``[B, embed_dim]`` (and noise) -> faces ``[B, 3, S, S]`` in [-1, 1]."""
        if self.training and self.condition_noise > 0:  # their perturbation of the unit embedding
            embedding = F.normalize(embedding + self.condition_noise * torch.randn_like(embedding), dim=1)
        if self.z_dim:
            if z is None:
                z = torch.randn(embedding.shape[0], self.z_dim, device=embedding.device, dtype=embedding.dtype)
            embedding = torch.cat([embedding, z], dim=1)
        return self.net(embedding[:, :, None, None])


class Voice2FaceDiscriminator(Discriminator):
    """voice2face's unconditional discriminator with a real/fake head and an identity classifier."""

    def __init__(self, image_size: int = 64, embed_dim: int = 64, num_identities: int = 2):
        super().__init__(image_size=_check(image_size), embed_dim=embed_dim)
        if num_identities < 1:
            raise ValueError(f"the identity classifier needs at least one identity, got {num_identities}")
        widths = DISCRIMINATOR_WIDTHS + ((512,) if image_size == 128 else ())
        layers = [nn.Conv2d(3, widths[0], 1, 1, 0), nn.LeakyReLU(0.2, inplace=True)]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(widths[-1], FACE_EMBEDDING, 4, 1, 0)]
        self.trunk = nn.Sequential(*layers)
        self.real_fake = nn.Linear(FACE_EMBEDDING, 1, bias=False)
        self.classifier = nn.Linear(FACE_EMBEDDING, num_identities, bias=False)
        self.num_identities = int(num_identities)
        init_weights(self)

    def forward(self, image: torch.Tensor, embedding: torch.Tensor):
        """``(score[B], face embedding[B, 64])``; the speech embedding is not looked at."""
        features = self.trunk(image).flatten(1)
        return self.real_fake(features).squeeze(1), features

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Identity logits ``[B, num_identities]`` from the features ``forward`` returned."""
        return self.classifier(features)


@hookimpl
def register_generators(register):
    """Register voice2face's generator."""
    register("voice2face", Voice2FaceGenerator, sizes=SIZES,
             description="voice2face's generator (Wen et al. 2019): transposed convs 1024 -> 64, noisy unit condition")


@hookimpl
def register_discriminators(register):
    """Register voice2face's discriminator."""
    register("voice2face", Voice2FaceDiscriminator, sizes=SIZES, conditional=False, classifier_head=True,
             description="voice2face's unconditional face CNN with real/fake and identity-classifier heads")
