"""The inference pipeline: speech in, faces out, rebuilt from a checkpoint alone.

As in diffusers, a pipeline is an inference-only object whose calls run under no-grad. It runs
in eval mode: dropout off and BatchNorm on its running statistics, so a face depends only on its
own clip and the seed (wav2pix generated in training mode, so its faces changed with the batch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from zoo.errors import UsageError
from zoo.model import checkpoints
from zoo.hardware import resolve_device
from zoo.model.speech_to_face import SpeechToFace, build_speech_to_face


class FacePipeline:
    """Encoder, generator and classifier of one checkpoint, ready to draw faces."""

    def __init__(self, model: SpeechToFace, description: dict, device: torch.device,
                 source: Optional[Path] = None):
        self.model = model.to(device).eval()
        self.description = description
        self.device = device
        self.source = source

    @classmethod
    def from_checkpoint(cls, path=None, device: str = "auto", runs_dir: str = "runs") -> "FacePipeline":
        """Rebuild from a model file, checkpoint folder or run folder (default: the newest run)."""
        file = checkpoints.resolve(path, runs_dir)
        description = checkpoints.read_description(file)
        model = checkpoints.build_matching(build_speech_to_face, description, file)
        checkpoints.load_weights(model, file)
        return cls(model, description, resolve_device(device), file)

    # -- what the model expects and makes ---------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return int(self.description["sample_rate"])

    @property
    def num_samples(self) -> int:
        return int(self.description["num_samples"])

    @property
    def image_size(self) -> int:
        return int(self.description["image_size"])

    @property
    def identities(self) -> list:
        return list(self.description["identities"])

    @property
    def has_dropout(self) -> bool:
        """Whether ``stochastic`` drawing can vary anything (the generator has dropout layers)."""
        return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in self.model.generator.modules())

    @property
    def z_dim(self) -> int:
        return int(getattr(self.model.generator, "z_dim", 0))

    @property
    def is_sampler(self) -> bool:
        """Whether the generator samples by integrating ``steps`` with a ``guidance`` scale
        (diffusion): it then draws its own noise, one per face, from the seed."""
        generator = self.model.generator
        return hasattr(generator, "steps") and hasattr(generator, "guidance")

    @property
    def has_noise(self) -> bool:
        """Whether each face of a batch gets noise of its own (``z_dim > 0``, or a sampler)."""
        return self.z_dim > 0 or self.is_sampler

    def set_sampling(self, steps: Optional[int] = None, guidance: Optional[float] = None) -> None:
        """Set a sampler's number of steps and guidance scale (each only when given); a
        ``UsageError`` for a generator that does not sample, or for values out of range."""
        if steps is None and guidance is None:
            return
        if not self.is_sampler:
            name = self.description["components"]["generator"]["name"]
            raise UsageError(f"--steps and --guidance set a sampler's steps and guidance scale (a diffusion "
                             f"generator); this checkpoint's generator '{name}' draws in one pass")
        if steps is not None:
            if steps < 1:
                raise UsageError(f"--steps must be at least 1, not {steps}")
            self.model.generator.steps = int(steps)
        if guidance is not None:
            if not 0 <= guidance < float("inf"):
                raise UsageError(f"--guidance must be a finite number >= 0, not {guidance}")
            self.model.generator.guidance = float(guidance)

    # -- drawing ---------------------------------------------------------------------------------
    @torch.inference_mode()
    def embed(self, waves: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Speech embeddings ``[B, D]`` of waveforms ``[B, T]``."""
        parts = [self.model.encoder(chunk.to(self.device).float()) for chunk in waves.split(batch_size)]
        return torch.cat(parts).float()

    @torch.inference_mode()
    def fuse(self, embeddings: torch.Tensor) -> torch.Tensor:
        """One embedding ``[1, D]`` for the segments ``[N, D]`` of one speaker: the model's fuser
        when it has one (SF2F's attention), else their mean."""
        return self.model.fuse(embeddings.to(self.device).float()).float()

    @torch.inference_mode()
    def draw(self, embeddings: torch.Tensor, *, seed: Optional[int] = None,
             stochastic: bool = False) -> torch.Tensor:
        """Faces ``[B, 3, S, S]`` in [-1, 1] (on the CPU) from embeddings.

        ``seed`` fixes the noise (generators with ``z_dim > 0``) and, with ``stochastic``, the
        dropout masks, which are then kept on to draw varied faces from a noise-free generator.
        """
        generator = torch.Generator(device="cpu").manual_seed(0 if seed is None else seed)
        z = None
        if self.z_dim > 0:
            z = torch.randn(embeddings.shape[0], self.z_dim, generator=generator).to(self.device)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), _dropout_on(self.model.generator, stochastic):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
            faces = self.model.generator(embeddings.to(self.device), z)
        return faces.float().clamp(-1, 1).cpu()

    def __call__(self, waves: torch.Tensor, **kwargs) -> torch.Tensor:
        """Faces for a batch of encoder-ready waveforms ``[B, num_samples]``."""
        return self.draw(self.embed(waves), **kwargs)


class _dropout_on:
    """Context manager: switch a module's dropout layers to training mode, then back."""

    def __init__(self, module: nn.Module, enabled: bool):
        self.layers = [m for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd)] if enabled else []

    def __enter__(self):
        for layer in self.layers:
            layer.train()

    def __exit__(self, *exc):
        for layer in self.layers:
            layer.eval()
