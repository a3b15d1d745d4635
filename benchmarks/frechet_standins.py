"""What the dlib Fréchet distance asks of a generator: stand-ins built from real faces, scored
as ``evaluate``'s ``face_frechet`` scores a model (issue 18).

Each stand-in answers every test clip with a face that a simple, imperfect generator could
draw, made from the *training* faces of the clip's speaker:

- a random training face of the speaker (a perfect generator that knows only who speaks);
- the same, blurred by a Gaussian of sigma 0.5, 0.7 or 1 px (a generator that is that soft);
- a random one of only k training faces per speaker (a generator with k looks per speaker);
- the speaker's mean training descriptor (one perfect average face, in descriptor space);
- the speaker's pixel-mean training face (the blur an L1 regression tends to).

The floor is ``evaluate``'s (``plugins.metrics.reference_indices``): as many seeded training
faces as there are test clips, against the test faces. Prints a Markdown table
(docs/results/frechet_standins.md holds one run's):

    python benchmarks/frechet_standins.py [DATA] [--size 64] [--seed 0]

needs the youtubers data (default ../shared/data/youtubers) and dlib's wheels (see
``plugins/metrics/dlib_faces.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project's own modules, whatever the working folder

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from plugins.datasets import youtubers  # noqa: E402
from plugins.metrics import reference_indices  # noqa: E402
from plugins.metrics.dlib_faces import FaceSettings, analyse  # noqa: E402
from plugins.metrics.feature_stats import frechet_distance  # noqa: E402
from zoo.evaluate.context import labels_of, load_real_faces  # noqa: E402

BLURS = (0.5, 0.7, 1.0)  # Gaussian sigmas, in pixels of the model's image size
LOOKS = (1, 5, 25)  # training faces per speaker a generator could draw


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """``images [N, 3, S, S]`` blurred by a separable Gaussian (edges replicated)."""
    radius = max(1, int(3 * sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-offsets.square() / (2 * sigma ** 2))
    kernel = (kernel / kernel.sum()).repeat(3, 1, 1, 1)  # [3, 1, 1, K]: one per channel
    rows = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="replicate"), kernel, groups=3)
    return F.conv2d(F.pad(rows, (0, 0, radius, radius), mode="replicate"), kernel.transpose(2, 3), groups=3)


def describe(faces: torch.Tensor) -> np.ndarray:
    """dlib's 128-d descriptors of ``faces`` (aligned on the whole image, as ``face_frechet``)."""
    return analyse(faces, FaceSettings(), detect=False).descriptors


def same_speaker_picks(train_labels: np.ndarray, test_labels: np.ndarray, rng, pool: dict | None = None) -> np.ndarray:
    """For each test clip, a random training index of its speaker (from ``pool[speaker]`` if given)."""
    pool = pool or {label: np.flatnonzero(train_labels == label) for label in np.unique(test_labels)}
    return np.array([rng.choice(pool[label]) for label in test_labels])


def standins(train_faces, train_labels, test_labels, rng) -> tuple[list, np.ndarray]:
    """``(name, descriptors per test clip)`` of every stand-in (see the module docstring), and
    the descriptors of every training face."""
    train_descriptors = describe(train_faces)
    picks = same_speaker_picks(train_labels, test_labels, rng)
    rows = [("a random training face of the speaker", train_descriptors[picks])]
    rows += [(f"... blurred, sigma {sigma} px", describe(gaussian_blur(train_faces[picks], sigma))) for sigma in BLURS]
    for looks in LOOKS:
        pool = {label: rng.choice(np.flatnonzero(train_labels == label), looks, replace=False)
                for label in np.unique(test_labels)}
        rows.append((f"one of only {looks} training face(s) per speaker",
                     train_descriptors[same_speaker_picks(train_labels, test_labels, rng, pool)]))
    means = {label: train_descriptors[train_labels == label].mean(axis=0) for label in np.unique(test_labels)}
    rows.append(("the speaker's mean training descriptor", np.stack([means[label] for label in test_labels])))
    mean_faces = {label: train_faces[torch.as_tensor(train_labels == label)].mean(dim=0) for label in np.unique(test_labels)}
    rows.append(("the speaker's pixel-mean training face",
                 describe(torch.stack([mean_faces[label] for label in test_labels]))))
    return rows, train_descriptors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", default=str(ROOT.parent / "shared" / "data" / "youtubers"))
    parser.add_argument("--size", type=int, default=64, choices=(64, 128))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train, test = (youtubers(args.data, split, args.size) for split in ("train", "test"))
    train_faces, test_faces = load_real_faces(train), load_real_faces(test)
    train_labels, test_labels = labels_of(train).numpy(), labels_of(test).numpy()
    test_descriptors = describe(test_faces)
    rng = np.random.default_rng(args.seed)
    rows, train_descriptors = standins(train_faces, train_labels, test_labels, rng)
    floor_items = reference_indices(len(train), len(test), args.seed)
    floor = frechet_distance(train_descriptors[floor_items], test_descriptors)
    print(f"youtubers test split at {args.size} px, {len(test)} clips, dlib-resnet128 descriptors\n")
    print("| stand-in generator | Fréchet distance | x floor |\n|---|---|---|")
    print(f"| the floor: {len(test)} seeded training faces | {floor:.4f} | 1.0x |")
    for name, descriptors in rows:
        distance = frechet_distance(descriptors, test_descriptors)
        print(f"| {name} | {distance:.4f} | {distance / floor:.1f}x |")


if __name__ == "__main__":
    main()
