"""SF2F rebuilt: the encoder's front end and widths, the perceptual term's FaceNet option, the
two stages (GAN, then the fuser alone) resumable in either, and generate fusing with the fuser."""

from __future__ import annotations

import json

import pytest
import torch

from datatrees import tone, write_audio
from train_helpers import run_trainer, weights
from zoo.model.pipeline import FacePipeline

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_the_encoder_is_their_inception_stack_and_takes_any_length():
    import registry
    from plugins.sf2f.encoder import Inception1d

    torch.manual_seed(0)
    encoder = registry.create("encoder", "sf2f", sample_rate=16000, num_samples=16000).eval()
    assert encoder.mel.n_mels == 40 and encoder.embed_dim == 512
    widths = [sum(b[0].out_channels for b in block.branches) for block in encoder.cnn if isinstance(block, Inception1d)]
    assert widths == [256, 384, 576, 864]
    with torch.no_grad():
        for seconds in (0.5, 1.0, 2.3):
            embedding = encoder(0.3 * torch.randn(2, int(16000 * seconds)))
            assert embedding.shape == (2, 512)
            torch.testing.assert_close(embedding.norm(dim=1), torch.ones(2))


def test_the_perceptual_term_takes_a_users_torchscript_facenet(tmp_path):
    from zoo import TermInputs, UsageError
    from zoo.train.config import resolve
    from zoo.train.context import ObjectiveContext

    class TinyFaceNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 5, stride=4)

        def forward(self, faces):
            assert faces.shape[-1] == 160  # resized to FaceNet's input
            return self.conv(faces).flatten(1)

    path = tmp_path / "facenet.pt"
    torch.jit.script(TinyFaceNet()).save(str(path))
    config, _ = resolve({"preset": "sf2f", "objective_args": {"facenet_weights": str(path)}})
    context = ObjectiveContext(torch.nn.Identity(), None, config, torch.device("cpu"), dict(config.objective_args))
    term = {t.name: t for t in context.generator_terms()}["perceptual"]
    assert term.coefficient == 100.0 and term.module.facenet is not None
    fake = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_()
    inputs = TermInputs(fake=fake, real=torch.rand(2, 3, 64, 64) * 2 - 1, fake_features=torch.zeros(2, 8),
                        real_features=torch.zeros(2, 8), logits=None, identity=torch.zeros(2, dtype=torch.long))
    value = term.module(inputs)
    assert value > 0  # the features would give 0: the FaceNet was used
    value.backward()
    assert fake.grad.abs().sum() > 0 and all(p.grad is None for p in term.module.facenet.parameters())
    with pytest.raises(UsageError, match="no file"):
        type(term.module)(facenet_weights=str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(UsageError, match="not a TorchScript module"):
        type(term.module)(facenet_weights=str(tmp_path / "junk.pt"))


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """An sf2f run of 10 steps (8 GAN, 2 fuser) stopped inside each stage and resumed, with the
    weights seen at each stop."""
    runs = tmp_path_factory.mktemp("runs")
    first = run_trainer(runs, preset="sf2f", save_path="sf2f", max_steps=10, should_stop_at=4)
    in_gan = weights(first.last_checkpoint)
    second = run_trainer(runs, resume=str(first.run_dir), max_steps=10, should_stop_at=8)
    after_gan = weights(second.last_checkpoint)
    third = run_trainer(runs, resume=str(first.run_dir), max_steps=10, should_stop_at=9)
    in_fuser = weights(third.last_checkpoint)
    final = run_trainer(runs, resume=str(first.run_dir), max_steps=10)
    return {"steps": (first.step, second.step, third.step, final.step), "in_gan": in_gan, "after_gan": after_gan,
            "in_fuser": in_fuser, "final": weights(final.last_checkpoint), "run_dir": final.run_dir}


def test_sf2f_trains_gan_then_the_fuser_alone_resumable_in_either_stage(staged):
    assert staged["steps"] == (4, 8, 9, 10)
    config = json.loads((staged["run_dir"] / "config.json").read_text())
    assert [s["objective"] for s in config["stages"]] == ["gan", "fuser"]
    before, final = staged["after_gan"], staged["final"]
    fuser = [k for k in final if k.startswith("g.fuser.")]
    frozen = [k for k in final if k.startswith(("g.encoder.", "g.generator."))]
    assert fuser and frozen
    assert all(torch.equal(before[k], final[k]) for k in frozen), "the frozen encoder or generator moved"
    assert any(not torch.equal(before[k], final[k]) for k in fuser), "the fuser did not train"
    assert all(torch.equal(staged["in_gan"][k], before[k]) for k in fuser), "the fuser moved in the GAN stage"
    assert any(not torch.equal(staged["in_gan"][k], before[k]) for k in frozen), "the GAN stage did not train"
    assert any(not torch.equal(staged["in_fuser"][k], final[k]) for k in fuser)


def test_generate_fuses_a_long_clip_with_the_models_fuser(staged, tmp_path):
    from zoo.generate import Drawer, GenerateOptions

    pipeline = FacePipeline.from_checkpoint(staged["run_dir"], device="cpu")
    assert pipeline.model.fuser is not None  # rebuilt from the checkpoint's description
    clip = write_audio(tmp_path / "long.wav", tone(2.0, freq=180.0))
    drawer = Drawer(pipeline, GenerateOptions())
    embeddings, fused, _, _ = drawer.embed_file(clip)
    assert embeddings.shape[0] > 1
    with torch.no_grad():
        torch.testing.assert_close(fused, pipeline.model.fuser(embeddings.unsqueeze(0)))
    mean = embeddings.mean(dim=0, keepdim=True)
    assert not torch.allclose(fused, mean)
    assert not torch.equal(pipeline.draw(fused, seed=0), pipeline.draw(mean, seed=0))
    result = drawer.draw_file(clip, "long", tmp_path / "out")
    assert result.error is None and (tmp_path / "out" / "long.png").is_file()


def test_fuser_mistakes_are_one_line_before_any_work(tmp_path):
    from train_helpers import cli_args, run_cli

    for extra, message in ((["--fuser", "nope"], "nope"), (["--objective", "fuser"], "--fuser NAME")):
        result = run_cli(cli_args(tmp_path / "runs", "--max-steps", "1", *extra))
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_joined_clips_group_each_identitys_clips_in_order():
    from zoo.evaluate.joined import JoinedClips, joined_groups

    assert joined_groups([0, 1, 0, 0, 1, 0, 1, 0], 2) == [[0, 2], [3, 5], [1, 4]]  # identity 1's third clip is left out

    class Clips:
        identities, labels, keys, name, split = ["a", "b"], [0, 1, 0, 1, 0], list("vwxyz"), "toy", "test"
        num_samples = 4

        def __len__(self):
            return 5

        def __getitem__(self, index):
            return {"wave": torch.full((4,), float(index)), "image": torch.full((3, 2, 2), float(index))}

    joined = JoinedClips(Clips(), 2)
    assert len(joined) == 2 and joined.labels == [0, 1] and joined.left_out == 1 and joined.num_samples == 8
    assert joined[0]["wave"].tolist() == [0.0] * 4 + [2.0] * 4 and joined.keys == ["v+x", "w+y"]
    assert torch.equal(joined.load_image(1), torch.full((3, 2, 2), 1.0))
    assert joined.cache_key()["joined"] == 2


def test_evaluate_join_fuses_joined_clips_with_the_fuser_or_their_mean(staged):
    from zoo.evaluate.evaluator import evaluate_checkpoint
    from zoo.evaluate.joined import JoinedPipeline
    from zoo.errors import UsageError

    pipeline = FacePipeline.from_checkpoint(staged["run_dir"], device="cpu")
    wave = 0.3 * torch.randn(3 * pipeline.num_samples)
    fused, mean = JoinedPipeline(pipeline, 3), JoinedPipeline(pipeline, 3, use_fuser=False)
    assert (fused.fusion, mean.fusion) == ("sf2f_attention", "mean")
    by_fuser, by_mean = fused.fused_embedding(wave), mean.fused_embedding(wave)
    torch.testing.assert_close(by_mean.norm(), torch.tensor(1.0))  # unit length, as the decoder learned on
    assert not torch.allclose(by_fuser, by_mean)
    assert fused(wave[None], seed=0).shape == (1, 3, pipeline.image_size, pipeline.image_size)
    result = evaluate_checkpoint(staged["run_dir"], metrics=["face_detection"], join=2, use_fuser=False,
                                 out=staged["run_dir"] / "joined", device="cpu")
    assert result.setup["joined"] == 2 and result.setup["fusion"] == "mean"
    assert "face_detection" in result.metrics
    with pytest.raises(UsageError, match="--join"):
        evaluate_checkpoint(staged["run_dir"], metrics=["face_detection"], use_fuser=True)
