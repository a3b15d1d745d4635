"""FLOPs of the training iterations, counted from the layer shapes, and the machine's matmul rate.

Accounting (what ``bench`` reports as achieved FLOP/s):

- Only the layers that hold nearly all the arithmetic are counted: ``Conv1d``, ``Conv2d``,
  ``ConvTranspose1d/2d`` and ``Linear``. Activations, normalisation, dropout, losses, the
  spectral-norm power iteration (matrix-vector products), feature extraction that is not one of
  these layers (an STFT, a mel filterbank) and the optimiser are left out.
- One multiply-add is 2 FLOPs. A convolution does ``output elements x (in_channels / groups) x
  kernel elements`` multiply-adds; a transposed convolution ``input elements x (out_channels /
  groups) x kernel elements``; a linear layer ``output elements x in_features``.
- A forward is counted once per network with forward hooks at the batch's shapes
  (``count_forward_flops``). A backward counts 2x its forward (gradients of the inputs and of
  the weights), the usual "3x forward" rule of model-FLOP utilisation, even where autograd skips
  half of it (a frozen discriminator in the generator update, inputs that need no gradient).
- Our iteration (the ``gan`` objective's ``GanStep``), with ``G`` the encoder+generator+classifier forward and
  ``D`` the discriminator forward at batch B: one G forward and backward (3G); the discriminator
  scoring real, fake and mismatched pairs in one forward and backward (3 x 3D); in the generator
  update D on the fakes, forward and backward (3D), and D on the real faces without gradient
  (1D). Total ``3G + 13D`` (``3G + 10D`` without mismatched pairs).
- The seed-style iteration (the ``gan_seed`` objective): two G forwards, both backpropagated (the
  discriminator's loss flows back into the generator because the fakes are not detached): 6G;
  three D forwards and backwards in the discriminator update (9D); in the generator update D on
  the fakes, forward and backward (3D), and D on the real faces, whose graph is never used (1D).
  Total ``6G + 13D``.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import torch
from torch import nn

_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def layer_flops(layer: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    """FLOPs (2 per multiply-add) of one call of a counted layer; 0 for any other module."""
    if isinstance(layer, _TRANSPOSED):
        per_input = (layer.out_channels // layer.groups) * math.prod(layer.kernel_size)
        return 2 * inputs[0].numel() * per_input
    if isinstance(layer, _CONVOLUTIONS):
        per_output = (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
        return 2 * output.numel() * per_output
    if isinstance(layer, nn.Linear):
        return 2 * output.numel() * layer.in_features
    return 0


@contextmanager
def _evaluating(module: nn.Module):
    """Eval mode for a counting forward (no BatchNorm statistics or power iteration updated)."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.training = training


def count_forward_flops(module: nn.Module, *inputs) -> int:
    """FLOPs of one forward of ``module`` on ``inputs``, counted from its layers' shapes.

    The forward runs without gradient in eval mode, so no weight, buffer or statistic changes.
    """
    total = 0

    def hook(layer, args, output):
        nonlocal total
        total += layer_flops(layer, args, output)

    counted = _CONVOLUTIONS + _TRANSPOSED + (nn.Linear,)
    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, counted)]
    try:
        with torch.no_grad(), _evaluating(module):
            module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total


def ours_step_flops(generator_forward: int, discriminator_forward: int, with_wrong: bool = True) -> int:
    """FLOPs of one ``GanStep`` iteration (see the module docstring)."""
    groups = 3 if with_wrong else 2
    return 3 * generator_forward + (3 * groups + 3 + 1) * discriminator_forward


def seed_step_flops(generator_forward: int, discriminator_forward: int, with_wrong: bool = True) -> int:
    """FLOPs of one seed-style iteration (see the module docstring)."""
    groups = 3 if with_wrong else 2
    return 6 * generator_forward + (3 * groups + 3 + 1) * discriminator_forward


def _median_seconds(run, device: torch.device, repeats: int) -> float:
    run()  # first call: kernel selection, thread-pool start
    _synchronize(device)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        run()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return max(sorted(times)[len(times) // 2], 1e-12)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops_per_second(device: torch.device, dtype: torch.dtype = torch.float32,
                            size: int | None = None, repeats: int = 3) -> float:
    """The machine's measured rate of a large matrix multiply (median of ``repeats``).

    ``size`` defaults to 2048 on CPU and 8192 on CUDA: large enough to reach the peak of the
    BLAS, small enough to take well under a second. On the CPU the rate is the better of
    ``torch.mm`` and the same product through oneDNN (a 1x1 convolution in channels_last is a
    plain ``[N*H*W, C] x [C, C]`` matrix product): oneDNN runs our convolutions and picks its
    kernels from the CPU's features, while MKL's sgemm takes a slower path on some CPUs (AVX2
    instead of AVX-512 on AMD), so ``torch.mm`` alone can understate what the hardware does.
    """
    n = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    rate = 2 * n ** 3 / _median_seconds(lambda: torch.mm(a, b), device, repeats)
    if device.type == "cpu":
        rate = max(rate, onednn_gemm_flops_per_second(dtype, repeats=repeats))
    return rate


def onednn_gemm_flops_per_second(dtype: torch.dtype = torch.float32, channels: int = 1024,
                                 rows: int = 16384, repeats: int = 3) -> float:
    """A ``[rows, channels] x [channels, channels]`` product on the CPU through oneDNN."""
    side = 32
    x = torch.randn(max(1, rows // side ** 2), channels, side, side).to(dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 1, 1).to(dtype).contiguous(memory_format=torch.channels_last)
    flops = 2 * x.shape[0] * side * side * channels * channels
    return flops / _median_seconds(lambda: torch.nn.functional.conv2d(x, w), torch.device("cpu"), repeats)
