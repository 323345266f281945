"""Step time of a run measuring the gradient noise scale against the same run without it (target: <= 1.10).

Both sides are the trainer's own ``ladder.train.Loop`` built from a :class:`RunConfig` (the same shape,
batch and micro-batching; ``noise_scale = true`` on one), so the measured cost is the real one: per
micro-batch one subtraction, one norm and one copy over the gradients (``ladder.noise.MicroGradStats``)
and one host sync per step. Steps of the two loops alternate, so a change in the machine's load hits
both; the medians (and minima) are compared. BLAS and torch threads are pinned (``--threads``, default
1) on both sides, and the load average is printed with the figures.

    python benchmarks/noise_scale_overhead.py [--n-layer 4] [--d-model 208] [--batch-tokens 2048]
        [--micro-tokens 512] [--steps 30] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import torch
from threadpoolctl import threadpool_limits

from scalinglab.ladder import build, precision
from scalinglab.ladder.checkpoint import TrainState
from scalinglab.ladder.corpus import load_tokens
from scalinglab.ladder.noise import MicroGradStats
from scalinglab.ladder.train import Loop
from scalinglab.runconfig import RunConfig


def make_loop(cfg: RunConfig, dev: torch.device) -> Loop:
    data = load_tokens(cfg.corpus, cfg.vocab)
    model = build.build_model(cfg, dev)
    opt = build.build_optimizer(model, cfg)
    feats = build.build_features(cfg, model, opt, data)
    state = TrainState(model, opt, feats, dev, batch_tokens=cfg.batch_tokens)
    amp = precision.resolve_dtype(cfg.dtype, dev.type, cfg.d_model)
    return Loop(cfg, model, opt, feats, data, dev, amp, state)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=208)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--micro-tokens", type=int, default=512, help="tokens per micro-batch (>= 2 per step)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per loop (after 3 warm-up steps)")
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (0: leave as they are)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    head = max(1, args.d_model // 16)
    base = RunConfig(name="bench", n_layer=args.n_layer, d_model=args.d_model, n_head=head, context=args.context,
                     batch_tokens=args.batch_tokens, micro_batch_tokens=args.micro_tokens,
                     tokens=1000 * args.batch_tokens, dtype="float32", eval_tokens=args.context)
    noisy = dataclasses.replace(base, noise_scale=True)
    dev = torch.device(args.device)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    with threadpool_limits(args.threads or None):
        if args.threads:
            torch.set_num_threads(args.threads)
        loops = [make_loop(base, dev), make_loop(noisy, dev)]

        def step(i: int, s: int) -> float:
            sync()
            t0 = time.perf_counter()
            loops[i].take_step(s, 1e-3)
            sync()
            return time.perf_counter() - t0

        for s in range(3):
            step(0, s), step(1, s)
        times: list[list[float]] = [[], []]
        for k in range(args.steps):
            for i in ((0, 1) if k % 2 == 0 else (1, 0)):
                times[i].append(step(i, 3 + k))
        b_simple = loops[1].features.point_fields(args.steps)["B_simple"]
        threads = torch.get_num_threads()

        # the measurement alone, on real gradients (a load-independent view of the overhead)
        m = args.batch_tokens // args.micro_tokens
        loop = loops[1]
        x = torch.randint(0, base.vocab, (args.micro_tokens // base.context, base.context + 1)).to(dev)
        _, loss = loop.model(x[:, :-1], x[:, 1:])
        assert loss is not None
        loss.backward()
        stats = MicroGradStats(loop.model.parameters())
        ops = []
        for _ in range(args.steps):
            sync()
            t0 = time.perf_counter()
            for j in range(m):
                stats.after_backward(0, j, m)
            sync()
            ops.append(time.perf_counter() - t0)
        measure = statistics.median(ops)

    plain, noise = statistics.median(times[0]), statistics.median(times[1])
    n_nonembed = sum(p.numel() for p in loops[0].model.nonembedding_parameters())
    print(f"device {dev}, threads {threads}, load average {os.getloadavg()}")
    print(f"N_nonembed {n_nonembed:,}, {args.batch_tokens} tokens/step in {args.batch_tokens // args.micro_tokens} "
          f"micro-batches of {args.micro_tokens}, {args.steps} timed steps each")
    print(f"plain step:       {plain * 1e3:8.2f} ms (median; min {min(times[0]) * 1e3:.2f})")
    print(f"noise-scale step: {noise * 1e3:8.2f} ms (median; min {min(times[1]) * 1e3:.2f})")
    print(f"ratio: {noise / plain:.3f} of medians, {min(times[1]) / min(times[0]):.3f} of minima   (target <= 1.10)")
    print(f"the measurement alone ({m} after_backward calls): {measure * 1e3:.2f} ms = {measure / plain:.1%} of a "
          f"plain step (median), {measure / min(times[0]):.1%} of the fastest")
    print(f"B_simple after {args.steps + 3} steps: {b_simple:.4g} tokens")


if __name__ == "__main__":
    main()
