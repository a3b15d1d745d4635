"""SF2F's voice encoder (Bai, Ma, Wang and Zhang, "Speech Fusion to Face", ACM MM 2022;
BAI-Yeqi/SF2F_PyTorch, ``models/voice_encoders.py`` ``V2F1DCNN`` with ``inception_mode``), rebuilt.

- Front end: 40 log mel filter-bank energies over 25 ms windows every 10 ms with a 512-point FFT
  (``python_speech_features.logfbank``'s defaults, which their ``utils/wav2mel.py`` calls after
  webrtc voice-activity detection), normalised per band over the utterance. Silent windows of a
  long clip are dropped by ``zoo``'s energy detector before any encoder sees them.
- Four 1-D Inception blocks, each four parallel Conv1d (kernels 2, 3, 5, 7, stride 2, no bias)
  with BatchNorm and ReLU whose outputs (a quarter of the block's width each) are concatenated:
  widths 256, 384, 576, 864; a last Conv1d k3 s2 to the 512-d embedding; the average over time;
  L2 normalisation (their ``normalize_embedding: True``). Any clip length works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from plugins.spectrogram import SpectrogramEncoder

CHANNELS = (256, 384, 576, 864)
KERNELS = (2, 3, 5, 7)


def branch(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """One Inception branch: Conv1d (stride 2, no bias: batch norm follows), BatchNorm1d, ReLU."""
    return nn.Sequential(nn.Conv1d(in_channels, out_channels, kernel, 2, kernel // 2, bias=False),
                         nn.BatchNorm1d(out_channels), nn.ReLU(inplace=True))


class Inception1d(nn.Module):
    """Four branches over the same input, concatenated on channels; halves the frame rate."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        if out_channels % len(KERNELS):
            raise ValueError(f"an Inception block's width must divide by {len(KERNELS)}, got {out_channels}")
        self.branches = nn.ModuleList(branch(in_channels, out_channels // len(KERNELS), k) for k in KERNELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, L]`` -> ``[B, out, ceil(L / 2)]``; the even kernel's extra frame is cut, as theirs is."""
        outputs = [b(x) for b in self.branches]
        frames = min(o.shape[-1] for o in outputs)
        return torch.cat([o[..., :frames] for o in outputs], dim=1)


class Sf2fEncoder(SpectrogramEncoder):
    """SF2F's Inception 1-D CNN voice encoder; see the module docstring."""

    def __init__(self, sample_rate: int = 16000, num_samples: int = 16000, embed_dim: int = 512,
                 channels: tuple = CHANNELS):
        self.channels = tuple(int(c) for c in channels)
        super().__init__(sample_rate=sample_rate, num_samples=num_samples, embed_dim=embed_dim, n_mels=40,
                         window_ms=25.0, hop_ms=10.0, n_fft=512)

    def build_network(self, n_mels: int, width: int, embed_dim: int) -> None:
        """The Inception stack and the last convolution to the embedding."""
        widths = (n_mels,) + self.channels
        self.cnn = nn.Sequential(*(Inception1d(a, b) for a, b in zip(widths, widths[1:])),
                                 nn.Conv1d(widths[-1], embed_dim, 3, stride=2, padding=1, bias=True))
        self.head = nn.Identity()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave[B, T]`` in [-1, 1], any T -> an L2-normalised ``[B, embed_dim]`` embedding."""
        return F.normalize(self.cnn(self.features(wave)).mean(dim=-1), dim=1)
