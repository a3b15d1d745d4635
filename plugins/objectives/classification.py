"""Objectives that train the speech encoder to tell speakers apart, without drawing faces.

``speaker_classifier`` is voice2face's pretraining (Wen, Singh and Raj, NeurIPS 2019): the voice
encoder learns as a speaker classifier, then is frozen while the GAN trains. Here the classifier
is the run's own speaker classifier on the embedding, so the same checkpoint carries both.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from zoo import Batch, Objective, ObjectiveContext


class SpeakerClassifierObjective(Objective):
    """Cross entropy of the speaker classifier on the speech embedding; encoder and classifier
    learn at ``--lr-g``. Logs the loss and the batch accuracy."""

    def __init__(self, context: ObjectiveContext):
        super().__init__(context)
        model = context.model
        if model.classifier is None:
            raise ValueError("the speaker_classifier objective needs the model's speaker classifier")
        # One module over both, so DDP averages the gradients of both.
        self.network = nn.Sequential(model.encoder, model.classifier)
        self.optimizers = {"encoder": context.optimizer([self.network], context.config.lr_g)}
        self.run = self.network

    def bind(self, wrap) -> None:
        """Run encoder and classifier through the wrapper (DDP or compiled)."""
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
