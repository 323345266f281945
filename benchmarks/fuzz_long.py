"""The fuzz suites of the input boundary, longer than ``make test`` runs them.

Runs ``tests/fuzz`` (expressions, CSV/TSV/JSONL files, FIT.json mutations, ladder TOML field types)
with ``SCALINGLAB_FUZZ_EXAMPLES`` examples per property (``make test``: 200) and prints pytest's result.

    python benchmarks/fuzz_long.py [--examples 5000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=5000, help="examples per property")
    args = ap.parse_args()
    env = {**os.environ, "SCALINGLAB_FUZZ_EXAMPLES": str(args.examples)}
    t0 = time.perf_counter()
    rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "fuzz")],
                         env=env, cwd=ROOT)
    print(f"{args.examples} examples per property: rc {rc}, {time.perf_counter() - t0:.0f} s")
    sys.exit(rc)


if __name__ == "__main__":
    main()
