"""The losses: adversarial objectives over raw discriminator scores, and the generator's terms.

Adversarial objectives follow the matching-aware discriminator of Reed et al. (ICML 2016), which
wav2pix uses: the discriminator scores real pairs, generated pairs and mismatched ("wrong")
pairs (a real face with another speaker's speech), and learns to accept only the first. When a
dataset has a single identity there are no mismatched pairs and that term is dropped.

Generator terms are weighted at training time by a coefficient whose default (the wav2pix seed's
value) and CLI option name come with the registration.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from zoo import AdversarialLoss, GeneratorTerm, TermInputs, hookimpl


def _sum_over_negatives(loss_of, fake: torch.Tensor, wrong: Optional[torch.Tensor]) -> torch.Tensor:
    """``loss_of(fake)`` plus ``loss_of(wrong)`` when there are mismatched pairs."""
    total = loss_of(fake)
    return total if wrong is None else total + loss_of(wrong)


class LeastSquaresLoss(AdversarialLoss):
    """Least squares GAN (Mao et al., ICCV 2017) with wav2pix's targets.

    D: mean (D(real) - real_target)^2 + mean D(fake)^2 + mean D(wrong)^2; G: mean (D(fake) - 1)^2.
    wav2pix uses a one-sided smoothed real target of 0.9.
    """

    def __init__(self, real_target: float = 0.9):
        super().__init__()
        self.real_target = float(real_target)

    def discriminator_loss(self, real, fake, wrong=None):
        """Pull real scores to ``real_target`` and fake and mismatched scores to 0."""
        real_term = (real - self.real_target).square().mean()
        return real_term + _sum_over_negatives(lambda s: s.square().mean(), fake, wrong)

    def generator_loss(self, fake):
        """Pull the fakes' scores to 1."""
        return (fake - 1).square().mean()


class NonSaturatingLoss(AdversarialLoss):
    """The original GAN objective with the non-saturating generator loss (Goodfellow et al. 2014),
    on raw scores (logits)."""

    def discriminator_loss(self, real, fake, wrong=None):
        """Binary cross entropy: real pairs are 1, fake and mismatched pairs 0."""
        real_term = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        return real_term + _sum_over_negatives(
            lambda s: F.binary_cross_entropy_with_logits(s, torch.zeros_like(s)), fake, wrong)

    def generator_loss(self, fake):
        """``-log sigmoid(D(fake))``: strong gradients while the discriminator is winning."""
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


class HingeLoss(AdversarialLoss):
    """The hinge objective of SAGAN/BigGAN (Lim and Ye 2017; Miyato et al. 2018)."""

    def discriminator_loss(self, real, fake, wrong=None):
        """mean relu(1 - D(real)) + mean relu(1 + D(fake)) + mean relu(1 + D(wrong))."""
        real_term = F.relu(1 - real).mean()
        return real_term + _sum_over_negatives(lambda s: F.relu(1 + s).mean(), fake, wrong)

    def generator_loss(self, fake):
        """``-mean D(fake)``."""
        return -fake.mean()


class L1Term(GeneratorTerm):
    """Mean absolute error between the generated face and the face paired with the speech."""

    def forward(self, inputs: TermInputs) -> torch.Tensor:
        """A scalar: mean |fake - real|."""
        return F.l1_loss(inputs.fake, inputs.real)


class FeatureMatchingTerm(GeneratorTerm):
    """Feature matching (Salimans et al., NeurIPS 2016) as wav2pix does it: the MSE between the
    batch means of the discriminator's trunk features on fake and on real pairs."""

    def forward(self, inputs: TermInputs) -> torch.Tensor:
        """A scalar; the real side is a fixed target (detached)."""
        fake_mean = inputs.fake_features.mean(dim=0)
        real_mean = inputs.real_features.detach().mean(dim=0)
        return F.mse_loss(fake_mean, real_mean)


class IdentityTerm(GeneratorTerm):
    """Cross entropy of the speaker classifier on the speech embedding (wav2pix's softmax term):
    keeps the embedding speaker-discriminative."""

    def forward(self, inputs: TermInputs) -> torch.Tensor:
        """A scalar; 0 when the run has no speaker classifier (``logits`` is None)."""
        if inputs.logits is None:
            return inputs.fake.new_zeros(())
        return F.cross_entropy(inputs.logits, inputs.identity)


class FaceIdentityTerm(GeneratorTerm):
    """Cross entropy of the discriminator's identity classifier on the generated faces, against
    the speaker (voice2face's generator loss): the face must look like the right person."""

    def forward(self, inputs: TermInputs) -> torch.Tensor:
        """A scalar; 0 without a classifier head (training options refuse that combination)."""
        if inputs.face_logits is None:
            return inputs.fake.new_zeros(())
        return F.cross_entropy(inputs.face_logits, inputs.identity)


@hookimpl
def register_losses(register):
    """Register the adversarial objectives and the generator terms."""
    register("lsgan", LeastSquaresLoss, role="adversarial",
             description="least squares (wav2pix): real -> 0.9, fake and mismatched -> 0, G -> 1")
    register("bce", NonSaturatingLoss, role="adversarial",
             description="binary cross entropy on logits with the non-saturating generator loss")
    register("hinge", HingeLoss, role="adversarial",
             description="hinge loss (SAGAN, BigGAN): D relu(1 -/+ score), G -score")
    register("l1", L1Term, role="term", coefficient=50.0, option="l1_coef",
             description="L1 distance from the generated face to the paired real face")
    register("feature_matching", FeatureMatchingTerm, role="term", coefficient=100.0,
             option="l2_coef",
             description="MSE between batch-mean discriminator features on fake and real pairs")
    register("face_identity", FaceIdentityTerm, role="term", coefficient=1.0, needs="classifier_head",
             description="cross entropy of the discriminator's identity head on the fakes (voice2face)")
    register("identity", IdentityTerm, role="term", coefficient=20.0, option="softmax_coef",
             description="cross entropy of the speaker classifier on the speech embedding")
