"""`list`, `plugins`, `--version` and `--help` as a user runs them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import registry
from main import app
from train_helpers import run_cli

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_list_json_has_every_kind_and_every_registered_component():
    result = invoke("list", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == set(registry.KINDS)
    for kind in registry.KINDS:
        assert [c["name"] for c in data[kind]] == [c.name for c in registry.components(kind)]


def test_list_filters_by_kind_and_pattern():
    result = invoke("list", "encoder", "w*", "--json")
    assert result.exit_code == 0
    names = [c["name"] for c in json.loads(result.stdout)["encoder"]]
    assert names and all(n.startswith("w") for n in names)


def test_list_table_shows_parameters_with_defaults():
    result = invoke("list", "generator")
    assert result.exit_code == 0
    assert "image_size=64" in result.stdout


def test_unknown_kind_exits_2_with_one_line():
    result = run_cli(["list", "encodr"])  # a real process: CliRunner would swallow a traceback
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "did you mean 'encoder'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_plugins_reports_our_distribution_and_hooks():
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    ours = [d for d in json.loads(result.stdout)["distributions"] if d["distribution"] == "wav2pix-zoo"]
    assert ours and ours[0]["errors"] == []
    assert "register_encoders" in ours[0]["hooks"]


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.startswith("wav2pix-zoo ")


@pytest.mark.parametrize("command", sorted(c.name or c.callback.__name__ for c in app.registered_commands))
def test_every_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout


def test_list_shows_only_the_options_a_user_sets_on_a_metric():
    result = invoke("list", "metric")
    assert result.exit_code == 0 and "subset_size=1000" in result.stdout
    assert "train_dataset" not in result.stdout and "cache_dir" not in result.stdout


def test_plugin_authors_import_everything_from_zoo():
    import zoo

    for name in ("hookimpl", "SpeechEncoder", "Generator", "Discriminator", "AdversarialLoss",
                 "GeneratorTerm", "TermInputs", "MetricSkipped", "MetricContext", "init_weights",
                 "load_audio", "to_tensor", "Progress"):
        assert getattr(zoo, name) is not None
