"""Cost of emulated number formats: a training step with every hidden linear quantised (fp8-static:
E4M3 weights and activations, E5M2 gradients, all six GEMM operands) against the fp32 step of the same
shape. The issue's target: <= 1.5x.

In one process, one intra-op thread (``torch.set_num_threads(1)``) and BLAS pinned to one thread
(threadpoolctl) on both sides; the arms alternate step by step (so a change of machine load hits all),
each step is forward + backward + AdamW on a fixed random batch, and the median step time of each arm
is reported with its ratio to fp32. Other arms: fp8-dynamic (per-tensor absmax scales) and Sun's
recipe (weights in both passes and the saved activation) in E2M1 with blocks of 32.

    python benchmarks/quant_overhead.py [--steps 30] [--shapes 2x128,2x256] [--batch-tokens 4096]
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


def step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """One training step (forward, backward, AdamW); its wall time in seconds."""
    t = time.perf_counter()
    _, loss = model(x, y)
    assert loss is not None
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per arm (after 3 warm-up steps)")
    ap.add_argument("--shapes", default="2x128,2x256", help="n_layer x d_model, comma-separated")
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--context", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()}")
    results: dict[str, dict[str, float]] = {}
    with threadpool_limits(limits=1):
        for shape in args.shapes.split(","):
            L, d = (int(v) for v in shape.split("x"))
            cfgs = {name: RunConfig(n_layer=L, d_model=d, n_head=d // 32, context=args.context,
                                    batch_tokens=args.batch_tokens, tokens=args.batch_tokens * 10, dtype="float32",
                                    precision=p) for name, p in ARMS.items()}
            g = torch.Generator().manual_seed(0)
            x = torch.randint(0, 256, (args.batch_tokens // args.context, args.context), generator=g)
            y = torch.randint(0, 256, x.shape, generator=g)
            models = {n: build.build_model(c, torch.device("cpu")) for n, c in cfgs.items()}
            opts = {n: build.build_optimizer(m, cfgs[n]) for n, m in models.items()}
            times: dict[str, list[float]] = {n: [] for n in cfgs}

            for name in cfgs:
                for _ in range(3):
                    step(models[name], opts[name], x, y)
            for _ in range(args.steps):
                for name in cfgs:
                    times[name].append(step(models[name], opts[name], x, y))
            base = statistics.median(times["fp32"])
            for name in cfgs:
                med = statistics.median(times[name])
                results[f"{shape} {name}"] = {"step_ms": med * 1e3, "ratio": med / base}
                print(f"{shape:7s} {name:20s} {med * 1e3:8.1f} ms/step  ratio to fp32 {med / base:5.2f}")
    print(f"load average after: {os.getloadavg()}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
