"""The metrics' arithmetic, the face classifier, the detectors and the fid loader, one by one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fake_pipelines import EveryNth
from plugins.metrics import feature_stats

TINY_CLASSIFIER = dict(epochs=1, min_steps=40, batch_size=32)


# -- Fréchet distance, KID, retrieval -----------------------------------------------------------------------
def _reference_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy's general matrix square root, to check the fast one against."""
    from scipy import linalg

    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


@pytest.mark.parametrize("n_a, n_b, dims", [(300, 250, 12), (40, 30, 64)])
def test_frechet_distance_matches_the_textbook_formula(n_a, n_b, dims):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n_a, dims))
    b = rng.normal(0.5, 1.5, size=(n_b, dims)) @ rng.normal(size=(dims, dims))
    assert feature_stats.frechet_distance(a, b) == pytest.approx(_reference_frechet(a, b), rel=1e-6)


def test_frechet_distance_of_a_shifted_copy_is_the_squared_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 200))  # fewer samples than dimensions, as with 512-d features
    shift = rng.normal(size=200)
    assert feature_stats.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert feature_stats.frechet_distance(a, a + shift) == pytest.approx(float((shift ** 2).sum()), rel=1e-6)


def test_kid_separates_same_from_shifted_distributions():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    same = feature_stats.kernel_inception_distance(a, b, subsets=20, subset_size=100)
    shifted = feature_stats.kernel_inception_distance(a, b + 1.0, subsets=20, subset_size=100)
    assert abs(same) < 0.05
    assert shifted > 10 * max(abs(same), 1e-3)


def test_retrieval_ranks_put_each_face_at_its_nearest_identity():
    means = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    faces = torch.tensor([[0.9, 0.1], [0.2, 1.0], [0.6, 0.5], [0.0, -1.0]])
    labels = torch.tensor([0, 1, 1, 2])
    ranks = feature_stats.retrieval_ranks(faces, labels, means)
    # face 2 is nearer identity 0 than its own 1; face 3 is equally far from 0 and 2: a tie counts against it
    assert ranks.tolist() == [0, 0, 1, 1]


