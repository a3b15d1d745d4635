"""Every registered preset trains (two steps in each of its stages) and rebuilds from its
checkpoint; the staged and baseline designs do what they claim."""

from __future__ import annotations

import pytest
import torch

from conftest import usable
from train_helpers import run_trainer, weights
from zoo.model.pipeline import FacePipeline


def stages_of(name: str) -> int:
    import registry

    return max(1, len(registry.create("preset", name).stages))


def tiny_generator(name: str) -> dict:
    """Options that keep a preset's generator quick here: a sampler (diffusion) runs one narrow
    step per face instead of its default 10 (each a whole network evaluation)."""
    import registry

    generator = registry.create("preset", name).options.get("generator")
    if generator and registry.get("generator", generator).meta.get("sampler", False):
        return {"generator_args": {"steps": 1, "width": 8}}
    return {}


@pytest.mark.parametrize("name", usable("preset"))
def test_every_preset_trains_two_steps_per_stage_and_draws_faces(tmp_path, name):
    steps = 2 * stages_of(name)
    result = run_trainer(tmp_path, preset=name, max_steps=steps, batch_size=4, **tiny_generator(name))
    assert result.step == steps
    assert all(torch.isfinite(t).all() for t in weights(result.last_checkpoint).values())
    pipeline = FacePipeline.from_checkpoint(result.run_dir, device="cpu")
    faces = pipeline(torch.zeros(2, pipeline.num_samples))
    assert faces.shape == (2, 3, pipeline.image_size, pipeline.image_size) and faces.abs().max() <= 1


def test_user_options_win_over_a_preset(tmp_path):
    from zoo.train.config import resolve

    config, sources = resolve({"preset": "voice2face", "lr_g": 5e-4, "dataset_args": {"num_identities": 3}})
    assert config.lr_g == 5e-4 and sources["lr_g"] == "option"
    assert config.encoder == "voice2face" and sources["encoder"] == "preset voice2face"


def test_voice2face_pretrains_then_freezes_its_encoder(tmp_path):
    import json

    result = run_trainer(tmp_path / "run", preset="voice2face", save_path="v2f", max_steps=8, batch_size=4,
                         should_stop_at=2)
    after_pretraining = weights(result.last_checkpoint)
    finished = run_trainer(tmp_path / "run", resume=str(result.run_dir), max_steps=8)
    final = weights(finished.last_checkpoint)
    encoder = [k for k in final if k.startswith("g.encoder.")]
    generator = [k for k in final if k.startswith("g.generator.")]
    assert encoder and all(torch.equal(after_pretraining[k], final[k]) for k in encoder), "the frozen encoder moved"
    assert any(not torch.equal(after_pretraining[k], final[k]) for k in generator), "the GAN did not train"
    config = json.loads((finished.run_dir / "config.json").read_text())
    assert [s["objective"] for s in config["stages"]] == ["speaker_classifier", "gan"]


def test_retrieval_draws_the_mean_real_face_of_the_predicted_speaker(tmp_path):
    import registry
    from zoo import labels_of, load_real_faces

    result = run_trainer(tmp_path, preset="retrieval", epochs=2, batch_size=4)
    pipeline = FacePipeline.from_checkpoint(result.run_dir, device="cpu")
    train = registry.create("dataset", "synthetic", split="train", image_size=64, num_samples=4000,
                            num_identities=3, clips_per_identity=8)
    faces, labels = load_real_faces(train), labels_of(train)
    bank = pipeline.model.generator.faces
    for identity in range(3):
        torch.testing.assert_close(bank[identity], faces[labels == identity].mean(dim=0))
    drawn = pipeline(torch.stack([torch.as_tensor(train[i]["wave"]) for i in range(len(train))]))
    assert all(any(torch.equal(face, bank[k]) for k in range(3)) for face in drawn)
