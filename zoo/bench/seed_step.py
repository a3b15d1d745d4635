"""The wav2pix reference trainer's iteration, written as its ``scripts/trainer.py`` did it, for
``bench`` to time beside ours on the same models, batch and device.

What makes it the reference's (Duarte et al., ICASSP 2019; imatge-upc/wav2pix):

- Every iteration starts from the batch in (pageable) host memory and copies each input to the
  device, then builds its label tensors on the host and copies them too (``Variable(x).cuda()``);
  on CUDA each such copy waits for the device.
- Discriminator update: the encoder and generator run (with gradient), and the discriminator
  scores the fakes, the real faces and the mismatched faces in three separate forwards. The
  fakes and the embedding are not detached, so its loss flows back through the generator too.
- Generator update: the encoder and generator run a second time; the discriminator scores the
  new fakes and the real faces again (two more forwards), its parameters left trainable.
- Least squares on raw scores against label tensors (real 0.9, fake and mismatched 0; the
  generator's target 1), feature matching on batch-mean trunk activations, L1 to the paired face
  and the speaker classifier's cross entropy, weighted by the seed's coefficients.
- Float32, contiguous memory, plain (per-parameter loop) Adam. Spectral norm runs its power
  iteration on every forward, which torch's parametrization does in training mode anyway.

Losses stay tensors, as in the reference, which read them once per epoch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SeedStyleStep:
    """One reference-style iteration on ``model`` (encoder, generator, classifier) and ``discriminator``."""

    def __init__(self, model: nn.Module, discriminator: nn.Module, config, device: torch.device):
        self.model, self.discriminator, self.device = model, discriminator, device
        betas = (config.beta1, config.beta2)
        self.optimizer_g = plain_adam(model, config.lr_g, betas)
        self.optimizer_d = plain_adam(discriminator, config.lr_d, betas)
        self.l1_coef, self.l2_coef, self.softmax_coef = config.l1_coef, config.l2_coef, config.softmax_coef

    def __call__(self, items: dict) -> dict:
        """Train on one collated host batch (``wave``, ``image``, ``wrong_image``, ``identity``)."""
        wave, image = self._to_device(items["wave"]), self._to_device(items["image"])
        wrong = items.get("wrong_image")
        wrong = None if wrong is None else self._to_device(wrong)
        identity = items["identity"].to(self.device)
        count = wave.shape[0]
        real_labels, fake_labels = torch.ones(count), torch.zeros(count)
        smoothed_real_labels = real_labels - 0.1  # one-sided label smoothing, as the seed
        real_labels, fake_labels = real_labels.to(self.device), fake_labels.to(self.device)
        smoothed_real_labels = smoothed_real_labels.to(self.device)
        d_loss = self._discriminator_update(wave, image, wrong, smoothed_real_labels, fake_labels)
        g_loss = self._generator_update(wave, image, identity, real_labels)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.float().to(self.device).contiguous()

    def _discriminator_update(self, wave, image, wrong, smoothed_real_labels, fake_labels):
        self.discriminator.zero_grad()
        fake, embedding, _ = self.model(wave)
        fake_scores, _ = self.discriminator(fake, embedding)
        d_loss = F.mse_loss(fake_scores, fake_labels)
        real_scores, _ = self.discriminator(image, embedding)
        d_loss = F.mse_loss(real_scores, smoothed_real_labels) + d_loss
        if wrong is not None:  # the reference always had mismatched faces
            wrong_scores, _ = self.discriminator(wrong, embedding)
            d_loss = d_loss + F.mse_loss(wrong_scores, fake_labels)
        d_loss.backward()
        self.optimizer_d.step()
        return d_loss

    def _generator_update(self, wave, image, identity, real_labels):
        self.model.zero_grad()
        fake, embedding, logits = self.model(wave)
        scores, fake_activation = self.discriminator(fake, embedding)
        _, real_activation = self.discriminator(image, embedding)
        g_loss = (F.mse_loss(scores, real_labels)
                  + self.l2_coef * F.mse_loss(fake_activation.mean(0), real_activation.mean(0).detach())
                  + self.l1_coef * F.l1_loss(fake, image))
        if logits is not None:
            g_loss = g_loss + self.softmax_coef * F.cross_entropy(logits, identity)
        g_loss.backward()
        self.optimizer_g.step()
        return g_loss


def plain_adam(module: nn.Module, lr: float, betas: tuple) -> torch.optim.Adam:
    """Adam with the per-parameter loop of its time (no multi-tensor or fused kernels)."""
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=lr, betas=betas, foreach=False, fused=False)
