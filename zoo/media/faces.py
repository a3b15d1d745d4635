"""Face detection and cropping for prepare: OpenCV's Haar cascade, as wav2pix used.

The detector is Viola and Jones' boosted cascade of Haar features (CVPR 2001) with OpenCV's
frontal-face model from the opencv-python-headless wheel (4.x ships the XML files; 5.0 dropped
them). ``detectMultiScale3(..., outputRejectLevels=True)`` gives each face the weighted vote of
the cascade's last stage: a real confidence, where wav2pix compared an index with a threshold.
Faces found by fewer than ``min_neighbours`` overlapping windows are dropped first.

Detection runs on a small grey image (the caller makes it, see ``detection_size``): the cascade's
cost grows with the pixel count, and a talking head is large. The small image is only shrunk
so far that a face of ``min_face`` pixels in the frame still covers the cascade's window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zoo.errors import ZooError

CASCADE_FILE = "haarcascade_frontalface_default.xml"
# Measured on 99 faces of ../shared/data/youtubers pasted at 50-140 px over plain backgrounds,
# detected with 5 neighbours: 1% of true faces scored below 1.2, 5% below 2.5; the false alarms
# (on scrambled faces and blurred noise) scored 2.6 to 6.2. So the weight is a weak filter: 1.0
# drops almost no true face, and ``min_neighbours`` does most of the rejecting.
DEFAULT_MIN_CONFIDENCE = 1.0
DEFAULT_MIN_NEIGHBOURS = 5
SCALE_STEP = 1.1
COARSE_LONG_SIDE = 160     # the first, cheap look: a talking head's face is large
DETECT_LONG_SIDE = 320     # the finer look, when the first finds no face it can keep
CASCADE_WINDOW = 24        # the frontal-face model's window; a face must cover a bit more
MIN_FACE_IN_DETECTOR = 28


@dataclass(frozen=True)
class Face:
    """A square face box in frame pixels, with the cascade's confidence."""

    x: int
    y: int
    size: int
    confidence: float


@dataclass(frozen=True)
class CropBox:
    """A square crop in frame pixels."""

    x: int
    y: int
    size: int


def _scaled(width: int, height: int, scale: float) -> tuple[int, int, float]:
    # Even sizes keep FFmpeg's scaler happy with subsampled chroma.
    small_w = max(2, int(round(width * scale / 2)) * 2)
    small_h = max(2, int(round(height * scale / 2)) * 2)
    return small_w, small_h, small_w / width


def detection_size(width: int, height: int, min_face: int) -> tuple[int, int, float]:
    """``(width, height, scale)`` of the image on which a face of ``min_face`` px is still found."""
    scale = max(DETECT_LONG_SIDE / max(width, height), MIN_FACE_IN_DETECTOR / max(min_face, 1))
    return _scaled(width, height, min(1.0, scale))


def detection_levels(width: int, height: int, min_face: int) -> list[tuple[int, int, float]]:
    """The grey image sizes to look at in turn, coarse to fine (see ``FaceDetector.find``)."""
    fine = detection_size(width, height, min_face)
    coarse_scale = COARSE_LONG_SIDE / max(width, height)
    if coarse_scale >= 0.75 * fine[2]:
        return [fine]
    return [_scaled(width, height, coarse_scale), fine]


class FaceDetector:
    """Finds frontal faces in grey images and picks the one to keep."""

    def __init__(self, min_face: int = 64, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                 min_neighbours: int = DEFAULT_MIN_NEIGHBOURS):
        self.min_face = int(min_face)
        self.min_confidence = float(min_confidence)
        self.min_neighbours = int(min_neighbours)
        self._cascade = _load_cascade()

    def detect(self, grey: np.ndarray, scale: float = 1.0) -> list[Face]:
        """Every face of at least ``min_face`` frame pixels, largest first.

        ``grey`` is the frame shrunk by ``scale``; boxes come back in frame pixels.
        """
        import cv2

        smallest = max(CASCADE_WINDOW, int(round(self.min_face * scale)))
        if min(grey.shape[:2]) < smallest:
            return []
        boxes, _levels, weights = self._cascade.detectMultiScale3(
            cv2.equalizeHist(grey), scaleFactor=SCALE_STEP, minNeighbors=self.min_neighbours,
            minSize=(smallest, smallest), outputRejectLevels=True)
        faces = [
            Face(int(round(x / scale)), int(round(y / scale)), int(round(max(w, h) / scale)), float(c))
            for (x, y, w, h), c in zip(np.reshape(boxes, (-1, 4)), np.ravel(weights))
        ]
        faces = [f for f in faces if f.size >= self.min_face]
        return sorted(faces, key=lambda f: (-f.size, -f.confidence))

    def find(self, grey_at, width: int, height: int) -> tuple[Face | None, str | None]:
        """The largest face worth keeping in a ``width`` x ``height`` frame, or ``None`` and why not.

        ``grey_at(w, h)`` returns the frame as a ``[h, w]`` grey image. The coarse image comes
        first: the faces it cannot show are those too small to fill the cascade's window there,
        smaller than any it does show, so a face kept there is the largest, and the fine
        (several times dearer) look is only needed when the coarse one keeps nothing.
        """
        reason = "no face"
        for small_w, small_h, scale in detection_levels(width, height, self.min_face):
            face, why = self.choose(self.detect(grey_at(small_w, small_h), scale))
            if face is not None:
                return face, None
            reason = "low confidence" if why == "low confidence" else reason
        return None, reason

    def choose(self, faces: list[Face]) -> tuple[Face | None, str | None]:
        """The largest face whose confidence passes, or ``None`` and why not."""
        if not faces:
            return None, "no face"
        for face in faces:
            if face.confidence >= self.min_confidence:
                return face, None
        return None, "low confidence"


def _load_cascade():
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if folder is None:
        raise ZooError("OpenCV's Haar cascades are missing: install opencv-python-headless<5")
    cascade = cv2.CascadeClassifier(folder + CASCADE_FILE)
    if cascade.empty():
        raise ZooError(f"cannot load OpenCV's {CASCADE_FILE} from {folder}")
    return cascade


def square_crop_box(face: Face, width: int, height: int, margin: float) -> CropBox:
    """A square around ``face`` grown by ``margin`` x its size on every side, kept inside the frame.

    A box that would cross the border is shifted back inside (the face stays whole rather than
    being padded with invented pixels); one larger than the frame shrinks to fit.
    """
    side = min(int(round(face.size * (1 + 2 * margin))), width, height)
    centre_x, centre_y = face.x + face.size / 2, face.y + face.size / 2
    x = int(round(centre_x - side / 2))
    y = int(round(centre_y - side / 2))
    x = min(max(x, 0), width - side)
    y = min(max(y, 0), height - side)
    return CropBox(x, y, side)


def crop(image: np.ndarray, box: CropBox) -> np.ndarray:
    """The pixels of ``image`` inside ``box``."""
    return np.ascontiguousarray(image[box.y:box.y + box.size, box.x:box.x + box.size])


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image, channels in their true order."""
    import cv2

    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))  # OpenCV writes BGR
    if not ok:
        raise ZooError("OpenCV could not encode a face crop as PNG")
    return encoded.tobytes()
