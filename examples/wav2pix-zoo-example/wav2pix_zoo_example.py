"""An example wav2pix-zoo plugin: a small speech encoder and a total-variation loss term.

Written from the plugin-author guide in wav2pix-zoo's README and nothing else.
"""

import torch
from torch import nn

from zoo import GeneratorTerm, SpeechEncoder, TermInputs, hookimpl


class TinyConvEncoder(SpeechEncoder):
    """Three strided 1-D convolutions and a global average: a fast, small speech encoder."""

    def __init__(self, sample_rate: int = 16000, num_samples: int = 16000,
                 embed_dim: int = 128, width: int = 32):
        super().__init__(sample_rate=sample_rate, num_samples=num_samples, embed_dim=embed_dim)
        layers, channels = [], 1
        for out in (width, width * 2, width * 4):
            layers += [nn.Conv1d(channels, out, 9, stride=4, padding=4), nn.BatchNorm1d(out), nn.ReLU()]
            channels = out
        self.features = nn.Sequential(*layers)
        self.project = nn.Linear(channels, embed_dim)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        pooled = self.features(wave.unsqueeze(1)).mean(dim=2)  # any clip length
        return self.project(pooled)


class TotalVariation(GeneratorTerm):
    """Mean absolute difference between neighbouring pixels: discourages speckle in fakes."""

    def forward(self, inputs: TermInputs) -> torch.Tensor:
        fake = inputs.fake
        across = (fake[..., :, 1:] - fake[..., :, :-1]).abs().mean()
        down = (fake[..., 1:, :] - fake[..., :-1, :]).abs().mean()
        return across + down


@hookimpl
def register_encoders(register):
    """Register the tiny convolutional encoder."""
    register("tiny_conv", TinyConvEncoder, description="Three strided 1-D convolutions, global average")


@hookimpl
def register_losses(register):
    """Register the total-variation generator term."""
    register("total_variation", TotalVariation, description="Total variation of the generated faces",
             role="term", coefficient=1.0, option="tv_coef")
