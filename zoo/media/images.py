"""Faces in and pictures out: decode by content, RGB, antialiased resize, tensors, PNG grids.

Images are decoded by what the bytes are, not by the file name (wav2pix's "png" faces are JPEG
bytes). Inside the project a face is either ``uint8 [H, W, 3]`` RGB (storage, caches) or float32
``[3, S, S]`` in [-1, 1] (what generators emit and discriminators see). The grid and image
writers accept either form, single or batched, so the trainer, ``generate`` and ``evaluate`` all
draw their pictures the same way.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import torch

from zoo.errors import DataError
from zoo.files import replacing

PathLike = Union[str, os.PathLike]
ImageLike = Union[torch.Tensor, np.ndarray, Sequence]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


# -- decoding and resizing ---------------------------------------------------------------------------
def decode_image(source: Union[PathLike, bytes], *, min_size: Optional[int] = None) -> np.ndarray:
    """Decode a file path or raw bytes to ``uint8 [H, W, 3]`` RGB, whatever the extension says.

    ``min_size`` lets JPEG decoding skip detail that a later resize to that size would throw
    away (libjpeg's DCT scaling), which is several times faster for large photos.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    try:
        handle = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        with handle:
            if min_size:
                handle.draft("RGB", (min_size, min_size))
            image = ImageOps.exif_transpose(handle)
            return np.array(_as_rgb(image), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{name}: no such image file") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a recognised image (png, jpg, bmp or webp)") from None
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's ways of saying "damaged"
        raise DataError(f"{name}: the image is damaged or truncated ({' '.join(str(exc).split())})") from None


def _as_rgb(image):
    """Any PIL mode as RGB; transparency is laid over white, not over black."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping at 255.
        array = np.asarray(image, dtype=np.float64)
        return Image.fromarray((array / max(array.max(), 1) * 255).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def swap_red_blue(image: np.ndarray) -> np.ndarray:
    """Exchange the red and blue channels of ``[..., 3]`` (wav2pix stored its faces as BGR)."""
    return np.ascontiguousarray(image[..., ::-1])


def center_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of ``[H, W, 3]``, so resizing never distorts a face."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[top:top + side, left:left + side]


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-square and resize ``uint8 [H, W, 3]`` to ``[size, size, 3]`` with antialiasing.

    PIL's Lanczos filter widens its kernel when shrinking, so downscaling averages instead of
    aliasing (plain nearest or bilinear sampling would shimmer).
    """
    from PIL import Image

    square = center_square(image)
    if square.shape[0] == size and square.shape[1] == size:
        return np.ascontiguousarray(square)
    resized = Image.fromarray(np.ascontiguousarray(square)).resize(
        (size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.array(resized, dtype=np.uint8)


def load_face(path: PathLike, size: int, *, swap_channels: bool = False) -> np.ndarray:
    """Decode, optionally swap red and blue, and resize one face to ``uint8 [size, size, 3]``."""
    image = decode_image(path, min_size=size)
    if swap_channels:
        image = swap_red_blue(image)
    return resize_square(image, size)


# -- tensors --------------------------------------------------------------------------------------------
def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``uint8 [H, W, 3]`` (or ``[N, H, W, 3]``) to float32 ``[3, H, W]`` (``[N, 3, H, W]``) in [-1, 1]."""
    if not image.flags.writeable:  # PIL views and read-only memmaps: torch wants to own a copy
        image = np.array(image)
    array = torch.from_numpy(np.ascontiguousarray(image))
    return array.movedim(-1, -3).float().div_(127.5).sub_(1.0).contiguous()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """Float ``[3, H, W]`` or ``[N, 3, H, W]`` in [-1, 1] to ``uint8 [H, W, 3]`` / ``[N, H, W, 3]``."""
    scaled = (image.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5
    return scaled.round().to(torch.uint8).movedim(-3, -1).contiguous().numpy()


def as_uint8_batch(images: ImageLike) -> np.ndarray:
    """Accept a tensor, an array or a list of either (float in [-1, 1] or uint8) as ``[N, H, W, 3]``."""
    if isinstance(images, (list, tuple)):
        parts = [as_uint8_batch(image) for image in images]
        return np.concatenate(parts) if parts else np.zeros((0, 1, 1, 3), np.uint8)
    if isinstance(images, torch.Tensor):
        if images.dtype == torch.uint8:
            images = images.cpu().numpy()
        else:
            batch = images.unsqueeze(0) if images.dim() == 3 else images
            return to_uint8(batch)
    array = np.asarray(images)
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 images or float tensors in [-1, 1], got {array.dtype}")
    return array[None] if array.ndim == 3 else array


# -- pictures on disk -------------------------------------------------------------------------------------
def make_grid(images: ImageLike, nrow: Optional[int] = None, padding: int = 2,
              pad_value: int = 255) -> np.ndarray:
    """Tile images into one ``uint8 [H, W, 3]`` picture, ``nrow`` images per row (default: square)."""
    batch = as_uint8_batch(images)
    count, height, width = batch.shape[:3]
    if count == 0:
        raise ValueError("make_grid needs at least one image")
    columns = nrow or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    grid = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding, 3),
                   pad_value, dtype=np.uint8)
    for index, image in enumerate(batch):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


def save_image(image: ImageLike, path: PathLike) -> Path:
    """Write one image (tensor in [-1, 1] or uint8 array) as PNG, atomically; returns the path."""
    batch = as_uint8_batch(image)
    if batch.shape[0] != 1:
        raise ValueError(f"save_image takes one image, got {batch.shape[0]}; use save_grid")
    return write_png(batch[0], Path(path))


def render_grid(images: ImageLike, nrow: Optional[int] = None, *, padding: int = 2,
                row_labels: Optional[Iterable[str]] = None, scale: int = 1) -> np.ndarray:
    """Images as one picture, ``uint8 [H, W, 3]``: what ``save_grid`` writes.

    ``row_labels`` writes a name left of each row (e.g. the identity in a real-vs-generated
    sheet); ``scale`` enlarges small faces with nearest-neighbour so pixels stay honest.
    """
    grid = make_grid(images, nrow=nrow, padding=padding)
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    if row_labels is not None:
        tile = as_uint8_batch(images).shape[1] * scale + padding * scale
        grid = _label_rows(grid, list(row_labels), tile, padding * scale)
    return grid


def save_grid(images: ImageLike, path: PathLike, nrow: Optional[int] = None, *, padding: int = 2,
              row_labels: Optional[Iterable[str]] = None, scale: int = 1) -> Path:
    """Write images as one PNG grid (see ``render_grid``), atomically; returns the path."""
    return write_png(render_grid(images, nrow, padding=padding, row_labels=row_labels, scale=scale), Path(path))


def _label_rows(grid: np.ndarray, labels: list, row_height: int, top: int) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    font_size = max(8, min(16, row_height // 3))
    try:
        font = ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        font = ImageFont.load_default()
    margin = max((int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(str(t), font=font))
                  for t in labels), default=0) + 8
    canvas = Image.new("RGB", (grid.shape[1] + margin, grid.shape[0]), (255, 255, 255))
    canvas.paste(Image.fromarray(grid), (margin, 0))
    draw = ImageDraw.Draw(canvas)
    scalable = isinstance(font, ImageFont.FreeTypeFont)  # bitmap fonts cannot take an anchor
    for row, text in enumerate(labels):
        centre = top + row * row_height + row_height // 2
        if scalable:
            draw.text((4, centre), str(text), fill=(30, 30, 30), font=font, anchor="lm")
        else:
            draw.text((4, centre - 5), str(text), fill=(30, 30, 30), font=font)
    return np.asarray(canvas)


def write_png(array: np.ndarray, path: PathLike) -> Path:
    """Save ``uint8 [H, W, 3]`` as PNG via a temporary file and a rename, so a reader never sees
    half a picture."""
    from PIL import Image

    path = Path(path)
    with replacing(path, sync=False) as temporary:  # pictures: atomic, but not worth an fsync each
        Image.fromarray(np.ascontiguousarray(array)).save(temporary, format="PNG")
    return path
