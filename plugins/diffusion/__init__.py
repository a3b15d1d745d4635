"""A speech-conditioned diffusion generator (issue 22): the field's current way of drawing faces
from speech (SCLDM, SLF, Vox2Face), small enough to train on a CPU.

- generator ``diffusion_unet`` (``plugins.diffusion.generator``): a UNet conditioned on the
  speech embedding by adaptive group normalisation, sampled by a deterministic Euler ODE solver
  with classifier-free guidance;
- objective ``diffusion`` (``plugins.diffusion.objective``): flow matching for encoder and UNet,
  plus the speaker classifier's cross entropy;
- preset ``diffusion``: ``wave_cnn`` + ``diffusion_unet`` trained by that objective.
"""

from __future__ import annotations

from plugins.diffusion.generator import SIZES, DiffusionGenerator
from plugins.diffusion.objective import DiffusionObjective
from zoo import Preset, hookimpl


def diffusion() -> Preset:
    """wave_cnn and the flow-matching UNet, no discriminator and no GAN terms; Adam 3e-4 with
    betas (0.9, 0.999) as diffusion models train, batch 16 for a CPU."""
    return Preset(options={"encoder": "wave_cnn", "generator": "diffusion_unet", "objective": "diffusion",
                           "terms": (), "z_dim": 0, "embed_dim": 128, "lr_g": 3e-4, "beta1": 0.9, "beta2": 0.999,
                           "softmax_coef": 1.0, "batch_size": 16,
                           "ema": 0.999, "augment": ""},  # sampled from the weights' average, as diffusion models are
                  reference="flow matching (Lipman et al. 2023; Liu et al. 2023) with classifier-free guidance "
                            "(Ho and Salimans 2021), as speech-to-face diffusion (SCLDM, SLF 2024) uses it")


@hookimpl
def register_generators(register):
    """Register the diffusion generator."""
    register("diffusion_unet", DiffusionGenerator, sizes=SIZES, differentiable=False, noise=False, sampler=True,
             description="a speech-conditioned UNet (AdaGN) trained by flow matching; Euler sampler with guidance")


@hookimpl
def register_objectives(register):
    """Register the flow-matching objective."""
    register("diffusion", DiffusionObjective, trains=("encoder", "generator", "classifier"),
             description="flow matching for the speech encoder and a flow generator, plus speaker cross entropy")


@hookimpl
def register_presets(register):
    """Register the diffusion preset."""
    register("diffusion", diffusion,
             description="wave_cnn + a flow-matching UNet (diffusion_unet), classifier-free guidance, no discriminator")
