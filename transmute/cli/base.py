"""What every `transmute` command shares: one-line errors and exit statuses.

Every failure is one line on stderr, `transmute: error: <message>`, and a non-zero exit status:
2 for a bad parameter or argument, 1 for a conversion that failed, 130 when interrupted. Never a traceback.
"""

from __future__ import annotations

import atexit
import gc
import sys
from pkgutil import resolve_name
from typing import Any, NoReturn

import click

from transmute.core.errors import InvalidParameter, TransmuteError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print the one error line and leave with `code`."""
    click.echo(f"transmute: error: {message}", err=True)
    sys.exit(code)


def fail_for(error: BaseException) -> NoReturn:
    """Leave with the line and exit status that fit an error raised by transmute (or an interruption)."""
    if isinstance(error, KeyboardInterrupt | click.Abort):
        fail("interrupted.", EXIT_INTERRUPTED)
    if isinstance(error, InvalidParameter):
        fail(error.message, EXIT_USAGE)
    if isinstance(error, TransmuteError):
        fail(error.message, EXIT_FAILED)
    fail(f"{type(error).__name__}: {error}", EXIT_FAILED)


class TransmuteGroup(click.Group):
    """A click group whose usage errors are one line, like every other transmute error, and whose commands
    are imported when first asked for (`lazy`: name -> "module:attribute"), so that `transmute convert` does
    not load the servers' code (about 0.2 s of a conversion's start)."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            self.add_command(resolve_name(self.lazy[cmd_name]), cmd_name)
        return super().get_command(ctx, cmd_name)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        # At exit, what is left goes with the process instead of through the garbage collector's last passes
        # (about 0.07 s of each command's end once the GIF code and numpy are loaded).
        atexit.register(gc.freeze)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.ClickException as error:
            hint = f" (see '{error.ctx.command_path} --help')" if getattr(error, "ctx", None) else ""
            fail(error.format_message().rstrip(".") + hint + ".", error.exit_code)
        except (KeyboardInterrupt, click.Abort) as error:
            fail_for(error)
        except TransmuteError as error:
            fail_for(error)
        sys.exit(result if isinstance(result, int) else 0)
