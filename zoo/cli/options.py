"""Option parsing shared by the commands: ``KEY=VALUE`` pairs, ``--arg KIND.KEY=VALUE``,
comma lists, and ``--<kind> NAME`` options completed from the registry."""

from __future__ import annotations

from typing import List, Optional

import typer

from zoo.errors import UsageError

COMPONENTS, DATA, OPTIM, OUTPUT, HARDWARE = "Components", "Data", "Optimisation", "Output", "Hardware"
# The component kinds whose arguments ``--arg KIND.KEY=VALUE`` sets, each kept as ``<kind>_args``.
ARGUMENT_KINDS = ("encoder", "generator", "discriminator", "fuser", "dataset", "objective")


def parse_pairs(items, what: str) -> dict:
    """``["width=32", "depth=4"]`` -> ``{"width": 32, "depth": 4}`` (numbers become numbers)."""
    pairs = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} takes KEY=VALUE, not '{item}'")
        pairs[key.strip()] = _number_or_text(raw.strip())
    return pairs


def _number_or_text(raw: str):
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def grouped_pairs(items, what: str, groups: Optional[tuple] = None) -> dict:
    """``NAME.KEY=VALUE`` items grouped per NAME: ``{NAME: {KEY: VALUE}}``; ``groups`` (when
    given) are the only NAMEs allowed."""
    grouped: dict = {}
    for item in items or []:
        name, dot, rest = item.partition(".")
        name = name.strip()
        if not dot or not name or (groups is not None and name not in groups):
            allowed = f" with NAME one of {', '.join(groups)}" if groups else ""
            raise UsageError(f"{what} takes NAME.KEY=VALUE{allowed}; not '{item}'")
        grouped.setdefault(name, {}).update(parse_pairs([rest], what))
    return grouped


def component_args(items) -> dict:
    """``--arg encoder.width=32`` items as ``{"encoder_args": {"width": 32}}`` (only kinds given)."""
    return {f"{kind}_args": args for kind, args in grouped_pairs(items, "--arg", ARGUMENT_KINDS).items()}


def split_names(text: Optional[str], what: str, *, allow_empty: bool = False) -> Optional[tuple]:
    """``"a, b,a"`` -> ``("a", "b")``; None -> None (the default applies); an empty list is an
    error unless ``allow_empty``."""
    if text is None:
        return None
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names and not allow_empty:
        raise UsageError(f"{what} needs at least one name")
    return names


def flag(value: bool) -> Optional[bool]:
    """A flag left off is None, so it never overrides a preset or a resumed run's value."""
    return True if value else None


def complete_names(kind: str):
    """Autocompletion of component names of ``kind`` from the registry."""

    def complete(incomplete: str) -> List[str]:
        import registry

        return [c.name for c in registry.components(kind, f"{incomplete}*")]

    return complete


def component_option(kind: str, what: str, default: str, panel: str = COMPONENTS):
    """A ``--<kind> NAME`` option completed from the registry; None when not given."""
    return typer.Option(None, help=f"{what} \\[default: {default}].", rich_help_panel=panel,
                        autocompletion=complete_names(kind))
