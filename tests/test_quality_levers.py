"""The default model's quality levers: the weights' moving average, DiffAugment, and the synthetic
split of voices never heard in training with the metrics that measure it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from plugins.objectives.augment import augment, cutout, parse_policy, translation
from plugins.synthetic import synthetic
from train_helpers import run_trainer
from zoo.errors import UsageError
from zoo.model import checkpoints
from zoo.train.ema import WeightAverage


def test_the_average_warms_up_then_follows_the_decay():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    average = WeightAverage(model, decay=0.99)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(3.0)
    average.update(model)  # first decay: min(0.99, 1/10) = 0.1
    assert torch.allclose(average.model[0].weight, 0.1 * start + 0.9 * (start + 1.0))
    assert torch.equal(average.model[1].running_mean, model[1].running_mean)  # buffers copied
    for _ in range(2000):
        average.update(model)
    assert average.current_decay() == 0.99
    assert not any(p.requires_grad for p in average.model.parameters())


def test_a_run_with_an_average_checkpoints_it_and_keeps_the_trained_weights(tmp_path):
    result = run_trainer(tmp_path, save_path="run", max_steps=3, ema=0.9)
    state = checkpoints.load_training_state(result.last_checkpoint)
    assert state["average"]["updates"] == 3
    saved = checkpoints.file_shapes(result.last_checkpoint / checkpoints.MODEL_FILE)
    trained = state["trained_model"]
    assert set(trained) >= set(saved)
    from safetensors.torch import load_file

    averaged = load_file(str(result.last_checkpoint / checkpoints.MODEL_FILE))
    differs = [k for k, v in averaged.items() if v.is_floating_point() and not torch.equal(v, trained[k])]
    assert differs, "the checkpoint should hold the average, not the trained weights"


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_a_decay_outside_its_range_is_refused(tmp_path, bad):
    with pytest.raises(UsageError, match="--ema"):
        run_trainer(tmp_path, max_steps=1, ema=bad)


def test_augmentations_keep_shape_and_let_gradients_through():
    images = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    out = augment(images, parse_policy("color,translation,cutout"))
    assert out.shape == images.shape
    out.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert parse_policy("none") == () and augment(images, ()) is images


def test_cutout_zeroes_a_quarter_and_translation_moves_the_content():
    ones = torch.ones(3, 3, 16, 16)
    assert (cutout(ones) == 0).float().mean(dim=(1, 2, 3)).tolist() == [0.25] * 3
    image = torch.zeros(1, 3, 16, 16)
    image[..., 8, 8] = 1.0
    moved = [translation(image).flatten().argmax().item() for _ in range(20)]
    assert len(set(moved)) > 1


def test_an_unknown_augmentation_is_refused_before_training(tmp_path):
    with pytest.raises(UsageError, match="--augment: unknown augmentation"):
        run_trainer(tmp_path, max_steps=1, augment="color,blur")


def test_unseen_speakers_are_held_out_of_training():
    train = synthetic(split="train", num_identities=5, clips_per_identity=2, unseen=2, num_samples=800)
    test = synthetic(split="test", num_identities=5, clips_per_identity=2, unseen=2, num_samples=800)
    assert train.identities == ["speaker_0", "speaker_1", "speaker_2"]
    assert test.identities == ["speaker_3", "speaker_4"] and test.labels == [0, 0, 1, 1]
    everyone = synthetic(split="test", num_identities=5, clips_per_identity=2, num_samples=800)
    assert torch.equal(everyone[6]["wave"], test[0]["wave"])  # the same speaker, the same clips
    with pytest.raises(ValueError, match="unseen"):
        synthetic(num_identities=3, unseen=3)


def test_bf16_is_the_default_where_native_and_a_reference_iteration_trains_without_the_levers():
    from zoo.hardware import native_bf16
    from zoo.train.config import resolve

    config, sources = resolve({"device": "cpu"})
    assert config.amp == native_bf16(torch.device("cpu")) and sources["amp"].startswith("default")
    seed = resolve({"device": "cpu", "objective": "gan_seed"})[0]
    assert (seed.amp, seed.augment, seed.ema) == (False, "", 0.0)
    assert resolve({"device": "cpu", "preset": "wav2pix"})[0].amp is False  # wav2pix stays float32
    assert resolve({"device": "cpu", "amp": False})[0].amp is False
