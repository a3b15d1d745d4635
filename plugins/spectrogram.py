"""A log-mel speech encoder: torchaudio features inside forward, a 1-D CNN over time, mean pool.

It follows the voice encoder of "Face Reconstruction from Voice using Generative Adversarial
Networks" (Wen, Raj and Singh, NeurIPS 2019; also the front end of SF2F, Bai et al. 2020):
log mel filter-bank energies over 25 ms windows every 10 ms, normalised per utterance, the mel
bands taken as the channels of a stack of strided 1-D convolutions (batch norm, ReLU), then an
average over time, so any clip length works. The features are computed inside ``forward`` so
training and generation always agree on them.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo import SpeechEncoder, hookimpl, init_weights

LOG_FLOOR = 1e-6  # keeps log() finite on silent frames
STAGE_MULTIPLIERS = (1, 2, 2, 4)  # stage widths as multiples of ``width``
MAX_WINDOW_MS = 1000.0  # a longer analysis window is no speech feature, only a huge FFT
MAX_MELS = 512


def conv_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    """Conv1d k3 s2 (no bias: batch norm follows), BatchNorm1d, ReLU: halves the frame rate."""
    return nn.Sequential(
        nn.Conv1d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm1d(out_channels),
        nn.ReLU(inplace=True),
    )


def normalise_per_utterance(features: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean, unit variance per band over each utterance's frames (``[B, bands, frames]``)."""
    mean = features.mean(dim=-1, keepdim=True)
    std = features.std(dim=-1, keepdim=True, unbiased=False)
    return (features - mean) / (std + eps)


class SpectrogramEncoder(SpeechEncoder):
    """Log-mel features (torchaudio) + strided 1-D CNN + temporal average pooling.

    ``n_mels`` bands over ``window_ms`` windows every ``hop_ms``; ``width`` is the first conv
    stage's channel count (later stages widen to 4x).
    """

    def __init__(self, sample_rate: int = 16000, num_samples: int = 16000, embed_dim: int = 128,
                 n_mels: int = 64, window_ms: float = 25.0, hop_ms: float = 10.0, width: int = 128,
                 f_min: float = 0.0, f_max: float | None = None, n_fft: int | None = None):
        super().__init__(sample_rate=sample_rate, num_samples=num_samples, embed_dim=embed_dim)
        import torchaudio  # lazy: keeps CLI start-up fast

        win_length = round(sample_rate * window_ms / 1000)
        hop_length = round(sample_rate * hop_ms / 1000)
        if min(win_length, hop_length, n_mels, width, embed_dim) < 1:
            raise ValueError(
                f"window ({window_ms} ms), hop ({hop_ms} ms), n_mels ({n_mels}), width ({width}) "
                f"and embed_dim ({embed_dim}) must all be positive at {sample_rate} Hz"
            )
        if max(window_ms, hop_ms) > MAX_WINDOW_MS or n_mels > MAX_MELS:
            raise ValueError(f"window and hop must be at most {MAX_WINDOW_MS} ms and n_mels at most {MAX_MELS}")
        # The filter bank is computed on the CPU even when the module is built on the meta
        # device (shapes only, as a checkpoint is checked before loading): torchaudio reads it.
        with torch.device("cpu"):
            self.mel = torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate,
                n_fft=n_fft or 1 << (win_length - 1).bit_length(),  # default: the next power of two
                win_length=win_length,
                hop_length=hop_length,
                n_mels=n_mels,
                f_min=f_min,
                f_max=f_max,
                pad_mode="constant",  # reflect padding fails on clips shorter than half a window
            )
        self.build_network(n_mels, width, embed_dim)
        init_weights(self)  # the same initialisation as every built-in

    def build_network(self, n_mels: int, width: int, embed_dim: int) -> None:
        """The convolutions over the mel bands and the head to the embedding."""
        widths = [n_mels] + [width * m for m in STAGE_MULTIPLIERS]
        self.cnn = nn.Sequential(*(conv_stage(a, b) for a, b in zip(widths, widths[1:])))
        self.head = nn.Linear(widths[-1], embed_dim)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave[B, T]`` -> normalised log-mel ``[B, n_mels, frames]``, always in float32."""
        with torch.autocast(device_type=wave.device.type, enabled=False):
            mel = self.mel(wave.float())
            return normalise_per_utterance(torch.log(mel + LOG_FLOOR))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave[B, T]`` in [-1, 1], any T -> ``[B, embed_dim]``."""
        x = self.cnn(self.features(wave))
        return self.head(x.mean(dim=-1))


VOICE2FACE_CHANNELS = (256, 384, 576, 864)


class Voice2FaceEncoder(SpectrogramEncoder):
    """voice2face's voice embedding network (Wen, Singh and Raj, NeurIPS 2019), rebuilt: 64 log-mel
    bands (20 to 7,200 Hz, 25 ms windows every 10 ms, 1,024-point FFT, normalised per band), four
    Conv1d k3 s2 stages 64 -> 256 -> 384 -> 576 -> 864 with BatchNorm and ReLU, a last Conv1d k3 s2
    to the embedding, average over time, and L2 normalisation (their training script normalises
    the embedding before the generator sees it; here it is part of the encoder, so generation
    always agrees). Their voice activity detection happens before the features (``zoo`` drops
    silent windows of a long clip before they reach any encoder).
    """

    def __init__(self, sample_rate: int = 16000, num_samples: int = 16000, embed_dim: int = 64):
        super().__init__(sample_rate=sample_rate, num_samples=num_samples, embed_dim=embed_dim, n_mels=64,
                         window_ms=25.0, hop_ms=10.0, f_min=20.0, f_max=7200.0, n_fft=1024)

    def build_network(self, n_mels: int, width: int, embed_dim: int) -> None:
        """Their exact stack: no head, the last convolution gives the embedding."""
        widths = (n_mels,) + VOICE2FACE_CHANNELS
        self.cnn = nn.Sequential(*(conv_stage(a, b) for a, b in zip(widths, widths[1:])),
                                 nn.Conv1d(widths[-1], embed_dim, 3, stride=2, padding=1, bias=True))
        self.head = nn.Identity()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave[B, T]`` -> an L2-normalised ``[B, embed_dim]`` embedding."""
        x = self.cnn(self.features(wave)).mean(dim=-1)
        return torch.nn.functional.normalize(x, dim=1)


@hookimpl
def register_encoders(register):
    """Register ``spectrogram``, the log-mel CNN encoder, and voice2face's encoder."""
    register(
        "spectrogram",
        SpectrogramEncoder,
        description="log-mel features (torchaudio) + 1-D CNN + time pooling, after Wen et al. 2019",
        family="spectrogram",
    )
    register("voice2face", Voice2FaceEncoder, family="spectrogram",
             description="voice2face's encoder (Wen et al. 2019): 64 log-mel bands, 1-D CNN to 864, 64-d unit embedding")
