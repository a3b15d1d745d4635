"""The speaker classifier that wav2pix trains on the speech embedding, with the generator.

Its cross entropy (the ``identity`` generator term) keeps the embedding speaker-discriminative.
Upstream hard-coded 10 classes; here the number of identities comes from the dataset in use.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.model.init_weights import init_weights

HIDDEN = 200  # wav2pix's hidden width


class SpeakerClassifier(nn.Module):
    """Linear embed_dim -> 200, BatchNorm1d, LeakyReLU 0.2, Linear 200 -> N, BatchNorm1d.

    ``forward(embedding[B, embed_dim]) -> logits[B, num_classes]``. The output batch norm is the
    reference's; its logits are raw scores for cross entropy.
    """

    def __init__(self, embed_dim: int, num_classes: int):
        super().__init__()
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be positive, got {embed_dim}")
        if num_classes < 1:
            raise ValueError(f"the speaker classifier needs at least one identity, got {num_classes}")
        self.embed_dim = int(embed_dim)
        self.num_classes = int(num_classes)
        self.net = nn.Sequential(
            nn.Linear(embed_dim, HIDDEN),
            nn.BatchNorm1d(HIDDEN),
            nn.LeakyReLU(0.2),
            nn.Linear(HIDDEN, num_classes),
            nn.BatchNorm1d(num_classes),
        )
        init_weights(self)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """``[B, embed_dim] -> [B, num_classes]`` logits."""
        return self.net(embedding)
