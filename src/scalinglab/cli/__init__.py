"""The ``scalinglab`` command line: thin commands that parse, call one library function and print.

Every command prints a readable table by default and one JSON object with ``--json``. A
:class:`~scalinglab.errors.ScalingLabError`, and a usage error click finds while parsing a command's
arguments (a bad option value, an unknown option), becomes one line on stderr and exit code 2, no
traceback (:mod:`.output`, shared by every command).
"""

from __future__ import annotations

import sys

import click

from .output import Main


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scalinglab")
def main() -> None:
    """scalinglab: run ladders, store runs, fit scaling laws, plan the big run."""


from . import data, fitting, ladder, quickstart, report  # noqa: E402, F401  (each registers its commands on `main`)


def run() -> None:  # pragma: no cover
    main(prog_name="scalinglab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
