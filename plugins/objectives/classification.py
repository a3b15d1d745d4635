"""Objectives that train the speech encoder to tell speakers apart, without drawing faces.

``speaker_classifier`` is voice2face's pretraining (Wen, Singh and Raj, NeurIPS 2019): the voice
encoder learns as a speaker classifier, then is frozen while the GAN trains. Here the classifier
is the run's own speaker classifier on the embedding, so the same checkpoint carries both.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from zoo import Batch, Objective, ObjectiveContext


class ClassifierObjective(Objective):
    """Cross entropy of ``network(wave) -> logits`` against the speaker, at ``--lr-g``; logs the
    loss and the batch accuracy. Subclasses say which network (``speaker_network``)."""

    def __init__(self, context: ObjectiveContext):
        super().__init__(context)
        # One module over every part that learns, so DDP averages all their gradients.
        self.network = self.speaker_network(context)
        self.optimizers = {"encoder": context.optimizer([self.network], context.config.lr_g)}
        self.run = self.network

    def speaker_network(self, context: ObjectiveContext) -> nn.Module:
        """The module mapping waves ``[B, T]`` to speaker logits ``[B, N]``."""
        raise NotImplementedError

    def bind(self, wrap) -> None:
        """Run the network through the wrapper (DDP or compiled)."""
        self.run = wrap(self.network)

    def step(self, batch: Batch) -> dict:
        """One cross-entropy step on a batch of clips and their speakers."""
        with self.context.autocast():
            logits = self.run(batch.wave).float()
        loss = F.cross_entropy(logits, batch.identity)
        optimizer = self.optimizers["encoder"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        accuracy = (logits.detach().argmax(dim=1) == batch.identity).float().mean()
        return {"c_loss": loss.detach(), "c_accuracy": accuracy}


class SpeakerClassifierObjective(ClassifierObjective):
    """The speech encoder and the model's speaker classifier on its embedding."""

    def speaker_network(self, context: ObjectiveContext) -> nn.Module:
        """Encoder then the run's speaker classifier."""
        if context.model.classifier is None:
            raise ValueError("the speaker_classifier objective needs the model's speaker classifier")
        return nn.Sequential(context.model.encoder, context.model.classifier)
