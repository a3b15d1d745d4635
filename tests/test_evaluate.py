"""The evaluator end to end: sanity checks that can fail, the report files, and the command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fake_pipelines import ConstantPipeline, EveryNth, PairedFacePipeline, tiny_checkpoint
from train_helpers import run_cli

TINY_CLASSIFIER = dict(epochs=1, min_steps=40, batch_size=32)
CLASSIFIER_METRICS = ["identity_accuracy", "recall_at_k", "frechet_distance", "kid", "matching"]


@pytest.fixture(scope="module")
def splits():
    """Six synthetic speakers: a balanced test split of four clips each."""
    import registry

    common = dict(image_size=32, sample_rate=16000, num_samples=2000, num_identities=6)
    return (registry.create("dataset", "synthetic", split="train", clips_per_identity=16, **common),
            registry.create("dataset", "synthetic", split="test", clips_per_identity=4, **common))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("evaluate-cache")


def _evaluate(pipeline, splits, cache_dir, out=None, **options):
    from zoo.evaluate.evaluator import evaluate
    from zoo.evaluate.face_classifier import ClassifierSettings

    train, test = splits
    options.setdefault("metrics", CLASSIFIER_METRICS)
    return evaluate(pipeline, test, train_dataset=train, cache_dir=cache_dir, out=out,
                    classifier_settings=ClassifierSettings(**TINY_CLASSIFIER), **options)


@pytest.fixture(scope="module")
def paired(splits, cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("paired-report")
    return _evaluate(PairedFacePipeline(splits[1]), splits, cache_dir, out), out


def test_a_generator_returning_the_paired_real_face_scores_like_real_faces(paired):
    result, _ = paired
    metrics = result.metrics
    assert metrics["identity_accuracy_real"] >= 0.9  # the classifier itself is good on real faces
    assert metrics["identity_accuracy"] >= 0.9
    assert metrics["identity_accuracy"] == pytest.approx(metrics["identity_accuracy_real"])
    assert metrics["frechet_distance"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["frechet_distance_real"] > 0.0  # other real faces are not the same faces
    assert metrics["recall_at_1"] >= 0.9
    assert metrics["matching"] == pytest.approx(metrics["matching_real"]) and metrics["matching"] > 0.8
    assert not result.errors


def test_a_generator_of_one_constant_face_scores_chance(splits, cache_dir, paired):
    result = _evaluate(ConstantPipeline(splits[1]), splits, cache_dir)
    metrics = result.metrics
    chance = metrics["identity_accuracy_chance"]
    assert chance == pytest.approx(1 / 6)
    # One face gets one answer: right for exactly one speaker's clips of a balanced split.
    assert metrics["identity_accuracy"] == pytest.approx(chance)
    assert metrics["frechet_distance"] > 10 * max(paired[0].metrics["frechet_distance_real"], 1e-3)
    assert metrics["recall_at_1"] <= 1 / 6 + 1e-6
    # One face for every speaker says nothing about who speaks: chance, up to the draws' noise.
    assert abs(metrics["matching"] - 0.5) < 0.1 < metrics["matching_real"] - 0.5


def test_speakers_never_heard_in_training_are_matched_not_named(cache_dir):
    import registry

    common = dict(image_size=32, sample_rate=16000, num_samples=2000, num_identities=8, unseen=3)
    unseen = (registry.create("dataset", "synthetic", split="train", clips_per_identity=12, **common),
              registry.create("dataset", "synthetic", split="test", clips_per_identity=4, **common))
    result = _evaluate(PairedFacePipeline(unseen[1]), unseen, cache_dir)
    assert "identity_accuracy" not in result.metrics and "never in the training split" in str(result.skipped)
    assert result.metrics["matching"] == pytest.approx(result.metrics["matching_real"])
    assert result.metrics["recall_at_1"] == pytest.approx(result.metrics["recall_at_1_real"])


def test_faces_are_drawn_once_for_all_metrics(splits, cache_dir):
    pipeline = PairedFacePipeline(splits[1])
    _evaluate(pipeline, splits, cache_dir, batch_size=8)
    assert pipeline.calls == 3  # 24 clips in batches of 8, shared by four metrics


def test_report_files_hold_the_table_confusion_and_pictures(paired):
    from PIL import Image

    result, out = paired
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"] == pytest.approx(result.metrics)
    confusion = saved["details"]["identity_accuracy"]["confusion"]
    assert len(confusion["identities"]) == 6
    assert sum(map(sum, confusion["generated"])) == 24 and sum(map(sum, confusion["real"])) == 24
    report = (out / "report.md").read_text()
    assert "| identity_accuracy |" in report and "Identity confusion" in report
    assert "not comparable with Inception" in report
    grid = Image.open(out / "real_vs_generated.png")
    assert grid.height >= 6 * 32  # one row per speaker
    chart = Image.open(out / "metrics.png")
    assert chart.width > 0 and chart.height > 40 * len(saved["table"])
    rows = {row["metric"]: row for row in saved["table"]}
    assert rows["identity_accuracy"]["chance"] == pytest.approx(1 / 6)
    assert rows["frechet_distance"]["better"] == "lower"


def test_missing_fid_weights_are_a_skip_not_an_error(splits, cache_dir):
    result = _evaluate(PairedFacePipeline(splits[1]), splits, cache_dir, metrics=["fid", "face_detection"])
    assert "fid" in result.skipped and "--fid-weights" in result.skipped["fid"]
    assert not result.errors
    assert "face_detection" in result.metrics and "fid" not in result.metrics


def test_a_failing_metric_is_recorded_and_the_others_still_run(splits, cache_dir):
    """A dataset whose training split cannot be built: classifier metrics fail, detection runs."""
    from zoo.errors import DataError
    from zoo.evaluate.evaluator import evaluate

    def no_training_split():
        raise DataError("no 'train' split folder")

    test = splits[1]
    result = evaluate(PairedFacePipeline(test), test, metrics=["identity_accuracy", "face_detection"],
                      train_dataset=no_training_split, cache_dir=cache_dir)
    assert "no 'train' split" in result.errors["identity_accuracy"]
    assert "face_detection" in result.metrics


def test_unknown_metric_names_are_usage_errors_listing_the_valid_ones(splits):
    from zoo.errors import UsageError
    from zoo.evaluate.evaluator import evaluate

    with pytest.raises(UsageError, match="choose from: .*identity_accuracy"):
        evaluate(PairedFacePipeline(splits[1]), splits[1], metrics=["identity_acuracy"])


def test_identity_accuracy_on_real_youtubers_faces(youtubers_root, tmp_path):
    """The wav2pix data: a classifier from real training faces names held-out real faces."""
    import registry
    from zoo.evaluate.evaluator import evaluate
    from zoo.evaluate.face_classifier import ClassifierSettings

    def split(name):
        return registry.create("dataset", "youtubers", root=str(youtubers_root), split=name, image_size=32)

    test = EveryNth(split("test"), 20)
    result = evaluate(PairedFacePipeline(test), test, metrics=["identity_accuracy", "face_detection"],
                      train_dataset=lambda: split("train"), cache_dir=tmp_path,
                      classifier_settings=ClassifierSettings(epochs=1, min_steps=40, batch_size=32, max_items=320))
    assert result.metrics["identity_accuracy_chance"] == pytest.approx(0.5)
    assert result.metrics["identity_accuracy_real"] >= 0.85
    assert result.metrics["face_detection_real"] >= 0.8


# -- the command ------------------------------------------------------------------------------------------------
@pytest.fixture
def run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WAV2PIX_ZOO_CACHE", str(tmp_path / "cache"))
    config = {"run": "00000-tiny", "options": {"dataset": "synthetic", "data": None,
                                               "dataset_args": {"num_identities": 2, "clips_per_identity": 3}}}
    return tiny_checkpoint(tmp_path / "runs" / "00000-tiny", run_config=config)


def _cli(*args):
    from main import app

    return CliRunner().invoke(app, ["evaluate", *args])


def test_command_writes_into_the_run_folder_with_the_runs_dataset(run_folder):
    result = _cli("--checkpoint", str(run_folder), "--metrics", "face_detection,fid", "--quiet")
    assert result.exit_code == 0, result.output
    assert "face_detection" in result.output and "skipped" in result.output
    saved = json.loads((run_folder / "evaluation" / "metrics.json").read_text())
    assert saved["setup"]["dataset"] == "synthetic" and saved["setup"]["clips"] == 6
    assert "fid" in saved["skipped"]
    written = {p.name for p in (run_folder / "evaluation").iterdir()}
    assert {"report.md", "real_vs_generated.png", "metrics.png"} <= written


def test_command_json_and_out(run_folder, tmp_path):
    result = _cli("--checkpoint", str(run_folder), "--metrics", "face_detection", "--json",
                  "--out", str(tmp_path / "elsewhere"))
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert set(printed["metrics"]) == {"face_detection", "face_detection_real"}
    assert (tmp_path / "elsewhere" / "report.md").is_file()


@pytest.mark.parametrize("args, message", [
    (["--metrics", "no_such_metric"], "choose from: face_detection"),
    (["--metrics", "face_detection", "--metric-arg", "kid.subsets=3"], "not among the metrics"),
    (["--metrics", "fid", "--metric-arg", "fid.no_such_option=1"], "takes no argument"),
    (["--metric-arg", "fid"], "NAME.KEY=VALUE"),
    (["--join", "1"], "--join K joins K >= 2"),
    (["--no-fuser"], "give --join K too"),
])
def test_command_usage_errors_exit_2_with_one_line(run_folder, args, message):
    result = run_cli(["evaluate", "--checkpoint", str(run_folder), *args])  # a real process
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and result.stderr.rstrip().endswith(errors[0])
    assert "Traceback" not in result.stderr + result.stdout
