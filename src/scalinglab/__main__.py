"""``python -m scalinglab``: the command line (the same as the ``scalinglab`` script). An entry point, so
the layering counts it as part of ``cli`` (tests/test_layering.py)."""

from .cli import main

main(prog_name="scalinglab")
