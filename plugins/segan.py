"""The wav2pix speech encoder: the strided 1-D CNN of SEGAN's generator encoder.

wav2pix (Duarte et al., ICASSP 2019) reused the encoder half of SEGAN (Pascual et al.,
Interspeech 2017) to turn one second of raw 16 kHz speech into a 128-d embedding: pre-emphasis,
six strided convolutions that shrink 16000 samples to 4 steps, then a small MLP. The flatten
size is computed from the clip length at construction, so the paper's audio-length study
(0.3 s, 0.7 s and 1 s clips) works with the same code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo import SpeechEncoder, UsageError, hookimpl, init_weights

CHANNELS = (16, 32, 128, 256, 512, 1024)
KERNEL = 15
STRIDE = 4
# SEGAN pads each block asymmetrically so that a length divisible by 4 is divided exactly by 4.
PAD_LEFT, PAD_RIGHT = 6, 7
HIDDEN = (256, 128)


def apply_pre_emphasis(wave: torch.Tensor, coefficient: float) -> torch.Tensor:
    """``y[t] = x[t] - c * x[t-1]`` with ``y[0] = x[0]``, as SEGAN preprocesses its input."""
    if coefficient == 0 or wave.shape[-1] < 2:
        return wave
    rest = wave[..., 1:] - coefficient * wave[..., :-1]
    return torch.cat([wave[..., :1], rest], dim=-1)


def downsampled_length(length: int, blocks: int = len(CHANNELS)) -> int:
    """The time steps left after ``blocks`` padded, strided convolutions."""
    for _ in range(blocks):
        length = (length + PAD_LEFT + PAD_RIGHT - KERNEL) // STRIDE + 1
    return length


class SeganBlock(nn.Module):
    """Asymmetric zero pad (6, 7), Conv1d k15 s4, BatchNorm1d, LeakyReLU 0.3."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, KERNEL, stride=STRIDE)
        self.norm = nn.BatchNorm1d(out_channels)
        self.act = nn.LeakyReLU(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, L] -> [B, C_out, ~L/4]``."""
        x = F.pad(x, (PAD_LEFT, PAD_RIGHT))
        return self.act(self.norm(self.conv(x)))


class SeganEncoder(SpeechEncoder):
    """wav2pix's encoder: pre-emphasis, 6 SEGAN conv blocks, flatten, MLP to ``embed_dim``.

    With 1 s at 16 kHz it has exactly 11,495,424 trainable parameters, as the reference.
    Built for exactly ``num_samples`` samples: the flatten size depends on it.
    """

    def __init__(self, sample_rate: int = 16000, num_samples: int = 16000, embed_dim: int = 128,
                 pre_emphasis: float = 0.95):
        super().__init__(sample_rate=sample_rate, num_samples=num_samples, embed_dim=embed_dim)
        if num_samples < 2:
            raise ValueError(f"num_samples must be at least 2, got {num_samples}")
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be positive, got {embed_dim}")
        self.pre_emphasis = float(pre_emphasis)
        widths = (1,) + CHANNELS
        self.blocks = nn.Sequential(*(SeganBlock(a, b) for a, b in zip(widths, widths[1:])))
        flat = CHANNELS[-1] * downsampled_length(num_samples)
        self.mlp = nn.Sequential(
            nn.Linear(flat, HIDDEN[0]), nn.ReLU(),
            nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(),
            nn.Linear(HIDDEN[1], embed_dim),
        )
        init_weights(self)  # the reference's N(0, 0.02) initialisation

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave[B, num_samples]`` in [-1, 1] -> ``[B, embed_dim]``."""
        if wave.dim() != 2 or wave.shape[1] != self.num_samples:
            raise UsageError(
                f"segan encoder was built for clips of {self.num_samples} samples "
                f"({self.num_samples / self.sample_rate:g} s at {self.sample_rate} Hz) "
                f"but got a batch of shape {tuple(wave.shape)}"
            )
        x = apply_pre_emphasis(wave, self.pre_emphasis).unsqueeze(1)
        return self.mlp(self.blocks(x).flatten(1))


@hookimpl
def register_encoders(register):
    """Register ``segan``, the wav2pix reference encoder."""
    register(
        "segan",
        SeganEncoder,
        description="wav2pix's SEGAN encoder: 6 strided Conv1d blocks + MLP (11.5 M params at 1 s)",
        family="raw-waveform",
    )
