"""Cost of emulated number formats: a training step with every hidden linear quantised (fp8-static:
E4M3 weights and activations, E5M2 gradients, all six GEMM operands) against the fp32 step of the same
shape. The issue's target: <= 1.5x.

In one process, one intra-op thread (``torch.set_num_threads(1)``) and BLAS pinned to one thread
(threadpoolctl) on both sides; the arms alternate step by step (so a change of machine load hits all),
each step is forward + backward + AdamW on a fixed random batch, and the median step time of each arm
is reported with its ratio to fp32: wall-clock time, and the thread's CPU time (``time.thread_time``:
what the step costs this process, less sensitive to other processes on a shared machine). Each shape
is measured ``--repeats`` times with fresh models; every repetition and the machine load are printed. Other arms: fp8-dynamic (per-tensor absmax scales) and Sun's
recipe (weights in both passes and the saved activation) in E2M1 with blocks of 32.

    python benchmarks/quant_overhead.py [--steps 30] [--shapes 2x64,2x128,2x256] [--repeats 3]
        [--arms fp8-static,fp8-dynamic] [--batch-tokens 4096] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from threadpoolctl import threadpool_limits

from scalinglab.ladder import build
from scalinglab.runconfig import PrecisionConfig, RunConfig

ARMS = {
    "fp32": PrecisionConfig(),
    "fp8-static": PrecisionConfig(recipe="fp8-static"),
    "fp8-dynamic": PrecisionConfig(recipe="fp8-dynamic"),
    "sun E2M1 block 32": PrecisionConfig(recipe="sun", weights="E2M1", activations="E2M1", scaling="block",
                                         block=32),
}


def step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """One training step (forward, backward, AdamW); its wall time and its thread's CPU time, in seconds."""
    t, c = time.perf_counter(), time.thread_time()
    _, loss = model(x, y)
    assert loss is not None
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t, time.thread_time() - c


def measure(shape: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """One measurement of every arm at ``shape`` (fresh models): median wall and CPU ms per step and
    their ratios to the fp32 arm's."""
    L, d = (int(v) for v in shape.split("x"))
    cfgs = {name: RunConfig(n_layer=L, d_model=d, n_head=max(1, d // 32), context=args.context,
                            batch_tokens=args.batch_tokens, tokens=args.batch_tokens * 10, dtype="float32",
                            precision=p) for name, p in ARMS.items() if name in args.arms}
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (args.batch_tokens // args.context, args.context), generator=g)
    y = torch.randint(0, 256, x.shape, generator=g)
    models = {n: build.build_model(c, torch.device("cpu")) for n, c in cfgs.items()}
    opts = {n: build.build_optimizer(m, cfgs[n]) for n, m in models.items()}
    wall: dict[str, list[float]] = {n: [] for n in cfgs}
    cpu: dict[str, list[float]] = {n: [] for n in cfgs}
    for name in cfgs:
        for _ in range(3):
            step(models[name], opts[name], x, y)
    for _ in range(args.steps):
        for name in cfgs:
            w, c = step(models[name], opts[name], x, y)
            wall[name].append(w)
            cpu[name].append(c)
    base_w, base_c = statistics.median(wall["fp32"]), statistics.median(cpu["fp32"])
    out = {}
    for name in cfgs:
        mw, mc = statistics.median(wall[name]), statistics.median(cpu[name])
        out[name] = {"wall_ms": mw * 1e3, "ratio": mw / base_w, "cpu_ms": mc * 1e3, "cpu_ratio": mc / base_c}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per arm (after 3 warm-up steps)")
    ap.add_argument("--shapes", default="2x64,2x128,2x256", help="n_layer x d_model, comma-separated")
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="independent measurements per shape (fresh models)")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {list(ARMS)} (fp32 always)")
    ap.add_argument("--json", default="", help="write every repetition's figures here")
    args = ap.parse_args()
    args.arms = {"fp32", *(a.strip() for a in args.arms.split(","))}
    unknown = args.arms - set(ARMS)
    if unknown:
        ap.error(f"--arms: unknown {sorted(unknown)}; expected some of {list(ARMS)}")
    torch.set_num_threads(1)
    record: dict[str, object] = {"load_before": os.getloadavg(), "runs": []}
    print(f"load average before: {os.getloadavg()}")
    with threadpool_limits(limits=1):
        for shape in args.shapes.split(","):
            reps = []
            for r in range(args.repeats):
                res = measure(shape, args)
                reps.append(res)
                load = os.getloadavg()
                record["runs"].append({"shape": shape, "repeat": r, "load": load, "arms": res})  # type: ignore[attr-defined]
                for name, v in res.items():
                    print(f"{shape:7s} #{r} {name:20s} wall {v['wall_ms']:8.1f} ms  x{v['ratio']:5.2f}   "
                          f"cpu {v['cpu_ms']:8.1f} ms  x{v['cpu_ratio']:5.2f}   load {load[0]:.1f}")
            for name in reps[0]:
                if name == "fp32":
                    continue
                ratios = [rep[name]["ratio"] for rep in reps]
                cpus = [rep[name]["cpu_ratio"] for rep in reps]
                print(f"{shape:7s} {name:20s} wall ratio median {statistics.median(ratios):.2f} "
                      f"({', '.join(f'{v:.2f}' for v in ratios)});  cpu ratio median {statistics.median(cpus):.2f} "
                      f"({', '.join(f'{v:.2f}' for v in cpus)})")
    record["load_after"] = os.getloadavg()
    print(f"load average after: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
