"""Where a model's dlib Fréchet distance comes from, speaker by speaker (issue 18).

For each identity of the youtubers test split: how far the generated faces' mean descriptor
lies from the real faces' (squared L2, the Fréchet distance's mean term), and how much they vary
(the trace of their covariance) against the real faces' own variation. The same for real
training faces blurred by a Gaussian, the yardstick of softness; and, with ``--unsharp``, for the
model's faces sharpened by an unsharp mask of sigma 1 px (``x + a (x - blur(x))``):

    python benchmarks/frechet_parts.py CHECKPOINT [DATA] [--unsharp 0.5,1,2]

needs the youtubers data (default ../shared/data/youtubers) and dlib's wheels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project's own modules, whatever the working folder
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

from frechet_standins import describe, gaussian_blur, same_speaker_picks  # noqa: E402
from plugins.datasets import youtubers  # noqa: E402
from plugins.metrics.feature_stats import frechet_distance  # noqa: E402
from zoo.evaluate.context import draw_all, labels_of, load_real_faces  # noqa: E402
from zoo.model.pipeline import FacePipeline  # noqa: E402

BLURS = (0.7, 1.0)  # Gaussian sigmas in pixels: the real faces softened, for comparison


def spread(descriptors: np.ndarray) -> float:
    """The trace of the descriptors' covariance: how much the faces vary."""
    return float(np.trace(np.cov(descriptors.T)))


def parts_row(name: str, generated: np.ndarray, real: np.ndarray, labels: np.ndarray, names) -> str:
    """One Markdown row: the Fréchet distance, then per identity its mean offset and spread."""
    cells = [name, f"{frechet_distance(generated, real):.4f}"]
    for label in range(len(names)):
        mine, theirs = generated[labels == label], real[labels == label]
        offset = float(((mine.mean(axis=0) - theirs.mean(axis=0)) ** 2).sum())
        cells.append(f"{offset:.4f} / {spread(mine):.4f}")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("data", nargs="?", default=str(ROOT.parent / "shared" / "data" / "youtubers"))
    parser.add_argument("--unsharp", default="", help="comma-separated unsharp-mask amounts")
    args = parser.parse_args()
    pipeline = FacePipeline.from_checkpoint(args.checkpoint, device="cpu")
    train, test = (youtubers(args.data, split, pipeline.image_size) for split in ("train", "test"))
    labels, names = labels_of(test).numpy(), list(test.identities)
    real = describe(load_real_faces(test))
    generated = draw_all(pipeline, test)
    train_faces = load_real_faces(train)
    picks = same_speaker_picks(labels_of(train).numpy(), labels, np.random.default_rng(0))
    print(f"youtubers test split at {pipeline.image_size} px, {len(test)} clips; per identity: "
          "mean offset / spread\n")
    print("| faces | Fréchet | " + " | ".join(names) + " |\n" + "|---" * (2 + len(names)) + "|")
    print("| real test faces (their own spread) | 0 | " +
          " | ".join(f"0 / {spread(real[labels == label]):.4f}" for label in range(len(names))) + " |")
    print(parts_row("a random training face of the speaker", describe(train_faces[picks]), real, labels, names))
    for sigma in BLURS:
        blurred = describe(gaussian_blur(train_faces[picks], sigma))
        print(parts_row(f"... blurred, sigma {sigma} px", blurred, real, labels, names))
    print(parts_row(f"the model ({args.checkpoint})", describe(generated), real, labels, names))
    for amount in filter(None, args.unsharp.split(",")):
        sharpened = (generated + float(amount) * (generated - gaussian_blur(generated, 1.0))).clamp(-1, 1)
        print(parts_row(f"... unsharp mask, amount {amount}", describe(sharpened), real, labels, names))


if __name__ == "__main__":
    main()
