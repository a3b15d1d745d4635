"""The ``diffusion`` objective: the speech encoder and the UNet learn together by flow matching.

No discriminator is trained (the run builds its default one, as ``retrieval``'s does, and it is
left untouched). When the model has its speaker classifier, its cross entropy on the embedding is
added, weighted by ``--softmax-coef``, so the condition stays speaker-discriminative: the flow
loss alone rewards an embedding only as far as it helps denoise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from plugins.diffusion.generator import DiffusionGenerator
from zoo import Batch, Objective, ObjectiveContext, UsageError

# The generators this objective can train: their factories build a DiffusionGenerator.
FLOW_GENERATORS = ("diffusion_unet",)


class FlowNetwork(nn.Module):
    """Encoder, flow generator and speaker classifier as one module (so DDP sees one forward):
    ``(wave, x_t, t, keep) -> (velocity, speaker logits or None)``."""

    def __init__(self, encoder: nn.Module, generator: DiffusionGenerator, classifier):
        super().__init__()
        self.encoder = encoder
        self.generator = generator
        self.classifier = classifier

    def forward(self, wave, x_t, t, keep):
        embedding = self.encoder(wave)
        logits = self.classifier(embedding) if self.classifier is not None else None
        return self.generator.velocity(x_t, t, embedding, keep), logits


class DiffusionObjective(Objective):
    """Flow matching (``x_t = (1 - t) x0 + t noise``, target velocity ``noise - x0``, t uniform in
    [0, 1]) with the condition dropped at the generator's ``condition_dropout`` rate, plus the
    speaker classifier's cross entropy; one Adam at ``--lr-g`` over encoder, UNet and classifier."""

    def __init__(self, context: ObjectiveContext):
        super().__init__(context)
        model = context.model
        if not isinstance(model.generator, DiffusionGenerator):
            raise ValueError("the diffusion objective trains a flow-matching generator: --generator "
                             + " or ".join(FLOW_GENERATORS))
        self.network = FlowNetwork(model.encoder, model.generator, model.classifier)
        self.optimizers = {"generator": context.optimizer([model], context.config.lr_g)}
        self.classifier_coef = float(context.config.softmax_coef)
        self.run = self.network

    @classmethod
    def check(cls, config) -> None:
        """Refuse a generator that is not a flow-matching one, before any work."""
        generators = [config.generator] + [s.get("options", {}).get("generator") for s in config.stages]
        for name in filter(None, generators):
            if name not in FLOW_GENERATORS:
                raise UsageError(f"the diffusion objective trains a flow-matching generator "
                                 f"(--generator {' or '.join(FLOW_GENERATORS)}), not '{name}'")

    def bind(self, wrap) -> None:
        """Run the network through the wrapper (DDP or compiled)."""
        self.run = wrap(self.network)

    def step(self, batch: Batch) -> dict:
        """One flow-matching step on a batch of clips and their faces."""
        faces = batch.image
        rows = faces.shape[0]
        noise = torch.randn_like(faces)
        t = torch.rand(rows, device=faces.device)
        keep = torch.rand(rows, device=faces.device) >= self.context.model.generator.condition_dropout
        x_t = (1 - t)[:, None, None, None] * faces + t[:, None, None, None] * noise
        with self.context.autocast():
            velocity, logits = self.run(batch.wave, x_t, t, keep)
        flow = F.mse_loss(velocity.float(), noise - faces)
        stats = {"flow_loss": flow.detach()}
        total = flow
        if logits is not None and self.classifier_coef > 0:
            classification = F.cross_entropy(logits.float(), batch.identity)
            total = total + self.classifier_coef * classification
            stats["c_loss"] = classification.detach()
        optimizer = self.optimizers["generator"]
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        stats["g_loss"] = total.detach()
        return stats
