"""``list`` and ``plugins``: what is installed, as tables or JSON. Presentation only."""

from __future__ import annotations

import json
from typing import List, Optional

import typer
from rich.table import Table
from rich.text import Text

from zoo.cli.output import console, warn_line
from zoo.hookspecs import KINDS

MAX_PARAMETERS_SHOWN = 6


def _complete_kind(incomplete: str) -> List[str]:
    return [k for k in KINDS if k.startswith(incomplete)]


def list_command(
    kind: Optional[str] = typer.Argument(None, help=f"One of: {', '.join(KINDS)}.",
                                         autocompletion=_complete_kind),
    pattern: str = typer.Argument("*", help="Wildcard filter on names, e.g. 'w*'."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """List the registered components with their descriptions and parameters."""
    import registry

    kinds = [registry.check_kind(kind)] if kind else list(KINDS)
    show_components(kinds, pattern, as_json)


def plugins_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the plugin distributions, their versions, hooks, and any that failed to load."""
    show_plugins(as_json)


def _parameter_summary(params: list[dict]) -> str:
    shown = []
    params = [p for p in params if p["name"] != "context"]  # an objective's, filled by the trainer
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


def _preset_bundle(name: str) -> dict:
    """What a preset sets, for people: its options and stages (calling its factory is cheap)."""
    import registry

    preset = registry.create("preset", name)
    stages = [f"{s.name}:{s.objective}x{s.share:g}" for s in preset.stages]
    return {"options": {k: list(v) if isinstance(v, tuple) else v for k, v in preset.options.items()},
            "stages": stages, "reference": preset.reference}


def _described(kind: str, name: str) -> dict:
    import registry

    item = registry.describe(kind, name)
    if kind == "preset":
        item["bundle"] = _preset_bundle(name)
        bundle = item["bundle"]
        shown = ("encoder", "generator", "discriminator", "objective", "image_size")
        item["meta"] = {**{k: bundle["options"][k] for k in shown if k in bundle["options"]},
                        **({"stages": bundle["stages"]} if bundle["stages"] else {})}
    return item


def show_components(kinds: list[str], pattern: str, as_json: bool) -> None:
    """Print the components of ``kinds`` matching ``pattern``, as tables or one JSON object."""
    import registry

    described = {kind: [_described(kind, c.name) for c in registry.components(kind, pattern)] for kind in kinds}
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
                          Text(_parameter_summary(item["parameters"])), Text(_meta_summary(item["meta"])))
        console.print(table)


def show_plugins(as_json: bool) -> None:
    """Print the plugin distributions, their versions and hooks, then any failures."""
    import registry

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
