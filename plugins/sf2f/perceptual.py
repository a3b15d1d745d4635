"""SF2F's perceptual term, with the nearest thing to FaceNet that can be had offline.

SF2F (Bai et al., ACM MM 2022; BAI-Yeqi/SF2F_PyTorch ``models/perceptual.py`` ``FaceNetLoss``)
compares generated and real faces in the hidden states of FaceNet (InceptionResnetV1 trained on
VGGFace2) with an L1 distance, the real side without gradients, weighted by 100. Those weights
are downloaded at run time, which this project never does. So:

- by default the term compares the two faces in the features of the discriminator's identity
  classifier (``TermInputs.fake_features`` / ``real_features``): a face-identity network trained
  during the run on the real training faces, and frozen while the generator's loss flows through
  it. It is a face network that knows these identities, not FaceNet: say so when reporting.
- given ``--arg objective.facenet_weights=PATH``, a TorchScript FaceNet the user exported (any
  module mapping faces ``[B, 3, 160, 160]``, standardised as FaceNet expects, i.e. our [-1, 1]
  pixels, to embeddings), the term is theirs: L1 between its embeddings of the fake and of the
  real face, the real side without gradients, the network frozen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from zoo import GeneratorTerm, TermInputs, UsageError

FACENET_SIZE = 160  # the face crops FaceNet was trained on


def load_facenet(path: str) -> torch.nn.Module:
    """A user's TorchScript FaceNet, frozen in eval mode; one clear line if it cannot be read."""
    if not Path(path).is_file():
        raise UsageError(f"facenet_weights: no file at {path}")
    try:
        network = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        raise UsageError(f"facenet_weights: {path} is not a TorchScript module ({str(exc).splitlines()[0]})") from None
    network.eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network


class PerceptualTerm(GeneratorTerm):
    """L1 between face features of the generated and the real face; see the module docstring."""

    def __init__(self, facenet_weights: Optional[str] = None):
        super().__init__()
        self.facenet = load_facenet(facenet_weights) if facenet_weights else None

    def train(self, mode: bool = True):
        """The FaceNet, when given, stays in eval mode (its batch norms are frozen statistics)."""
        super().train(mode)
        if self.facenet is not None:
            self.facenet.eval()
        return self

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        """The user's FaceNet on faces resized to its input size."""
        resized = F.interpolate(faces, size=(FACENET_SIZE, FACENET_SIZE), mode="bilinear", align_corners=False)
        return self.facenet(resized)

    def forward(self, inputs: TermInputs) -> torch.Tensor:
        """A scalar: mean |features(fake) - features(real)|, the real side a fixed target."""
        if self.facenet is None:
            return F.l1_loss(inputs.fake_features, inputs.real_features.detach())
        with torch.no_grad():
            target = self.embed(inputs.real)
        return F.l1_loss(self.embed(inputs.fake), target)
