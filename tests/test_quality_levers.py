"""The default model's quality levers: the weights' moving average and its own BatchNorm
statistics, DiffAugment, R1 and best-of-K noise, and the synthetic split of voices never heard in
training with the metrics that measure it."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from plugins.objectives.augment import augment, cutout, parse_policy, translation
from plugins.objectives.gan import r1_penalty
from plugins.objectives.variety import closest_noise
from plugins.synthetic import synthetic
from train_helpers import run_trainer
from zoo.errors import UsageError
from zoo.model import checkpoints
from zoo.train.ema import WeightAverage, recalibrate


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


# -- the average's own BatchNorm statistics ------------------------------------------------------------------
class _TinySpeechToFace(nn.Module):
    """The parts ``recalibrate`` runs: an encoder and a generator with BatchNorm, a classifier."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
        self.generator = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
        self.classifier = nn.Linear(3, 2)
        self.frozen: set = set()


def test_recalibration_measures_the_statistics_of_the_weights_it_is_given():
    torch.manual_seed(0)
    model = _TinySpeechToFace()
    waves = [torch.randn(8, 4) * 3 + 1 for _ in range(3)]
    with torch.no_grad():
        model.encoder[1].running_mean.fill_(100.0)  # statistics of some other weights
    model.eval()
    assert recalibrate(model, waves)
    activations = torch.cat([model.encoder[0](wave) for wave in waves]).detach()
    # the plain average over batches of each batch's mean (equal batches: the overall mean)
    assert torch.allclose(model.encoder[1].running_mean, activations.mean(dim=0), atol=1e-5)
    assert not model.training and model.encoder[1].momentum == 0.1  # left as it was found
    generated = model.generator[1].running_mean.clone()
    assert recalibrate(model, waves) and torch.allclose(model.generator[1].running_mean, generated)  # repeatable


def test_recalibration_leaves_frozen_parts_and_the_random_state_alone():
    model = _TinySpeechToFace()
    before = model.encoder[1].running_mean.clone()
    waves = [torch.randn(8, 4) + 5]
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    assert recalibrate(model, waves, frozen={"encoder"}, seed=7)
    assert torch.equal(torch.rand(2), expected)  # training's own random stream continues unchanged
    assert torch.equal(model.encoder[1].running_mean, before)


def test_a_generator_without_batch_norm_is_not_run():
    class Refuses(nn.Module):
        def forward(self, embedding):
            raise AssertionError("a sampling loop would run here")

    model = _TinySpeechToFace()
    model.generator = Refuses()
    assert recalibrate(model, [torch.randn(8, 4)])  # the encoder's statistics are measured


def test_a_model_without_batch_norm_has_nothing_to_recalibrate():
    model = nn.Module()
    model.encoder, model.generator, model.classifier = nn.Linear(4, 3), nn.Linear(3, 2), None
    assert not recalibrate(model, [torch.randn(8, 4)])


def test_no_clips_to_measure_on_leaves_the_statistics_as_they_were():
    model = _TinySpeechToFace()
    with torch.no_grad():
        model.encoder[1].running_var.fill_(4.0)
    assert not recalibrate(model, [])
    assert torch.equal(model.encoder[1].running_var, torch.full((3,), 4.0))


def test_checkpoints_of_a_run_with_an_average_hold_statistics_measured_on_training_clips(tmp_path):
    from safetensors.torch import load_file

    result = run_trainer(tmp_path, save_path="run", max_steps=3, ema=0.9)
    saved = load_file(str(result.last_checkpoint / checkpoints.MODEL_FILE))
    trained = checkpoints.load_training_state(result.last_checkpoint)["trained_model"]
    means = [k for k in saved if k.endswith("running_mean")]
    assert means and all(not torch.equal(saved[k], trained[k]) for k in means)


# -- R1 and best-of-K noise (options of the gan objective) ---------------------------------------------------
def test_r1_is_the_squared_gradient_norm_and_can_be_trained_on():
    weight = torch.randn(3, 4, 4, requires_grad=True)
    images = torch.randn(5, 3, 4, 4, requires_grad=True)
    scores = (images * weight).sum(dim=(1, 2, 3))  # d score / d image = weight, for every image
    penalty = r1_penalty(scores, images)
    assert torch.allclose(penalty, weight.detach().square().sum())
    penalty.backward()
    assert torch.allclose(weight.grad, 2 * weight.detach())


class _NoiseIsTheFace(nn.Module):
    """A generator whose face is its first noise value everywhere."""

    z_dim = 2

    def forward(self, embedding, z):
        return z[:, :1, None, None].expand(-1, 3, 2, 2) + 0 * embedding[:, :1, None, None]


def test_best_of_k_keeps_the_draw_closest_to_the_paired_face():
    model = nn.Module()
    model.encoder, model.generator = nn.Identity(), _NoiseIsTheFace()
    targets = torch.tensor([-1.0, 0.0, 2.0]).view(3, 1, 1, 1).expand(3, 3, 2, 2)
    torch.manual_seed(0)
    chosen = closest_noise(model, torch.zeros(3, 5), targets, 8, contextlib.nullcontext())
    torch.manual_seed(0)
    drawn = torch.randn(8 * 3, 2).view(8, 3, 2)  # candidate k of clip b: drawn[k, b]
    for clip, target in enumerate((-1.0, 0.0, 2.0)):
        best = (drawn[:, clip, 0] - target).abs().argmin()
        assert torch.equal(chosen[clip], drawn[best, clip])


@pytest.mark.parametrize("args, z_dim, message", [
    ({"variety": 4}, 0, "--z-dim"), ({"variety": 0}, 8, "whole number"), ({"variety": 2.5}, 8, "whole number"),
    ({"r1": -1.0}, 0, "objective.r1"), ({"r1": "strong"}, 0, "objective.r1")])
def test_bad_r1_or_variety_options_are_refused_before_training(tmp_path, args, z_dim, message):
    with pytest.raises(UsageError, match=message):
        run_trainer(tmp_path, max_steps=1, objective_args=args, z_dim=z_dim)


def test_a_run_with_r1_and_best_of_k_trains_and_logs_the_penalty(tmp_path):
    import json

    result = run_trainer(tmp_path, save_path="run", max_steps=6, objective_args={"r1": 10.0, "variety": 3},
                         z_dim=4)
    records = [json.loads(line) for line in (result.run_dir / "stats.jsonl").read_text().splitlines()]
    assert records and all(record["d_r1"] > 0 for record in records)
