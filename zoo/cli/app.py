"""The CLI boundary: where a ``ZooError`` becomes one line on stderr and an exit code.

``ZooTyper.command`` wraps every command so that no command has to remember to do this, and
the core never prints errors or calls ``sys.exit`` itself. Typer's own usage errors (an unknown
option, a missing argument) are drawn in a bordered panel on a terminal; into a pipe or a file
they are one ``error:`` line too, so a script reads them whole.
"""

from __future__ import annotations

import contextlib
import functools

import typer
from typer.core import TyperGroup

from zoo.cli.output import err_console, fail_line
from zoo.errors import INTERRUPTED_EXIT_CODE, ZooError, last_line


def guarded(func):
    """Run a command; turn ``ZooError``, a stray ``OSError`` (a full disk, a read-only folder)
    and Ctrl-C into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ZooError as exc:
            fail_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # an I/O failure the core did not name (it names those it expects)
            fail_line(f"{exc.filename or 'input/output'}: {exc.strerror or last_line(exc)}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            fail_line("interrupted")
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None

    return wrapper


@contextlib.contextmanager
def _usage_errors_as_lines():
    """When stderr is not a terminal, turn a Typer usage error into one line and its exit code."""
    try:
        yield
    except typer.TyperException as exc:
        # on a terminal Typer draws its panel; "no arguments" has printed the help already
        if not err_console.piped or type(exc).__name__ == "NoArgsIsHelpError":
            raise
        context = getattr(exc, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        fail_line(f"{exc.format_message()}{hint}")
        raise typer.Exit(exc.exit_code) from None


class ZooGroup(TyperGroup):
    """Typer's command group, with one-line usage errors when stderr is piped."""

    def make_context(self, *args, **kwargs):
        with _usage_errors_as_lines():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with _usage_errors_as_lines():
            return super().invoke(ctx)


class ZooTyper(typer.Typer):
    """A Typer app whose commands all pass through ``guarded``, with one-line usage errors."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, cls=ZooGroup, **kwargs)

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(func):
            register(guarded(func))
            return func

        return decorator
