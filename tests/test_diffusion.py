"""The diffusion generator: its Euler sampler and guidance, the flow-matching objective, and a
trained checkpoint that generate rebuilds alone and draws with --steps and --guidance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import registry
from datatrees import tone, write_audio
from main import app
from train_helpers import assert_same_weights, run_cli, run_trainer, torchrun, weights
from zoo import UsageError
from zoo.media.audio import load_audio
from zoo.media.images import decode_image
from zoo.model.pipeline import FacePipeline

TINY = {"width": 8, "steps": 1}  # a narrow UNet and one Euler step: the mechanics, quickly


def tiny_generator(**kwargs):
    torch.manual_seed(0)
    arguments = {"image_size": 64, "embed_dim": 16, **TINY, **kwargs}
    return registry.create("generator", "diffusion_unet", **arguments).eval()


def test_euler_sampler_follows_a_straight_flow_to_its_end():
    """With the exact velocity of the straight path to a known face, the sampler integrating
    from noise at t=1 down to t=0 lands on that face, whatever the number of steps."""
    generator = tiny_generator(guidance=1.0)
    target = torch.rand(2, 3, 64, 64) * 1.6 - 0.8
    generator.velocity = lambda x, t, embedding, keep=None: (x - target) / t[:, None, None, None]
    for steps in (1, 3, 7):
        generator.steps = steps
        torch.testing.assert_close(generator(torch.zeros(2, 16)), target, atol=1e-5, rtol=0)


def test_guidance_mixes_the_speech_and_null_velocities():
    generator = tiny_generator(guidance=3.0)
    x, t, embedding = torch.randn(2, 3, 64, 64), torch.full((2,), 0.5), torch.randn(2, 16)
    with torch.no_grad():
        speech = generator.velocity(x, t, embedding)
        null = generator.velocity(x, t, embedding, keep=torch.zeros(2, dtype=torch.bool))
        torch.testing.assert_close(generator.guided_velocity(x, t, embedding), null + 3.0 * (speech - null),
                                   atol=1e-4, rtol=1e-4)
        # the null embedding replaces the speech: the condition no longer matters
        other = generator.velocity(x, t, torch.randn(2, 16), keep=torch.zeros(2, dtype=torch.bool))
        torch.testing.assert_close(other, null)
        assert not torch.allclose(speech, null)


@pytest.mark.parametrize("arguments", [{"steps": 0}, {"guidance": -1.0}, {"z_dim": 4}, {"image_size": 96},
                                       {"condition_dropout": 1.0}])
def test_bad_arguments_are_refused(arguments):
    with pytest.raises(UsageError, match="diffusion_unet"):
        tiny_generator(**arguments)


def objective_over(tmp_path, **options):
    from zoo.train.config import resolve
    from zoo.train.parts import build_objective, build_parts, describe_run

    config, _ = resolve({"preset": "diffusion", "runs_dir": str(tmp_path), "generator_args": dict(TINY),
                         "clip_seconds": 0.25, "device": "cpu", **options})
    parts = build_parts(describe_run(config, ["a", "b", "c"]), torch.device("cpu"))
    return parts, build_objective(config, parts, torch.device("cpu"))


def test_one_flow_matching_step_trains_encoder_unet_null_and_classifier_not_the_discriminator(tmp_path):
    from zoo import Batch

    parts, objective = objective_over(tmp_path)
    before = {n: p.detach().clone() for n, p in parts.model.named_parameters()}
    critic = {n: p.detach().clone() for n, p in parts.discriminator.named_parameters()}
    torch.manual_seed(1)
    batch = Batch(wave=0.3 * torch.randn(4, 4000), image=torch.rand(4, 3, 64, 64) * 2 - 1, wrong=None,
                  identity=torch.tensor([0, 1, 2, 0]))
    stats = objective.step(batch)
    assert set(stats) == {"flow_loss", "c_loss", "g_loss"}
    assert all(v.dim() == 0 and torch.isfinite(v) and not v.requires_grad for v in stats.values())
    moved = {n for n, p in parts.model.named_parameters() if not torch.equal(before[n], p)}
    for part in ("encoder.", "generator.unet.", "generator.conditioning.speech.", "classifier."):
        assert any(n.startswith(part) for n in moved), f"{part} did not learn"
    assert all(torch.equal(critic[n], p) for n, p in parts.discriminator.named_parameters())
    torch.manual_seed(1)  # every row dropped: the null embedding learns too
    parts.model.generator.condition_dropout = 0.999
    objective.step(batch)
    assert not torch.equal(before["generator.conditioning.null"], parts.model.generator.conditioning.null)


def test_the_objective_refuses_a_generator_that_is_not_a_flow(tmp_path):
    result = run_cli(["train", "--preset", "diffusion", "--generator", "dcgan_bn", "--runs-dir", str(tmp_path),
                      "--max-steps", "1"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "flow-matching generator" in result.stderr and "dcgan_bn" in result.stderr
    assert not any(tmp_path.iterdir())  # refused before any work


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two steps of ``train --preset diffusion`` on tiny synthetic data."""
    return run_trainer(tmp_path_factory.mktemp("runs"), preset="diffusion", save_path="diffusion", max_steps=2,
                       generator_args=dict(TINY))


