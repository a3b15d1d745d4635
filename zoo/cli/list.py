"""Tables and JSON for ``list`` and ``plugins``: presentation only, no registry logic."""

from __future__ import annotations

import json

from rich.table import Table
from rich.text import Text

import registry
from zoo.cli.app import console, warn_line

MAX_PARAMETERS_SHOWN = 6


# Filled in by the evaluator, not chosen by users (see zoo.evaluate.context); kept in sync by a test.
INJECTED_METRIC_ARGUMENTS = ("classifier", "train_dataset", "cache_dir", "batch_size", "seed", "progress", "details")


def _parameter_summary(params: list[dict], kind: str) -> str:
    if kind == "metric":
        params = [p for p in params if p["name"] not in INJECTED_METRIC_ARGUMENTS]
    shown = []
    for p in params[:MAX_PARAMETERS_SHOWN]:
        shown.append(p["name"] if p["required"] else f"{p['name']}={p['default']!r}")
    if len(params) > MAX_PARAMETERS_SHOWN:
        shown.append("...")
    return ", ".join(shown)


def _meta_summary(meta: dict) -> str:
    """Registration meta worth a glance: sizes, role and coefficient, suggested defaults."""
    parts = []
    for key, value in meta.items():
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        elif isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in value.items())
        parts.append(f"{key}={value}")
    return " ".join(parts)


def show_components(kinds: list[str], pattern: str, as_json: bool) -> None:
    """Print the components of ``kinds`` matching ``pattern``, as tables or one JSON object."""
    described = {
        kind: [registry.describe(kind, c.name) for c in registry.components(kind, pattern)]
        for kind in kinds
    }
    for line in registry.problems():
        warn_line(line)
    if as_json:
        print(json.dumps(described, indent=2))
        return
    for kind, items in described.items():
        table = Table(title=f"{kind} ({len(items)})", title_justify="left", expand=False)
        for column in ("name", "description", "distribution", "parameters", "details"):
            table.add_column(column, overflow="fold")
        for item in items:
            table.add_row(Text(item["name"]), Text(item["description"]), Text(item["distribution"]),
                          Text(_parameter_summary(item["parameters"], kind)), Text(_meta_summary(item["meta"])))
        console.print(table)


def show_plugins(as_json: bool) -> None:
    """Print the plugin distributions, their versions and hooks, then any failures."""
    dists = registry.distributions()
    if as_json:
        print(json.dumps({"distributions": dists, "conflicts": registry.conflicts()}, indent=2))
        return
    table = Table(title="plugins", title_justify="left")
    for column in ("distribution", "version", "entry points", "hooks", "status"):
        table.add_column(column, overflow="fold")
    for d in dists:
        status = Text(f"{len(d['errors'])} failed", style="red") if d["errors"] else Text("ok", style="green")
        table.add_row(Text(d["distribution"]), Text(d["version"]), Text(", ".join(d["plugins"])),
                      Text(", ".join(d["hooks"])), status)
    console.print(table)
    failures = [(d["distribution"], e) for d in dists for e in d["errors"]]
    if failures:
        failed = Table(title="failed to load", title_justify="left")
        for column in ("plugin", "distribution", "error"):
            failed.add_column(column, overflow="fold")
        for dist, e in failures:
            failed.add_row(Text(e["plugin"]), Text(dist), Text(e["error"], style="red"))
        console.print(failed)
    for line in registry.conflicts():
        warn_line(line)
