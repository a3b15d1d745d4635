"""``synthetic``: the embedded default dataset, so ``python main.py train`` needs no data at all.

N identities (ten by default, like wav2pix's ten YouTubers) each get a procedural voice
(``plugins.synthetic.voice``) and a procedural cartoon face (``plugins.synthetic.face``). Voice and face
share hidden causes, as in people: a latent "femininity" lowers or raises the pitch and shapes
the jaw, brows, hair and beard; a latent body size lengthens the vocal tract (lower formants)
and the face. So a model can learn faces from voice traits, not only from identity labels.
Each clip varies the syllables, intonation and noise; its face varies position, scale, lighting,
gaze and blinks, and the mouth opens with the loudness and vowel at the clip's centre.

Everything is a function of ``(seed, identity, split, clip)``: deterministic, and train and test
clips come from disjoint random streams. With ``unseen=K`` the last K identities are held out:
the test split holds only them and the other splits never see them, so a model is measured on
voices it never heard (the field's real promise: a plausible face for a new voice).
"""

from __future__ import annotations

import colorsys

import numpy as np
import torch
from torch.utils.data import Dataset

from plugins.synthetic.face import HAIR_STYLES, FacePose, FaceTraits, draw_face
from plugins.synthetic.voice import VoiceTraits, synthesise
from zoo import hookimpl, peak_normalise, save_grid, to_tensor

# Bump when the drawing or the voice changes, so preprocessing caches are rebuilt.
SYNTH_VERSION = 1
SPLIT_STREAMS = {"train": 0, "test": 1, "val": 2, "valid": 2, "validation": 2}
SKIN_TONES = ((255, 224, 196), (241, 194, 160), (226, 178, 140), (205, 150, 110),
              (176, 120, 84), (141, 94, 62), (105, 68, 45))
HAIR_COLORS = ((30, 26, 26), (68, 44, 30), (112, 72, 42), (150, 80, 40), (222, 188, 120),
               (168, 166, 160), (190, 96, 46), (80, 90, 170))
HAIR_COLOR_WEIGHTS = (0.25, 0.2, 0.17, 0.1, 0.1, 0.07, 0.08, 0.03)
EYE_COLORS = ((92, 60, 36), (120, 96, 52), (64, 118, 72), (68, 118, 182), (108, 118, 130))
LIP_RED = (190, 80, 90)


def _pastel(rng: np.random.Generator, saturation: tuple, value: tuple) -> tuple:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value))
    return (int(r * 255), int(g * 255), int(b * 255))


def identity_traits(seed: int, identity: int) -> tuple[VoiceTraits, FaceTraits]:
    """The voice and face of one identity, drawn from shared hidden causes."""
    rng = np.random.default_rng([seed, 7919, identity])
    femininity = float(rng.beta(0.5, 0.5))  # bimodal, like the pitch of adult voices
    size = float(np.clip(rng.normal(), -2, 2))
    voice = VoiceTraits(
        pitch=float((95 + 115 * femininity) * np.exp2(rng.normal(0, 0.12))),
        pitch_range=float(rng.uniform(2.0, 6.0)),
        tract_scale=float((1.0 + 0.18 * femininity) * (1.0 - 0.04 * size)),
        breathiness=float(np.clip(0.05 + 0.2 * femininity + rng.normal(0, 0.06), 0.0, 0.5)),
        rate=float(rng.uniform(3.5, 6.0)),
        tilt=float(rng.uniform(0.55, 0.85)),
    )
    return voice, _face_traits(rng, femininity, size)


