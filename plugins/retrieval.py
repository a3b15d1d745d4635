"""``retrieval``: the reference a GAN must beat. No face is drawn: the speech encoder is trained
as a speaker classifier, and the "generated" face is the mean real training face of the predicted
identity, or (``mode="medoid"``) the real training face nearest that mean in pixel space: a sharp
face of the right person instead of a blurred average.

It shows what the identity metrics reward on their own (naming the speaker) and what a generator
adds beyond it (a face for this clip, not the speaker's average). It is a generator and an
objective like any other, so ``generate``, ``evaluate`` and ``compare`` use it through the same
pipeline; the face bank is a buffer of the generator, saved in the checkpoint.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from plugins.objectives.classification import ClassifierObjective
from zoo import Generator, ObjectiveContext, hookimpl

MODES = ("mean", "medoid")


class RetrievalGenerator(Generator):
    """Names the speaker from the embedding (a linear head) and returns that identity's face."""

    def __init__(self, image_size: int = 64, embed_dim: int = 128, z_dim: int = 0, num_identities: int = 2,
                 mode: str = "mean"):
        super().__init__(image_size=image_size, embed_dim=embed_dim, z_dim=z_dim)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if num_identities < 1:
            raise ValueError(f"retrieval needs at least one identity, got {num_identities}")
        if z_dim:
            raise ValueError("retrieval draws no noise: use z_dim 0")
        self.mode = mode
        self.head = nn.Linear(embed_dim, num_identities)
        # Until ``fill`` puts real faces in, each identity's entry is its own noise picture.
        noise = torch.rand(num_identities, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
        self.register_buffer("faces", noise * 2 - 1)

    def logits(self, embedding: torch.Tensor) -> torch.Tensor:
        """Identity scores ``[B, num_identities]`` of speech embeddings."""
        return self.head(embedding.float())

    def forward(self, embedding: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The bank's face of each clip's most likely speaker ``[B, 3, S, S]``."""
        return self.faces[self.logits(embedding).argmax(dim=1)]

    @torch.no_grad()
    def fill(self, faces: torch.Tensor, labels: torch.Tensor) -> None:
        """Set the bank from real training faces ``[N, 3, S, S]`` and their identities ``[N]``."""
        for identity in range(self.faces.shape[0]):
            members = faces[labels == identity]
            if len(members) == 0:
                continue
            mean = members.mean(dim=0)
            if self.mode == "medoid":
                mean = members[(members - mean).flatten(1).square().sum(dim=1).argmin()]
            self.faces[identity] = mean.to(self.faces)


class RetrievalObjective(ClassifierObjective):
    """Fills the generator's face bank from the training split, then trains encoder and head as
    a speaker classifier (cross entropy)."""

    def speaker_network(self, context: ObjectiveContext) -> nn.Module:
        """Encoder then the retrieval generator's identity head."""
        generator = context.model.generator
        if not isinstance(generator, RetrievalGenerator):
            raise ValueError("the retrieval objective needs the retrieval generator (--generator retrieval)")
        return _Classifier(nn.ModuleDict({"encoder": context.model.encoder, "generator": generator}))

    def setup(self, train_dataset) -> None:
        """The face bank: every real training face, by identity."""
        from zoo import labels_of, load_real_faces

        self.context.model.generator.fill(load_real_faces(train_dataset), labels_of(train_dataset))


class _Classifier(nn.Module):
    """Encoder then the retrieval head: one module for DDP to wrap."""

    def __init__(self, network: nn.ModuleDict):
        super().__init__()
        self.network = network

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.network["generator"].logits(self.network["encoder"](wave))


@hookimpl
def register_generators(register):
    """Register the retrieval 'generator'."""
    register("retrieval", RetrievalGenerator, differentiable=False, noise=False,
             description="no generation: the mean (or medoid) real training face of the predicted speaker")


@hookimpl
def register_objectives(register):
    """Register the retrieval objective."""
    register("retrieval", RetrievalObjective, trains=("encoder", "generator.head"),
             description="speaker classification into the retrieval generator's head; fills its face bank")
