"""The built-in components against the wav2pix reference (DESIGN.md section 4, issue 3):
parameter counts measured from the authors' modules, loss targets, the speaker classifier, the
initialisation, and the encoders on the clip lengths the paper and the tool use."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import registry
from zoo import TermInputs, UsageError
from zoo.model.init_weights import init_weights
from zoo.model.speaker_classifier import SpeakerClassifier


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# -- the reference's parameter counts --------------------------------------------------------------
@pytest.mark.parametrize("kind,name,kwargs,expected", [
    ("encoder", "segan", {"sample_rate": 16000, "num_samples": 16000}, 11_495_424),
    ("generator", "dcgan", {"image_size": 64, "z_dim": 0}, 3_804_160),
    ("generator", "dcgan", {"image_size": 128, "z_dim": 0}, 13_241_344),
    ("discriminator", "dcgan", {"image_size": 64}, 2_765_824),
    ("discriminator", "dcgan", {"image_size": 128}, 11_162_624),
], ids=["segan-1s", "generator-64", "generator-128", "discriminator-64", "discriminator-128"])
def test_reference_parameter_counts(kind, name, kwargs, expected):
    assert trainable(registry.create(kind, name, **kwargs)) == expected


def test_generator_noise_widens_only_the_first_layer():
    plain = trainable(registry.create("generator", "dcgan", z_dim=0))
    noisy = trainable(registry.create("generator", "dcgan", z_dim=10))
    assert noisy - plain == 10 * 512 * 4 * 4


# -- segan -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds", [0.3, 0.7, 1.0])
def test_segan_takes_the_papers_clip_lengths(seconds):
    samples = round(16000 * seconds)
    encoder = registry.create("encoder", "segan", num_samples=samples)
    out = encoder(torch.rand(2, samples) * 2 - 1)
    assert out.shape == (2, 128) and torch.isfinite(out).all()


def test_segan_reduces_one_second_to_four_steps_of_1024_channels():
    encoder = registry.create("encoder", "segan")
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [16, 32, 128, 256, 512, 1024]
    assert all(c.kernel_size == (15,) and c.stride == (4,) for c in convs)
    assert encoder.mlp[0].in_features == 4 * 1024  # 16000 -> 4000 -> 1000 -> 250 -> 63 -> 16 -> 4


def test_segan_refuses_a_clip_of_another_length():
    encoder = registry.create("encoder", "segan", num_samples=4800)
    with pytest.raises(UsageError, match="4800 samples"):
        encoder(torch.zeros(2, 16000))


def test_segan_pre_emphasis_is_applied_inside_forward():
    from plugins.segan import apply_pre_emphasis

    wave = torch.tensor([[1.0, 1.0, 0.0, 0.5]])
    expected = torch.tensor([[1.0, 1.0 - 0.95, 0.0 - 0.95, 0.5]])
    assert torch.allclose(apply_pre_emphasis(wave, 0.95), expected)
    torch.manual_seed(0)
    with_it = registry.create("encoder", "segan", num_samples=4000).eval()
    torch.manual_seed(0)
    without = registry.create("encoder", "segan", num_samples=4000, pre_emphasis=0.0).eval()
    x = torch.rand(2, 4000) * 2 - 1
    with torch.no_grad():
        assert not torch.allclose(with_it(x), without(x))


# -- encoders that take any length ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["wave_cnn", "spectrogram"])
@pytest.mark.parametrize("length", [100, 700, 4000, 16000, 24000])
def test_pooling_encoders_take_any_clip_length(name, length):
    encoder = registry.create("encoder", name)  # built for 1 s, fed other lengths
    out = encoder(torch.rand(2, length) * 2 - 1)
    assert out.shape == (2, 128) and torch.isfinite(out).all()


def test_spectrogram_features_follow_its_options():
    encoder = registry.create("encoder", "spectrogram", n_mels=40, window_ms=25.0, hop_ms=10.0)
    features = encoder.features(torch.rand(2, 16000) * 2 - 1)
    assert features.shape[:2] == (2, 40)
    assert abs(features.shape[2] - 100) <= 1  # 10 ms hop over 1 s
    # normalised per utterance: each band has zero mean over time
    assert features.mean(dim=-1).abs().max() < 1e-4


def test_wave_cnn_is_much_smaller_than_segan():
    assert trainable(registry.create("encoder", "wave_cnn")) * 20 < 11_495_424


# -- generator and discriminators ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["generator", "discriminator"])
def test_unsupported_image_size_is_a_usage_error(kind):
    with pytest.raises(UsageError, match="image_size 96"):
        registry.create(kind, "dcgan", image_size=96)


def test_generator_layers_are_as_the_reference():
    generator = registry.create("generator", "dcgan", image_size=128)
    convs = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [1024, 512, 256, 128, 64, 3]
    # every layer spectrally normalised along dim 0, transposed convolutions included
    assert all(c.parametrizations.weight[0].dim == 0 for c in convs)
    assert all(c.bias is None for c in convs)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in generator.modules())
    assert [m.p for m in generator.modules() if isinstance(m, nn.Dropout)] == [0.5] * 5


def test_generator_without_noise_refuses_noise():
    generator = registry.create("generator", "dcgan")
    with pytest.raises(ValueError):
        generator(torch.randn(2, 128), torch.randn(2, 4))


@pytest.mark.parametrize("name", ["dcgan", "projection"])
@pytest.mark.parametrize("size,channels", [(64, 512), (128, 1024)])
def test_discriminator_features_are_the_4x4_trunk(name, size, channels):
    discriminator = registry.create("discriminator", name, image_size=size)
    score, features = discriminator(torch.zeros(2, 3, size, size), torch.zeros(2, 128))
    assert features.shape == (2, channels, 4, 4) and score.shape == (2,)


def test_dcgan_discriminator_layers_are_as_the_reference():
    from torch.nn.utils import parametrize

    discriminator = registry.create("discriminator", "dcgan", image_size=64)
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [parametrize.is_parametrized(c) for c in convs] == [True] * 4 + [False]  # plain head
    assert convs[-1].in_channels == 512 + 128  # the embedding tiled and concatenated
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules())


@pytest.mark.parametrize("name,kwargs", [("dcgan", {"width": 32}), ("projection", {"width": 32}),
                                         ("dcgan_half", {})])
def test_discriminator_width_scales_every_trunk_layer(name, kwargs):
    narrow = registry.create("discriminator", name, image_size=64, **kwargs)
    convs = [m for m in narrow.trunk.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]
    score, features = narrow(torch.zeros(2, 3, 64, 64), torch.zeros(2, 128))
    assert features.shape == (2, 256, 4, 4) and score.shape == (2,)
    if "width" in kwargs:
        with pytest.raises(UsageError, match="width"):
            registry.create("discriminator", name, image_size=64, width=12)


def test_group_spread_is_each_groups_standard_deviation():
    from plugins.dcgan import group_spread

    features = torch.zeros(8, 2, 4, 4)
    features[4:6] = torch.tensor([1.0, -1.0])[:, None, None, None]  # only the third pair varies
    spread = group_spread(features, 2)[:, -1]
    assert spread.shape == (8, 4, 4)
    assert torch.allclose(spread[4:6], torch.ones(2, 4, 4), atol=1e-3)
    assert spread[:4].abs().max() < 1e-3 and spread[6:].abs().max() < 1e-3
    # a batch of 6 with groups of 4 falls back to groups of 3, never mixing the two halves
    halves = torch.cat([torch.zeros(3, 2, 4, 4), torch.randn(3, 2, 4, 4)])
    assert group_spread(halves, 4)[:3, -1].abs().max() < 1e-3


@pytest.mark.parametrize("name", ["dcgan", "projection"])
def test_batch_spread_lets_the_discriminator_see_a_collapsed_batch(name):
    torch.manual_seed(0)
    # eval(): spectral norm's power iteration would otherwise move the weights between calls
    discriminator = registry.create("discriminator", name, image_size=64, batch_spread=4).eval()
    embedding = torch.randn(1, 128).repeat(4, 1)
    same = torch.randn(1, 3, 64, 64).repeat(4, 1, 1, 1)
    varied = same.clone()
    varied[1:] = torch.randn(3, 3, 64, 64)
    # the first sample is identical in both batches: only its group's spread can move its score
    assert discriminator(same, embedding)[0][0] != discriminator(varied, embedding)[0][0]
    plain = registry.create("discriminator", name, image_size=64).eval()
    assert plain(same, embedding)[0][0] == plain(varied, embedding)[0][0]
    with pytest.raises(UsageError, match="batch_spread"):
        registry.create("discriminator", name, image_size=64, batch_spread=1)


# -- losses --------------------------------------------------------------------------------------
def lsgan():
    return registry.create("loss", "lsgan")


def test_lsgan_targets_are_wav2pixs():
    ones = torch.ones(4)
    assert lsgan().discriminator_loss(0.9 * ones, 0 * ones, 0 * ones).item() == pytest.approx(0)
    assert lsgan().generator_loss(ones).item() == pytest.approx(0)
    # each term is a mean of squared distances to its target: 1^2 + 0.5^2 + 0.5^2
    value = lsgan().discriminator_loss(1.9 * ones, 0.5 * ones, -0.5 * ones)
    assert value.item() == pytest.approx(1.5)
    assert lsgan().discriminator_loss(1.9 * ones, 0.5 * ones, None).item() == pytest.approx(1.25)
    assert lsgan().generator_loss(torch.tensor([0.0, 2.0])).item() == pytest.approx(1.0)


def test_bce_and_hinge_values():
    zeros, ones = torch.zeros(4), torch.ones(4)
    bce = registry.create("loss", "bce")
    assert bce.discriminator_loss(zeros, zeros, zeros).item() == pytest.approx(3 * math.log(2))
    assert bce.generator_loss(zeros).item() == pytest.approx(math.log(2))
    hinge = registry.create("loss", "hinge")
    assert hinge.discriminator_loss(ones, -ones, -ones).item() == pytest.approx(0)
    assert hinge.discriminator_loss(zeros, zeros, None).item() == pytest.approx(2)
    assert hinge.generator_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2)


def test_terms_are_registered_with_the_seeds_coefficients():
    meta = {n: registry.get("loss", n).meta for n in ("l1", "feature_matching", "identity")}
    assert {n: (m["coefficient"], m["option"]) for n, m in meta.items()} == {
        "l1": (50, "l1_coef"), "feature_matching": (100, "l2_coef"), "identity": (20, "softmax_coef")}


def make_inputs(**overrides) -> TermInputs:
    base = dict(fake=torch.ones(2, 3, 8, 8), real=torch.zeros(2, 3, 8, 8),
                fake_features=torch.ones(2, 4, 4, 4), real_features=torch.zeros(2, 4, 4, 4),
                logits=torch.zeros(2, 5), identity=torch.tensor([0, 3]))
    return TermInputs(**{**base, **overrides})


def test_generator_term_values():
    term = lambda name, **kw: registry.create("loss", name)(make_inputs(**kw)).item()  # noqa: E731
    assert term("l1") == pytest.approx(1.0)
    assert term("identity") == pytest.approx(math.log(5))  # uniform logits over 5 speakers
    assert term("identity", logits=None) == 0
    # batch means are compared, not samples: +1 and -1 average to the real mean 0
    opposite = torch.cat([torch.ones(1, 4, 4, 4), -torch.ones(1, 4, 4, 4)])
    assert term("feature_matching", fake_features=opposite) == pytest.approx(0)
    assert term("feature_matching") == pytest.approx(1.0)


def test_feature_matching_does_not_train_through_the_real_side():
    fake = torch.randn(2, 4, 4, 4, requires_grad=True)
    real = torch.randn(2, 4, 4, 4, requires_grad=True)
    term = registry.create("loss", "feature_matching")
    term(make_inputs(fake_features=fake, real_features=real)).backward()
    assert fake.grad is not None and real.grad is None


# -- speaker classifier and initialisation -----------------------------------------------------------
@pytest.mark.parametrize("classes", [1, 7, 23])
def test_speaker_classifier_has_one_output_per_identity(classes):
    classifier = SpeakerClassifier(embed_dim=128, num_classes=classes)
    assert classifier(torch.randn(4, 128)).shape == (4, classes)
    linear = (128 * 200 + 200) + (200 * classes + classes)
    norms = 2 * 200 + 2 * classes
    assert trainable(classifier) == linear + norms


def test_speaker_classifier_layers():
    layers = list(SpeakerClassifier(embed_dim=32, num_classes=3).modules())[2:]
    expected = [nn.Linear, nn.BatchNorm1d, nn.LeakyReLU, nn.Linear, nn.BatchNorm1d]
    assert [type(m) for m in layers] == expected
    assert layers[2].negative_slope == pytest.approx(0.2)
    with pytest.raises(ValueError):
        SpeakerClassifier(embed_dim=32, num_classes=0)


def test_init_weights_follows_the_reference():
    from torch.nn.utils.parametrizations import spectral_norm

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(64, 128, 4), nn.BatchNorm2d(4096), nn.Linear(512, 512),
                          spectral_norm(nn.Conv2d(64, 64, 4)))
    model[1].bias.data.fill_(3.0)
    normed_before = model[3].parametrizations.weight.original.detach().clone()
    conv_bias_before = model[0].bias.detach().clone()
    init_weights(model)
    for weights in (model[0].weight, model[2].weight):
        assert abs(weights.mean().item()) < 0.002
        assert weights.std().item() == pytest.approx(0.02, rel=0.05)
    assert model[1].weight.mean().item() == pytest.approx(1.0, abs=0.002)
    assert model[1].weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.all(model[1].bias == 0)
    assert torch.equal(model[3].parametrizations.weight.original, normed_before)  # left alone
    assert torch.equal(model[0].bias, conv_bias_before)


@pytest.mark.parametrize("kind,name", [("encoder", "segan"), ("encoder", "wave_cnn"),
                                       ("encoder", "spectrogram"), ("generator", "dcgan"),
                                       ("discriminator", "dcgan"), ("discriminator", "projection")])
def test_built_in_components_come_out_initialised(kind, name):
    from torch.nn.utils import parametrize

    torch.manual_seed(0)
    model = registry.create(kind, name)
    plain = [m.weight for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))
             and not parametrize.is_parametrized(m, "weight") and m.weight.numel() >= 2000]
    for weight in plain:
        assert weight.std().item() == pytest.approx(0.02, rel=0.15)
    for norm in (m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        assert not torch.all(norm.weight == 1) and torch.all(norm.bias == 0)


@pytest.mark.parametrize("size,grid", [(64, 8), (128, 16)])
def test_patch_discriminator_scores_each_patch_from_its_own_pixels(size, grid):
    from plugins.patch import receptive_field

    torch.manual_seed(0)
    discriminator = registry.create("discriminator", "patch", image_size=size).eval()
    image, embedding = torch.randn(2, 3, size, size), torch.randn(2, 128)
    patches, features = discriminator.patch_scores(image, embedding)
    assert patches.shape == (2, grid, grid) and features.shape == (2, 128, grid, grid)
    score, _ = discriminator(image, embedding)
    assert torch.allclose(score, patches.mean(dim=(1, 2)))  # the contract's one score per image
    touched = image.clone()
    touched[:, :, :4, :4] += 1.0  # the top-left corner only
    changed = (discriminator.patch_scores(touched, embedding)[0] - patches).abs().amax(dim=0) > 1e-6
    reach = receptive_field(3) // 2 // (size // grid) + 1  # patches whose field covers the corner
    assert changed[0, 0] and changed[:reach, :reach].any()
    assert not changed[reach + 1:, :].any() and not changed[:, reach + 1:].any()


def test_patch_discriminator_refuses_bad_shapes():
    with pytest.raises(UsageError, match="depth"):
        registry.create("discriminator", "patch", image_size=64, depth=7)
    with pytest.raises(UsageError, match="width"):
        registry.create("discriminator", "patch", image_size=64, width=12)