def _face_traits(rng: np.random.Generator, femininity: float, size: float) -> FaceTraits:
    masculine = 1.0 - femininity
    style_weights = np.array([1 + 2 * masculine, 0.4 + 3 * femininity, 0.2 + 1.5 * femininity,
                              0.8, 0.1 + 1.2 * masculine ** 2, 0.3 + 0.8 * masculine, 0.3 + 2 * femininity])
    hair = HAIR_COLORS[rng.choice(len(HAIR_COLORS), p=HAIR_COLOR_WEIGHTS)]
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    return FaceTraits(
        face_width=float(np.clip(0.25 + 0.02 * masculine + rng.normal(0, 0.012), 0.21, 0.3)),
        face_length=float(np.clip(0.29 + 0.02 * size + rng.normal(0, 0.01), 0.24, 0.35)),
        jaw=float(np.clip(0.62 + 0.25 * masculine + rng.normal(0, 0.04), 0.55, 0.95)),
        skin=skin,
        hair=hair,
        hair_style=HAIR_STYLES[rng.choice(len(HAIR_STYLES), p=style_weights / style_weights.sum())],
        eye_color=EYE_COLORS[rng.integers(len(EYE_COLORS))],
        eye_size=float(rng.uniform(0.04, 0.055)),
        eye_spacing=float(rng.uniform(0.1, 0.125)),
        brow_thickness=float(0.012 + 0.02 * masculine + rng.uniform(0, 0.006)),
        nose_size=float(0.035 + 0.015 * (size + 2) / 4 + rng.uniform(0, 0.01)),
        lip_color=tuple(int(c) for c in np.array(LIP_RED) * (0.65 + 0.3 * femininity)
                        + np.array(skin) * (0.35 - 0.3 * femininity)),
        smile=float(rng.uniform(-0.3, 1.0)),
        beard=float(masculine ** 2 * rng.uniform(0, 1.4) if rng.random() < 0.55 else 0.0),
        blush=float(femininity * rng.uniform(0, 1)),
        glasses=bool(rng.random() < 0.25),
        background=_pastel(rng, (0.2, 0.45), (0.75, 0.95)),
        shirt=_pastel(rng, (0.35, 0.75), (0.35, 0.85)),
    )


def clip_pose(rng: np.random.Generator, mouth: tuple) -> FacePose:
    """Per-clip variation of one face; ``mouth`` is (opening, width) from the voice."""
    return FacePose(
        dx=float(rng.uniform(-0.035, 0.035)), dy=float(rng.uniform(-0.03, 0.03)),
        scale=float(rng.uniform(0.93, 1.06)), mouth_open=float(np.clip(mouth[0], 0, 1)),
        mouth_width=float(mouth[1]), blink=bool(rng.random() < 0.05),
        gaze=(float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1))),
        brow_raise=float(rng.uniform(-0.005, 0.015)), light_angle=float(rng.uniform(0, 2 * np.pi)),
        light_strength=float(rng.uniform(0.05, 0.3)), brightness=float(rng.uniform(0.9, 1.08)),
    )


