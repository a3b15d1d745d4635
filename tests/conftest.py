"""Shared test set-up: hermetic plugin discovery, offline hubs, small thread pools."""

from __future__ import annotations

import os
from pathlib import Path

# Set before anything imports the registry or a hub client: tests see only our built-ins
# unless they ask for more, and nothing may reach the network.
os.environ.setdefault("WAV2PIX_ZOO_PLUGINS", "")
# Sleeping, not spinning, OpenMP threads: on a shared 2-core machine spinning threads slow every
# other process (and test subprocess) tenfold.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WAV2PIX_ZOO_CACHE", str(Path(__file__).parent / ".." / ".cache" / "test-cache"))

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "youtubers"


def registered(kind: str) -> list[str]:
    """Names of every registered component of ``kind``, for parametrised contract tests."""
    import registry

    return [c.name for c in registry.components(kind)]


def unavailable(kind: str, name: str) -> str | None:
    """Why a registered component cannot be built here (its ``unavailable`` meta: pretrained
    weights from a package that is not installed), or None. A preset is unavailable when a
    component it names is."""
    import registry

    if kind != "preset":
        return registry.get(kind, name).meta.get("unavailable")
    options = registry.create("preset", name).options
    reasons = [unavailable(k, options[k]) for k in ("encoder", "generator", "discriminator") if k in options]
    return next((r for r in reasons if r), None)


def usable(kind: str) -> list:
    """``registered(kind)`` as test parameters, each unavailable one skipped with its reason."""
    return [pytest.param(n, marks=pytest.mark.skip(reason=f"{kind} {n}: {unavailable(kind, n)}"))
            if unavailable(kind, n) else n for n in registered(kind)]


@pytest.fixture(scope="session")
def youtubers_root() -> Path:
    """The shared real data, or a skip with the reason when it is absent."""
    if not (SHARED_DATA / "train").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (../shared/data/youtubers)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> Path:
    """A runs folder holding one tiny untrained run, ``tiny-run`` (64 px, 0.25 s windows)."""
    from fake_pipelines import tiny_checkpoint

    folder = tmp_path_factory.mktemp("runs")
    tiny_checkpoint(folder / "tiny-run", run_config={"dataset": "synthetic"})
    return folder


@pytest.fixture(autouse=True)
def _few_threads():
    """Keep each test on few threads: the CI machine has two cores."""
    import torch

    torch.set_num_threads(2)
    yield
