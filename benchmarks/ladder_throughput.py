"""Trainer throughput against the machine's matmul peaks and a plain nanoGPT-style fp32 loop.

All in one run, on this machine:

1. fp32 and bf16 matmul peaks (GFLOP/s) of ``torch.mm`` on square matrices, with all threads;
2. for models of about 20K, 100K, 500K and 2M non-embedding parameters: tokens/s and achieved FLOP/s
   (full FLOPs per token: 6 N_nonembed + 6 d V + 12 L T d, forward and backward) of
   (a) a plain loop written here (nanoGPT-style model and loop, fp32, AdamW, all threads), and
   (b) scalinglab's trainer (``ladder.train.train``, dtype auto = bf16 autocast where the CPU has it),
   and the ratio b/a;
3. the quickstart ladder (sized with ``--ladder-minutes``; each shape's IsoFLOP runs merged into one
   WSD run with cooldown branches) trained end to end: by the plain loop, one run after another with
   all threads, on the same steps (branch decays included), and by scalinglab's executor
   (single-thread workers, one per core); aggregate tokens/s of both and the ratio. Also the plain
   loop training every design run separately (what a ladder without shared prefixes costs), and the
   ratio of its time to ours: the time to the same IsoFLOP points.

    python benchmarks/ladder_throughput.py [--seconds 8] [--ladder-minutes 2] [--skip-ladder]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scalinglab import units
from scalinglab.execute import cpu_count, execute
from scalinglab.ladder import schedules
from scalinglab.ladder.corpus import load_tokens
from scalinglab.ladder.train import eval_steps, train
from scalinglab.quickstart import design_ladder, design_runs, ladder_budgets
from scalinglab.runconfig import RunConfig
from scalinglab.store import Store

T, V = 128, 256


# -- the plain baseline: a nanoGPT-style model and loop, written out here ------------------------
class PlainBlock(nn.Module):
    def __init__(self, d: int, h: int) -> None:
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        self.fc, self.out = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, L, self.h, C // self.h).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, L, C)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class PlainGPT(nn.Module):
    def __init__(self, n_layer: int, d: int, h: int) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, d), nn.Embedding(T, d)
        self.blocks = nn.ModuleList(PlainBlock(d, h) for _ in range(n_layer))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, V, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.blocks:
            x = b(x)
        return F.cross_entropy(self.head(self.ln(x)).view(-1, V), tgt.view(-1))


def plain_train(data: np.ndarray, n_layer: int, d: int, h: int, steps: int, batch_tokens: int,
                lr: float = 3e-3, seed: int = 0, evals: int = 0, eval_tokens: int = 0,
                val: np.ndarray | None = None) -> float:
    """Train with the plain loop; returns tokens/s over the steps after two warm-up steps.

    With ``evals``, it also evaluates ``eval_tokens`` held-out tokens at the same log-spaced steps as
    scalinglab's trainer (as nanoGPT evaluates every ``eval_interval``), so a ladder compares like
    with like.
    """
    torch.manual_seed(seed)
    m = PlainGPT(n_layer, d, h)
    opt = torch.optim.AdamW(m.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    n_seq = batch_tokens // T
    rng = np.random.default_rng(seed)

    def step() -> None:
        ix = rng.integers(0, len(data) - T - 1, n_seq)
        x = torch.from_numpy(np.stack([data[i:i + T] for i in ix]).astype(np.int64))
        y = torch.from_numpy(np.stack([data[i + 1:i + 1 + T] for i in ix]).astype(np.int64))
        loss = m(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def evaluate() -> None:
        assert val is not None
        n = max(1, eval_tokens // T)
        starts = np.linspace(0, len(val) - T - 2, n).astype(int)
        with torch.no_grad():
            for i in range(0, n, n_seq):
                ix = starts[i:i + n_seq]
                m(torch.from_numpy(np.stack([val[j:j + T] for j in ix]).astype(np.int64)),
                  torch.from_numpy(np.stack([val[j + 1:j + 1 + T] for j in ix]).astype(np.int64)))

    at = set(eval_steps(steps, evals)) if evals else set()
    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for s in range(1, steps + 1):
        step()
        if s in at:
            evaluate()
    return steps * batch_tokens / (time.perf_counter() - t0)


def matmul_peak(dtype: torch.dtype, n: int = 1024, seconds: float = 2.0) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        k += 1
    return 2 * n**3 * k / (time.perf_counter() - t0)


def ours_tokens_per_s(shape: dict[str, int], steps: int, batch_tokens: int, threads: int) -> tuple[float, str]:
    cfg = RunConfig(n_layer=shape["n_layer"], d_model=shape["d_model"], n_head=shape["n_head"], context=T,
                    vocab=V, batch_tokens=batch_tokens, tokens=(steps + 1) * batch_tokens, evals=2, eval_tokens=T * 4)
    pts: list[dict] = []
    summary = train(cfg, on_point=pts.append, threads=threads)
    # steady state: from the step-1 point to the last one (excludes setup and the first step)
    return (pts[-1]["tokens"] - pts[0]["tokens"]) / (pts[-1]["wall_time"] - pts[0]["wall_time"]), summary["dtype"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0, help="rough seconds per model measurement")
    ap.add_argument("--ladder-minutes", type=float, default=2.0, help="size of the quickstart ladder compared")
    ap.add_argument("--skip-ladder", action="store_true")
    ap.add_argument("--skip-plain-evals", action="store_true",
                    help="do not also time the plain loop with the ladder's evaluations")
    args = ap.parse_args()
    cores = cpu_count()
    torch.set_num_threads(cores)
    tokens_ = load_tokens("default", V)
    data, val = tokens_.train, tokens_.val
    print(f"cores: {cores}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    p32, p16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    print(f"matmul peak: fp32 {p32 / 1e9:.0f} GFLOP/s, bf16 {p16 / 1e9:.0f} GFLOP/s")
    rows = []
    batch_tokens = 4096
    print(f"{'N_nonembed':>10} {'shape':>12} {'plain tok/s':>12} {'GFLOP/s':>8} {'ours tok/s':>11} {'GFLOP/s':>8} "
          f"{'ratio':>6}  ours dtype")
    for target, guess in ((2e4, 100e3), (1e5, 45e3), (5e5, 15e3), (2e6, 5e3)):
        s = units.shape_for_params(target)
        fpt = units.flops_per_token(s["n_layer"], s["d_model"], T, V, full=True)
        steps = max(8, int(guess * args.seconds / batch_tokens))
        plain = plain_train(data, s["n_layer"], s["d_model"], s["n_head"], steps, batch_tokens)
        torch.set_num_threads(cores)
        ours, dtype = ours_tokens_per_s(s, steps, batch_tokens, cores)
        torch.set_num_threads(cores)
        rows.append({"N_nonembed": s["N_nonembed"], "shape": [s["n_layer"], s["d_model"], s["n_head"]],
                     "plain_tok_s": plain, "ours_tok_s": ours, "ratio": ours / plain, "flops_per_token": fpt})
        print(f"{s['N_nonembed']:>10} {(s['n_layer'], s['d_model'])!s:>12} {plain:>12.0f} {plain * fpt / 1e9:>8.1f} "
              f"{ours:>11.0f} {ours * fpt / 1e9:>8.1f} {ours / plain:>6.2f}  {dtype}")

    if not args.skip_ladder:
        runs, _ = design_ladder(args.ladder_minutes, cores)
        separate = design_runs(ladder_budgets(runs))   # the same points, one run each
        # the plain loop trains as many steps as ours, cooldown branches included (their decays are
        # extra steps; their end evaluations extra evaluations)
        steps = {r.name: schedules.updates_with_branches(r.schedule, r.lr, r.steps) for r in runs}
        tokens = sum(steps[r.name] * r.batch_tokens for r in runs)
        t0 = time.perf_counter()
        for r in runs:
            plain_train(data, r.n_layer, r.d_model, r.n_head, steps[r.name], r.batch_tokens, r.lr)
        t_plain = time.perf_counter() - t0
        # the same IsoFLOP points the plain way: every design run trained on its own (no shared prefixes)
        sep_tokens = sum(r.steps * r.batch_tokens for r in separate)
        t0 = time.perf_counter()
        for r in separate:
            plain_train(data, r.n_layer, r.d_model, r.n_head, r.steps, r.batch_tokens, r.lr)
        t_separate = time.perf_counter() - t0
        t_plain_eval = float("nan")
        if not args.skip_plain_evals:
            t0 = time.perf_counter()
            for r in runs:
                plain_train(data, r.n_layer, r.d_model, r.n_head, steps[r.name], r.batch_tokens, r.lr,
                            evals=r.evals + len(r.schedule.branches), eval_tokens=r.eval_tokens, val=val)
            t_plain_eval = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "runs.db") as store:
            t0 = time.perf_counter()
            execute(runs, store, checkpoint_dir=Path(tmp) / "ckpt", workers=cores, threads=1, progress=False)
            t_ours = time.perf_counter() - t0
        print(f"quickstart ladder ({len(runs)} runs, {tokens:.3g} training tokens with the cooldown branches, "
              f"{args.ladder_minutes} min design):")
        print(f"  plain loop, sequential, {cores} threads, no evaluation: {t_plain:7.1f} s  {tokens / t_plain:9.0f} tok/s")
        if not args.skip_plain_evals:
            print(f"  plain loop, sequential, {cores} threads, same evaluations: {t_plain_eval:7.1f} s  "
                  f"{tokens / t_plain_eval:9.0f} tok/s")
        print(f"  scalinglab executor, {cores} x 1 thread: {t_ours:7.1f} s  {tokens / t_ours:9.0f} tok/s "
              f"(end to end: worker start, evaluations and checkpoints included)")
        print(f"  ratio: {t_plain / t_ours:.2f}x against the plain loop without evaluation"
              + ("" if args.skip_plain_evals else
                 f", {t_plain_eval / t_ours:.2f}x against it with the same evaluations"))
        print(f"  the same {len(separate)} IsoFLOP points as {len(separate)} separate runs by the plain loop (no "
              f"evaluation): {t_separate:7.1f} s, {sep_tokens:.3g} tokens; time to the points: "
              f"{t_separate / t_ours:.2f}x")
    print(json.dumps({"peaks_gflops": {"fp32": p32 / 1e9, "bf16": p16 / 1e9}, "models": rows}))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(cpu_count()))
    main()
