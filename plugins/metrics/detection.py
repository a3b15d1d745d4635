"""How often a face detector finds a face: wav2pix's first measure of its generated faces.

Not an entry point: ``plugins.metrics`` uses it for ``face_detection``.

wav2pix counted the generated faces in which dlib's 68-point landmark detector found a face
(90.25% with 1 s of speech): that is ``landmarks68`` (``face_protocols``). This one is OpenCV's
frontal-face Haar cascade (Viola and Jones, CVPR 2001), the detector family wav2pix built its
data with, which ships inside the opencv-python-headless wheel.

Faces are scanned at ``DETECTION_SIZE`` pixels whatever the model's size: the cascade's window
is 24 px, and at a fixed scan size a 64 px and a 128 px model are judged alike. Measured on
../shared/data/youtubers test faces at 64 px: 99.2% found (5 neighbours, smallest box 40% of
the side); on random noise and on pixel-shuffled faces, 0%. It measures face-likeness only: the
same faces blurred (Gaussian, sigma 3 px) are still found 91% of the time, and a blurry average
face passes, so read it beside ``identity_accuracy``. The cartoon faces of ``synthetic`` are
found in only about 10% of cases: there the real column is the yardstick, not 100%.
"""

from __future__ import annotations

from pathlib import Path
import numpy as np
import torch

CASCADE_FILE = "haarcascade_frontalface_default.xml"
DETECTION_SIZE = 128  # pixels of the square the cascade scans
SMALLEST_FACE = 0.4  # smallest box, as a share of the side: a face crop is mostly face
SCALE_STEP = 1.1


def _uint8(faces: torch.Tensor) -> np.ndarray:
    from zoo import as_uint8_batch

    return as_uint8_batch(faces)


def _resized_grey(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    if grey.shape[0] != size or grey.shape[1] != size:
        interpolation = cv2.INTER_AREA if grey.shape[0] > size else cv2.INTER_LINEAR
        grey = cv2.resize(grey, (size, size), interpolation=interpolation)
    return grey


def haar_cascade():
    """OpenCV's frontal-face cascade from the wheel's own data folder."""
    import cv2

    from zoo import ZooError

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if folder is None:
        raise ZooError("OpenCV's Haar cascades are missing: install opencv-python-headless<5")
    cascade = cv2.CascadeClassifier(str(Path(folder) / CASCADE_FILE))
    if cascade.empty():
        raise ZooError(f"cannot load OpenCV's {CASCADE_FILE} from {folder}")
    return cascade


def haar_found(faces: torch.Tensor, *, min_neighbours: int = 5, size: int = DETECTION_SIZE) -> np.ndarray:
    """For each face ``[N, 3, S, S]`` in [-1, 1]: did the Haar cascade find a face in it?"""
    import cv2

    cascade = haar_cascade()
    smallest = max(24, int(SMALLEST_FACE * size))
    found = []
    for image in _uint8(faces):
        grey = cv2.equalizeHist(_resized_grey(image, size))
        boxes = cascade.detectMultiScale(grey, scaleFactor=SCALE_STEP, minNeighbors=min_neighbours,
                                         minSize=(smallest, smallest))
        found.append(len(boxes) > 0)
    return np.asarray(found, dtype=bool)
