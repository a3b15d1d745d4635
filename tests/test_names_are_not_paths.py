"""Identities and keys are names, never paths: refused where data is read, and no writer leaves
its output folder whatever name it is handed."""

from __future__ import annotations

import os

import pytest
import torch

import registry
from datatrees import write_audio, write_face, youtubers_tree
from train_helpers import run_cli, run_trainer, tiny_options
from zoo.errors import DataError, UsageError
from zoo.files import check_name, inside

ESCAPE = "../../../escaped"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return run_trainer(tmp_path_factory.mktemp("runs"), save_path="tiny", max_steps=1).run_dir


def crafted_manifest(root):
    """A manifest whose identity climbs out, with a stem used twice so the identity enters the key."""
    for who in ("evil", "bob"):
        write_audio(root / who / "clip.wav")
        write_face(root / who / "clip.jpg")
    (root / "manifest.csv").write_text("audio,image,identity,split\n"
                                       f"evil/clip.wav,evil/clip.jpg,{ESCAPE},test\n"
                                       "bob/clip.wav,bob/clip.jpg,bob,test\n")
    return root


def escaped_files(top):
    return [p for p in top.rglob("*") if "escaped" in p.name]


def test_a_crafted_manifest_cannot_make_generate_write_outside_out(run_dir, tmp_path):
    root = crafted_manifest(tmp_path / "data")
    out = tmp_path / "deep" / "er" / "out"  # three levels up is tmp_path itself
    result = run_cli(["generate", "--dataset", "folder", "--data", str(root), "--split", "test",
                      "--checkpoint", str(run_dir), "--out", str(out)])
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "is not a plain name" in result.stderr
    assert "row 1: identity '../../../escaped'" in result.stderr
    assert escaped_files(tmp_path) == []


def test_the_folder_dataset_refuses_a_path_for_an_identity(tmp_path):
    root = crafted_manifest(tmp_path / "data")
    with pytest.raises(DataError, match="not a plain name"):
        registry.create("dataset", "folder", root=str(root), split="test")


def test_youtubers_refuses_an_identity_folder_that_is_not_a_plain_name(tmp_path):
    root = youtubers_tree(tmp_path / "yt", identities=("bob",))
    (root / "train" / "bob").rename(root / "train" / "bo\\b")
    with pytest.raises(DataError, match="identity 'bo\\\\\\\\b' is not a plain name"):
        registry.create("dataset", "youtubers", root=str(root), split="train")


class KeysThatArePaths(torch.utils.data.Dataset):
    """A third-party dataset that never checked its keys: the writer must still refuse them."""

    identities = ["a"]
    labels = [0]
    keys = [ESCAPE]

    def __len__(self):
        return 1

    def __getitem__(self, index):
        return {"wave": torch.zeros(4000), "image": torch.zeros(3, 64, 64), "identity": 0, "key": ESCAPE}


def test_generate_split_refuses_a_key_that_would_leave_out(run_dir, tmp_path, monkeypatch):
    from zoo.generate import generate_split

    original = registry.create
    monkeypatch.setattr(registry, "create", lambda kind, name, **kw: KeysThatArePaths() if kind == "dataset"
                        else original(kind, name, **kw))
    out = tmp_path / "deep" / "er" / "out"
    with pytest.raises(DataError, match="writing it would leave"):
        generate_split(run_dir, dataset="synthetic", root=None, split="test", out=out, device="cpu")
    assert escaped_files(tmp_path) == []


@pytest.mark.parametrize("name", ["../x.png", "a/b.png", "..", ".", "", "a\\b.png", "nul\0.png"])
def test_inside_refuses_every_name_that_is_not_one_plain_component(tmp_path, name):
    with pytest.raises(DataError):
        inside(tmp_path, name)


def test_inside_refuses_a_link_that_points_out_and_accepts_plain_names(tmp_path):
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "elsewhere.png", tmp_path / "out" / "face.png")
    with pytest.raises(DataError):
        inside(tmp_path / "out", "face.png")
    assert inside(tmp_path / "out", "speaker_0_3.png") == tmp_path / "out" / "speaker_0_3.png"
    assert check_name("...") == "..."  # dots inside a name are fine; only '.' and '..' are paths


@pytest.mark.parametrize("option", ["save_path", "vis_screen"])
def test_run_and_tensorboard_names_are_plain_names(tmp_path, option):
    from zoo.train.config import resolve

    with pytest.raises(UsageError, match="must be a plain folder name"):
        resolve(tiny_options(tmp_path, **{option: "../../elsewhere"}))
