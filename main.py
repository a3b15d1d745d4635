"""wav2pix-zoo's command line: commands only, each a thin call into ``zoo``.

Run as ``python main.py ...`` or, once installed, as ``wav2pix ...``.
"""

from typing import List, Optional

import typer

from zoo import __version__
from zoo.cli import ZooTyper
from zoo.hookspecs import KINDS

app = ZooTyper(
    name="wav2pix",
    help="Draw a speaker's face from raw speech: a plugin-based zoo of conditional GANs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def _complete_kind(incomplete: str) -> List[str]:
    return [k for k in KINDS if k.startswith(incomplete)]


def _show_version(value: bool) -> None:
    if value:
        print(f"wav2pix-zoo {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Draw a speaker's face from raw speech: a plugin-based zoo of conditional GANs."""


@app.command("list")
def list_components(
    kind: Optional[str] = typer.Argument(None, help=f"One of: {', '.join(KINDS)}.",
                                         autocompletion=_complete_kind),
    pattern: str = typer.Argument("*", help="Wildcard filter on names, e.g. 'w*'."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """List the registered components with their descriptions and parameters."""
    import registry
    from zoo.views import show_components

    kinds = [registry.check_kind(kind)] if kind else list(KINDS)
    show_components(kinds, pattern, as_json)


@app.command("plugins")
def list_plugins(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the plugin distributions, their versions, hooks, and any that failed to load."""
    from zoo.views import show_plugins

    show_plugins(as_json)


def run() -> None:
    """Entry point of the ``wav2pix`` console script."""
    app()


if __name__ == "__main__":
    run()
