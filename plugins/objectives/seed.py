"""``gan_seed``: wav2pix's own training iteration, as its ``scripts/trainer.py`` ran it.

Duarte et al., ICASSP 2019 (github.com/imatge-upc/wav2pix). Any encoder, generator and
discriminator train this way with ``train --objective gan_seed`` (or ``--step seed``), and
``bench`` times this same step beside ours. What makes it the reference's iteration (every
difference from our ``gan`` objective is in docs/WAV2PIX.md):

- the batch is moved to the device (and made contiguous) at the start of the iteration, and the
  target labels are built on the host and copied over, as the reference's ``Variable(x).cuda()``
  calls did (``bench`` feeds this step from pageable host memory, as the reference's loader did);
- discriminator update: encoder and generator run with gradients; the discriminator scores the
  fakes, the real faces and the mismatched faces in three forwards. The fakes are not detached,
  so its loss also flows back through the generator (those gradients are cleared before the
  generator's update: wasted work, as in the reference);
- generator update: encoder and generator run a second time (fresh dropout masks, a second
  update of the BatchNorm statistics); the discriminator scores the new fakes and the real faces
  (two more forwards, its parameters left trainable). Spectral norm runs one power iteration per
  forward, as torch's parametrization does in training mode: five for the discriminator and two
  for the generator per iteration;
- least squares on raw scores against those labels (real 0.9, fake and mismatched 0, the
  generator's target 1), then feature matching on batch-mean trunk activations, L1 to the paired
  face and the speaker classifier's cross entropy, weighted and summed in the reference's order;
- float32, and plain Adam with the per-parameter loop of its time.

Losses stay on the device as tensors; the trainer reads them once per log interval.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from zoo import Batch, Objective, ObjectiveContext, UsageError

from .augment import policy_option

SEED_LOSS = "lsgan"  # the reference's criterion: nn.MSELoss on raw scores
SEED_TERMS = ("feature_matching", "l1", "identity")  # the reference's order of summation
LABEL_SMOOTHING = 0.1  # one-sided: the real target is 0.9


def plain_adam(modules, lr: float, betas: tuple) -> torch.optim.Adam:
    """Adam with the per-parameter loop of its time (no multi-tensor or fused kernels)."""
    params = [p for module in modules for p in module.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=lr, betas=betas, foreach=False, fused=False)


def local_gradients(module: nn.Module):
    """DDP's ``no_sync()`` for a wrapped module, a no-op for any other.

    Each update of this iteration also sends gradients into the other side's parameters (the
    discriminator's loss into the generator, the generator's loss into the discriminator); those
    are cleared before that side's own update, so averaging them across ranks would only cost a
    second all-reduce of every weight's gradient per iteration. Under ``no_sync`` they stay
    local; each update averages the gradients of the side it steps, as one process would see them.
    """
    no_sync = getattr(module, "no_sync", None)
    return no_sync() if no_sync is not None else contextlib.nullcontext()


class SeedObjective(Objective):
    """wav2pix's iteration: two generator passes, five discriminator forwards, the reference's
    losses, float32, plain Adam at ``--lr-g`` and ``--lr-d``."""

    @classmethod
    def check(cls, config) -> None:
        """The reference's procedure is float32 with its own losses: refuse anything else."""
        if config.amp:
            raise UsageError("--amp: the gan_seed objective is wav2pix's float32 iteration; "
                             "drop --amp, or train with --objective gan")
        if policy_option(config.augment):
            raise UsageError(f"--augment {config.augment}: the gan_seed objective is wav2pix's iteration, "
                             "which saw no augmentation; use --objective gan to augment")
        if config.loss != SEED_LOSS:
            raise UsageError(f"--loss {config.loss}: the gan_seed objective trains with wav2pix's least "
                             f"squares ({SEED_LOSS}); use --objective gan for other losses")
        others = [term for term in config.terms if term not in SEED_TERMS]
        if others:
            raise UsageError(f"--terms {','.join(others)}: the gan_seed objective knows only wav2pix's terms "
                             f"({', '.join(SEED_TERMS)}); use --objective gan for others")

    def __init__(self, context: ObjectiveContext):
        super().__init__(context)
        if context.discriminator is None:
            raise ValueError("the gan_seed objective needs a discriminator")
        config = context.config
        betas = (config.beta1, config.beta2)
        self.optimizers = {"generator": plain_adam([context.model], config.lr_g, betas),
                           "discriminator": plain_adam([context.discriminator], config.lr_d, betas)}
        # The chosen seed terms with their weights (--l1-coef, --l2-coef, --softmax-coef, --term-coef).
        weights = {term.name: term.coefficient for term in context.generator_terms()}
        self.weights = {name: weights[name] for name in SEED_TERMS if name in weights}
        self.device = context.device
        self.model, self.discriminator = context.model, context.discriminator  # what runs forward

    def bind(self, wrap) -> None:
        """Run through the wrapped (DDP or compiled) model and discriminator."""
        self.model, self.discriminator = wrap(self.context.model), wrap(self.context.discriminator)

    def step(self, batch: Batch) -> dict:
        """One reference iteration on ``batch`` (on the device, or in host memory)."""
        wave, image = self._to_device(batch.wave), self._to_device(batch.image)
        wrong = None if batch.wrong is None else self._to_device(batch.wrong)
        identity = batch.identity.to(self.device)
        count = wave.shape[0]
        real_labels, fake_labels = torch.ones(count), torch.zeros(count)
        smoothed_real_labels = real_labels - LABEL_SMOOTHING
        real_labels, fake_labels = real_labels.to(self.device), fake_labels.to(self.device)
        smoothed_real_labels = smoothed_real_labels.to(self.device)
        stats = self._discriminator_update(wave, image, wrong, smoothed_real_labels, fake_labels)
        stats.update(self._generator_update(wave, image, identity, real_labels))
        return stats

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.float().to(self.device).contiguous()

    def _discriminator_update(self, wave, image, wrong, smoothed_real_labels, fake_labels) -> dict:
        self.context.discriminator.zero_grad()
        with local_gradients(self.model):
            fake, embedding, _ = self.model(wave)
        fake_scores, _ = self.discriminator(fake, embedding)
        fake_loss = F.mse_loss(fake_scores, fake_labels)
        real_scores, _ = self.discriminator(image, embedding)
        d_loss = F.mse_loss(real_scores, smoothed_real_labels) + fake_loss
        stats = {"d_real": real_scores.detach().mean(), "d_fake": fake_scores.detach().mean()}
        if wrong is not None:  # the reference always had mismatched faces
            wrong_scores, _ = self.discriminator(wrong, embedding)
            d_loss = d_loss + F.mse_loss(wrong_scores, fake_labels)
            stats["d_wrong"] = wrong_scores.detach().mean()
        d_loss.backward()
        self.optimizers["discriminator"].step()
        stats["d_loss"] = d_loss.detach()
        return stats

    def _generator_update(self, wave, image, identity, real_labels) -> dict:
        self.context.model.zero_grad()
        fake, embedding, logits = self.model(wave)
        with local_gradients(self.discriminator):
            scores, fake_activation = self.discriminator(fake, embedding)
            _, real_activation = self.discriminator(image, embedding)
        adversarial = F.mse_loss(scores, real_labels)
        terms = {}
        if "feature_matching" in self.weights:
            terms["feature_matching"] = F.mse_loss(fake_activation.mean(0), real_activation.mean(0).detach())
        if "l1" in self.weights:
            terms["l1"] = F.l1_loss(fake, image)
        if "identity" in self.weights and logits is not None:
            terms["identity"] = F.cross_entropy(logits, identity)
        g_loss = adversarial
        for name, value in terms.items():
            g_loss = g_loss + self.weights[name] * value
        g_loss.backward()
        self.optimizers["generator"].step()
        stats = {"g_adversarial": adversarial.detach(), **{f"g_{k}": v.detach() for k, v in terms.items()}}
        stats["g_loss"] = g_loss.detach()
        return stats
