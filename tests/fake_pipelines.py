"""Stand-in "generators" with the FacePipeline interface, for the evaluator's sanity tests.

- ``PairedFacePipeline`` returns, for each clip, the real face that was paired with it: a perfect
  generator, so identity accuracy must be near the classifier's own and the distances near 0.
- ``ConstantPipeline`` returns the same grey face for every clip: identity accuracy must fall to
  the chance level on a balanced split.
- ``UpsideDownPipeline`` returns the paired real face turned upside down, and ``NoisePipeline``
  uniform noise: a face model must neither find a face in them nor take them for the speaker.
- ``tiny_checkpoint`` writes an untrained wave_cnn + dcgan model as a real checkpoint (optionally
  inside a run folder), for the CLI's end-to-end tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


class _FakePipeline:
    """What metrics may rely on: sizes, identities, a device, and calling it on waves."""

    def __init__(self, dataset):
        self.image_size = int(dataset[0]["image"].shape[-1])
        self.sample_rate = int(getattr(dataset, "sample_rate", 16000))
        self.num_samples = int(dataset[0]["wave"].shape[-1])
        self.identities = list(dataset.identities)
        self.device = torch.device("cpu")
        self.calls = 0

    def __call__(self, waves: torch.Tensor, **kwargs) -> torch.Tensor:
        self.calls += 1
        return self.draw_for(waves)


class PairedFacePipeline(_FakePipeline):
    """Returns the real face paired with each clip, found by the clip's exact samples."""

    def __init__(self, dataset):
        super().__init__(dataset)
        self.faces = {}
        for index in range(len(dataset)):
            item = dataset[index]
            self.faces[_fingerprint(item["wave"])] = torch.as_tensor(item["image"]).float()

    def draw_for(self, waves: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.faces[_fingerprint(wave)] for wave in waves])


class ConstantPipeline(_FakePipeline):
    """Returns one flat grey face whatever the speech."""

    def draw_for(self, waves: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(waves), 3, self.image_size, self.image_size)


class UpsideDownPipeline(PairedFacePipeline):
    """Returns the real face paired with each clip, turned upside down."""

    def draw_for(self, waves: torch.Tensor) -> torch.Tensor:
        return super().draw_for(waves).flip(-2)


class NoisePipeline(_FakePipeline):
    """Returns uniform noise in [-1, 1], seeded by the clip, so a clip always gets the same image."""

    def draw_for(self, waves: torch.Tensor) -> torch.Tensor:
        size = self.image_size
        return torch.stack([torch.rand(3, size, size, generator=torch.Generator().manual_seed(
            int(torch.as_tensor(wave).float().abs().sum() * 1000) % 2**31)) * 2 - 1 for wave in waves])


def _fingerprint(wave) -> bytes:
    return torch.as_tensor(wave).float().numpy().tobytes()


def tiny_checkpoint(folder: Path, *, num_samples: int = 4000, run_config: dict | None = None) -> Path:
    """An untrained 64 px wave_cnn + dcgan checkpoint: a run folder (``config.json`` and
    ``checkpoints/last``) when ``run_config`` is given, else the checkpoint folder ``folder/model``."""
    from zoo.model.checkpoints import save_checkpoint
    from zoo.model.speech_to_face import build_discriminator, build_speech_to_face, describe

    description = describe(encoder=("wave_cnn", {"num_samples": num_samples, "width": 8}),
                           generator=("dcgan", {"image_size": 64}),
                           discriminator=("dcgan", {"image_size": 64}),
                           identities=["a", "b", "c"], image_size=64, sample_rate=16000,
                           num_samples=num_samples)
    torch.manual_seed(0)
    model, discriminator = build_speech_to_face(description), build_discriminator(description)
    if run_config is None:
        return save_checkpoint(folder, "model", model=model, discriminator=discriminator,
                               description=description, state={})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(run_config))
    save_checkpoint(folder / "checkpoints", "epoch_0001", model=model, discriminator=discriminator,
                    description=description, state={})
    return folder


class EveryNth:
    """Every n-th item of a dataset: a quick subset keeping what the evaluator reads."""

    def __init__(self, dataset, step):
        self.dataset, self.step, self.indices = dataset, step, list(range(0, len(dataset), step))
        self.identities = dataset.identities
        self.labels = [dataset.labels[i] for i in self.indices]

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]

    def load_image(self, i):
        return self.dataset.load_image(self.indices[i])

    def cache_key(self):
        """The whole split's key and the step: caches keyed by it never mix subsets up."""
        return {**self.dataset.cache_key(), "every": self.step}
