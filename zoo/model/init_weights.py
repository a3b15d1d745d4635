"""The reference weight initialisation (DCGAN's, as wav2pix applies it).

DCGAN (Radford et al., ICLR 2016) draws conv weights from N(0, 0.02) and batch-norm scales from
N(1, 0.02) with zero shifts. wav2pix's own init function matched modules by class name, so the
weights behind spectral normalisation kept torch's default initialisation; we do the same: a
weight that is spectrally normalised (or otherwise reparametrised) is left alone.
Conv and linear biases are left at torch's defaults, as the reference leaves them.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize

WEIGHT_STD = 0.02
_CONV_OR_LINEAR = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                   nn.ConvTranspose3d, nn.Linear)


def is_reparametrised(module: nn.Module) -> bool:
    """True if ``module.weight`` is computed rather than stored: spectral normalisation through
    torch's parametrizations (or any other parametrization), or the older hook-based
    ``torch.nn.utils.spectral_norm`` (which keeps the raw tensor as ``weight_orig``)."""
    return parametrize.is_parametrized(module, "weight") or hasattr(module, "weight_orig")


def _init_module(module: nn.Module) -> None:
    if isinstance(module, _CONV_OR_LINEAR) and not is_reparametrised(module):
        nn.init.normal_(module.weight, 0.0, WEIGHT_STD)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
        nn.init.normal_(module.weight, 1.0, WEIGHT_STD)
        nn.init.zeros_(module.bias)


def init_weights(module: nn.Module) -> nn.Module:
    """Apply the reference initialisation to every submodule of ``module``; returns it.

    The built-in components and the speaker classifier call it in their constructors, so a
    freshly built model is already initialised; calling it again only redraws the weights.
    """
    module.apply(_init_module)
    return module
