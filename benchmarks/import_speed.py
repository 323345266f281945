"""Speed of importing TensorBoard scalars: ``runs import LOGDIR --from tensorboard`` end to end.

Writes ``--runs`` runs with the real writer (``torch.utils.tensorboard.SummaryWriter``, legacy
``simple_value`` scalars, or tensor-style with ``--new-style``), four keys per step (``eval/loss``,
``train/loss``, ``train/tokens``, ``optim/lr``), ``--scalars`` in all; then times, best of ``--repeat``:
reading alone (``ingest.read``: the TFRecord frames, both CRCs of every record, the Event protobufs) and
the whole import into a fresh store (read, map, one transaction under the writer lock). The issue's
target: 200,000 scalars in under 5 s.

    python benchmarks/import_speed.py [--scalars 200000] [--runs 4] [--new-style] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from scalinglab import ingest

KEYS = ("eval/loss", "train/loss", "train/tokens", "optim/lr")


def write(root: Path, scalars: int, runs: int, new_style: bool) -> None:
    from torch.utils.tensorboard import SummaryWriter

    steps = scalars // (runs * len(KEYS))
    for r in range(runs):
        w = SummaryWriter(str(root / f"run-{r}"), max_queue=10_000)
        for step in range(steps):
            values = (3.0 - 1e-5 * step, 3.1 - 1e-5 * step, float(step * 256), 1e-3)
            for key, v in zip(KEYS, values, strict=True):
                w.add_scalar(key, v, step, new_style=new_style)
        w.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scalars", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--new-style", action="store_true", help="tensor-style scalars (new_style=True)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        root = Path(tmp) / "logs"
        t = time.perf_counter()
        write(root, args.scalars, args.runs, args.new_style)
        written = time.perf_counter() - t
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        reads, imports = [], []
        for i in range(args.repeat):
            t = time.perf_counter()
            runs = ingest.read(root, "tensorboard")
            reads.append(time.perf_counter() - t)
            t = time.perf_counter()
            info = ingest.import_into(Path(tmp) / f"s{i}.db", root, "tensorboard", ["N=1e8", "batch=256"])
            imports.append(time.perf_counter() - t)
        n = sum(s.steps.size for r in runs for s in r.series.values())
        print(f"{n:,} scalars ({'tensor-style' if args.new_style else 'simple_value'}) in {args.runs} runs, "
              f"{size / 1e6:.1f} MB of event files (written by SummaryWriter in {written:.1f} s)")
        print(f"read (frames, CRCs, protobuf): best {min(reads):.2f} s of {args.repeat}")
        print(f"import into a new store ({info['points_added']:,} points): best {min(imports):.2f} s of {args.repeat}"
              f"  -> {'under' if min(imports) < 5 else 'OVER'} the 5 s target")
        print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