def test_two_training_steps_give_a_checkpoint_that_samples_faces_alone(trained):
    assert trained.step == 2
    assert all(torch.isfinite(t).all() for t in weights(trained.last_checkpoint).values())
    assert (trained.run_dir / "samples").is_dir()
    pipeline = FacePipeline.from_checkpoint(trained.last_checkpoint / "model.safetensors", device="cpu")
    assert pipeline.is_sampler and pipeline.model.generator.steps == 1
    clip = torch.as_tensor(tone(0.25)[:, 0]).float().unsqueeze(0)
    face = pipeline(clip, seed=3)
    assert face.shape == (1, 3, 64, 64) and face.abs().max() <= 1
    assert torch.equal(face, pipeline(clip, seed=3))  # same seed, same face
    assert not torch.equal(face, pipeline(clip, seed=4))


def as_pixels(face: torch.Tensor) -> np.ndarray:
    """A face in [-1, 1] as the 0..255 values its PNG holds."""
    return ((face.permute(1, 2, 0).numpy() + 1) * 127.5).round()


def test_generate_steps_and_guidance_set_the_sampler(trained, tmp_path):
    speech = write_audio(tmp_path / "hello.wav", tone(0.25, freq=180.0))
    out = tmp_path / "faces"
    outcome = CliRunner().invoke(app, ["generate", str(speech), "--checkpoint", str(trained.run_dir), "--out",
                                       str(out), "--steps", "3", "--guidance", "1.5", "--seed", "5", "--num", "2"],
                                 env={"COLUMNS": "200"})
    assert outcome.exit_code == 0, outcome.stdout
    assert (out / "hello_samples.png").is_file()  # --num: a sampler's faces each have their own noise
    pipeline = FacePipeline.from_checkpoint(trained.run_dir, device="cpu")
    clip = load_audio(speech, pipeline.sample_rate).unsqueeze(0)  # peak-normalised, as generate does
    pipeline.set_sampling(steps=3, guidance=1.5)
    expected = as_pixels(pipeline(clip, seed=5)[0])
    assert np.abs(decode_image(out / "hello.png").astype(float) - expected).max() <= 1
    pipeline.set_sampling(steps=1)  # the run's own single step draws another face: the options mattered
    assert np.abs(as_pixels(pipeline(clip, seed=5)[0]) - expected).max() > 1


def test_steps_on_a_generator_that_does_not_sample_is_one_line(tmp_path):
    gan = run_trainer(tmp_path / "gan", max_steps=1, generator="dcgan_bn").run_dir
    speech = write_audio(tmp_path / "hello.wav", tone(0.25))
    result = run_cli(["generate", str(speech), "--checkpoint", str(gan), "--out", str(tmp_path / "o"), "--steps", "5"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'dcgan_bn' draws in one pass" in result.stderr
    assert not (tmp_path / "o" / "hello.png").exists()


@pytest.mark.slow  # three runs: about 10 s; the resume machinery itself is tested on every step kind
def test_resume_mid_run_is_exact(tmp_path):
    """The objective's noise, times and dropped conditions come from the run's random state, so a
    resumed run draws what an unbroken one did."""
    options = {"preset": "diffusion", "save_path": "run", "generator_args": dict(TINY), "batch_size": 4}
    straight = run_trainer(tmp_path / "straight", max_steps=4, **options)
    first = run_trainer(tmp_path / "split", max_steps=2, **options)
    resumed = run_trainer(tmp_path / "split", resume=str(first.run_dir), max_steps=4)
    assert resumed.step == 4
    assert_same_weights(straight.last_checkpoint, resumed.last_checkpoint)


@pytest.mark.slow  # two ranks under torchrun: about 20 s
def test_two_ranks_stay_identical(tmp_path):
    """DDP wraps only the flow network; the discriminator this objective never trains and the
    weights' moving average must match on both ranks too."""
    result = torchrun(tmp_path, "--preset", "diffusion", "--arg", "generator.width=8", "--arg", "generator.steps=1",
                      "--max-steps", "3", "--ema", "0.9")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["ranks_in_sync"] is True and summary["step"] == 3