class SyntheticDataset(Dataset):
    """Generated (speech, face) pairs; see the module docstring."""

    name = "synthetic"

    def __init__(self, *, split: str, image_size: int, sample_rate: int, num_samples: int,
                 num_identities: int, clips_per_identity: int, seed: int, unseen: int = 0):
        if split not in SPLIT_STREAMS:
            raise ValueError(f"split must be one of {', '.join(SPLIT_STREAMS)}")
        if num_identities < 1 or clips_per_identity < 1 or image_size < 8 or sample_rate < 4000:
            raise ValueError("need num_identities >= 1, clips_per_identity >= 1, image_size >= 8, "
                             "sample_rate >= 4000")
        if not 0 <= unseen < num_identities:
            raise ValueError(f"unseen must leave at least one training identity: 0 <= unseen < "
                             f"{num_identities}, not {unseen}")
        self.root, self.split, self.seed, self.unseen = None, split, int(seed), int(unseen)
        self.image_size, self.sample_rate, self.num_samples = int(image_size), int(sample_rate), int(num_samples)
        self.num_identities, self.clips_per_identity = int(num_identities), int(clips_per_identity)
        width = len(str(num_identities - 1))
        self.members = self._members(num_identities, self.unseen)  # global identity numbers of this split
        self.identities = [f"speaker_{i:0{width}d}" for i in self.members]
        count = len(self.members)
        self.labels = [i for i in range(count) for _ in range(clips_per_identity)]
        self.keys = [f"{self.identities[i]}_{k}" for i in range(count) for k in range(clips_per_identity)]
        self.traits = [identity_traits(self.seed, i) for i in self.members]

    def _members(self, num_identities: int, unseen: int) -> list[int]:
        """Which identities this split holds: all of them, or with ``unseen`` the held-out last
        ones for test and the others for every other split."""
        if not unseen:
            return list(range(num_identities))
        first_unseen = num_identities - unseen
        return list(range(first_unseen, num_identities)) if self.split == "test" else list(range(first_unseen))

    def __len__(self) -> int:
        return len(self.labels)

    def _clip_rng(self, index: int) -> np.random.Generator:
        identity, clip = divmod(index, self.clips_per_identity)
        return np.random.default_rng([self.seed, SPLIT_STREAMS[self.split], self.members[identity], clip])

    def raw_item(self, index: int) -> dict:
        """The item in storage form: float32 wave (peak-normalised) and uint8 face."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = self._clip_rng(index)
        voice, face = self.traits[self.labels[index]]
        wave, mouth = synthesise(voice, rng, self.num_samples, self.sample_rate)
        wave = peak_normalise(torch.from_numpy(wave)).numpy()
        image = draw_face(face, clip_pose(rng, mouth), self.image_size)
        return {"wave": wave, "image": image, "identity": self.labels[index], "key": self.keys[index]}

    def load_image(self, index: int) -> torch.Tensor:
        """Only the face (drawing it still needs the clip's voice for the mouth)."""
        return to_tensor(self.raw_item(index)["image"])

    def __getitem__(self, index: int) -> dict:
        raw = self.raw_item(index)
        return {"wave": torch.from_numpy(raw["wave"]), "image": to_tensor(raw["image"]),
                "identity": raw["identity"], "key": raw["key"]}

    def cache_key(self) -> dict:
        """Everything that decides the generated content (no files: the seed is the source)."""
        key = {"dataset": self.name, "version": SYNTH_VERSION, "split": self.split,
               "image_size": self.image_size, "sample_rate": self.sample_rate,
               "num_samples": self.num_samples, "num_identities": self.num_identities,
               "clips_per_identity": self.clips_per_identity, "seed": self.seed}
        return {**key, "unseen": self.unseen} if self.unseen else key  # old entries stay valid

    def __repr__(self) -> str:
        return (f"SyntheticDataset(split={self.split!r}, items={len(self)}, "
                f"identities={self.num_identities}, seed={self.seed})")


def synthetic(root: str | None = None, split: str = "train", image_size: int = 64,
              sample_rate: int = 16000, num_samples: int = 16000, num_identities: int = 10,
              clips_per_identity: int | None = None, seed: int = 0, unseen: int = 0) -> SyntheticDataset:
    """Procedural voices and faces; ``root`` is ignored. Test gets a sixth of train's clips.
    ``unseen``: hold the last ``unseen`` identities out of training; the test split is them."""
    if clips_per_identity is None:
        clips_per_identity = 300 if split == "train" else 50
    return SyntheticDataset(split=split, image_size=image_size, sample_rate=sample_rate,
                            num_samples=num_samples, num_identities=num_identities,
                            clips_per_identity=clips_per_identity, seed=seed, unseen=unseen)


def render_sample_grid(path: str, *, num_identities: int = 10, clips: int = 6, image_size: int = 64,
                       seed: int = 0, split: str = "train") -> str:
    """Save one row of faces per identity (a quick look at the dataset); returns the path."""
    dataset = synthetic(split=split, image_size=image_size, num_identities=num_identities,
                        clips_per_identity=clips, seed=seed)
    faces = [dataset.raw_item(i)["image"] for i in range(len(dataset))]
    return str(save_grid(np.stack(faces), path, nrow=clips, row_labels=dataset.identities, scale=2))


@hookimpl
def register_datasets(register):
    """Register ``synthetic``, the built-in default that needs no data on disk."""
    register("synthetic", synthetic, needs_root=False, suggested={"epochs": 5},
             description="procedural source-filter voices and cartoon faces with voice-linked traits; no data needed")

