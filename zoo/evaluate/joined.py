"""Evaluation on several-second inputs: a split's clips joined per identity, one face per input.

SF2F's point is that a face drawn from many seconds of one speaker beats a face from one second,
and that learning how to fuse the segments beats averaging them. ``evaluate --join K`` measures
that on any dataset of short clips: each identity's clips, in the split's order, are joined K at a
time into one input (a remainder shorter than K is left out); the pipeline cuts the input into
windows of the encoder's length every half window, as ``generate`` cuts a long file, embeds
them, fuses them with the model's fuser (``--fuser``, the default when it has one) or their mean
(``--no-fuser``), and draws one face. Every metric then runs unchanged: the input's real face,
where a metric pairs one, is the face of its first clip.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from zoo.errors import DataError, UsageError
from zoo.media.audio import sliding_windows
from zoo.model.speech_to_face import mean_embedding


class JoinedClips:
    """``dataset``'s clips joined ``segments`` at a time per identity; the item interface of the
    evaluated datasets (``wave``, ``image``, ``identity``, ``key``; ``load_image``, ``labels``)."""

    def __init__(self, dataset, segments: int):
        if segments < 2:
            raise UsageError(f"--join needs at least 2 clips per input, not {segments}")
        self.base = dataset
        self.segments = int(segments)
        self.groups = joined_groups(dataset.labels, self.segments)
        if not self.groups:
            raise DataError(f"no identity has {segments} clips in this split to join; lower --join")
        self.left_out = len(dataset) - self.segments * len(self.groups)
        self.identities = list(dataset.identities)
        self.labels = [int(dataset.labels[group[0]]) for group in self.groups]
        base_keys = getattr(dataset, "keys", None)
        self.keys = ["+".join(str(base_keys[i]) for i in group) if base_keys else str(n)
                     for n, group in enumerate(self.groups)]
        for name in ("name", "root", "split", "image_size", "sample_rate"):
            setattr(self, name, getattr(dataset, name, None))
        self.num_samples = int(getattr(dataset, "num_samples", 0)) * self.segments

    def __len__(self) -> int:
        return len(self.groups)

    def cache_key(self) -> dict:
        """The split's key plus the joining, so caches of real-face work never mix the two."""
        from zoo.evaluate.face_classifier import dataset_key

        return {**dataset_key(self.base), "joined": self.segments}

    def load_image(self, index: int) -> torch.Tensor:
        """The face of the input's first clip ``[3, S, S]``."""
        first = self.groups[index][0]
        loader = getattr(self.base, "load_image", None)
        return loader(first) if loader is not None else torch.as_tensor(self.base[first]["image"])

    def __getitem__(self, index: int) -> dict:
        group = self.groups[index]
        wave = torch.cat([torch.as_tensor(self.base[i]["wave"]).float().flatten() for i in group])
        return {"wave": wave, "image": self.load_image(index), "identity": self.labels[index],
                "key": self.keys[index]}


def joined_groups(labels, segments: int) -> list[list[int]]:
    """Item indices grouped per identity, ``segments`` consecutive ones a group, in split order."""
    members = defaultdict(list)
    for index, label in enumerate(labels):
        members[int(label)].append(index)
    return [indices[start:start + segments] for _, indices in sorted(members.items())
            for start in range(0, len(indices) - segments + 1, segments)]


class JoinedPipeline:
    """A pipeline for joined inputs ``[B, K * num_samples]``: windows, embeddings, one fused
    embedding per input, one face. Everything else is the wrapped pipeline's."""

    def __init__(self, pipeline, segments: int, use_fuser: bool = True):
        self.pipeline = pipeline
        self.segments = int(segments)
        self.use_fuser = bool(use_fuser) and getattr(pipeline.model, "fuser", None) is not None

    def __getattr__(self, name):
        return getattr(self.pipeline, name)

    @property
    def num_samples(self) -> int:
        return self.pipeline.num_samples * self.segments

    @property
    def fusion(self) -> str:
        """What joins the windows' embeddings: the fuser's registered name, or ``mean``."""
        if not self.use_fuser:
            return "mean"
        return self.pipeline.description["components"]["fuser"]["name"]

    @torch.inference_mode()
    def fused_embedding(self, wave: torch.Tensor) -> torch.Tensor:
        """One embedding ``[1, D]`` for one joined input ``[T]``."""
        windows = sliding_windows(wave.float(), self.pipeline.num_samples)  # every half window, each peak-normalised
        embeddings = self.pipeline.embed(windows)
        if self.use_fuser:
            return self.pipeline.fuse(embeddings)
        return mean_embedding(embeddings)

    def __call__(self, waves: torch.Tensor, **kwargs) -> torch.Tensor:
        """Faces ``[B, 3, S, S]`` for joined inputs ``[B, T]`` (``draw``'s options pass through)."""
        embeddings = torch.cat([self.fused_embedding(wave) for wave in waves])
        return self.pipeline.draw(embeddings, **kwargs)
