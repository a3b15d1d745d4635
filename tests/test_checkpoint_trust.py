"""Checkpoints read from disk are untrusted: the description's schema, bounds before allocation,
pickle payloads that must never run, and one line through every command that reads one."""

from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import registry
from datatrees import write_audio
from train_helpers import cli_args, run_cli, run_trainer
from zoo.errors import CheckpointError
from zoo.model import checkpoints, pipeline as pipeline_module
from zoo.model.pipeline import FacePipeline
from zoo.model.schema import check_description
from zoo.model.speech_to_face import build_speech_to_face, describe, missing_plugin_message


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny trained run whose last checkpoint the tests copy and tamper with."""
    return run_trainer(tmp_path_factory.mktemp("runs"), save_path="tiny", max_steps=1).run_dir


def model_file(run) -> "os.PathLike":
    return run / "checkpoints" / "last" / checkpoints.MODEL_FILE


def rewrite_description(source, target, change):
    """Copy a safetensors checkpoint to ``target`` with ``change(description)`` as its description."""
    description = json.loads(json.dumps(checkpoints.read_description(source)))
    changed = change(description)
    text = changed if isinstance(changed, str) else json.dumps(description if changed is None else changed)
    save_file(load_file(str(source)), str(target), metadata={checkpoints.METADATA_KEY: text})
    return target


def pickle_payload(sentinel) -> bytes:
    """A torch/pickle file whose unpickling would create ``sentinel``: what an attacker would ship."""

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(sentinel),))

    buffer = io.BytesIO()
    torch.save({"state": Payload()}, buffer)
    return buffer.getvalue()


def oversized(description):
    description["components"]["encoder"]["kwargs"]["embed_dim"] = 10**9


# -- the schema -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [64, 128])
def test_every_description_the_zoo_writes_passes_the_schema(size):
    for encoder in registry.components("encoder"):
        for generator in registry.components("generator"):
            for discriminator in registry.components("discriminator"):
                description = describe(
                    encoder=(encoder.name, {"sample_rate": 16000, "num_samples": 16000, "embed_dim": 128}),
                    generator=(generator.name, {"image_size": size, "embed_dim": 128, "z_dim": 8}),
                    discriminator=(discriminator.name, {"image_size": size, "embed_dim": 128}),
                    identities=["a", "b"], image_size=size, sample_rate=16000, num_samples=16000)
                assert check_description(json.loads(json.dumps(description)), "x") is not None


def _set(path, value):
    def change(description):
        *parents, last = path
        target = description
        for key in parents:
            target = target[key]
        target[last] = value
    return change


def _delete(key):
    def change(description):
        del description[key]
    return change


MALFORMED = {
    "not_an_object": (lambda d: [1, 2], "must be a JSON object"),
    "missing_key": (_delete("identities"), "lacks identities"),
    "kwargs_not_a_mapping": (_set(["components", "encoder", "kwargs"], [1, 2]), "kwargs must be a mapping"),
    "components_not_a_mapping": (_set(["components"], "encoder"), "components must be a mapping"),
    "newer_format": (_set(["format"], "wav2pix-zoo/7"), "reads wav2pix-zoo/1 only"),
    "foreign_format": (_set(["format"], "someone-else/1"), "not a wav2pix-zoo model description"),
    "embed_dim_1e9": (oversized, "embed_dim 1000000000, outside [1, 16384]"),
    "image_size_text": (_set(["image_size"], "64"), "image_size must be an integer"),
    "huge_image": (_set(["image_size"], 10**6), "image_size 1000000, outside"),
    "no_identities": (_set(["identities"], []), "0 identities"),
    "identity_not_text": (_set(["identities"], [1, 2]), "identities must be non-empty strings"),
    "nan_argument": (_set(["components", "encoder", "kwargs", "width"], float("nan")), "finite number"),
    "nested_argument": (_set(["components", "encoder", "kwargs", "width"], {"a": 1}), "JSON number"),
    "huge_integer_argument": (_set(["components", "encoder", "kwargs", "width"], 2**40), "beyond"),
    "path_as_name": (_set(["components", "encoder", "name"], "../evil"), "lower_snake_case"),
    "sizes_disagree": (_set(["components", "generator", "kwargs", "image_size"], 128), "disagrees"),
    "embed_dims_disagree": (_set(["components", "generator", "kwargs", "embed_dim"], 64), "disagree on embed_dim"),
    "unknown_kind": (_set(["components", "vocoder"], {"name": "x", "kwargs": {}}), "unknown kind"),
    "thousands_of_digits": (lambda d: '{"format": 1' + "0" * 5000 + "}", "not valid JSON"),
    "deep_nesting": (lambda d: "[" * 100_000 + "]" * 100_000, "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_and_oversized_descriptions_are_one_line(run_dir, tmp_path, case):
    change, expected = MALFORMED[case]
    file = rewrite_description(model_file(run_dir), tmp_path / "model.safetensors", change)
    with pytest.raises(CheckpointError) as caught:
        FacePipeline.from_checkpoint(file, device="cpu")
    message = str(caught.value)
    assert expected in message and "\n" not in message and str(file) in message


def test_random_bytes_are_refused_as_not_safetensors(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        checkpoints.read_description(file)


def test_pip_install_is_suggested_only_for_a_valid_project_name():
    entry = {"name": "tiny_conv", "kwargs": {}, "distribution": "totally-legit; rm -rf ~", "version": "1.0"}
    message = missing_plugin_message("encoder", entry)
    assert "pip install" not in message and "rm -rf" not in message
    entry.update(distribution="wav2pix-zoo-example", version="0.1.0; echo")
    message = missing_plugin_message("encoder", entry)
    assert "(pip install wav2pix-zoo-example)" in message and "echo" not in message


def test_weights_that_do_not_fit_the_description_are_refused_before_a_real_build(run_dir, tmp_path, monkeypatch):
    """A width of 2**20 fits every bound but not the file: only the meta-device skeleton is built."""
    file = rewrite_description(model_file(run_dir), tmp_path / "model.safetensors",
                               _set(["components", "encoder", "kwargs", "width"], 2**20))
    devices = []

    def spying_build(description, source=None):
        devices.append(torch.get_default_device().type)
        return build_speech_to_face(description, source)

    monkeypatch.setattr(pipeline_module, "build_speech_to_face", spying_build)
    with pytest.raises(CheckpointError, match="do not match the model architecture"):
        FacePipeline.from_checkpoint(file, device="cpu")
    assert devices == ["meta"]  # the 2**20-wide encoder was never allocated


def test_a_sound_checkpoint_builds_once_for_real_after_its_skeleton(run_dir, monkeypatch):
    devices = []

    def spying_build(description, source=None):
        devices.append(torch.get_default_device().type)
        return build_speech_to_face(description, source)

    monkeypatch.setattr(pipeline_module, "build_speech_to_face", spying_build)
    FacePipeline.from_checkpoint(run_dir, device="cpu")
    assert devices == ["meta", "cpu"]


def test_a_training_state_of_the_wrong_shape_is_one_line(run_dir, tmp_path):
    folder = tmp_path / "checkpoint"
    shutil.copytree(run_dir / "checkpoints" / "last", folder)
    torch.save({"step": "seven", "epoch": 0}, folder / checkpoints.STATE_FILE)
    with pytest.raises(CheckpointError, match="step is missing or malformed"):
        checkpoints.load_training_state(folder)


# -- pickle payloads never run ------------------------------------------------------------------------------
def test_a_pickle_payload_never_runs_through_generate(tmp_path):
    sentinel = tmp_path / "pwned"
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle_payload(sentinel))
    speech = write_audio(tmp_path / "speech.wav")
    result = run_cli(["generate", str(speech), "--checkpoint", str(evil), "--out", str(tmp_path / "out")])
    assert result.returncode == 1 and "never unpickles" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert not sentinel.exists()


@pytest.mark.parametrize("where", ["evaluate", "pre_trained_gen", "pre_trained_disc"])
def test_a_pickle_payload_never_runs_through_evaluate_or_pre_trained(run_dir, tmp_path, where):
    sentinel = tmp_path / "pwned"
    folder = tmp_path / "evil"
    shutil.copytree(run_dir / "checkpoints" / "last", folder)
    name = checkpoints.DISCRIMINATOR_FILE if where == "pre_trained_disc" else checkpoints.MODEL_FILE
    (folder / name).write_bytes(pickle_payload(sentinel))
    with pytest.raises(CheckpointError, match="never unpickles"):
        if where == "evaluate":
            from zoo.evaluate.evaluator import evaluate_checkpoint

            evaluate_checkpoint(folder, dataset="synthetic", out=tmp_path / "evaluation", device="cpu")
        else:
            run_trainer(tmp_path / "runs", max_steps=1, **{where: str(folder)})
    assert not sentinel.exists()


def test_a_pickle_payload_in_a_training_state_never_runs_on_resume(run_dir, tmp_path):
    run = tmp_path / "tiny"
    shutil.copytree(run_dir, run, symlinks=True)
    sentinel = tmp_path / "pwned"
    (run / "checkpoints" / "last" / checkpoints.STATE_FILE).write_bytes(pickle_payload(sentinel))
    result = run_cli(cli_args(run_dir.parent, "--resume", str(run), "--max-steps", "2"))
    assert result.returncode == 1 and "unreadable training state" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert not sentinel.exists()


# -- an oversized description through the training commands --------------------------------------------------
@pytest.mark.parametrize("where", ["pre_trained_gen", "pre_trained_disc"])
def test_an_oversized_pre_trained_description_is_refused(run_dir, tmp_path, where):
    folder = tmp_path / "big"
    shutil.copytree(run_dir / "checkpoints" / "last", folder)
    name = checkpoints.DISCRIMINATOR_FILE if where == "pre_trained_disc" else checkpoints.MODEL_FILE
    rewrite_description(run_dir / "checkpoints" / "last" / name, folder / name, oversized)
    with pytest.raises(CheckpointError, match="embed_dim 1000000000"):
        run_trainer(tmp_path / "runs", max_steps=1, **{where: str(folder)})


def test_an_oversized_description_stops_resume_with_one_line(run_dir, tmp_path):
    run = tmp_path / "tiny"
    shutil.copytree(run_dir, run, symlinks=True)
    last = run / "checkpoints" / "last"
    rewrite_description(model_file(run_dir), last / checkpoints.MODEL_FILE, oversized)
    result = run_cli(cli_args(run_dir.parent, "--resume", str(run), "--max-steps", "2"))
    assert result.returncode == 1 and "embed_dim 1000000000" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_a_tampered_run_config_is_refused_before_the_model_is_built(run_dir, tmp_path):
    """config.json asks for a 2**24-wide encoder: the skeleton check refuses it, nothing allocates."""
    run = tmp_path / "tiny"
    shutil.copytree(run_dir, run, symlinks=True)
    record = json.loads((run / "config.json").read_text())
    record["options"]["encoder_args"] = {"width": 2**24}
    (run / "config.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="do not match the model architecture"):
        run_trainer(run_dir.parent, resume=str(run), max_steps=2)
    record["options"]["embed_dim"] = "128"
    (run / "config.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="option embed_dim must be int"):
        run_trainer(run_dir.parent, resume=str(run), max_steps=2)
    (run / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable run configuration"):
        run_trainer(run_dir.parent, resume=str(run), max_steps=2)


def test_an_oversized_description_stops_evaluate_with_one_line(run_dir, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    rewrite_description(model_file(run_dir), folder / checkpoints.MODEL_FILE, oversized)
    result = run_cli(["evaluate", "--checkpoint", str(folder), "--dataset", "synthetic", "--metrics", "face_detection",
                      "--out", str(tmp_path / "evaluation")])
    assert result.returncode == 1 and "embed_dim 1000000000" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "evaluation").exists()