def test_identity_means_average_normalised_embeddings():
    features = torch.tensor([[2.0, 0.0], [0.0, 3.0], [4.0, 0.0]])
    means = feature_stats.identity_means(features, torch.tensor([0, 0, 1]), 3)
    assert torch.allclose(means[0], torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert torch.allclose(means[1], torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert torch.isnan(means[2]).all()  # an identity without faces


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    matrix = feature_stats.confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3)
    assert matrix == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


# -- the face classifier ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_splits():
    import registry

    common = dict(image_size=32, sample_rate=16000, num_samples=2000, num_identities=5)
    return (registry.create("dataset", "synthetic", split="train", clips_per_identity=16, **common),
            registry.create("dataset", "synthetic", split="test", clips_per_identity=4, **common))


@pytest.fixture(scope="module")
def trained(synthetic_splits, tmp_path_factory):
    from zoo.evaluate.face_classifier import ClassifierSettings, load_or_train

    cache = tmp_path_factory.mktemp("classifier-cache")
    settings = ClassifierSettings(**TINY_CLASSIFIER)
    return load_or_train(synthetic_splits[0], settings=settings, cache_dir=cache), cache


def test_classifier_learns_identities_from_training_faces(synthetic_splits, trained):
    from zoo.evaluate.context import labels_of, load_real_faces

    classifier, _ = trained
    test = synthetic_splits[1]
    accuracy = (classifier.predict(load_real_faces(test)) == labels_of(test)).float().mean()
    assert accuracy >= 0.9  # held-out real faces; chance is 0.2
    assert classifier.features(load_real_faces(test)).shape == (len(test), classifier.feature_dim)
    assert classifier.info["cached"] is False and classifier.info["train_items"] == 80


def test_classifier_is_cached_as_safetensors_and_reloaded_without_training(synthetic_splits, trained, monkeypatch):
    from zoo.evaluate import face_classifier
    from zoo.evaluate.face_classifier import ClassifierSettings, load_or_train
    from zoo.evaluate.context import load_real_faces

    classifier, cache = trained
    path = face_classifier.cache_path(synthetic_splits[0], ClassifierSettings(**TINY_CLASSIFIER), cache)
    header_length = int.from_bytes(path.read_bytes()[:8], "little")
    assert path.read_bytes()[8:9] == b"{" and header_length > 0  # a safetensors header, not a pickle
    monkeypatch.setattr(face_classifier, "train_classifier", lambda *a, **k: pytest.fail("retrained"))
    again = load_or_train(synthetic_splits[0], settings=ClassifierSettings(**TINY_CLASSIFIER), cache_dir=cache)
    faces = load_real_faces(synthetic_splits[1])
    assert again.info["cached"] is True
    assert torch.allclose(again.features(faces), classifier.features(faces), atol=1e-5)


def test_classifier_cache_key_follows_settings_and_data(synthetic_splits, tmp_path):
    import registry
    from zoo.evaluate.face_classifier import ClassifierSettings, cache_path

    base = cache_path(synthetic_splits[0], ClassifierSettings(), tmp_path)
    assert cache_path(synthetic_splits[0], ClassifierSettings(), tmp_path) == base
    assert cache_path(synthetic_splits[0], ClassifierSettings(epochs=5), tmp_path) != base
    other = registry.create("dataset", "synthetic", split="train", image_size=32, num_samples=2000,
                            num_identities=5, clips_per_identity=16, seed=1)
    assert cache_path(other, ClassifierSettings(), tmp_path) != base
    assert base.parent == tmp_path / "face_classifier" and base.name.startswith("synthetic-32-")


def test_unknown_backbone_is_a_usage_error():
    from zoo.errors import UsageError
    from zoo.evaluate.face_classifier import build_backbone

    with pytest.raises(UsageError, match="no_such_net"):
        build_backbone("no_such_net", 3)


# -- face detection ----------------------------------------------------------------------------------------
def test_haar_cascade_finds_real_faces_and_not_noise(youtubers_root):
    import registry
    from plugins.metrics.detection import haar_found
    from zoo.evaluate.context import load_real_faces

    test = registry.create("dataset", "youtubers", root=str(youtubers_root), split="test", image_size=64)
    faces = load_real_faces(EveryNth(test, 15))
    noise = torch.rand(len(faces), 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert haar_found(faces).mean() >= 0.9
    assert haar_found(noise).mean() == 0.0
    assert haar_found(torch.zeros(4, 3, 64, 64)).mean() == 0.0


# -- fid: weights from a path, never downloaded ------------------------------------------------------------
def test_fid_without_weights_is_a_clear_skip(synthetic_splits, tmp_path):
    from plugins.metrics import fid
    from zoo import MetricContext, MetricSkipped

    context = MetricContext(None, synthetic_splits[1])
    with pytest.raises(MetricSkipped, match="--fid-weights"):
        fid()(context)
    with pytest.raises(MetricSkipped, match="no such file"):
        fid(weights=str(tmp_path / "absent.pth"))(context)


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """Random-init Inception-v3 weights in the layout of pytorch-fid's file (1008-class fc)."""
    from safetensors.torch import save_file
    from torchvision.models import inception_v3

    state = inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    path = tmp_path_factory.mktemp("inception") / "inception.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def test_fid_runs_on_given_weights(synthetic_splits, inception_file):
    from fake_pipelines import PairedFacePipeline
    from plugins.metrics import fid

    from zoo import MetricContext

    train, test = synthetic_splits
    values = fid(weights=str(inception_file), input_size=75)(
        MetricContext(PairedFacePipeline(test), test, train_source=train))
    assert set(values) == {"fid", "fid_real"}
    assert values["fid"] == pytest.approx(0.0, abs=1e-6)  # the paired real faces themselves
    assert np.isfinite(values["fid_real"])


def test_wrong_weights_file_for_fid_is_one_clear_error(tmp_path):
    from safetensors.torch import save_file

    from plugins.metrics.inception import load_inception
    from zoo.errors import CheckpointError

    garbage = tmp_path / "notes.pth"
    garbage.write_text("not weights")
    with pytest.raises(CheckpointError, match="cannot read Inception weights"):
        load_inception(garbage)
    other = tmp_path / "other.safetensors"
    save_file({"conv.weight": torch.zeros(2, 2)}, str(other))
    with pytest.raises(CheckpointError, match="not Inception-v3 weights"):
        load_inception(other)


def test_reference_indices_are_a_seeded_sorted_sample_or_everything():
    from plugins.metrics import reference_indices

    drawn = reference_indices(100, 30, seed=3)
    assert len(drawn) == 30 and len(set(drawn.tolist())) == 30 and (np.diff(drawn) > 0).all()
    assert drawn.max() < 100
    assert (reference_indices(100, 30, seed=3) == drawn).all()
    assert not (reference_indices(100, 30, seed=4) == drawn).all()
    assert (reference_indices(20, 30, seed=3) == np.arange(20)).all()  # fewer than asked: all
