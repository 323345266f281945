"""Step time of a masked GPT against the dense GPT of the same shape (target: ratio <= 1.15).

Both models: ``ladder.model.GPT`` with n_layer=4, d_model=208 (about 2.1M non-embedding parameters),
AdamW with weight decay and gradient clipping. The masked model runs the full protocol of
``ladder.sparsity.Sparsifier`` at 50% sparsity: ``mask_grads`` before clipping, ``apply(optimizer)``
(weights and both AdamW moments) after the step. Steps of the two models alternate, so a change in
the machine's load hits both; the medians are compared. The mask recomputation of gradual magnitude
pruning (``update`` at a new sparsity) is timed on its own and reported amortised over
``--update-every`` steps.

    python benchmarks/masking_overhead.py [--steps 20] [--batch-tokens 2048] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from scalinglab.ladder.model import GPT, GPTConfig
from scalinglab.ladder.sparsity import Sparsifier
from scalinglab.runconfig import SparsityConfig


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per model (after 3 warm-up steps)")
    ap.add_argument("--batch-tokens", type=int, default=2048, help="tokens per step (multiple of 128)")
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--update-every", type=int, default=10, help="steps between mask updates (GMP)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = GPTConfig(n_layer=4, d_model=208, n_head=13, context=128, vocab=256)
    dev = args.device
    models, opts = [], []
    for _ in range(2):
        m = GPT(cfg, generator=torch.Generator().manual_seed(0)).to(dev)
        models.append(m)
        opts.append(torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95)))
    total = 1000
    sp = Sparsifier(models[1], SparsityConfig(target=args.sparsity, method="static"), total, seed=0)
    sp.update(0, opts[1])
    n_nonembed = sum(p.numel() for p in models[0].nonembedding_parameters())

    g = torch.Generator().manual_seed(1)
    seqs = args.batch_tokens // cfg.context
    data = torch.randint(0, cfg.vocab, (seqs, cfg.context + 1), generator=g).to(dev)
    x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()

    def step(i: int) -> float:
        model, opt = models[i], opts[i]
        sync(dev)
        t0 = time.perf_counter()
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if i:
            sp.mask_grads()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i:
            sp.apply(opts[1])
        sync(dev)
        return time.perf_counter() - t0

    for _ in range(3):
        step(0), step(1)
    times: list[list[float]] = [[], []]
    for k in range(args.steps):
        order = (0, 1) if k % 2 == 0 else (1, 0)
        for i in order:
            times[i].append(step(i))
    dense, masked = statistics.median(times[0]), statistics.median(times[1])

    # the masking operations alone (load-independent view of the overhead)
    ops = []
    for _ in range(args.steps):
        sync(dev)
        t0 = time.perf_counter()
        sp.mask_grads()
        sp.apply(opts[1])
        sync(dev)
        ops.append(time.perf_counter() - t0)
    mask_ops = statistics.median(ops)

    # one mask recomputation of gradual magnitude pruning (global ranking is the dearer one)
    gmp = Sparsifier(models[1], SparsityConfig(target=0.9, scope="global", update_every=1), 100, seed=0)
    upd = []
    for s in range(26, 36):
        sync(dev)
        t0 = time.perf_counter()
        gmp.update(s, opts[1])
        sync(dev)
        upd.append(time.perf_counter() - t0)
    update = statistics.median(upd)

    print(f"device {dev}, torch threads {torch.get_num_threads()}, N_nonembed {n_nonembed:,}, "
          f"{args.batch_tokens} tokens/step, sparsity {args.sparsity}, {args.steps} timed steps each")
    print(f"dense  step: {dense * 1e3:8.2f} ms (median; min {min(times[0]) * 1e3:.2f})")
    print(f"masked step: {masked * 1e3:8.2f} ms (median; min {min(times[1]) * 1e3:.2f})")
    print(f"ratio masked/dense: {masked / dense:.3f} of medians, "
          f"{min(times[1]) / min(times[0]):.3f} of minima   (target <= 1.15)")
    print(f"mask_grads + apply(optimizer) alone: {mask_ops * 1e3:.2f} ms "
          f"= {mask_ops / dense:.1%} of a dense step")
    print(f"mask update (GMP, global ranking): {update * 1e3:.2f} ms; amortised over {args.update_every} "
          f"steps: ratio {(masked + update / args.update_every) / dense:.3f}")


if __name__ == "__main__":
    main()
