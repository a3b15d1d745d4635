"""SF2F's attention fuser (Bai et al., ACM MM 2022; BAI-Yeqi/SF2F_PyTorch ``models/fusers.py``
``AttentionFuserV1`` over ``models/attention.py`` ``Attention``, as ``sf2f_fuser.yaml`` sets it:
``attention_type: general``, ``ignore_tanh: True``, ``normalize_fusion: True``), rebuilt.

The embeddings of a speaker's N segments attend to each other: each is projected (``W_a``, no
bias), scored against all N by a dot product, and a softmax over them mixes the segments; the
mix and the projected query are concatenated and mapped back to the embedding size (no bias, no
tanh). The N outputs are averaged and L2-normalised. Theirs starts from PyTorch's default
initialisation; ours starts the output map as the identity on the mix (and zero on the query), so
the frozen decoder sees embeddings near the segments' mean from the first step and training moves
away from there. Without positions the fuser is a function of
the set of segments: their order does not matter. It is trained in a stage of its own with the
encoder and the decoder frozen (the ``fuser`` objective).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AttentionFuser(nn.Module):
    """``embeddings[B, N, embed_dim]`` -> one L2-normalised ``[B, embed_dim]`` per speaker."""

    def __init__(self, embed_dim: int = 512, normalise: bool = True):
        super().__init__()
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be positive, got {embed_dim}")
        self.embed_dim = int(embed_dim)
        self.normalise = bool(normalise)
        self.query = nn.Linear(embed_dim, embed_dim, bias=False)  # their "general" score's W_a
        self.out = nn.Linear(2 * embed_dim, embed_dim, bias=False)
        with torch.no_grad():  # start from the attention's mix itself: near the mean of the segments
            self.out.weight.zero_()
            self.out.weight[:, :embed_dim].copy_(torch.eye(embed_dim))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Self-attention over the N segments, then their mean (normalised)."""
        query = self.query(embeddings)
        weights = torch.softmax(query @ embeddings.transpose(1, 2), dim=-1)  # [B, N, N]
        mixed = self.out(torch.cat([weights @ embeddings, query], dim=-1)).mean(dim=1)
        return F.normalize(mixed, dim=1) if self.normalise else mixed
