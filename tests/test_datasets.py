"""The three datasets: youtubers (real data and a tiny copy of its layout), folder, synthetic."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest
import torch

from datatrees import COLORS, folder_tree, write_audio, write_face, youtubers_tree
from plugins.datasets import folder, youtubers
from plugins.datasets.paired_files import UnpairedFilesWarning
from plugins.synthetic import identity_traits, render_sample_grid, synthetic
from zoo.errors import DataError

SMALL = {"image_size": 32, "sample_rate": 16000, "num_samples": 4000}


def mean_rgb(image: torch.Tensor) -> np.ndarray:
    return image.reshape(3, -1).mean(dim=1).numpy()


# -- youtubers on the real data -----------------------------------------------------------------------
def test_youtubers_real_data_labels_follow_sorted_folders(youtubers_root):
    data = youtubers(str(youtubers_root), "train")
    folders = sorted(p.name for p in (youtubers_root / "train").iterdir() if p.is_dir())
    assert data.identities == folders
    for index in (0, len(data) // 2, len(data) - 1):
        assert data.pairs[index].image.parent.name == folders[data.labels[index]]
    assert all(key.startswith(data.identities[label] + "_") for key, label in zip(data.keys, data.labels))


def test_youtubers_real_faces_come_out_rgb_with_warm_skin(youtubers_root):
    data = youtubers(str(youtubers_root), "test", image_size=64)
    picks = np.linspace(0, len(data) - 1, 12).astype(int)
    items = [data[int(i)] for i in picks]
    mean = np.mean([mean_rgb(item["image"]) for item in items], axis=0)
    assert mean[0] > mean[2] + 0.05  # skin: more red than blue, once the stored swap is undone
    for item in items:
        assert item["image"].shape == (3, 64, 64) and item["wave"].shape == (16000,)
        assert item["image"].dtype == torch.float32 and -1 <= item["image"].min() <= item["image"].max() <= 1
    stored = youtubers(str(youtubers_root), "test", image_size=64, swap_red_blue=False)
    raw = np.mean([mean_rgb(stored[int(i)]["image"]) for i in picks], axis=0)
    assert raw[2] > raw[0]  # as stored on disk: blue skin


def test_youtubers_real_splits_are_disjoint(youtubers_root):
    train, test = youtubers(str(youtubers_root), "train"), youtubers(str(youtubers_root), "test")
    assert not set(train.keys) & set(test.keys)
    assert train.identities == test.identities


# -- youtubers on a tiny tree ----------------------------------------------------------------------------
def test_youtubers_tree_items_and_swap(tmp_path):
    root = youtubers_tree(tmp_path / "yt")
    data = youtubers(str(root), "train", **SMALL)
    assert data.identities == ["alice", "bob"] and len(data) == 6
    item = data[0]
    assert item["identity"] == 0 and item["key"] == "alice_3"
    assert item["wave"].shape == (4000,) and item["image"].shape == (3, 32, 32)
    r, g, b = mean_rgb(item["image"])
    assert r > b  # alice is orange; stored swapped, served unswapped


def test_youtubers_keeps_true_png_faces_as_they_are(tmp_path):
    root = youtubers_tree(tmp_path / "yt", swapped=False, fmt="PNG")  # prepare's output
    r, g, b = mean_rgb(youtubers(str(root), "train", **SMALL)[0]["image"])
    assert r > b  # alice is orange and stored in RGB: the automatic swap leaves it alone
    forced = youtubers(str(root), "train", swap_red_blue=True, **SMALL)[0]["image"]
    assert mean_rgb(forced)[2] > mean_rgb(forced)[0]


@pytest.mark.parametrize("root", [None, "", "missing"])
def test_youtubers_without_a_root_is_one_line_data_error(tmp_path, root):
    root = str(tmp_path / root) if root == "missing" else root
    with pytest.raises(DataError) as caught:
        youtubers(root)
    assert "\n" not in str(caught.value) and "youtubers" in str(caught.value)


def test_youtubers_empty_root_and_missing_split_are_data_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no 'train' split"):
        youtubers(str(tmp_path / "empty"))
    (tmp_path / "empty" / "train" / "ann").mkdir(parents=True)
    with pytest.raises(DataError, match="no audio/image pairs"):
        youtubers(str(tmp_path / "empty"))


def test_youtubers_reports_unpaired_files(tmp_path):
    root = youtubers_tree(tmp_path / "yt", splits=("train",))
    write_face(root / "train" / "bob" / "cropped_face_frame_77.png")
    with pytest.warns(UnpairedFilesWarning, match="cropped_face_frame_77"):
        data = youtubers(str(root), **SMALL)
    assert len(data) == 6


# -- folder ------------------------------------------------------------------------------------------------
def test_folder_seeded_split_is_disjoint_complete_and_stable(tmp_path):
    root = folder_tree(tmp_path / "mine")
    train, test = folder(str(root), "train", **SMALL), folder(str(root), "test", **SMALL)
    assert not set(train.keys) & set(test.keys)
    assert len(train.keys) + len(test.keys) == 10
    assert sorted(test.labels) == [0, 1]  # each identity gives one of its five to test
    assert folder(str(root), "test", **SMALL).keys == test.keys  # same seed, same split
    other = [folder(str(root), "test", seed=s, **SMALL).keys for s in range(1, 6)]
    assert any(keys != test.keys for keys in other)


def test_folder_items_match_their_identity(tmp_path):
    root = folder_tree(tmp_path / "mine", split="train")
    data = folder(str(root), "train", **SMALL)
    assert data.identities == ["alice", "bob"] and len(data) == 10
    for index in (0, 9):
        item = data[index]
        name = data.identities[item["identity"]]
        assert item["key"].startswith(name)
        expected = np.array(COLORS[name]) / 127.5 - 1
        assert np.argmax(mean_rgb(item["image"])) == np.argmax(expected)


def test_folder_with_split_folders_refuses_an_absent_split(tmp_path):
    root = folder_tree(tmp_path / "mine", split="train")
    with pytest.raises(DataError, match="no 'test' split folder"):
        folder(str(root), "test")


def test_folder_decodes_by_content_any_format_and_rate(tmp_path):
    person = tmp_path / "mine" / "carol"
    write_face(person / "x.png", COLORS["carol"], fmt="JPEG")  # JPEG bytes behind a .png name
    stereo = np.stack([np.sin(np.arange(22050) / 10), np.sin(np.arange(22050) / 7)], axis=1) * 0.3
    write_audio(person / "x.flac", stereo, rate=44100)
    write_face(person / "y.jpg", COLORS["carol"], fmt="PNG")
    write_audio(person / "y.mp3", stereo, rate=22050)
    data = folder(str(tmp_path / "mine"), "train", test_fraction=0.0, **SMALL)
    assert len(data) == 2
    for index in range(2):
        item = data[index]
        assert item["wave"].shape == (4000,) and item["image"].shape == (3, 32, 32)


def test_folder_reports_unpaired_files_by_name(tmp_path):
    root = folder_tree(tmp_path / "mine", stems=("a1", "a2"))
    write_audio(root / "alice" / "lonely.wav")
    write_face(root / "bob" / "faceonly.jpg")
    (root / "bob" / "notes.txt").write_text("ignored: neither audio nor image")
    with pytest.warns(UnpairedFilesWarning) as record:
        data = folder(str(root), "train", test_fraction=0.0, **SMALL)
    message = str(record[0].message)
    assert "lonely.wav" in message and "faceonly.jpg" in message and "notes.txt" not in message
    assert len(data) == 4


def test_folder_manifest_with_and_without_split_column(tmp_path):
    root = folder_tree(tmp_path / "mine")
    rows = [{"audio": f"{who}/{who}_{s}.wav", "image": f"{who}/{who}_{s}.jpg", "identity": who,
             "split": "test" if s == "a1" else "train"}
            for who in ("alice", "bob") for s in ("a1", "a2", "a3")]
    with_split = root / "pairs.csv"
    with open(with_split, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["audio", "image", "identity", "split"])
        writer.writeheader()
        writer.writerows(rows)
    test = folder(str(with_split), "test", **SMALL)  # the root may be the CSV itself
    assert sorted(test.keys) == ["alice_a1", "bob_a1"]
    no_split = root / "manifest.csv"
    with open(no_split, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["audio", "image", "identity"])
        writer.writeheader()
        writer.writerows([{k: v for k, v in row.items() if k != "split"} for row in rows])
    train, test = folder(str(root), "train", **SMALL), folder(str(root), "test", **SMALL)
    assert len(train) + len(test) == 6 and not set(train.keys) & set(test.keys)


def test_folder_manifest_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,who\nx.wav,alice\n")
    with pytest.raises(DataError, match="missing: audio, identity, image"):
        folder(str(bad))
    with pytest.raises(DataError, match="manifest not found"):
        folder(str(tmp_path), manifest="nope.csv")


def test_folder_empty_root_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no identity folders"):
        folder(str(tmp_path))
    with pytest.raises(DataError, match="needs a root"):
        folder(None)


# -- synthetic -------------------------------------------------------------------------------------------------
def test_synthetic_is_deterministic_for_a_seed():
    first, second = synthetic(num_identities=3, clips_per_identity=2, seed=5), \
        synthetic(num_identities=3, clips_per_identity=2, seed=5)
    for index in (0, 5):
        a, b = first[index], second[index]
        assert torch.equal(a["wave"], b["wave"]) and torch.equal(a["image"], b["image"])
    other = synthetic(num_identities=3, clips_per_identity=2, seed=6)[0]
    assert not torch.equal(other["wave"], first[0]["wave"])


def test_synthetic_train_and_test_clips_are_disjoint_but_identities_shared():
    train = synthetic(split="train", num_identities=2, clips_per_identity=6, **SMALL)
    test = synthetic(split="test", num_identities=2, clips_per_identity=6, **SMALL)
    assert train.identities == test.identities
    train_waves = [train[i]["wave"] for i in range(len(train))]
    for index in range(len(test)):
        wave = test[index]["wave"]
        assert all(not torch.allclose(wave, other) for other in train_waves)


def test_synthetic_honours_sizes_and_contract():
    data = synthetic(num_identities=4, clips_per_identity=3, image_size=48, sample_rate=8000, num_samples=6000)
    assert len(data) == 12 and data.identities == sorted(data.identities)
    item = data[7]
    assert item["wave"].shape == (6000,) and item["image"].shape == (3, 48, 48)
    assert item["identity"] == data.labels[7] == 2 and item["key"] == f"{data.identities[2]}_1"
    assert torch.isfinite(item["wave"]).all() and item["wave"].abs().max() == pytest.approx(1.0)


def _pitch_estimate(wave: np.ndarray, rate: int) -> float:
    """The autocorrelation peak between 70 and 400 Hz, in Hz."""
    spectrum = np.fft.rfft(wave, 2 * len(wave))
    autocorr = np.fft.irfft(np.abs(spectrum) ** 2)[: len(wave)]
    lo, hi = rate // 400, rate // 70
    return rate / (lo + int(np.argmax(autocorr[lo:hi])))


def test_synthetic_voices_follow_their_identity_pitch():
    data = synthetic(num_identities=10, clips_per_identity=4, image_size=16)
    pitches = [voice.pitch for voice, _ in data.traits]
    low, high = int(np.argmin(pitches)), int(np.argmax(pitches))
    assert pitches[high] > 1.4 * pitches[low]  # the default cast spans low and high voices
    estimate = {who: np.median([_pitch_estimate(data[who * 4 + k]["wave"].numpy(), 16000)
                                for k in range(4)]) for who in (low, high)}
    assert estimate[high] > estimate[low] * 1.2


def test_synthetic_face_traits_correlate_with_voice_traits():
    traits = [identity_traits(0, i) for i in range(300)]
    pitch = np.array([v.pitch for v, _ in traits])
    jaw = np.array([f.jaw for _, f in traits])
    tract = np.array([v.tract_scale for v, _ in traits])
    length = np.array([f.face_length for _, f in traits])
    assert np.corrcoef(pitch, jaw)[0, 1] < -0.5  # low voices, wide jaws
    assert np.corrcoef(tract, length)[0, 1] < -0.2  # longer tracts (lower formants), longer faces


def test_synthetic_mouth_opens_with_loudness_at_the_centre():
    from plugins.synthetic.voice import synthesise

    voice, _ = identity_traits(0, 0)
    openings, loudness = [], []
    for clip in range(40):
        wave, (opening, _) = synthesise(voice, np.random.default_rng(clip), 16000, 16000)
        centre = wave[8000 - 400: 8000 + 400]
        openings.append(opening)
        loudness.append(np.sqrt(np.mean(centre ** 2)) / np.abs(wave).max())
    assert np.corrcoef(openings, loudness)[0, 1] > 0.4


def test_synthetic_sample_grid_renders(tmp_path):
    from PIL import Image

    path = render_sample_grid(str(tmp_path / "grid.png"), num_identities=3, clips=2, image_size=32)
    picture = np.asarray(Image.open(path))
    assert picture.shape[0] > 3 * 32 and picture.std() > 20  # three rows of varied faces


def test_synthetic_rejects_bad_options():
    with pytest.raises(ValueError):
        synthetic(num_identities=0)
    with pytest.raises(ValueError):
        synthetic(split="holdout")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synthetic(root="/ignored/for/synthetic", num_identities=1, clips_per_identity=1)[0]
