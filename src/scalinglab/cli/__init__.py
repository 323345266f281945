"""The ``scalinglab`` command line: thin commands that parse, call one library function and print.

Every command prints a readable table by default and one JSON object with ``--json``. A
:class:`~scalinglab.errors.ScalingLabError`, and a usage error click finds while parsing a command's
arguments (a bad option value, an unknown option), becomes one line on stderr and exit code 2, no
traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..errors import ScalingLabError


class _Main(click.Group):
    """The root group: turns scalinglab's errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:   # click's own message names the option and the value
            where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
            click.echo(f"error: {where}{exc.format_message()} (see --help)", err=True)
            ctx.exit(2)
        except ScalingLabError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except FileNotFoundError as exc:
            click.echo(f"error: {exc.strerror}: {exc.filename!r}", err=True)
            ctx.exit(2)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scalinglab")
def main() -> None:
    """scalinglab: run ladders, store runs, fit scaling laws, plan the big run."""


from . import fitting, ladder, quickstart, report  # noqa: F401  (each registers its commands on `main`)


def run() -> None:  # pragma: no cover
    main(prog_name="scalinglab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
