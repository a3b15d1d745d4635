"""The per-face half of dlib's analysis: the canvas, detection, 68 landmarks and the aligned chip.

dlib's calls hold the GIL (two threads run no faster than one), and this half is most of the
analysis, so ``prepare_faces`` splits a batch over processes (one per core, two on the 2-core
machine) while the parent runs the descriptor network on the chips that come back. The workers
are forked with the models already loaded and run dlib alone: the canvases (OpenCV) are made in
the parent, so no library with a thread pool of its own runs in a forked child.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from typing import Iterator, Optional

import numpy as np

CHIP_SIZE, CHIP_PADDING = 150, 0.25  # dlib's defaults for the descriptor network
PARALLEL_FROM = 128  # fewer faces than this: starting the processes costs more than it saves


class ShapeModels:
    """dlib's HOG detector and its 68- and 5-point landmark predictors."""

    def __init__(self, landmarks68: str, landmarks5: str):
        import dlib

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.landmarks68 = dlib.shape_predictor(landmarks68)
        self.landmarks5 = dlib.shape_predictor(landmarks5)


@lru_cache(maxsize=2)
def shape_models(landmarks68: str, landmarks5: str) -> ShapeModels:
    """The models of these files, loaded once per process (the 68-point file is 100 MB)."""
    return ShapeModels(landmarks68, landmarks5)


def canvas(image: np.ndarray, size: int, border: float) -> np.ndarray:
    """A uint8 face ``[S, S, 3]`` resized to ``size`` (bicubic up, area down) and given a border
    of ``border`` x size replicated edge pixels."""
    import cv2

    if image.shape[0] != size or image.shape[1] != size:
        interpolation = cv2.INTER_CUBIC if image.shape[0] < size else cv2.INTER_AREA
        image = cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interpolation)
    pad = int(round(border * size))
    return cv2.copyMakeBorder(np.ascontiguousarray(image), pad, pad, pad, pad, cv2.BORDER_REPLICATE)


def landmarks_found(models: ShapeModels, picture: np.ndarray) -> tuple[bool, bool]:
    """``(detected, all 68 landmarks inside)`` for the largest face the HOG detector finds."""
    boxes = models.detector(picture, 0)  # no upsampling: the canvas is already enlarged
    if len(boxes) == 0:
        return False, False
    shape = models.landmarks68(picture, max(boxes, key=lambda box: box.area()))
    points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)])
    side = picture.shape[0]
    return True, bool(shape.num_parts == 68 and (points >= 0).all() and (points < side).all())


def aligned_chip(models: ShapeModels, picture: np.ndarray, size: int, border: float) -> np.ndarray:
    """The 150 px chip dlib's network expects, aligned on 5 landmarks placed in the face's square."""
    dlib = models.dlib
    pad = int(round(border * size))
    square = dlib.rectangle(pad, pad, pad + size - 1, pad + size - 1)
    shape = models.landmarks5(picture, square)
    return dlib.get_face_chip(picture, shape, size=CHIP_SIZE, padding=CHIP_PADDING)


def prepare_chunk(pictures: np.ndarray, size: int, border: float, files: tuple, detect: bool) -> tuple:
    """``(detected [n], landmarks inside [n], chips [n, 150, 150, 3])`` for canvases
    ``[n, C, C, 3]`` (see ``canvas``); ``files`` is ``(68-point file, 5-point file)``. Without
    ``detect`` the flags are empty."""
    models = shape_models(*files)
    detected, inside, chips = [], [], []
    for picture in pictures:
        if detect:
            found, placed = landmarks_found(models, picture)
            detected.append(found)
            inside.append(placed)
        chips.append(aligned_chip(models, picture, size, border))
    return detected, inside, np.stack(chips) if chips else np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)


def worker_count(faces: int, workers: Optional[int] = None) -> int:
    """How many processes prepare ``faces`` faces: ``workers`` if given, else one per core
    available to this process; one (no processes) for small batches or where fork is missing."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if faces < PARALLEL_FROM:
            return 1
    return max(1, int(workers))


def prepare_faces(images: np.ndarray, size: int, border: float, files: tuple, detect: bool, chunk: int,
                  workers: int = 1) -> Iterator[tuple]:
    """``prepare_chunk`` over the canvases of ``chunk`` uint8 faces ``[n, S, S, 3]`` at a time,
    yielded in order; with ``workers`` > 1 the chunks are prepared by that many forked processes
    while the caller consumes the earlier ones."""
    shape_models(*files)  # loaded before the fork (cached): every worker inherits them
    pictures = (np.stack([canvas(image, size, border) for image in images[start:start + chunk]])
                for start in range(0, len(images), chunk))
    if workers <= 1:
        for batch in pictures:
            yield prepare_chunk(batch, size, border, files, detect)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        pending = deque()
        for batch in pictures:  # a few chunks in flight, not every canvas of a split in memory
            pending.append(pool.submit(prepare_chunk, batch, size, border, files, detect))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
