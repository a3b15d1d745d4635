"""zoo.media.images: decoding by content, RGB, antialiased resizing, tensors and PNG grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from datatrees import face_bytes, write_face
from zoo.media import images
from zoo.errors import DataError


def test_decodes_by_content_not_by_extension(tmp_path):
    path = write_face(tmp_path / "face.png", (200, 100, 50), fmt="JPEG")  # wav2pix's "png" faces
    rgb = images.decode_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (40, 40, 3)
    assert rgb[2, 2, 0] > rgb[2, 2, 2] + 100  # red stays red
    assert np.array_equal(images.decode_image(path.read_bytes()), rgb)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    source = Image.new("RGB", (10, 8), (30, 60, 90))
    if mode == "I;16":
        picture = Image.fromarray(np.full((8, 10), 4000, np.uint16))
    else:
        picture = source.convert(mode)
    path = tmp_path / "x.png" if mode != "CMYK" else tmp_path / "x.jpg"
    picture.save(path)
    rgb = images.decode_image(path)
    assert rgb.shape == (8, 10, 3) and rgb.dtype == np.uint8


def test_transparency_is_laid_over_white(tmp_path):
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert images.decode_image(tmp_path / "clear.png").min() == 255


@pytest.mark.parametrize("content", ["text", "truncated", "missing"])
def test_bad_images_are_one_line_data_errors(tmp_path, content):
    path = tmp_path / "bad.jpg"
    if content == "text":
        path.write_text("not a picture")
    elif content == "truncated":
        path.write_bytes(face_bytes(size=64)[:300])
    with pytest.raises(DataError) as caught:
        images.decode_image(path)
    assert "bad.jpg" in str(caught.value) and "\n" not in str(caught.value)


def test_resize_averages_fine_detail_instead_of_aliasing():
    stripes = np.zeros((256, 256, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: naive subsampling gives all black or all white
    small = images.resize_square(stripes, 32)
    assert small.shape == (32, 32, 3)
    assert abs(float(small.mean()) - 127.5) < 12 and small.std() < 12


def test_resize_crops_the_centre_square_first():
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, 20:40] = 255  # the centre square is white, the sides black
    assert images.resize_square(wide, 10).min() > 240


def test_swap_red_blue_and_load_face(tmp_path):
    path = write_face(tmp_path / "f.png", (50, 100, 220), size=64, fmt="PNG")
    plain = images.load_face(path, 16)
    swapped = images.load_face(path, 16, swap_channels=True)
    assert plain.shape == swapped.shape == (16, 16, 3)
    assert np.array_equal(swapped, plain[..., ::-1])


def test_tensor_round_trip_is_exact_and_in_range():
    rgb = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    tensor = images.to_tensor(rgb)
    assert tensor.shape == (2, 3, 5, 7) and tensor.dtype == torch.float32
    assert tensor.min() >= -1 and tensor.max() <= 1
    assert np.array_equal(images.to_uint8(tensor), rgb)
    assert np.array_equal(images.to_uint8(images.to_tensor(rgb[0])), rgb[0])
    assert images.to_uint8(torch.full((3, 2, 2), 5.0)).min() == 255  # out of range is clamped


def test_save_grid_tiles_labels_and_leaves_no_temporary_files(tmp_path):
    faces = torch.rand(5, 3, 8, 8) * 2 - 1
    path = images.save_grid(faces, tmp_path / "out" / "grid.png", nrow=3, padding=2)
    picture = np.asarray(Image.open(path))
    assert picture.shape == (2 * 10 + 2, 3 * 10 + 2, 3)
    assert np.array_equal(picture[2:10, 2:10], images.to_uint8(faces[0]))
    labelled = images.save_grid(faces, tmp_path / "labelled.png", nrow=3, row_labels=["alice", "bob"], scale=2)
    assert np.asarray(Image.open(labelled)).shape[1] > 2 * picture.shape[1]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["grid.png", "labelled.png"]


def test_save_image_takes_one_image_of_either_kind(tmp_path):
    uint8 = np.full((6, 6, 3), 7, np.uint8)
    assert np.asarray(Image.open(images.save_image(uint8, tmp_path / "a.png"))).max() == 7
    images.save_image(torch.zeros(3, 6, 6), tmp_path / "b.png")
    with pytest.raises(ValueError):
        images.save_image(torch.zeros(2, 3, 6, 6), tmp_path / "c.png")
