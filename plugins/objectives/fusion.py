"""The ``fuser`` objective: SF2F's second stage (Bai et al., ACM MM 2022; their ``train_fuser_only``
with ``options/vox/sf2f/sf2f_fuser.yaml``). The model's fuser learns to fuse the embeddings of
several clips of one speaker into one face, with the speech encoder and the face generator
frozen; the discriminator keeps training as in the GAN stage.

Each batch's clips are grouped by identity: a group's embeddings are fused into one embedding,
the frozen generator draws one face from it, and that face stands for every clip of the group,
so the run's adversarial loss and generator terms (L1 to each clip's real face, perceptual,
identity) train the fuser exactly as the GAN stage trained the generator. A group of one clip is
fused alone; larger batches give larger groups.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from plugins.objectives.gan import GanObjective
from zoo import Batch, Objective, ObjectiveContext


class FusingModel(nn.Module):
    """The frozen encoder and generator around the trainable fuser, answering like
    ``SpeechToFace``: ``(faces, embeddings, None)`` with each clip given its group's face and
    fused embedding. ``identity`` (the batch's speakers) is set before each call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.identity: Optional[torch.Tensor] = None

    def forward(self, wave: torch.Tensor, z: Optional[torch.Tensor] = None):
        """One fused face per identity of the batch, repeated for each of its clips."""
        with torch.no_grad():
            embeddings = self.model.encoder(wave)
        groups, members = torch.unique(self.identity, return_inverse=True)
        fused = torch.cat([self.model.fuser(embeddings[members == g].unsqueeze(0)) for g in range(len(groups))])
        faces = self.model.generator(fused, z)
        return faces[members], fused[members], None


class FuserObjective(GanObjective):
    """Trains the model's fuser alone (``--lr-g``) and the discriminator (``--lr-d``); see the
    module docstring."""

    def __init__(self, context: ObjectiveContext):
        Objective.__init__(self, context)
        model, discriminator = context.model, context.discriminator
        if getattr(model, "fuser", None) is None:
            raise ValueError("the fuser objective needs a model with a fuser (--fuser NAME)")
        if discriminator is None:
            raise ValueError("the fuser objective needs a discriminator")
        model.freeze("encoder", "generator")
        self.fusing = FusingModel(model)
        self.optimizers = {"fuser": context.optimizer([model.fuser], context.config.lr_g),
                           "discriminator": context.optimizer([discriminator], context.config.lr_d)}
        self.adversarial = context.adversarial_loss()
        self.terms = context.generator_terms()
        self.gan_step = self._step_over(self.fusing, discriminator, self.optimizers["fuser"])

    def bind(self, wrap) -> None:
        """Run through the wrapped (DDP or compiled) fusing model and discriminator."""
        self.gan_step = self._step_over(wrap(self.fusing), wrap(self.context.discriminator),
                                        self.optimizers["fuser"])

    def step(self, batch: Batch) -> dict:
        """One GAN iteration over the batch's fused faces."""
        self.fusing.identity = batch.identity
        return self.gan_step(batch)
