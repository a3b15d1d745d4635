"""One training iteration of the conditional GAN (wav2pix's update, at half its generator cost).

The reference ran the encoder and generator twice per iteration and the discriminator five
times. Here the fakes are computed once and detached for the discriminator's update; the
discriminator scores real, fake and mismatched pairs with one evaluation of its spectral-normed
weights (one batched forward on the GPU); its parameters are frozen while the generator's loss
flows through it. Losses stay on the device as tensors: the
caller reads them once per log interval, so the loop never waits on the host.

Options (``--arg objective.KEY=VALUE``): ``r1`` (gamma of the zero-centred gradient penalty on
real pairs, Mescheder et al., ICML 2018; 0, off, by default), ``variety`` (best of K noise draws,
see ``plugins.objectives.variety``; 1, off) and ``classifier_coef`` (the weight of a
discriminator identity head's cross entropy, voice2face's).
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from zoo import Batch, Objective, ObjectiveContext, TermInputs, UsageError

from .augment import augment, policy_option
from .variety import check_variety, closest_noise


class GanStep:
    """Our training iteration: callable on a ``Batch``, returning detached loss tensors."""

    def __init__(self, model: nn.Module, discriminator: nn.Module, raw_discriminator: nn.Module,
                 adversarial: nn.Module, terms: list, optimizer_g, optimizer_d,
                 *, autocast_dtype: Optional[torch.dtype] = None,
                 memory_format: torch.memory_format = torch.contiguous_format,
                 use_wrong: bool = True, classifier_coef: float = 1.0, augment_policy: tuple = (),
                 r1: float = 0.0, variety: int = 1, raw_model: Optional[nn.Module] = None):
        self.model = model  # SpeechToFace, possibly DDP-wrapped or compiled
        self.raw_model = raw_model or model  # the plain module: draws the best-of-K candidates
        self.discriminator = discriminator  # possibly DDP-wrapped: used for its own update
        self.raw_discriminator = raw_discriminator  # the plain module: scored for the generator
        self.adversarial = adversarial
        self.terms = terms
        self.optimizer_g = optimizer_g
        self.optimizer_d = optimizer_d
        self.autocast_dtype = autocast_dtype
        self.memory_format = memory_format  # the layout the models were put in
        self.use_wrong = use_wrong  # False for an unconditional discriminator: a real face is real
        # A discriminator with an identity head (voice2face's) also learns to name real faces.
        self.classifies = hasattr(raw_discriminator, "classify")
        self.classifier_coef = classifier_coef
        self.augment_policy = augment_policy  # DiffAugment on every image the discriminator sees
        self.r1 = r1  # gamma of the gradient penalty on real pairs (0: off)
        self.variety = variety  # noise candidates per clip, the closest to the paired face trained (1: off)
        # Groups scored one by one on the CPU, with the plain module only (DDP expects one forward).
        on_cpu = next(raw_discriminator.parameters()).device.type == "cpu"
        self.score_separately = on_cpu and discriminator is raw_discriminator

    def autocast(self, device: torch.device):
        """bf16 autocast where asked; a no-op context otherwise."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.autocast_dtype)

    def __call__(self, batch: Batch) -> dict:
        device = batch.wave.device
        noise = None
        if self.variety > 1:
            noise = closest_noise(self.raw_model, batch.wave, batch.image, self.variety, self.autocast(device))
        with self.autocast(device):
            fake, embedding, logits = self.model(batch.wave, noise)
        fake = fake.float().contiguous(memory_format=self.memory_format)
        stats = self.discriminator_update(batch, fake, embedding, device)
        stats.update(self.generator_update(batch, fake, embedding, logits, device))
        return stats

    def discriminator_update(self, batch: Batch, fake, embedding, device) -> dict:
        """Score real, fake and mismatched pairs with one set of weights; step the discriminator."""
        wrong_images = batch.wrong if self.use_wrong else None
        real_images = batch.image.detach().requires_grad_(True) if self.r1 else batch.image
        groups = [real_images, fake.detach()] + ([wrong_images] if wrong_images is not None else [])
        groups = [self.augmented(group) for group in groups]
        condition = embedding.detach().float()
        with self.autocast(device):
            scores, real_features = self.score_groups(groups, condition)
        real, fake_scores, *rest = scores.float().split(batch.wave.shape[0])
        wrong = rest[0] if rest else None
        loss = self.adversarial.discriminator_loss(real, fake_scores, wrong)
        extra = {}
        if self.r1:
            extra["d_r1"] = r1_penalty(real, real_images)
            loss = loss + 0.5 * self.r1 * extra["d_r1"]
        if self.classifies:
            real_logits = self.raw_discriminator.classify(real_features.float())
            extra["d_classifier"] = F.cross_entropy(real_logits, batch.identity)
            loss = loss + self.classifier_coef * extra["d_classifier"]
        self.optimizer_d.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_d.step()
        stats = {"d_loss": loss.detach(), "d_real": real.detach().mean(), "d_fake": fake_scores.detach().mean()}
        if wrong is not None:
            stats["d_wrong"] = wrong.detach().mean()
        stats.update({k: v.detach() for k, v in extra.items()})
        return stats

    def augmented(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` as the discriminator sees them: through ``--augment``'s transforms."""
        if not self.augment_policy:
            return images
        return augment(images, self.augment_policy).contiguous(memory_format=self.memory_format)

    def score_groups(self, groups: list, condition: torch.Tensor) -> tuple:
        """Discriminator scores of each group of images, concatenated in order, and the trunk
        features of the first group (the real faces).

        On the GPU one batched forward keeps the device busy. On the CPU three forwards of one
        batch each run faster than one of three batches (their activations stay in cache), so
        there the groups go one by one; spectral norm's weights are computed once and shared
        (``parametrize.cached``), so both ways mean the same single power iteration.
        """
        if not self.score_separately:
            scores, features = self.discriminator(torch.cat(groups), condition.repeat(len(groups), 1))
            return scores, features[: groups[0].shape[0]]
        with parametrize.cached():
            outputs = [self.discriminator(group, condition) for group in groups]
        return torch.cat([scores for scores, _ in outputs]), outputs[0][1]

    def generator_update(self, batch: Batch, fake, embedding, logits, device) -> dict:
        """Adversarial loss through the frozen discriminator plus the weighted terms."""
        critic = self.raw_discriminator
        critic.requires_grad_(False)  # gradients reach the fakes, not the discriminator
        try:
            with self.autocast(device):
                fake_scores, fake_features = critic(self.augmented(fake), embedding.float())
                with torch.no_grad():
                    _, real_features = critic(self.augmented(batch.image), embedding.detach().float())
        finally:
            critic.requires_grad_(True)
        adversarial = self.adversarial.generator_loss(fake_scores.float())
        face_logits = critic.classify(fake_features.float()) if self.classifies else None
        inputs = TermInputs(fake=fake, real=batch.image, fake_features=fake_features.float(),
                            real_features=real_features.float().detach(),
                            logits=None if logits is None else logits.float(), identity=batch.identity,
                            face_logits=face_logits)
        total = adversarial
        stats = {"g_adversarial": adversarial.detach()}
        for term in self.terms:
            value = term.module(inputs)
            stats[f"g_{term.name}"] = value.detach()
            total = total + term.coefficient * value
        self.optimizer_g.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer_g.step()
        stats["g_loss"] = total.detach()
        return stats


def r1_penalty(real_scores: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """The mean squared norm of the gradient of the real pairs' scores with respect to the real
    faces (R1, Mescheder et al., ICML 2018): zero-centred, it flattens the discriminator on the
    data, so the generator is not pushed past the real faces. ``real_images`` must require grad
    and the scores must come from them; the penalty itself can be differentiated."""
    (gradient,) = torch.autograd.grad(real_scores.sum(), real_images, create_graph=True)
    return gradient.float().square().sum(dim=(1, 2, 3)).mean()


def penalty_option(value) -> float:
    """``objective.r1`` as a gamma >= 0, or one ``UsageError`` line."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise UsageError(f"--arg objective.r1={value}: give the penalty's weight gamma, a number >= 0 (0: off)")
    return float(value)


class GanObjective(Objective):
    """wav2pix's conditional GAN: the generator side (encoder, generator, speaker classifier) and
    the discriminator, each with its own Adam at ``--lr-g`` and ``--lr-d``."""

    @classmethod
    def check(cls, config) -> None:
        """Refuse an ``--augment`` policy it does not know, or bad ``r1`` or ``variety``
        options, before any work."""
        policy_option(config.augment)
        penalty_option(config.objective_args.get("r1", 0.0))
        check_variety(config.objective_args.get("variety", 1), config.z_dim)

    def __init__(self, context: ObjectiveContext):
        super().__init__(context)
        model, discriminator = context.model, context.discriminator
        if discriminator is None:
            raise ValueError("the gan objective needs a discriminator")
        self.optimizers = {"generator": context.optimizer([model], context.config.lr_g),
                           "discriminator": context.optimizer([discriminator], context.config.lr_d)}
        self.adversarial = context.adversarial_loss()
        self.terms = context.generator_terms()
        self.gan_step = self._step_over(model, discriminator)

    def _step_over(self, model: nn.Module, discriminator: nn.Module, optimizer_g=None) -> GanStep:
        """The step over (possibly wrapped) ``model`` and ``discriminator``; the generator side's
        optimiser is ``optimizer_g`` when given (the fuser stage's), else the generator's."""
        c = self.context
        conditional = c.component_meta("discriminator", c.config.discriminator).get("conditional", True)
        return GanStep(model, discriminator, c.discriminator, self.adversarial, self.terms,
                       optimizer_g or self.optimizers["generator"], self.optimizers["discriminator"],
                       autocast_dtype=c.autocast_dtype, memory_format=c.memory_format,
                       use_wrong=conditional, classifier_coef=float(c.options.get("classifier_coef", 1.0)),
                       augment_policy=policy_option(c.config.augment), raw_model=c.model,
                       r1=penalty_option(c.options.get("r1", 0.0)),
                       variety=check_variety(c.options.get("variety", 1), c.config.z_dim))

    def bind(self, wrap) -> None:
        """Run through the wrapped (DDP or compiled) model and discriminator."""
        self.gan_step = self._step_over(wrap(self.context.model), wrap(self.context.discriminator))

    def step(self, batch: Batch) -> dict:
        """One GAN iteration (see ``GanStep``)."""
        return self.gan_step(batch)
