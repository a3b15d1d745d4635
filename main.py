"""wav2pix-zoo's command line: one line per command, each implemented in ``zoo.cli.<command>``.

Run as ``python main.py ...`` or, once installed, as ``wav2pix ...``. Nothing here imports torch,
so ``--help`` and ``list`` start fast.
"""

import typer

from zoo import __version__
from zoo.cli import bench, compare, evaluate, generate, prepare, serve, train
from zoo.cli import list as listing
from zoo.cli.app import ZooTyper

app = ZooTyper(
    name="wav2pix",
    help="Draw a speaker's face from raw speech: a plugin-based zoo of conditional GANs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


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


app.command("list")(listing.list_command)
app.command("plugins")(listing.plugins_command)
app.command("train")(train.command)
app.command("generate")(generate.command)
app.command("evaluate")(evaluate.command)
app.command("prepare")(prepare.command)
app.command("bench")(bench.command)
app.command("compare")(compare.command)
app.command("serve")(serve.command)


def run() -> None:
    """Entry point of the ``wav2pix`` console script."""
    app()


if __name__ == "__main__":
    run()
