"""generate: from a checkpoint alone, deterministic, windows and fusion, bad files, bad checkpoints."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from datatrees import BAD_KINDS, tone, write_audio, write_bad_audio
from train_helpers import TINY_DATA, run_cli, run_trainer
from main import app
from zoo.model import checkpoints
from zoo.media.audio import load_audio, sliding_windows
from zoo.media.images import decode_image
from zoo.model.pipeline import FacePipeline


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny trained run (0.25 s windows at 16 kHz) of wav2pix's dropout generator."""
    return run_trainer(tmp_path_factory.mktemp("runs"), save_path="tiny", max_steps=2, generator="dcgan").run_dir


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech")
    return write_audio(folder / "hello.wav", tone(1.0, freq=180.0))


class Result:
    """What a CLI run left: exit code and the two streams."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def generate(*args):
    """``generate`` through the real Typer app, in this process (the fresh-process case is below)."""
    outcome = CliRunner().invoke(app, ["generate", *map(str, args)], env={"COLUMNS": "200"})
    return Result(outcome.exit_code, outcome.stdout, outcome.stderr)


def test_rebuilds_from_the_checkpoint_alone_in_a_fresh_process(run_dir, speech, tmp_path):
    result = run_cli(["generate", str(speech), "--checkpoint",
                      str(run_dir / "checkpoints" / "last" / "model.safetensors"), "--out", str(tmp_path), "--json"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["failures"] == [] and report["files"][0]["windows"] == 7  # 1 s in 0.25 s windows, hop 0.125
    written = decode_image(tmp_path / "hello.png")
    pipeline = FacePipeline.from_checkpoint(run_dir, device="cpu")
    windows = sliding_windows(load_audio(speech, 16000, normalise=False), pipeline.num_samples)
    expected = pipeline.draw(pipeline.embed(windows).mean(0, keepdim=True), seed=0)[0]
    expected = ((expected.permute(1, 2, 0).numpy() + 1) * 127.5).round()
    assert np.abs(written.astype(float) - expected).max() <= 1  # the fused face, same in both processes


def test_same_seed_same_faces_and_variations_differ(run_dir, speech, tmp_path):
    pipeline = FacePipeline.from_checkpoint(run_dir, device="cpu")
    clip = torch.as_tensor(tone(0.25)[:, 0]).float().unsqueeze(0)
    assert torch.equal(pipeline(clip, seed=3), pipeline(clip, seed=3))
    assert torch.equal(pipeline(clip, seed=3), pipeline(clip, seed=4))  # no noise, dropout off
    varied = pipeline.draw(pipeline.embed(clip).repeat(4, 1), seed=3, stochastic=True)
    assert not torch.equal(varied[0], varied[1])
    again = pipeline.draw(pipeline.embed(clip).repeat(4, 1), seed=3, stochastic=True)
    assert torch.equal(varied, again)
    result = generate(speech, "--checkpoint", run_dir, "--out", tmp_path, "--num", "3")
    assert result.returncode == 2 and "--stochastic" in result.stderr
    result = generate(speech, "--checkpoint", run_dir, "--out", tmp_path, "--num", "3", "--stochastic")
    assert result.returncode == 0 and (tmp_path / "hello_samples.png").is_file()


def test_variations_need_noise_or_dropout(tmp_path, speech):
    plain = run_trainer(tmp_path, max_steps=1, generator="dcgan_bn").run_dir
    result = generate(speech, "--checkpoint", plain, "--out", tmp_path, "--num", "3", "--stochastic")
    assert result.returncode == 2 and "neither noise nor dropout" in result.stderr
    noisy = run_trainer(tmp_path / "z", max_steps=1, generator="dcgan_bn", z_dim=8).run_dir
    pipeline = FacePipeline.from_checkpoint(noisy, device="cpu")
    embedding = pipeline.embed(torch.as_tensor(tone(0.25)[:, 0]).float().unsqueeze(0)).repeat(3, 1)
    faces = pipeline.draw(embedding, seed=1)
    assert not torch.equal(faces[0], faces[1]) and torch.equal(faces, pipeline.draw(embedding, seed=1))


def test_windows_and_fusion_for_a_long_clip(run_dir, tmp_path):
    clip = write_audio(tmp_path / "long.flac", tone(3.5, rate=44100, channels=2), rate=44100)
    result = generate(clip, "--checkpoint", run_dir, "--out", tmp_path / "out", "--json", "--hop-seconds", "0.5")
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)["files"]
    expected_windows = 1 + (3.5 - 0.25) // 0.5 + 1  # hops, then one window aligned to the end
    assert entry["windows"] == expected_windows and entry["seconds"] == pytest.approx(3.5)
    grid = decode_image(tmp_path / "out" / "long_windows.png")
    assert grid.shape[0] > 64 and (tmp_path / "out" / "long.png").is_file()


def test_each_bad_audio_kind_fails_alone_with_one_line(run_dir, speech, tmp_path):
    """Every kind of bad file in one real process: each is one line, the good file still drawn."""
    bad = [write_bad_audio(tmp_path / kind, kind)[0] for kind in BAD_KINDS if not (tmp_path / kind).mkdir()]
    result = run_cli(["generate", *map(str, bad), str(speech), "--checkpoint", str(run_dir), "--out", str(tmp_path / "out")])
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("failed")]
    assert len(failed) == len(BAD_KINDS), result.stdout
    assert all(any(str(path) in line for line in failed) for path in bad)
    assert (tmp_path / "out" / "hello.png").is_file()  # the good file is still drawn


def test_interpolation_strip(run_dir, speech, tmp_path):
    other = write_audio(tmp_path / "other.wav", tone(0.5, freq=90.0))
    result = generate(speech, other, "--checkpoint", run_dir, "--out", tmp_path, "--interpolate", "5")
    assert result.returncode == 0, result.stderr
    strip = decode_image(tmp_path / "hello_to_other.png")
    assert strip.shape[1] > 4 * strip.shape[0]


def test_dataset_split_as_the_seed_wrote_it(run_dir, tmp_path):
    result = generate("--checkpoint", run_dir, "--dataset", "synthetic", "--split", "test", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    faces = sorted(p.name for p in tmp_path.glob("speaker_*_*.png"))
    # the run's own dataset arguments are reused: its 3 speakers, 8 test clips each
    assert len(faces) == TINY_DATA["num_identities"] * TINY_DATA["clips_per_identity"]
    assert (tmp_path / "grid.png").is_file()


def test_no_checkpoint_says_how_to_train(speech, tmp_path):
    result = generate(speech, "--runs-dir", tmp_path / "empty")
    assert result.returncode == 1 and "python main.py train" in result.stderr
    assert result.stderr.count("\n") == 1


def _with_description(model, target, change):
    """A copy of ``model`` whose description is ``change``d (the weights are the same)."""
    description = json.loads(json.dumps(checkpoints.read_description(model)))
    change(description)
    save_file(load_file(str(model)), str(target), metadata={checkpoints.METADATA_KEY: json.dumps(description)})
    return target


def _bad_checkpoints(run_dir, folder):
    model = run_dir / "checkpoints" / "last" / checkpoints.MODEL_FILE
    truncated = folder / "truncated.safetensors"
    truncated.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    pickled = folder / "model.pt"
    pickled.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    torch_file = folder / "torch.pt"
    torch.save({"w": torch.zeros(2)}, torch_file)
    random_bytes = folder / "random.safetensors"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(8192))
    wrong = folder / "wrong.safetensors"
    description = checkpoints.read_description(model)
    description["components"]["encoder"]["name"] = "segan"  # a description the weights don't fit
    save_file({"encoder.x": torch.zeros(1)}, str(wrong), metadata={checkpoints.METADATA_KEY: json.dumps(description)})
    components = lambda d: d["components"]  # noqa: E731
    cases = {
        "truncated": (truncated, "truncated"), "pickle": (pickled, "never unpickles"),
        "torch": (torch_file, "never unpickles"), "random": (random_bytes, "not a readable safetensors"),
        "wrong": (wrong, "do not match the model architecture"),
        "plugin": (_with_description(model, folder / "plugin.safetensors", lambda d: components(d)["encoder"].update(
            name="tiny_conv", distribution="wav2pix-zoo-example")), "(pip install wav2pix-zoo-example)"),
        "bad_distribution": (_with_description(model, folder / "shell.safetensors", lambda d: components(d)["encoder"].update(
            name="tiny_conv", distribution="totally-legit; rm -rf ~")), "no install command is suggested"),
        "kwargs_not_a_mapping": (_with_description(model, folder / "kwargs.safetensors", lambda d: components(d)["encoder"].update(
            kwargs=[1, 2])), "kwargs must be a mapping"),
        "missing_key": (_with_description(model, folder / "missing.safetensors", lambda d: d.pop("identities")),
                        "lacks identities"),
        "embed_dim_1e9": (_with_description(model, folder / "huge.safetensors", lambda d: components(d)["encoder"]["kwargs"].update(
            embed_dim=10**9)), "embed_dim 1000000000, outside"),
    }
    return cases


@pytest.mark.parametrize("case", ["truncated", "pickle", "torch", "random", "wrong", "plugin", "bad_distribution",
                                  "kwargs_not_a_mapping", "missing_key", "embed_dim_1e9"])
def test_bad_checkpoints_are_refused_with_one_line(run_dir, speech, tmp_path, case):
    path, expected = _bad_checkpoints(run_dir, tmp_path)[case]
    result = run_cli(["generate", str(speech), "--checkpoint", str(path), "--out", str(tmp_path / "out")])
    assert result.returncode == 1, result.stdout
    assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "pip install totally" not in result.stderr
