"""The registry's rules: discovery, filtering, duplicates, invalid names, broken plugins."""

from __future__ import annotations

import json
import os
import sys

import pytest

import registry
from fake_plugins import BROKEN_PLUGIN, EDGE_PLUGIN, EXITING_PLUGIN, GOOD_PLUGIN, write_distribution
from train_helpers import run_cli
from zoo.errors import PluginError, UnknownComponentError, UsageError


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """A sys.path entry for fake distributions; the registry is rediscovered around each test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reset()
    yield tmp_path
    for name, module in list(sys.modules.items()):  # fake modules must not leak between tests
        if str(getattr(module, "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]
    registry.reset()


def allow(monkeypatch, *names):
    monkeypatch.setenv(registry.ENV_VAR, ",".join(names))
    registry.reset()


def test_kinds_are_the_design_s_and_the_trainer_s():
    assert registry.KINDS == ("encoder", "generator", "discriminator", "fuser", "loss", "objective",
                              "preset", "dataset", "metric")


def test_plugin_is_discovered_with_its_distribution(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-good", {"zoo_good": GOOD_PLUGIN.replace("{name}", "good_enc")}, "2.5")
    allow(monkeypatch, "zoo-good")
    [component] = registry.components("encoder", "good*")
    assert (component.distribution, component.version, component.plugin) == ("zoo-good", "2.5", "zoo_good")
    assert registry.create("encoder", "good_enc", width=7) == {"width": 7, "depth": 2}


def test_env_var_keeps_unlisted_distributions_out(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-good", {"zoo_good": GOOD_PLUGIN.replace("{name}", "good_enc")})
    allow(monkeypatch)  # empty: built-ins only
    assert registry.components("encoder", "good*") == []
    assert all(d["distribution"] != "zoo-good" for d in registry.distributions())


def test_pattern_filters_with_wildcards(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-a", {"zoo_a": GOOD_PLUGIN.replace("{name}", "alpha_one")})
    write_distribution(plugin_path / "b", "zoo-b", {"zoo_b": GOOD_PLUGIN.replace("{name}", "beta_one")})
    monkeypatch.syspath_prepend(str(plugin_path / "b"))
    allow(monkeypatch, "zoo-a", "zoo-b")
    names = [c.name for c in registry.components("encoder", "*_one")]
    assert "alpha_one" in names and "beta_one" in names
    assert [c.name for c in registry.components("encoder", "a*")] == ["alpha_one"]


def test_duplicate_name_is_an_error_naming_both_plugins(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-a", {"zoo_a": GOOD_PLUGIN.replace("{name}", "same_name")})
    write_distribution(plugin_path / "b", "zoo-b", {"zoo_b": GOOD_PLUGIN.replace("{name}", "same_name")})
    monkeypatch.syspath_prepend(str(plugin_path / "b"))
    allow(monkeypatch, "zoo-a", "zoo-b")
    with pytest.raises(PluginError) as caught:
        registry.create("encoder", "same_name")
    assert "zoo_a" in str(caught.value) and "zoo_b" in str(caught.value)
    assert registry.components("encoder", "same_name") == []  # never silently last-wins
    assert any("same_name" in line for line in registry.problems())


def test_invalid_name_is_refused_and_reported(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-bad", {"zoo_bad": GOOD_PLUGIN.replace("{name}", "Bad-Name")})
    allow(monkeypatch, "zoo-bad")
    assert registry.components("encoder", "*Bad*") == []
    [failure] = [e for d in registry.distributions() if d["distribution"] == "zoo-bad" for e in d["errors"]]
    assert "Bad-Name" in failure["error"] and "lower_snake_case" in failure["error"]


def test_broken_plugin_is_reported_and_others_still_work(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-broken", {"zoo_broken": BROKEN_PLUGIN})
    write_distribution(plugin_path / "g", "zoo-good", {"zoo_good": GOOD_PLUGIN.replace("{name}", "good_enc")})
    monkeypatch.syspath_prepend(str(plugin_path / "g"))
    allow(monkeypatch, "zoo-broken", "zoo-good")
    broken = [d for d in registry.distributions() if d["distribution"] == "zoo-broken"]
    assert broken and "broken on purpose" in broken[0]["errors"][0]["error"]
    assert registry.create("encoder", "good_enc")["depth"] == 2
    assert any("zoo_broken" in line for line in registry.problems())


def test_unknown_component_lists_choices_and_closest(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-good", {"zoo_good": GOOD_PLUGIN.replace("{name}", "good_enc")})
    allow(monkeypatch, "zoo-good")
    with pytest.raises(UnknownComponentError) as caught:
        registry.create("encoder", "good_enk")
    message = str(caught.value)
    assert "did you mean 'good_enc'" in message and "choose from" in message
    assert caught.value.exit_code == 2


def test_unknown_argument_lists_valid_ones_and_closest(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-good", {"zoo_good": GOOD_PLUGIN.replace("{name}", "good_enc")})
    allow(monkeypatch, "zoo-good")
    with pytest.raises(UnknownComponentError) as caught:
        registry.create("encoder", "good_enc", widht=3)
    assert "did you mean 'width'" in str(caught.value) and "depth" in str(caught.value)


def test_arguments_left_at_none_use_defaults(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-good", {"zoo_good": GOOD_PLUGIN.replace("{name}", "good_enc")})
    allow(monkeypatch, "zoo-good")
    assert registry.create("encoder", "good_enc", width=None) == {"width": 4, "depth": 2}


def test_describe_reads_parameters_from_the_signature(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-good", {"zoo_good": GOOD_PLUGIN.replace("{name}", "good_enc")}, "3.1")
    allow(monkeypatch, "zoo-good")
    info = registry.describe("encoder", "good_enc")
    assert info["parameters"] == [
        {"name": "width", "type": "int", "required": False, "default": 4},
        {"name": "depth", "type": "int", "required": False, "default": 2},
    ]
    assert (info["description"], info["distribution"], info["version"]) == ("a test encoder", "zoo-good", "3.1")


def test_unknown_kind_is_a_usage_error():
    with pytest.raises(UsageError) as caught:
        registry.components("encoders")
    assert "did you mean 'encoder'" in str(caught.value)


def test_hook_failure_reports_the_plugin(plugin_path, monkeypatch):
    source = '''
        from zoo import hookimpl

        @hookimpl
        def register_losses(register):
            register("ok_loss", dict, description="fine")
            raise ValueError("boom in the hook")
    '''
    write_distribution(plugin_path, "zoo-hook", {"zoo_hook": source})
    allow(monkeypatch, "zoo-hook")
    # A hook that fails keeps none of its registrations: half a plugin is worse than none.
    assert registry.components("loss", "ok_loss") == []
    assert any("boom in the hook" in line for line in registry.problems())


def test_discovery_twice_is_harmless():
    first = registry.get_registry()
    assert registry.get_registry() is first


# -- plugins at their worst: unreadable signatures, crashing factories, sys.exit on import --------------
def test_a_factory_whose_signature_cannot_be_read_still_lists_describes_and_creates(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-edge", {"zoo_edge": EDGE_PLUGIN})
    allow(monkeypatch, "zoo-edge")
    assert registry.describe("encoder", "c_factory")["parameters"] == []  # dict's signature: unknown
    assert registry.check_arguments("encoder", "c_factory", {"a": 1}) == {"a": 1}  # the factory decides
    assert registry.create("encoder", "c_factory", a=1) == {"a": 1}


def test_a_factory_raising_anything_is_one_line_naming_the_component(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-edge", {"zoo_edge": EDGE_PLUGIN})
    allow(monkeypatch, "zoo-edge")
    with pytest.raises(PluginError) as caught:
        registry.create("encoder", "kaput_enc")
    message = str(caught.value)
    assert "encoder 'kaput_enc'" in message and "zoo-edge" in message
    assert "RuntimeError: kaput inside the factory" in message and "\n" not in message


def test_sys_exit_while_a_plugin_imports_is_a_reported_failure(plugin_path, monkeypatch):
    write_distribution(plugin_path, "zoo-exit", {"zoo_exit": EXITING_PLUGIN})
    write_distribution(plugin_path / "g", "zoo-good", {"zoo_good": GOOD_PLUGIN.replace("{name}", "good_enc")})
    monkeypatch.syspath_prepend(str(plugin_path / "g"))
    allow(monkeypatch, "zoo-exit", "zoo-good")
    failed = [e for d in registry.distributions() if d["distribution"] == "zoo-exit" for e in d["errors"]]
    assert failed and "SystemExit" in failed[0]["error"] and "sys.exit while it imports" in failed[0]["error"]
    assert registry.create("encoder", "good_enc")["depth"] == 2


def test_list_and_describe_survive_every_edge_plugin_in_a_real_process(plugin_path):
    write_distribution(plugin_path, "zoo-edge", {"zoo_edge": EDGE_PLUGIN})
    write_distribution(plugin_path / "x", "zoo-exit", {"zoo_exit": EXITING_PLUGIN})
    env = {"PYTHONPATH": f"{plugin_path}{os.pathsep}{plugin_path / 'x'}", "WAV2PIX_ZOO_PLUGINS": "zoo-edge,zoo-exit"}
    listed = run_cli(["list", "encoder", "--json"], env=env)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    names = {c["name"] for c in json.loads(listed.stdout)["encoder"]}
    assert {"c_factory", "kaput_enc", "wave_cnn"} <= names
    plugins = run_cli(["plugins", "--json"], env=env)
    assert plugins.returncode == 0 and "SystemExit" in plugins.stdout, plugins.stderr
    table = run_cli(["list", "encoder"], env=env)
    assert table.returncode == 0 and "c_factory" in table.stdout and "Traceback" not in table.stderr
