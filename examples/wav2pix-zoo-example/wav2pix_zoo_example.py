"""An example wav2pix-zoo plugin: a small speech encoder, a total-variation loss term, a
sharpness metric and a preset that trains with the first two.

Written from the plugin-author guide in wav2pix-zoo's README and nothing else: it imports only
from ``zoo``, the plugin author's whole surface.
"""

import torch
import torch.nn.functional as F
from torch import nn

from zoo import GeneratorTerm, MetricContext, Preset, SpeechEncoder, TermInputs, hookimpl

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


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


def mean_detail(faces: torch.Tensor) -> float:
    """Mean absolute Laplacian of the faces' grey levels: how much fine detail they hold."""
    grey = faces.mean(dim=1, keepdim=True)
    return float(F.conv2d(grey, LAPLACIAN.view(1, 1, 3, 3)).abs().mean())


def sharpness():
    """Detail of the generated faces beside the real faces' (blur gives less, speckle more)."""

    def metric(context: MetricContext) -> dict:
        return {"sharpness": mean_detail(context.generated_faces),
                "sharpness_real": mean_detail(context.real_faces)}

    return metric


def tiny_smooth():
    """The example's own design: the tiny encoder, wav2pix's terms plus total variation x5."""
    return Preset(options={"encoder": "tiny_conv", "encoder_args": {"width": 16}, "embed_dim": 64,
                           "terms": ("l1", "feature_matching", "identity", "total_variation"),
                           "term_coefs": {"total_variation": 5.0}},
                  reference="an example of a third-party preset (wav2pix-zoo's README)")


@hookimpl
def register_encoders(register):
    """Register the tiny convolutional encoder."""
    register("tiny_conv", TinyConvEncoder, description="Three strided 1-D convolutions, global average")


@hookimpl
def register_losses(register):
    """Register the total-variation generator term (weight 1; --term-coef total_variation=W)."""
    register("total_variation", TotalVariation, description="Total variation of the generated faces",
             role="term", coefficient=1.0)


@hookimpl
def register_metrics(register):
    """Register the sharpness metric."""
    register("sharpness", sharpness, better="higher",
             description="fine detail (mean absolute Laplacian) of the faces; the real faces' is the reference")


@hookimpl
def register_presets(register):
    """Register the example's preset (``train --preset tiny_smooth``)."""
    register("tiny_smooth", tiny_smooth, description="tiny_conv encoder, wav2pix's terms plus total variation x5")
