"""Training: every encoder at both sizes, exact resume, atomic checkpoints, NaN stop, options."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from conftest import usable
from main import app
from train_helpers import cli_args, run_cli, run_trainer, weights
from zoo.model import checkpoints
from zoo.errors import StorageError, TrainingError, UsageError
from zoo.model.pipeline import FacePipeline


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("encoder", usable("encoder"))
def test_two_steps_for_every_encoder_and_size(tmp_path, encoder, size):
    result = run_trainer(tmp_path, encoder=encoder, image_size=size, max_steps=2)
    assert result.step == 2 and not result.interrupted
    before = weights(result.last_checkpoint)
    assert all(torch.isfinite(t).all() for t in before.values())
    pipeline = FacePipeline.from_checkpoint(result.run_dir, device="cpu")
    faces = pipeline(torch.zeros(2, pipeline.num_samples))
    assert faces.shape == (2, 3, size, size) and faces.abs().max() <= 1
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["options"]["encoder"] == encoder and config["model"]["image_size"] == size
    assert any(p["distribution"] == "wav2pix-zoo" for p in config["plugins"])


def test_training_changes_the_weights_and_writes_the_run_folder(tmp_path):
    first = run_trainer(tmp_path / "a", max_steps=1)
    longer = run_trainer(tmp_path / "b", epochs=2)  # 24 pairs / batch 4 = 6 steps per epoch
    changed = [k for k, v in weights(longer.last_checkpoint).items()
               if not torch.equal(v, weights(first.last_checkpoint)[k])]
    assert changed, "training did not move any weight"
    run = longer.run_dir
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [s["epoch"] for s in stats] == [0, 1]
    for key in ("d_loss", "g_loss", "g_l1", "g_feature_matching", "g_identity", "d_real", "d_fake",
                "d_wrong", "pairs_per_s"):
        assert all(math.isfinite(s[key]) for s in stats), key
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert (run / "checkpoints" / "last").resolve().name == "step_00000012"


def test_resume_continues_bitwise(tmp_path):
    straight = run_trainer(tmp_path / "straight", save_path="run", max_steps=4)
    first_half = run_trainer(tmp_path / "split", save_path="run", max_steps=2)
    resumed = run_trainer(tmp_path / "split", resume=str(first_half.run_dir), max_steps=4)
    assert resumed.step == 4
    expected, actual = weights(straight.last_checkpoint), weights(resumed.last_checkpoint)
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    state_a = checkpoints.load_training_state(straight.last_checkpoint)
    state_b = checkpoints.load_training_state(resumed.last_checkpoint)
    assert torch.equal(state_a["random"]["torch"], state_b["random"]["torch"])


def test_resume_refuses_changed_options(tmp_path):
    first = run_trainer(tmp_path, save_path="run", max_steps=1)
    with pytest.raises(UsageError, match="--lr-g"):
        run_trainer(tmp_path, resume=str(first.run_dir), lr_g=1.0)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    result = run_trainer(tmp_path, save_path="run", max_steps=1)
    folder = result.run_dir / "checkpoints"
    good = weights(folder / "last")

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints.torch, "save", broken_save)
    with pytest.raises(StorageError, match="step_00000099: cannot write .disk full"):
        checkpoints.save_checkpoint(folder, "step_00000099", model=torch.nn.Linear(1, 1),
                                    discriminator=torch.nn.Linear(1, 1), description={}, state={})
    assert (folder / "last").resolve().name == "step_00000001"
    assert all(torch.equal(good[k], v) for k, v in weights(folder / "last").items())
    assert not (folder / "step_00000099").exists()
    monkeypatch.undo()
    checkpoints.save_checkpoint(folder, "step_00000100", model=torch.nn.Linear(1, 1),
                                discriminator=torch.nn.Linear(1, 1), description={}, state={})
    assert not list(folder.glob(".tmp-*")), "a later save cleans what a failed one left"


def test_nan_loss_stops_with_one_line_and_keeps_the_good_checkpoint(tmp_path, monkeypatch):
    from plugins.losses import LeastSquaresLoss

    calls = {"n": 0}
    original = LeastSquaresLoss.discriminator_loss

    def poisoned(self, real, fake, wrong=None):
        calls["n"] += 1
        loss = original(self, real, fake, wrong)
        return loss * float("nan") if calls["n"] > 6 else loss

    monkeypatch.setattr(LeastSquaresLoss, "discriminator_loss", poisoned)
    with pytest.raises(TrainingError) as caught:
        run_trainer(tmp_path, save_path="run", epochs=3)
    message = str(caught.value)
    assert "non-finite" in message and "step 7" in message and "\n" not in message
    last = tmp_path / "run" / "checkpoints" / "last"
    assert last.resolve().name == "step_00000006"
    assert all(torch.isfinite(t).all() for t in weights(last).values())


def test_amp_runs_where_bf16_is_native_and_is_refused_elsewhere(tmp_path):
    from zoo.hardware import native_bf16

    if native_bf16(torch.device("cpu")):
        result = run_trainer(tmp_path, amp=True, max_steps=1)
        assert all(torch.isfinite(t).all() for t in weights(result.last_checkpoint).values())
    else:
        with pytest.raises(UsageError, match="no native bf16"):
            run_trainer(tmp_path, amp=True, max_steps=1)


def test_pre_trained_generator_initialises_a_new_run(tmp_path):
    source = run_trainer(tmp_path / "a", max_steps=1)
    fresh = run_trainer(tmp_path / "b", pre_trained_gen=str(source.run_dir), max_steps=1, lr_g=1e-12)
    before, after = weights(source.last_checkpoint), weights(fresh.last_checkpoint)
    learned = [k for k in before if k.startswith("g.") and k.endswith(("weight", "bias", "original"))]
    assert learned and all(torch.allclose(before[k], after[k], atol=1e-6) for k in learned)
    untouched = weights(run_trainer(tmp_path / "c", max_steps=1, lr_g=1e-12).last_checkpoint)
    assert not all(torch.allclose(before[k], untouched[k], atol=1e-6) for k in learned)


def test_pre_trained_of_another_architecture_is_refused(tmp_path):
    source = run_trainer(tmp_path / "a", max_steps=1, encoder="spectrogram")
    with pytest.raises(Exception) as caught:
        run_trainer(tmp_path / "b", pre_trained_gen=str(source.run_dir), max_steps=1)
    assert "do not match the model architecture" in str(caught.value)


@pytest.mark.parametrize("args, expected", [
    (["--encoder", "segn"], "did you mean 'segan'"),
    (["--size", "96"], "supports image sizes 64, 128"),
    (["--loss", "l1"], "generator term"),
    (["--terms", "lsgan"], "not a generator term"),
    (["--device", "cuda:3"], "CUDA"),
    (["--preset", "wav2pixx"], "unknown preset"),
    (["--batch-size", "0"], "must be positive"),
    (["--arg", "encoder.widht=8"], "did you mean 'width'"),
    (["--step", "seed", "--amp"], "float32 iteration"),
    (["--step", "seed", "--loss", "hinge"], "least squares"),
    (["--objective", "gan_seed", "--terms", "l1,identity,wrong_term"], "wrong_term"),
    (["--step", "fast"], "--step takes ours or seed"),
    (["--step", "seed", "--objective", "gan"], "--step seed means --objective gan_seed"),
    (["--wave-dtype", "float64"], "--wave-dtype must be one of float16, float32"),
    (["--no-drop-last", "--batch-size", "23"], "a last batch of one pair"),
])
def test_bad_options_exit_2_with_one_line_before_any_work(tmp_path, args, expected):
    result = run_cli(cli_args(tmp_path, "--max-steps", "1", *args))  # a real process: a traceback would show
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "runs").exists() and not list(tmp_path.iterdir())  # nothing was started


def test_inference_draws_every_test_clip_after_training(tmp_path):
    result = CliRunner().invoke(app, cli_args(tmp_path, "--save-path", "run", "--max-steps", "1", "--inference"))
    assert result.exit_code == 0, result.output
    drawn = list((tmp_path / "run" / "inference").glob("speaker_*_*.png"))
    assert len(drawn) == 3 * 8 and (tmp_path / "run" / "inference" / "grid.png").is_file()


@pytest.mark.slow
def test_compiled_models_train_and_save_plain_weights(tmp_path):
    result = run_trainer(tmp_path, compile=True, max_steps=2)
    assert not any("_orig_mod" in key for key in weights(result.last_checkpoint))
    FacePipeline.from_checkpoint(result.run_dir, device="cpu")
