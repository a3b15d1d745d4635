"""The dlib metrics: the torch copy of dlib's network, the protocols' arithmetic, known answers
on real youtubers faces, the cache of real-face descriptors, and the skip lines."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from fake_pipelines import EveryNth, NoisePipeline, PairedFacePipeline, UpsideDownPipeline, tiny_checkpoint
from plugins.metrics import face_protocols as protocols

DLIB_METRICS = ["landmarks68", "face_verification", "face_retrieval", "face_matching", "face_frechet"]


# -- the protocols' arithmetic (no model needed) ------------------------------------------------------------
def test_partners_are_other_images_of_the_asked_identity():
    descriptors = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [6.0, 5.0]])  # 0 and 1: one image twice
    labels = np.array([0, 0, 0, 1, 1])
    rng = np.random.default_rng(0)
    for _ in range(20):
        same = protocols.partners(descriptors, labels, rng, same_identity=True)
        assert same[0] == 2 and same[1] == 2  # never the copy of its own image
        assert set(same[2:3]) <= {0, 1} and same[3] == 4 and same[4] == 3
        other = protocols.partners(descriptors, labels, rng, same_identity=False)
        assert all(labels[j] != labels[i] for i, j in enumerate(other))
    alone = protocols.partners(np.zeros((2, 2)), np.array([0, 0]), rng, same_identity=True)
    assert alone.tolist() == [-1, -1]  # two copies of one image: no partner


def test_matching_counts_faces_nearer_their_own_identity():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    labels = np.repeat(np.arange(2), 8)
    real = centres[labels] + rng.normal(scale=0.3, size=(16, 2))
    swapped = centres[1 - labels]  # every query sits on the other identity
    success = protocols.matching_success({"right": real + 0.01, "wrong": swapped}, real, labels, rng, trials=4)
    assert success["right"].mean() == 1.0
    assert success["wrong"].mean() == 0.0
    ring = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # every face 1 from the centre
    tied = protocols.matching_success({"centre": np.zeros((4, 2))}, ring, np.array([0, 0, 1, 1]), rng, trials=2)
    assert tied["centre"].tolist() == [0.5] * 4  # equally far from both: half


def test_bootstrap_interval_holds_the_mean_and_narrows_with_more_faces():
    rng = np.random.default_rng(2)
    few, many = rng.random(30), rng.random(3000)
    low, high = protocols.bootstrap_interval(few, rng)
    assert low < few.mean() < high
    wide, narrow = high - low, np.subtract(*protocols.bootstrap_interval(many, rng)[::-1])
    assert narrow < wide / 4


def test_distances_and_cosines_row_by_row():
    a, b = np.array([[3.0, 4.0], [1.0, 0.0]]), np.array([[0.0, 0.0], [0.0, 2.0]])
    assert protocols.distances(a, b).tolist() == [5.0, pytest.approx(np.sqrt(5.0))]
    assert protocols.cosines(a, a * 2) == pytest.approx([1.0, 1.0])
    assert protocols.cosines(b[1:], a[1:]) == pytest.approx([0.0])


# -- dlib's network in torch --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dlib_files():
    pytest.importorskip("dlib", reason="dlib-bin is not installed")
    from plugins.metrics.dlib_faces import FaceSettings, model_files
    from zoo import MetricSkipped

    try:
        return model_files(FaceSettings())
    except MetricSkipped as exc:
        pytest.skip(str(exc))


def test_the_torch_network_gives_dlibs_own_descriptors(dlib_files):
    import dlib

    from plugins.metrics import dlib_resnet

    rng = np.random.default_rng(3)
    chips = rng.integers(0, 256, size=(3, 150, 150, 3), dtype=np.uint8)
    chips[1] = np.linspace(0, 255, 150, dtype=np.uint8)[None, :, None]  # smooth, unlike noise
    ours = dlib_resnet.describe(dlib_resnet.load(str(dlib_files["descriptor"])), chips)
    theirs = np.array(dlib.face_recognition_model_v1(str(dlib_files["descriptor"])).compute_face_descriptor(list(chips)))
    assert ours.shape == (3, 128)
    assert np.abs(ours - theirs).max() < 1e-4


def test_a_file_that_is_not_dlibs_network_is_refused(tmp_path):
    from plugins.metrics import dlib_resnet

    path = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    path.write_bytes(b"\x01\x0dloss_metric_2" + bytes(range(256)) * 8)
    with pytest.raises(ValueError, match="not dlib's face recognition ResNet"):
        dlib_resnet.read_layers(path)


# -- missing packages and files: one skip line ----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_context_parts():
    import registry

    common = dict(image_size=32, sample_rate=16000, num_samples=2000, num_identities=2)
    return (registry.create("dataset", "synthetic", split="train", clips_per_identity=4, **common),
            registry.create("dataset", "synthetic", split="test", clips_per_identity=2, **common))


def _context(parts, cache_dir, pipeline=PairedFacePipeline):
    from zoo import MetricContext

    train, test = parts
    return MetricContext(pipeline(test), test, train_source=train, cache_dir=cache_dir)


@pytest.mark.parametrize("name", DLIB_METRICS)
def test_without_dlib_each_metric_skips_saying_what_to_install(name, tiny_context_parts, tmp_path, monkeypatch):
    import sys

    import registry
    from zoo import MetricSkipped

    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib now raises ImportError
    with pytest.raises(MetricSkipped, match="pip install dlib-bin==20.0.1.post1"):
        registry.create("metric", name)(_context(tiny_context_parts, tmp_path))


def test_without_the_model_package_or_files_the_metric_skips(tiny_context_parts, tmp_path, monkeypatch):
    import importlib.util

    import registry
    from zoo import MetricSkipped

    with pytest.raises(MetricSkipped, match="shape_predictor_68_face_landmarks.dat .and 2 more.*face-recognition-models"):
        registry.create("metric", "landmarks68", models=str(tmp_path))(_context(tiny_context_parts, tmp_path))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real_find_spec(name, *a))
    with pytest.raises(MetricSkipped, match="face-recognition-models is not installed"):
        registry.create("metric", "face_verification")(_context(tiny_context_parts, tmp_path))


def test_a_damaged_model_file_is_a_skip_not_dlibs_traceback(tiny_context_parts, tmp_path):
    import registry
    from plugins.metrics.dlib_faces import MODEL_FILES
    from zoo import MetricSkipped

    for name in MODEL_FILES.values():
        (tmp_path / name).write_bytes(b"not a model")
    with pytest.raises(MetricSkipped, match="cannot read dlib model file .*force-reinstall"):
        registry.create("metric", "face_matching", models=str(tmp_path))(_context(tiny_context_parts, tmp_path))


def test_a_missing_model_file_is_one_line_from_the_command(tmp_path):
    from train_helpers import run_cli

    config = {"run": "00000-tiny", "options": {"dataset": "synthetic", "data": None,
                                               "dataset_args": {"num_identities": 2, "clips_per_identity": 2}}}
    run = tiny_checkpoint(tmp_path / "runs" / "00000-tiny", run_config=config)
    result = run_cli(["evaluate", "--checkpoint", str(run), "--metrics", "landmarks68,face_detection",
                      "--metric-arg", f"landmarks68.models={tmp_path / 'nowhere'}", "--quiet"],
                     env={"WAV2PIX_ZOO_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    words = " ".join(output.split())  # the terminal may wrap the line
    assert words.count("skipped landmarks68: dlib model file") == 1
    assert "pip install face-recognition-models==0.3.0" in words
    assert "face_detection" in result.stdout  # the other metric still ran


def test_bad_upscaling_options_are_usage_errors():
    import registry
    from zoo import UsageError

    with pytest.raises(UsageError, match="metric 'landmarks68': size 40: .*at least 80 px"):
        registry.create("metric", "landmarks68", size=40)
    with pytest.raises(UsageError, match="between 0 and 1"):
        registry.create("metric", "face_frechet", border=2.0)


# -- real youtubers faces: known answers -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def youtubers_results(youtubers_root, dlib_files, tmp_path_factory):
    """The dlib metrics on 41 real test faces (gallery: 47 training faces) for three stand-in
    generators: the real face itself, the same face upside down, and noise; offline."""
    import registry
    from zoo.evaluate.evaluator import evaluate

    def split(name, step):
        return EveryNth(registry.create("dataset", "youtubers", root=str(youtubers_root), split=name,
                                        image_size=64), step)

    def refuse(*args, **kwargs):
        raise OSError("the dlib metrics tried to reach the network")

    test, train = split("test", 15), split("train", 40)
    cache, out = tmp_path_factory.mktemp("dlib-cache"), tmp_path_factory.mktemp("dlib-report")
    results = {}
    with pytest.MonkeyPatch.context() as offline:  # nothing may be downloaded: any connection fails
        offline.setattr(socket.socket, "connect", refuse)
        offline.setattr(socket, "getaddrinfo", refuse)
        for pipeline in (PairedFacePipeline, UpsideDownPipeline, NoisePipeline):
            results[pipeline.__name__] = evaluate(pipeline(test), test, metrics=DLIB_METRICS, train_dataset=train,
                                                  cache_dir=cache, out=out if pipeline is PairedFacePipeline else None)
    return results, cache, out


def test_the_real_face_itself_verifies_retrieves_and_matches_itself(youtubers_results):
    metrics = youtubers_results[0]["PairedFacePipeline"].metrics
    assert metrics["face_verification"] == 1.0 and metrics["face_verification_cosine"] == pytest.approx(1.0)
    assert metrics["face_retrieval_at_1"] == metrics["face_retrieval_at_1_real"]
    assert metrics["face_matching"] >= 0.95
    assert metrics["face_frechet"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["landmarks68"] == metrics["landmarks68_real"]


def test_real_faces_score_far_above_noise_and_above_chance(youtubers_results):
    real = youtubers_results[0]["PairedFacePipeline"].metrics
    noise = youtubers_results[0]["NoisePipeline"].metrics
    assert real["landmarks68_real"] >= 0.9 and noise["landmarks68"] == 0.0
    assert real["face_verification_real"] >= 0.9 >= real["face_verification_chance"] + 0.3
    assert noise["face_verification"] == 0.0
    assert real["face_retrieval_at_1_real"] >= 0.95 > real["face_retrieval_at_1_chance"] + 0.4
    assert real["face_matching_real"] >= 0.95 and real["face_matching_chance"] == 0.5
    assert noise["face_matching"] <= 0.75
    assert noise["face_frechet"] > 10 * real["face_frechet_real"] > 0.0


def test_an_upside_down_face_is_neither_found_nor_taken_for_the_speaker(youtubers_results):
    metrics = youtubers_results[0]["UpsideDownPipeline"].metrics
    assert metrics["landmarks68"] <= 0.1 < metrics["landmarks68_real"]
    assert metrics["face_verification"] <= 0.2
    assert metrics["face_frechet"] > 5 * metrics["face_frechet_real"]


def test_real_face_descriptors_are_cached_and_reused(youtubers_results, youtubers_root, monkeypatch):
    import registry
    from plugins.metrics import dlib_faces

    _, cache, _ = youtubers_results
    entries = sorted((cache / "dlib_faces").glob("*.safetensors"))
    assert len(entries) == 2  # the evaluated split and the training split, once each for three evaluations
    analyses = [dlib_faces.load_analysis(path) for path in entries]
    assert sorted(analysis.landmarks68 is None for analysis in analyses) == [False, True]  # the gallery skips detection
    test = EveryNth(registry.create("dataset", "youtubers", root=str(youtubers_root), split="test",
                                    image_size=64), 15)
    monkeypatch.setattr(dlib_faces, "analyse", lambda *a, **k: pytest.fail("recomputed a cached analysis"))
    loaded = dlib_faces.cached_analysis(test, lambda: None, dlib_faces.FaceSettings(), cache_dir=cache)
    assert loaded.descriptors.shape == (len(test), 128) and loaded.landmarks68.dtype == bool
    other = dlib_faces.cache_path(test, dlib_faces.FaceSettings(size=200), cache)
    assert not other.exists()  # another upscaling is another entry


def test_report_names_the_model_behind_each_figure(youtubers_results):
    import json

    result = youtubers_results[0]["PairedFacePipeline"]
    out = youtubers_results[2]
    models = {row["metric"]: row["model"] for row in result.table}
    assert models["landmarks68"] == "dlib-hog+68" and models["face_matching"] == "dlib-resnet128"
    report = (out / "report.md").read_text()
    assert "| face_verification | 1 | " in report and "| dlib-resnet128 |" in report
    assert "iBUG 300-W" in report and "bootstrap 95% interval" in report
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"]["face_retrieval_at_1_real"] == result.metrics["face_retrieval_at_1_real"]
    assert (out / "metrics.png").is_file()


def test_two_worker_processes_find_what_one_process_finds(youtubers_root, dlib_files, monkeypatch):
    """The per-face dlib work split over forked processes comes back complete and in order."""
    import registry
    from plugins.metrics import dlib_faces

    test = registry.create("dataset", "youtubers", root=str(youtubers_root), split="test", image_size=64)
    faces = torch.stack([test.load_image(i) for i in range(0, 70, 10)])
    monkeypatch.setattr(dlib_faces, "CHUNK", 2)  # four chunks: order across workers matters
    settings = dlib_faces.FaceSettings()
    one = dlib_faces.analyse(faces, settings, workers=1)
    two = dlib_faces.analyse(torch.cat([faces[:1], faces[1:]]), settings, workers=2)
    assert one.landmarks68.sum() >= 5 and one.descriptors.shape == (7, 128)
    assert np.array_equal(one.descriptors, two.descriptors) and np.array_equal(one.detected, two.detected)
    assert np.array_equal(one.landmarks68, two.landmarks68)
