"""Contract tests generated from the registry: every encoder, generator, discriminator, fuser and
loss registered (now or later, built-in or third-party) gets the same checks (DESIGN.md section 3)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import registered, usable

import registry
from zoo import TermInputs

SAMPLE_RATE = 16000
CLIP = 4000  # a quarter second: short enough to be quick, long enough for every encoder
EMBED = 32  # not a default, so factories that ignore embed_dim are caught
BATCH = 3


def build(kind: str, name: str, seed: int = 0, **kwargs):
    """The component built under a fixed seed, so two builds share their weights."""
    torch.manual_seed(seed)
    return registry.create(kind, name, **kwargs)


def sizes_of(kind: str, name: str) -> tuple:
    return tuple(registry.get(kind, name).meta.get("sizes", (64,)))


def sized(kind: str) -> list:
    """(name, image_size) for every registered component of ``kind`` and each size it supports."""
    return [pytest.param(n, s, id=f"{n}-{s}") for n in registered(kind) for s in sizes_of(kind, n)]


def assert_all_parameters_get_gradients(model: torch.nn.Module) -> None:
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable, "a component with no trainable parameters"
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, f"backward does not reach: {missing}"
    broken = [n for n, p in trainable if not torch.isfinite(p.grad).all()]
    assert not broken, f"non-finite gradients in: {broken}"
    assert any(p.grad.abs().sum() > 0 for _, p in trainable)


def random_projection_loss(*tensors: torch.Tensor) -> torch.Tensor:
    """A loss that depends on every output element (a plain sum can cancel through a norm)."""
    generator = torch.Generator().manual_seed(123)
    return sum((t * torch.randn(t.shape, generator=generator)).sum() for t in tensors)


def waves(batch: int = BATCH, length: int = CLIP) -> torch.Tensor:
    torch.manual_seed(7)
    return (0.3 * torch.randn(batch, length)).clamp(-1, 1)


# -- encoders ------------------------------------------------------------------------------------
def make_encoder(name: str, seed: int = 0):
    return build("encoder", name, seed, sample_rate=SAMPLE_RATE, num_samples=CLIP, embed_dim=EMBED)


@pytest.mark.parametrize("name", usable("encoder"))
def test_encoder_shape_attributes_and_gradients(name):
    encoder = make_encoder(name)
    assert (encoder.sample_rate, encoder.num_samples, encoder.embed_dim) == (SAMPLE_RATE, CLIP, EMBED)
    out = encoder(waves())
    assert out.shape == (BATCH, EMBED) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    random_projection_loss(out).backward()
    assert_all_parameters_get_gradients(encoder)


@pytest.mark.parametrize("name", usable("encoder"))
def test_encoder_same_seed_same_output_and_eval_is_deterministic(name):
    first, second = make_encoder(name, seed=3), make_encoder(name, seed=3)
    x = waves()
    assert torch.equal(first(x), second(x))
    first.eval()
    with torch.no_grad():
        assert torch.equal(first(x), first(x))
        assert not torch.equal(first(x), first(waves(length=CLIP).flip(0)))


# -- generators ----------------------------------------------------------------------------------
def noise_for(generator):
    """Explicit noise for generators that take it (None for z_dim 0, as wav2pix)."""
    return torch.randn(BATCH, generator.z_dim) if generator.z_dim else None


def declared(kind: str, name: str, capability: str) -> bool:
    """A capability the registration declares; everything is assumed capable unless it says not."""
    return bool(registry.get(kind, name).meta.get(capability, True))


def is_sampler(name: str) -> bool:
    """A generator registered ``sampler=True`` (diffusion) draws its own starting noise from the
    default generator on every call and integrates ``steps`` network evaluations."""
    return bool(registry.get("generator", name).meta.get("sampler", False))


SAMPLER_STEPS = 1  # a sampler's steps in these tests: the contract, not the quality, is checked


def make_generator(name: str, seed: int = 0, **kwargs):
    """The generator built under a fixed seed; a sampler runs ``SAMPLER_STEPS`` steps."""
    generator = build("generator", name, seed, **kwargs)
    if is_sampler(name):
        generator.steps = SAMPLER_STEPS
    return generator


def draw(generator, name: str, embedding, z=None, seed: int = 0):
    """The generator's faces; a sampler's noise is seeded first, so that eval mode means the same
    faces for the same inputs (its seed is its noise)."""
    if is_sampler(name):
        torch.manual_seed(seed)
    return generator(embedding, z)


@pytest.mark.parametrize("name,size", sized("generator"))
def test_generator_shape_range_and_gradients(name, size):
    generator = make_generator(name, image_size=size, embed_dim=EMBED)
    assert (generator.image_size, generator.embed_dim) == (size, EMBED)
    assert isinstance(generator.z_dim, int) and generator.z_dim >= 0
    embedding = torch.randn(BATCH, EMBED, requires_grad=True)
    image = generator(embedding, noise_for(generator))
    assert image.shape == (BATCH, 3, size, size)
    assert torch.isfinite(image).all()
    assert image.min() >= -1 and image.max() <= 1
    if declared("generator", name, "differentiable"):  # retrieval picks a face: no gradient
        random_projection_loss(image).backward()
        assert_all_parameters_get_gradients(generator)
        assert embedding.grad is not None and embedding.grad.abs().sum() > 0
    with torch.no_grad():  # a loud embedding must still give pixels in range
        loud = generator(100 * embedding, noise_for(generator))
    assert loud.min() >= -1 and loud.max() <= 1 and torch.isfinite(loud).all()


@pytest.mark.parametrize("name", registered("generator"))
def test_generator_same_seed_same_output_and_eval_is_deterministic(name):
    first = make_generator(name, seed=5, embed_dim=EMBED)
    second = make_generator(name, seed=5, embed_dim=EMBED)
    embedding = torch.randn(BATCH, EMBED)
    torch.manual_seed(11)
    a = first(embedding)  # training mode: dropout and noise draws follow the seed
    torch.manual_seed(11)
    assert torch.equal(a, second(embedding))
    first.eval()
    z = noise_for(first)
    with torch.no_grad():
        assert torch.equal(draw(first, name, embedding, z), draw(first, name, embedding, z))
        # the condition matters: another embedding gives other faces
        assert not torch.equal(draw(first, name, embedding, z), draw(first, name, embedding.flip(0), z))


@pytest.mark.parametrize("name", [n for n in registered("generator") if is_sampler(n)])
def test_sampler_noise_follows_the_seed_and_its_settings_matter(name):
    generator = make_generator(name, embed_dim=EMBED).eval()
    embedding = torch.randn(1, EMBED).repeat(BATCH, 1)  # one voice, BATCH faces
    with torch.no_grad():
        first = draw(generator, name, embedding, seed=1)
        assert torch.equal(first, draw(generator, name, embedding, seed=1))  # same seed, same faces
        assert not torch.equal(first, draw(generator, name, embedding, seed=2))
        assert not torch.equal(first[0], first[1])  # each face of a batch has its own noise
        generator.steps = SAMPLER_STEPS + 1  # the steps and the guidance change at sampling time
        assert not torch.equal(first, draw(generator, name, embedding, seed=1))
        generator.steps, generator.guidance = SAMPLER_STEPS, generator.guidance + 1.0
        assert not torch.equal(first, draw(generator, name, embedding, seed=1))


@pytest.mark.parametrize("name", [n for n in registered("generator") if declared("generator", n, "noise")])
def test_generator_with_noise(name):
    z_dim = 8
    generator = build("generator", name, embed_dim=EMBED, z_dim=z_dim).eval()
    assert generator.z_dim == z_dim
    embedding = torch.randn(BATCH, EMBED)
    with torch.no_grad():
        z = torch.randn(BATCH, z_dim)
        assert torch.equal(generator(embedding, z), generator(embedding, z))
        torch.manual_seed(1)
        drawn = generator(embedding)  # noise drawn inside, from the seeded default generator
        torch.manual_seed(1)
        assert torch.equal(drawn, generator(embedding))
        assert not torch.equal(drawn, generator(embedding))
    assert drawn.shape == (BATCH, 3, generator.image_size, generator.image_size)


# -- discriminators ------------------------------------------------------------------------------
@pytest.mark.parametrize("name,size", sized("discriminator"))
def test_discriminator_shape_and_gradients(name, size):
    discriminator = build("discriminator", name, image_size=size, embed_dim=EMBED)
    assert (discriminator.image_size, discriminator.embed_dim) == (size, EMBED)
    image = torch.rand(BATCH, 3, size, size) * 2 - 1
    embedding = torch.randn(BATCH, EMBED, requires_grad=True)
    score, features = discriminator(image, embedding)
    assert score.shape == (BATCH,)
    assert features.dim() >= 2 and features.shape[0] == BATCH
    assert torch.isfinite(score).all() and torch.isfinite(features).all()
    outputs = [score, features]
    if registry.get("discriminator", name).meta.get("classifier_head"):
        logits = discriminator.classify(features)
        assert logits.shape == (BATCH, discriminator.num_identities)
        outputs.append(logits)
    random_projection_loss(*outputs).backward()
    assert_all_parameters_get_gradients(discriminator)
    if declared("discriminator", name, "conditional"):
        assert embedding.grad is not None and embedding.grad.abs().sum() > 0


@pytest.mark.parametrize("name", registered("discriminator"))
def test_discriminator_same_seed_same_output_and_eval_is_deterministic(name):
    first = build("discriminator", name, seed=2, embed_dim=EMBED)
    second = build("discriminator", name, seed=2, embed_dim=EMBED)
    size = first.image_size
    image, embedding = torch.rand(BATCH, 3, size, size) * 2 - 1, torch.randn(BATCH, EMBED)
    torch.manual_seed(4)
    a, _ = first(image, embedding)
    torch.manual_seed(4)
    assert torch.equal(a, second(image, embedding)[0])
    first.eval()
    with torch.no_grad():
        assert torch.equal(first(image, embedding)[0], first(image, embedding)[0])
        if declared("discriminator", name, "conditional"):  # the condition matters
            assert not torch.equal(first(image, embedding)[0], first(image, embedding.flip(0))[0])


# -- fusers --------------------------------------------------------------------------------------
def segments(batch: int, count: int) -> torch.Tensor:
    torch.manual_seed(9)
    return torch.nn.functional.normalize(torch.randn(batch, count, EMBED), dim=-1)


@pytest.mark.parametrize("name", registered("fuser"))
def test_fuser_shape_gradients_and_any_segment_count(name):
    fuser = build("fuser", name, embed_dim=EMBED)
    for count in (1, 2, 7):
        x = segments(BATCH, count).requires_grad_()
        fused = fuser(x)
        assert fused.shape == (BATCH, EMBED) and torch.isfinite(fused).all()
    random_projection_loss(fused).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert_all_parameters_get_gradients(fuser)


@pytest.mark.parametrize("name", registered("fuser"))
def test_fuser_is_deterministic_per_seed_and_looks_at_its_segments(name):
    first, second = build("fuser", name, seed=4, embed_dim=EMBED), build("fuser", name, seed=4, embed_dim=EMBED)
    x = segments(BATCH, 5)
    with torch.no_grad():
        assert torch.equal(first(x), second(x))
        assert not torch.allclose(first(x), first(segments(BATCH, 4)))
        if not registry.get("fuser", name).meta.get("ordered", False):  # a set of segments: order is no matter
            torch.testing.assert_close(first(x), first(x.flip(1)))


# -- losses --------------------------------------------------------------------------------------
def losses_with_role(role: str) -> list:
    return [n for n in registered("loss") if registry.get("loss", n).meta.get("role") == role]


def test_every_loss_declares_its_role_and_terms_their_coefficient():
    for name in registered("loss"):
        meta = registry.get("loss", name).meta
        assert meta.get("role") in ("adversarial", "term"), name
        if meta["role"] == "term":
            assert isinstance(meta.get("coefficient"), (int, float)) and meta["coefficient"] >= 0
            if "option" in meta:  # only the seed's own coefficients have options of their own
                assert meta["option"] in ("l1_coef", "l2_coef", "softmax_coef"), name


def scores(*shape_seed: int):
    torch.manual_seed(shape_seed[0])
    return [torch.randn(BATCH, requires_grad=True) for _ in range(3)]


def assert_finite_scalar(value: torch.Tensor) -> None:
    assert isinstance(value, torch.Tensor) and value.dim() == 0
    assert math.isfinite(value.item())


@pytest.mark.parametrize("with_wrong", [True, False], ids=["with-wrong", "single-identity"])
@pytest.mark.parametrize("name", losses_with_role("adversarial"))
def test_adversarial_loss_is_a_differentiable_scalar(name, with_wrong):
    loss = registry.create("loss", name)
    real, fake, wrong = scores(0)
    d_loss = loss.discriminator_loss(real, fake, wrong if with_wrong else None)
    assert_finite_scalar(d_loss)
    d_loss.backward()
    for s in (real, fake) + ((wrong,) if with_wrong else ()):
        assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    if not with_wrong:
        assert wrong.grad is None
    fake_g = torch.randn(BATCH, requires_grad=True)
    g_loss = loss.generator_loss(fake_g)
    assert_finite_scalar(g_loss)
    g_loss.backward()
    assert fake_g.grad is not None and fake_g.grad.abs().sum() > 0


@pytest.mark.parametrize("name", losses_with_role("adversarial"))
def test_adversarial_loss_prefers_the_right_answers(name):
    """Any adversarial objective rewards a discriminator that separates real from fake, and a
    generator whose fakes score like reals."""
    loss = registry.create("loss", name)
    high, low = torch.full((BATCH,), 3.0), torch.full((BATCH,), -3.0)
    assert loss.discriminator_loss(high, low, low) < loss.discriminator_loss(low, high, high)
    assert loss.generator_loss(high) < loss.generator_loss(low)


def term_inputs(with_logits: bool) -> TermInputs:
    torch.manual_seed(0)
    size, classes = 16, 5
    return TermInputs(
        fake=(torch.rand(BATCH, 3, size, size) * 2 - 1).requires_grad_(),
        real=torch.rand(BATCH, 3, size, size) * 2 - 1,
        fake_features=torch.randn(BATCH, 8, 4, 4, requires_grad=True),
        real_features=torch.randn(BATCH, 8, 4, 4, requires_grad=True),
        logits=torch.randn(BATCH, classes, requires_grad=True) if with_logits else None,
        identity=torch.randint(0, classes, (BATCH,)),
        face_logits=torch.randn(BATCH, classes, requires_grad=True) if with_logits else None,
    )


@pytest.mark.parametrize("with_logits", [True, False], ids=["classifier", "no-classifier"])
@pytest.mark.parametrize("name", losses_with_role("term"))
def test_generator_term_is_a_finite_scalar(name, with_logits):
    term = registry.create("loss", name)
    value = term(term_inputs(with_logits))
    assert_finite_scalar(value)
    assert value.item() >= 0  # every term is a distance or a cross entropy
