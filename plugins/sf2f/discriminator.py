"""SF2F's discriminators (Bai et al., ACM MM 2022; BAI-Yeqi/SF2F_PyTorch ``models/discriminators.py``
and ``models/layers.py`` ``build_cnn``; the sizes of ``options/vox/sf2f/sf2f_1st_stage.yaml``),
rebuilt and mapped onto our contract, ``forward(image, embedding) -> (score[B], features)``.

Theirs are separate networks, each a trunk ``C4-64-2, C4-128-2, C4-256-2`` (4x4 stride-2
convolutions, no padding, BatchNorm and LeakyReLU 0.1 between them):
- the image patch discriminator: a 1x1 convolution to one logit per patch;
- the auxiliary classifier (``AcDiscriminator``): global average pooling, Linear to 1024, and two
  heads, real/fake and identity;
- the conditional patch discriminator (``CondPatchDiscriminator``, off in their VoxCeleb
  configuration): the speech embedding tiled over the trunk's map and concatenated, Conv 3x3
  (no bias), BatchNorm, LeakyReLU 0.2, then the 1x1 patch classifier.
Our mapping: one module holds the image patch network and the classifier's trunk (and, as
``sf2f_conditional``, the conditional patch network too). The score is the mean patch logit of
the image network (plus that of the conditional network): the adversarial loss sees one logit
per image where theirs averages the loss over patches. The classifier's 1024-d vector is the
``features`` (``classify`` names the identity from it; the ``gan`` objective trains it on real
faces, scaled by ``classifier_coef``, and the ``face_identity`` term asks the generator to make it
name the speaker, their ``ac_loss``). Their classifier's own real/fake head, which they weight
by 0.05, is not rebuilt: the image patch network is our discriminator's one adversarial judge.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo import Discriminator, init_weights

SIZES = (64, 128)
TRUNK = (64, 128, 256)
SLOPE = 0.1
CLASSIFIER_WIDTH = 1024


def trunk(widths: tuple = TRUNK) -> nn.Sequential:
    """Their ``build_cnn``: 4x4 stride-2 valid convolutions, BatchNorm and LeakyReLU between them."""
    layers, channels = [], 3
    for i, width in enumerate(widths):
        if i:
            layers += [nn.BatchNorm2d(channels), nn.LeakyReLU(SLOPE, inplace=True)]
        layers.append(nn.Conv2d(channels, width, 4, 2, 0))
        channels = width
    return nn.Sequential(*layers)


class Sf2fDiscriminator(Discriminator):
    """SF2F's image patch discriminator with the auxiliary identity classifier; see the module docstring."""

    conditional = False  # ``sf2f_conditional`` adds the conditional patch network

    def __init__(self, image_size: int = 64, embed_dim: int = 512, num_identities: int = 2):
        if image_size not in SIZES:
            raise ValueError(f"image_size {image_size} is not supported; choose from 64, 128")
        if num_identities < 1:
            raise ValueError(f"the identity classifier needs at least one identity, got {num_identities}")
        super().__init__(image_size=image_size, embed_dim=embed_dim)
        self.patches = nn.Sequential(trunk(), nn.Conv2d(TRUNK[-1], 1, 1))
        self.classifier_trunk = nn.Sequential(trunk(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                              nn.Linear(TRUNK[-1], CLASSIFIER_WIDTH))
        self.classifier = nn.Linear(CLASSIFIER_WIDTH, num_identities)
        self.num_identities = int(num_identities)
        if self.conditional:
            self.condition_trunk = trunk()
            self.joint = nn.Sequential(nn.Conv2d(TRUNK[-1] + embed_dim, TRUNK[-1], 3, 1, 1, bias=False),
                                       nn.BatchNorm2d(TRUNK[-1]), nn.LeakyReLU(0.2, inplace=True),
                                       nn.Conv2d(TRUNK[-1], 1, 1))
        init_weights(self)

    def forward(self, image: torch.Tensor, embedding: torch.Tensor):
        """``(score[B], classifier features[B, 1024])``."""
        score = self.patches(image).flatten(1).mean(dim=1)
        if self.conditional:
            maps = self.condition_trunk(image)
            tiled = embedding[:, :, None, None].expand(-1, -1, maps.shape[2], maps.shape[3])
            score = score + self.joint(torch.cat([maps, tiled.to(maps.dtype)], dim=1)).flatten(1).mean(dim=1)
        return score, self.classifier_trunk(image)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Identity logits ``[B, num_identities]`` from the features ``forward`` returned."""
        return self.classifier(features)


class Sf2fConditionalDiscriminator(Sf2fDiscriminator):
    """The same with SF2F's conditional patch discriminator added (the embedding tiled and concatenated)."""

    conditional = True
