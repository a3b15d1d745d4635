"""The CLI boundary: where a ``ZooError`` becomes one line on stderr and an exit code.

``ZooTyper.command`` wraps every command so that no command has to remember to do this, and
the core never prints errors or calls ``sys.exit`` itself.
"""

from __future__ import annotations

import functools

import typer

from zoo.cli.output import fail_line
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


class ZooTyper(typer.Typer):
    """A Typer app whose commands all pass through ``guarded``."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(func):
            register(guarded(func))
            return func

        return decorator
