"""The example third-party package, installed as a user would, seen through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from fake_plugins import BROKEN_PLUGIN, GOOD_PLUGIN, write_distribution

EXAMPLE = REPO_ROOT / "examples" / "wav2pix-zoo-example"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The example installed with pip into a private folder: no deps, no network."""
    work = tmp_path_factory.mktemp("example")
    source = shutil.copytree(EXAMPLE, work / "src")  # keep build litter out of the repository
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        check=True, capture_output=True, text=True,
    )
    return target


def run_cli(site, *args, plugins="wav2pix-zoo-example", timeout=120):
    env = {**os.environ, "PYTHONPATH": str(site), "WAV2PIX_ZOO_PLUGINS": plugins, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "main.py", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_example_is_listed_with_its_distribution(site):
    result = run_cli(site, "list", "encoder", "--json")
    assert result.returncode == 0, result.stderr
    [tiny] = [c for c in json.loads(result.stdout)["encoder"] if c["name"] == "tiny_conv"]
    assert tiny["distribution"] == "wav2pix-zoo-example"
    table = run_cli(site, "list", "encoder")
    assert "tiny_conv" in table.stdout and "wav2pix-zoo-example" in table.stdout


def test_example_is_built_by_the_registry(site):
    code = (
        "import torch, registry\n"
        "enc = registry.create('encoder', 'tiny_conv', num_samples=4000, embed_dim=16)\n"
        "print(tuple(enc(torch.zeros(2, 4000)).shape))\n"
        "term = registry.create('loss', 'total_variation')\n"
        "print(type(term).__name__)\n"
        "from zoo import MetricContext\n"
        "data = registry.create('dataset', 'synthetic', split='test', image_size=32, num_samples=4000,\n"
        "                       num_identities=2, clips_per_identity=2)\n"
        "flat = lambda waves, seed=0: torch.zeros(len(waves), 3, 32, 32)\n"
        "values = registry.create('metric', 'sharpness')(MetricContext(flat, data))\n"
        "print(values['sharpness'], values['sharpness_real'] > 0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "WAV2PIX_ZOO_PLUGINS": "wav2pix-zoo-example"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(2,", "16)", "TotalVariation", "0.0", "True"]


def test_broken_and_duplicate_plugins_beside_the_example(site, tmp_path):
    extra = tmp_path / "extra"
    write_distribution(extra, "zoo-broken", {"zoo_broken_mod": BROKEN_PLUGIN})
    write_distribution(extra / "dup", "zoo-dup", {"zoo_dup_mod": GOOD_PLUGIN.replace("{name}", "tiny_conv")})
    path = os.pathsep.join([str(site), str(extra), str(extra / "dup")])
    plugins = "wav2pix-zoo-example,zoo-broken,zoo-dup"

    listing = run_cli(path, "list", "--json", plugins=plugins)
    assert listing.returncode == 0
    described = json.loads(listing.stdout)
    assert described["loss"] and any(c["name"] == "total_variation" for c in described["loss"])
    assert "zoo_broken_mod" in listing.stderr and "broken on purpose" in listing.stderr
    assert "tiny_conv" in listing.stderr and "zoo_dup_mod" in listing.stderr and "example" in listing.stderr

    report = run_cli(path, "plugins", "--json", plugins=plugins)
    assert report.returncode == 0
    data = json.loads(report.stdout)
    errors = {d["distribution"]: d["errors"] for d in data["distributions"]}
    assert "broken on purpose" in errors["zoo-broken"][0]["error"]
    assert any("tiny_conv" in line for line in data["conflicts"])


def test_example_preset_is_listed_and_trains_through_the_cli(site, tmp_path):
    from train_helpers import cli_args

    listing = run_cli(site, "list", "preset", "--json")
    assert listing.returncode == 0, listing.stderr
    [preset] = [c for c in json.loads(listing.stdout)["preset"] if c["name"] == "tiny_smooth"]
    assert preset["distribution"] == "wav2pix-zoo-example"
    assert preset["bundle"]["options"]["encoder"] == "tiny_conv"
    assert "tiny_smooth" in run_cli(site, "list", "preset").stdout

    # about 10 s of CPU; the generous limit is for a busy machine (the suite's other CLI runs use 300 s)
    result = run_cli(site, *cli_args(tmp_path, "--preset", "tiny_smooth", "--max-steps", "2", "--save-path", "tiny"),
                     timeout=300)
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "tiny" / "config.json").read_text())
    options, sources = config["options"], config["sources"]
    assert options["encoder"] == "tiny_conv" and sources["encoder"] == "preset tiny_smooth"
    assert "total_variation" in options["terms"] and options["term_coefs"] == {"total_variation": 5.0}
    assert config["model"]["components"]["encoder"]["distribution"] == "wav2pix-zoo-example"
    assert config["model"]["components"]["encoder"]["kwargs"]["width"] == 16
    assert sources["batch_size"] == "option"  # the user's options still win over the preset


def test_the_readme_shows_the_example_as_it_is():
    readme = (REPO_ROOT / "README.md").read_text()
    marker = "```python\n# wav2pix_zoo_example.py\n"
    start = readme.index(marker) + len(marker)
    shown = readme[start:readme.index("```\n", start)]
    assert shown == (EXAMPLE / "wav2pix_zoo_example.py").read_text()
