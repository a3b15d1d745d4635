"""A light raw-waveform speech encoder, the default of the whole tool (it trains on a CPU).

It follows the M5 network of Dai, Dai, Qu, Li and Das, "Very deep convolutional neural networks
for raw waveforms" (ICASSP 2017): a wide first convolution acting as a learned filter bank (the
paper's 80 taps with stride 4 at 8 kHz, i.e. a 10 ms window every 0.5 ms; we keep those times, so
160 taps and stride 8 at 16 kHz), then small 3-tap convolutions, each stage followed by batch
normalisation, ReLU and max-pooling by 4, and a global average pool over time, so any clip length
works. The widths are narrower than the paper's (32-64-128-256 instead of 128-128-256-512) so it
costs several times less than ``segan`` on a CPU (about 6x for a training step at batch 64, 1 s
16 kHz, on 2 cores); a linear layer maps the pooled features to the embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo import SpeechEncoder, hookimpl, init_weights

FRONT_WINDOW_S = 0.010  # M5's first layer: 80 taps at 8 kHz
FRONT_HOP_S = 0.0005  # and stride 4 at 8 kHz
POOL = 4
STAGES = 4  # the first (wide) convolution plus three 3-tap ones


def front_end(sample_rate: int) -> tuple[int, int]:
    """The first convolution's kernel and stride in samples: M5's 10 ms window, 0.5 ms hop."""
    return max(1, round(sample_rate * FRONT_WINDOW_S)), max(1, round(sample_rate * FRONT_HOP_S))


def min_samples(sample_rate: int) -> int:
    """The shortest clip that leaves at least one step after every pooling layer."""
    kernel, stride = front_end(sample_rate)
    steps = POOL ** (STAGES - 1)  # the last stage is followed by global pooling, not max-pooling
    return (steps - 1) * stride + kernel


def conv_stage(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Conv1d (no bias: batch norm follows), BatchNorm1d, ReLU."""
    return nn.Sequential(
        nn.Conv1d(in_channels, out_channels, kernel, stride=stride,
                  padding=kernel // 2 if stride == 1 else 0, bias=False),
        nn.BatchNorm1d(out_channels),
        nn.ReLU(inplace=True),
    )


class WaveCNNEncoder(SpeechEncoder):
    """M5-style raw-waveform CNN (Dai et al., 2017), narrowed: any clip length, global pooling.

    ``width`` is the first stage's channel count; each later stage doubles it.
    """

    def __init__(self, sample_rate: int = 16000, num_samples: int = 16000, embed_dim: int = 128,
                 width: int = 32):
        super().__init__(sample_rate=sample_rate, num_samples=num_samples, embed_dim=embed_dim)
        if width < 1 or embed_dim < 1 or sample_rate < 1:
            raise ValueError(f"width, embed_dim and sample_rate must be positive, got "
                             f"{width}, {embed_dim} and {sample_rate}")
        widths = [width * 2**i for i in range(STAGES)]
        self.min_samples = min_samples(sample_rate)
        stages = [conv_stage(1, widths[0], *front_end(sample_rate))]
        stages += [conv_stage(a, b, 3) for a, b in zip(widths, widths[1:])]
        layers = []
        for i, stage in enumerate(stages):
            layers.append(stage)
            if i < STAGES - 1:
                layers.append(nn.MaxPool1d(POOL))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], embed_dim)
        init_weights(self)  # the same initialisation as every built-in

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave[B, T]`` in [-1, 1], any T -> ``[B, embed_dim]``."""
        shortfall = self.min_samples - wave.shape[-1]
        if shortfall > 0:  # very short clips are zero-padded so every pooling layer has input
            wave = F.pad(wave, (0, shortfall))
        x = self.features(wave.unsqueeze(1))
        return self.head(x.mean(dim=-1))


@hookimpl
def register_encoders(register):
    """Register ``wave_cnn``, the default encoder."""
    register(
        "wave_cnn",
        WaveCNNEncoder,
        description="light raw-waveform CNN after M5 (Dai et al. 2017), any length; the CPU default",
        family="raw-waveform",
    )
