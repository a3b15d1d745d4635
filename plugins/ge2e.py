"""Resemblyzer's pretrained GE2E speaker encoder as an encoder plugin (issue 15).

The network is the speaker encoder of "Generalized End-to-End Loss for Speaker Verification"
(Wan et al., ICASSP 2018) as Resemblyzer 0.1.4 ships it (Apache-2.0; github.com/resemble-ai/
Resemblyzer): 40 mel bands over 25 ms windows every 10 ms, a 3-layer LSTM of 256 units, a linear
layer and ReLU on the last hidden state, L2-normalised. Its weights are ``pretrained.pt`` inside
the installed ``resemblyzer`` package, found WITHOUT importing it (its ``__init__`` imports
librosa and webrtcvad), or any file given as ``weights=PATH``.

Written here, not imported:
- the mel front end, with torchaudio instead of librosa: 400-point FFT, periodic Hann window,
  centred frames with zero padding, power 2, 40 Slaney-scale bands with Slaney area
  normalisation from 0 to 8 kHz (librosa 0.11's defaults, which Resemblyzer uses). It is a mel
  power spectrogram, not a log one, as Resemblyzer's.
- ``embed_utterance``'s partial windows: 1.6 s (160 frames) windows, 1.3 per second, the last
  kept when it covers 75% of a window (always at least one window, so a 1 s clip is zero-padded to
  1.6 s exactly as Resemblyzer pads it); the windows' embeddings are averaged and renormalised.
- ``preprocess_wav``'s loudness step: quiet clips are raised to -30 dBFS (never lowered). Its
  resampling happens here with torchaudio when the run's rate is not 16 kHz. Its silence
  trimming (webrtcvad) is left out: the zoo drops silent windows of long clips itself
  (``zoo/media/vad.py``), and a 1 s training clip has no long silence to trim.

The GE2E network is frozen by default (no gradients, eval mode always): ``trainable=True``
fine-tunes it. Its embedding is 256-d; for another ``embed_dim`` a trainable linear projection
(then L2-normalised) follows it, so any generator size works (a frozen run freezes it too).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from zoo import CheckpointError, SpeechEncoder, UsageError, hookimpl

GE2E_RATE = 16000  # Resemblyzer's sampling_rate
N_FFT = 400  # 25 ms at 16 kHz (mel_window_length); librosa's win_length defaults to n_fft
HOP = 160  # 10 ms (mel_window_step)
N_MELS = 40  # mel_n_channels
HIDDEN = 256  # model_hidden_size
LAYERS = 3  # model_num_layers
GE2E_DIM = 256  # model_embedding_size
PARTIAL_FRAMES = 160  # partials_n_frames: 1.6 s windows
PARTIAL_RATE = 1.3  # embed_utterance's rate: windows per second
MIN_COVERAGE = 0.75  # embed_utterance's min_coverage
TARGET_DBFS = -30.0  # audio_norm_target_dBFS, raised to only (increase_only=True)
PACKAGE = "resemblyzer"
INSTALL = "pip install --no-deps resemblyzer==0.1.4"
MISSING = (f"Resemblyzer's GE2E weights are not installed: {INSTALL} (--no-deps: its metadata pulls the "
           "'typing' backport, which breaks Python 3), or give --arg encoder.weights=PATH to a pretrained.pt")


def packaged_weights() -> Optional[Path]:
    """``pretrained.pt`` inside the installed resemblyzer package, found without importing it;
    None when the package (or the file) is absent."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "pretrained.pt"
        if path.is_file():
            return path
    return None


def unavailable_reason() -> Optional[str]:
    """Why the default weights cannot be used here, in one line; None when they can."""
    return None if packaged_weights() is not None else MISSING


def load_state(path: Path) -> dict:
    """The LSTM and linear tensors of a Resemblyzer checkpoint (``{"model_state": ...}``)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = checkpoint["model_state"] if isinstance(checkpoint, dict) and "model_state" in checkpoint else checkpoint
        return {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}
    except Exception as exc:  # a file that is no torch checkpoint of tensors
        raise CheckpointError(f"{path}: not a GE2E checkpoint ({type(exc).__name__})") from None


def partial_starts(n_samples: int) -> tuple[list[int], int]:
    """Resemblyzer's ``compute_partial_slices``: the first mel frame of each 160-frame window, and
    the length the wave is zero-padded to (at least its own)."""
    n_frames = -(-(n_samples + 1) // HOP)  # ceil((n + 1) / hop)
    frame_step = round(GE2E_RATE / PARTIAL_RATE / HOP)
    steps = max(1, n_frames - PARTIAL_FRAMES + frame_step + 1)
    starts = list(range(0, steps, frame_step))
    coverage = (n_samples - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts = starts[:-1]
    return starts, max(n_samples, (starts[-1] + PARTIAL_FRAMES) * HOP)


def raise_quiet(wave: torch.Tensor) -> torch.Tensor:
    """Resemblyzer's ``normalize_volume(wav, -30, increase_only=True)`` per clip of ``[B, T]``."""
    rms = wave.pow(2).mean(dim=-1, keepdim=True).sqrt()
    target = 10 ** (TARGET_DBFS / 20)
    gain = (target / rms.clamp_min(1e-10)).clamp_min(1.0)  # a silent clip stays silent
    return wave * gain


class GE2EEncoder(SpeechEncoder):
    """Resemblyzer's GE2E speaker encoder; see the module docstring.

    ``weights``: a Resemblyzer ``pretrained.pt`` (default: the installed package's).
    ``trainable``: fine-tune the GE2E network instead of keeping it frozen.
    ``raise_volume``: raise quiet clips to -30 dBFS first, as Resemblyzer's preprocessing does.
    """

    def __init__(self, sample_rate: int = 16000, num_samples: int = 16000, embed_dim: int = GE2E_DIM,
                 weights: Optional[str] = None, trainable: bool = False, raise_volume: bool = True):
        super().__init__(sample_rate=sample_rate, num_samples=num_samples, embed_dim=embed_dim)
        import torchaudio  # lazy: keeps CLI start-up fast

        if sample_rate < 1 or embed_dim < 1:
            raise ValueError(f"sample_rate ({sample_rate}) and embed_dim ({embed_dim}) must be positive")
        path = Path(weights) if weights is not None else packaged_weights()
        if path is None:
            raise UsageError(MISSING)
        if not path.is_file():
            raise UsageError(f"GE2E weights {path}: no such file")
        with torch.device("cpu"):  # the filter bank is read on the CPU even for a meta-device build
            self.resample = (torchaudio.transforms.Resample(sample_rate, GE2E_RATE)
                             if sample_rate != GE2E_RATE else nn.Identity())
            self.mel = torchaudio.transforms.MelSpectrogram(
                sample_rate=GE2E_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, f_min=0.0, f_max=None,
                window_fn=torch.hann_window, power=2.0, center=True, pad_mode="constant",
                norm="slaney", mel_scale="slaney")
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, GE2E_DIM)
        self.load_state_dict(load_state(path), strict=False)
        self.project = nn.Linear(GE2E_DIM, embed_dim) if embed_dim != GE2E_DIM else None
        self.trainable = bool(trainable)
        self.raise_volume = bool(raise_volume)
        if not self.trainable:
            self.lstm.requires_grad_(False)
            self.linear.requires_grad_(False)
            self.train(self.training)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load, then check that every GE2E tensor was in ``state_dict`` (a checkpoint of ours
        also holds ``project``; Resemblyzer's holds only the LSTM and linear layer)."""
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        missing = [k for k in result.missing_keys if k.startswith(("lstm.", "linear."))]
        if missing:
            raise CheckpointError(f"GE2E weights lack {', '.join(missing[:3])}")
        return result

    @classmethod
    def check(cls, config) -> None:
        """Refuse a run before any work when no weights can be found (called by the trainer)."""
        weights = dict(config.encoder_args).get("weights")
        if weights is None and packaged_weights() is None:
            raise UsageError(MISSING)
        if weights is not None and not Path(str(weights)).is_file():
            raise UsageError(f"--arg encoder.weights={weights}: no such file")

    def train(self, mode: bool = True) -> "GE2EEncoder":
        """A frozen GE2E network stays in eval mode whatever the rest does."""
        super().train(mode)
        if not getattr(self, "trainable", True):
            self.lstm.eval()
            self.linear.eval()
        return self

    def embed_windows(self, mels: torch.Tensor) -> torch.Tensor:
        """Resemblyzer's ``VoiceEncoder.forward``: ``[N, 160, 40]`` mel windows -> unit ``[N, 256]``."""
        _, (hidden, _) = self.lstm(mels)
        return F.normalize(F.relu(self.linear(hidden[-1])), dim=1)

    def utterance(self, wave: torch.Tensor) -> torch.Tensor:
        """Resemblyzer's ``embed_utterance`` for a batch of equal-length clips at 16 kHz."""
        starts, padded = partial_starts(wave.shape[-1])
        wave = F.pad(wave, (0, padded - wave.shape[-1]))
        mel = self.mel(wave).transpose(1, 2)  # [B, frames, 40]
        windows = torch.stack([mel[:, s:s + PARTIAL_FRAMES] for s in starts], dim=1)  # [B, P, 160, 40]
        partial = self.embed_windows(windows.flatten(0, 1)).view(wave.shape[0], len(starts), GE2E_DIM)
        return F.normalize(partial.mean(dim=1), dim=1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave[B, T]`` in [-1, 1], any T -> a unit ``[B, embed_dim]`` embedding."""
        with torch.autocast(device_type=wave.device.type, enabled=False):  # an LSTM in float32, always
            x = self.resample(wave.float())
            if self.raise_volume:
                x = raise_quiet(x)
            embedding = self.utterance(x)
            if self.project is not None:
                embedding = F.normalize(self.project(embedding), dim=1)
        return embedding


@hookimpl
def register_encoders(register):
    """Register ``ge2e``; without its weights it is still listed, with what to install."""
    reason = unavailable_reason()
    register("ge2e", GE2EEncoder, family="ge2e", **({"unavailable": reason} if reason else {}),
             description="Resemblyzer's pretrained GE2E speaker encoder (Wan et al. 2018): 40 mel bands, "
                         "3-layer LSTM, 256-d unit embedding, frozen")
