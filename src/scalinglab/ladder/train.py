"""Train one ladder run: a GPT on a corpus, evaluated on held-out text at log-spaced steps.

The loop follows nanoGPT's ``train.py`` (Karpathy), one story top to bottom: set the learning rate ->
forward/backward over the micro-batches -> clip and step -> at an evaluation step: evaluate, report
the point, checkpoint -> log. Everything a run's curve depends on is in its :class:`RunConfig`; given
the config and the machine (device, thread count, dtype) the curve is reproducible:

* the initial weights come from a generator seeded with ``seed``;
* the batch of step s is a pure function of ``(seed, s)`` (random windows of the training stream,
  drawn with a generator seeded from both), so a resumed run sees the batches an uninterrupted one
  would, whatever the micro-batching;
* evaluation uses fixed windows spread evenly over the validation stream, the same for every run of
  a corpus, so losses compare across runs.

Checkpoints (model, optimizer, RNG state, step, sparsity masks) are written atomically right after each
reported point, so a crash never loses a reported point, and a resume never reports a point twice.

Sparse runs (``config.sparsity``, Frantar et al. 2023; see ``ladder.sparsity``) follow the
:class:`~scalinglab.ladder.sparsity.Sparsifier` protocol: masks are updated before the forward pass,
masked gradients zeroed before clipping, masked weights and AdamW moments zeroed after the step. The
model is built at :func:`~scalinglab.ladder.sparsity.model_shape` (Sparse-IFT widening). An SPDF run
(``dense_finetune_frac > 0``) lifts the masks for its last steps and takes their batches from
``finetune_corpus`` when one is given; it also evaluates at the end of its sparse phase, so both
phases have a loss. No sparse kernels run: the FLOPs a sparse kernel would need are counted
analytically (``run_training_flops``) and reported beside the FLOPs spent.

WSD runs with ``schedule.branches`` (Hägele et al. 2024, see ``schedules.branches``) take cooldown
branches off the stable phase: when the main line reaches a branch's start step, the loop copies the
model, optimizer and sparsifier state, trains the branch's decay on the batches the main line would
see at those steps, evaluates at the branch's end and reports that point (``"branch": k``; the main
line's points carry ``"branch": 0``), then puts the copy back. The main curve is bit-identical to
the same run without branches; each branch adds one fully annealed loss at its own D. The checkpoint
written after a branch point holds the main line's state and the branches done, so a resume neither
repeats nor skips one.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError, TrainingError
from . import schedules
from ..runconfig import RunConfig
from .corpus import TokenData, load_tokens
from .model import GPT, GPTConfig
from ..accounting import describe, eval_steps, sparse_flops
from .sparsity import Sparsifier, finetune_start, phases

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


def resolve_device(device: str | None) -> str:
    """The device to train on: as given, else ``cuda`` when available, else ``cpu``."""
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def _cpu_has_bf16() -> bool:
    """Whether the CPU has native bf16 dot products (AVX512-BF16 or AMX); Linux only, else False."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


#: on the CPU, ``auto`` autocasts to bf16 from this width up; narrower models train in float32
BF16_MIN_WIDTH = 64


def resolve_dtype(dtype: str, device: str, d_model: int | None = None) -> torch.dtype:
    """The autocast dtype. ``auto`` is bf16 where the hardware does bf16 natively (CUDA with bf16,
    CPUs with AVX512-BF16 or AMX); on a CPU only from ``d_model`` >= :data:`BF16_MIN_WIDTH` up,
    where it measured 1.4-1.6x faster than float32 (single thread, torch 2.13; at width 32-48 the
    casts cost more than the small matmuls gain, and bf16 measured 0.85-1.0x). float32 otherwise."""
    if dtype == "float32":
        return torch.float32
    if dtype == "bfloat16":
        return torch.bfloat16
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    wide = d_model is None or d_model >= BF16_MIN_WIDTH
    return torch.bfloat16 if dev.type == "cpu" and wide and _cpu_has_bf16() else torch.float32


def batch(data: np.ndarray, seed: int, step: int, n_seq: int,
          context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training batch of ``step``: ``n_seq`` random windows of ``context + 1`` tokens (inputs and
    next-token targets), a pure function of ``(seed, step)``."""
    state = np.random.SeedSequence([seed, step]).generate_state(2, dtype=np.uint32)
    g = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    starts = torch.randint(len(data) - context, (n_seq,), generator=g).numpy()
    windows = torch.from_numpy(data[starts[:, None] + np.arange(context + 1)].astype(np.int64))
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


def eval_windows(val: np.ndarray, eval_tokens: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed evaluation windows: ``eval_tokens // context`` windows spread evenly over the validation
    stream (fewer if it is shorter; they never overlap)."""
    n = min(eval_tokens // context, (len(val) - 1) // context)
    if n < 1:
        raise DataError(f"The validation split has {len(val)} tokens; one window needs context + 1 = "
                        f"{context + 1}. Use a larger corpus or a shorter context.")
    if n < eval_tokens // context:
        log.warning("the validation split holds %d tokens: evaluating on %d tokens, not %d",
                    len(val), n * context, eval_tokens)
    starts = np.linspace(0, len(val) - context - 1, n).round().astype(np.int64)
    windows = torch.from_numpy(val[starts[:, None] + np.arange(context + 1)].astype(np.int64))
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file beside ``path``, then rename (atomic on POSIX)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(config: RunConfig, *, on_point: Callable[[dict[str, Any]], None],
          checkpoint_path: Path | None = None, device: str | None = None, threads: int | None = None,
          log_every: int = 0) -> dict[str, Any]:
    """Train ``config``; report ``on_point(point)`` at each evaluation; return the run's summary.

    A point is ``{"branch" (0 on the main line, k for the k-th cooldown branch), "step", "tokens"
    (seen), "flops" (6 N_nonembed x tokens), "flops_full", "train_loss" (mean over the steps since
    the previous point; of a branch point, over the branch's steps), "eval_loss" (nats/token), "lr"
    (of the point's step), "wall_time" (seconds of training, resumes and branches included),
    "sparsity" (of the prunable weights at the point), "N_nonzero"}`` and the FLOP accounting of
    :func:`sparse_flops` up to the point. A branch point's tokens and FLOPs are those of a run
    trained to its end step (its D and C), and it also holds ``"decay_steps"``. If
    ``checkpoint_path`` exists the run resumes from it; a checkpoint is written there after each point.
    The summary holds the counts of :func:`describe`, ``steps``, ``tokens``, ``epochs`` (tokens /
    training tokens in the corpus), ``unique_tokens``, ``corpus_hash``, ``final_loss`` (last eval
    loss), ``device`` and ``dtype``; and for sparsity: ``N_nonzero`` (the final model's, measured on
    its masks: N_nonembed after SPDF's dense phase), ``N_nonzero_sparse`` (at the end of the sparse
    phase), ``sparsity`` (final), ``phases`` (``[{"phase", "start_step", "end_step", "corpus",
    "eval_loss", "N_nonzero"}]``, the losses and counts at each phase's end) and :func:`sparse_flops`;
    for cooldown branches: ``branches`` (``[{"branch", "end_step", "decay_steps", "eval_loss",
    "tokens"}]``) and the FLOPs spent on the main line and every branch step together,
    ``flops_spent_with_branches`` (6 N_nonembed per token) and ``flops_full_spent_with_branches``
    (with attention and the unembedding), FLOPs.

    Raises ConfigError (bad config, foreign checkpoint), DataError (corpus problems, a batch larger
    than the data) and TrainingError (a non-finite loss, naming the step).
    """
    # -- setup -------------------------------------------------------------------------------------
    _check_finetune_corpus(config)
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device)
    dev = torch.device(device)
    info = describe(config)
    amp_dtype = resolve_dtype(config.dtype, device, info["shape"]["d_model"])
    autocast = (torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype != torch.float32
                else contextlib.nullcontext())
    steps, B, T = config.steps, config.batch_tokens // config.context, config.context
    branches = schedules.branches(config.schedule, config.lr, steps)   # WSD cooldown branches, maybe none
    micro = (config.micro_batch_tokens or config.batch_tokens) // T    # sequences per forward pass
    n_micro = B // micro

    # -- data --------------------------------------------------------------------------------------
    data: TokenData = load_tokens(config.corpus, config.vocab)
    if len(data.train) < config.batch_tokens + 1:
        raise DataError(f"The batch ({config.batch_tokens} tokens) is larger than the training data of "
                        f"corpus {config.corpus!r} ({len(data.train)} tokens).")
    x_eval, y_eval = (t.to(dev) for t in eval_windows(data.val, config.eval_tokens, T))
    # SPDF: the dense fine-tuning phase trains on its own corpus from step t_ft on
    t_ft = finetune_start(config.sparsity, steps)
    ft_data = _finetune_data(config, data)

    # -- model and optimizer -------------------------------------------------------------------------
    shape = info["shape"]    # the config's, or Sparse-IFT's widened one
    model = GPT(GPTConfig(shape["n_layer"], shape["d_model"], shape["n_head"], T, config.vocab),
                generator=torch.Generator().manual_seed(config.seed)).to(dev)
    # weight decay on matrices only, not on LayerNorm weights (as nanoGPT)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    # the fused kernel (CPU and CUDA): one pass over all parameters, 1.0-1.2x faster on tiny models
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=True)
    schedule = schedules.from_config(config.schedule, config.lr, steps)
    sparsifier = Sparsifier(model, config.sparsity, total_steps=steps, seed=config.seed)

    @torch.no_grad()
    def evaluate() -> float:
        model.eval()
        total = 0.0
        for i in range(0, len(x_eval), micro):
            with autocast:
                _, loss = model(x_eval[i:i + micro], y_eval[i:i + micro])
            assert loss is not None
            total += loss.item() * len(x_eval[i:i + micro])
        model.train()
        return total / len(x_eval)

    # -- resume ------------------------------------------------------------------------------------
    step, wall_before, final_loss = 0, 0.0, math.nan
    loss_sum, loss_n = 0.0, 0                        # main-line train loss since the previous point
    at_phase_end: dict[int, dict[str, Any]] = {}    # end step of a phase -> its loss and non-zero count
    branches_done: dict[int, dict[str, Any]] = {}   # branch index -> its end step, decay steps, loss, tokens
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        # loaded on the CPU: the RNG state must stay there; load_state_dict moves the rest
        ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if ckpt.get("digest") != config.digest():
            raise ConfigError(f"The checkpoint {str(checkpoint_path)!r} belongs to another run config "
                              f"(digest {ckpt.get('digest')!r}, this run's {config.digest()!r}).")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("sparsifier") is not None:
            sparsifier.load_state_dict(ckpt["sparsifier"])
        at_phase_end = dict(ckpt.get("phase_ends") or {})
        branches_done = dict(ckpt.get("branches_done") or {})
        loss_sum, loss_n = ckpt.get("train_loss_sum", 0.0), ckpt.get("train_loss_n", 0)
        torch.set_rng_state(ckpt["rng"]["torch"])
        if dev.type == "cuda" and ckpt["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], dev)
        step, wall_before, final_loss = ckpt["step"], ckpt["wall_time"], ckpt["final_loss"]
        log.info("resuming %s from step %d of %d (%s)", config.name, step, steps, checkpoint_path)
    points_at = set(eval_steps(steps, config.evals))
    if 0 < t_ft < steps:
        points_at.add(t_ft)    # SPDF: the loss of the sparse model, at the end of its phase

    # -- one optimizer step, shared by the main line and the cooldown branches --------------------
    def take_step(step: int, lr: float, branch: int = 0) -> float:
        """Update ``step`` + 1 at learning rate ``lr``, on the batch of ``step``; returns its train loss."""
        for group in optimizer.param_groups:
            group["lr"] = lr

        # new masks when the sparsity schedule moves (lifted at SPDF's dense phase), before the forward
        sparsifier.update(step, optimizer)

        # forward and backward over the micro-batches of the step's batch
        x, y = batch(data.train if step < t_ft else ft_data.train, config.seed, step, B, T)
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        step_loss = torch.zeros((), device=dev)
        for i in range(0, B, micro):
            with autocast:
                _, loss = model(x[i:i + micro], y[i:i + micro])
            assert loss is not None
            (loss / n_micro).backward()
            step_loss += loss.detach() / n_micro
        train_loss = step_loss.item()
        if not math.isfinite(train_loss):
            where = f" of cooldown branch {branch}" if branch else ""
            raise TrainingError(f"The training loss of run {config.name or config.digest()} is {train_loss} "
                                f"at step {step + 1}{where} (lr {lr:.3g}); lower the learning rate or use "
                                "float32.")

        # clip the gradient (of the sparse model: masked entries zeroed first) and take the step;
        # masked weights and their AdamW moments go back to exactly zero (weight decay moved them)
        sparsifier.mask_grads()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        sparsifier.apply(optimizer)
        optimizer.zero_grad(set_to_none=True)
        return train_loss

    def checkpoint() -> None:
        """Write the main line's state at ``step`` (never a branch's: a branch has been undone by now)."""
        if checkpoint_path is None:
            return
        _save_checkpoint(Path(checkpoint_path), {
            "version": CHECKPOINT_VERSION, "digest": config.digest(), "config": config.to_dict(),
            "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "sparsifier": sparsifier.state_dict(), "phase_ends": at_phase_end, "branches_done": branches_done,
            "train_loss_sum": loss_sum, "train_loss_n": loss_n,
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None},
            "wall_time": wall_before + time.perf_counter() - t0, "final_loss": final_loss})

    def point(step: int, tokens: int, train_loss: float, eval_loss: float, lr: float,
              branch: int) -> dict[str, Any]:
        """The reported point after ``step`` updates (see the docstring of ``train``)."""
        sparsity = sparsifier.n_pruned() / max(1, sparsifier.n_prunable())
        return {"branch": branch, "step": step, "tokens": tokens, "flops": info["flops_per_token"] * tokens,
                "flops_full": info["flops_per_token_full"] * tokens, "train_loss": train_loss,
                "eval_loss": eval_loss, "lr": lr, "wall_time": wall_before + time.perf_counter() - t0,
                "sparsity": sparsity, "N_nonzero": sparsifier.n_nonzero(), **sparse_flops(config, step)}

    def cooldown(br: schedules.Branch) -> None:
        """Branch ``br`` off the main line (now at its start step), train its decay, report its point at
        its end step, and put the main line's state back exactly as it was."""
        saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
        saved_optimizer = copy.deepcopy(optimizer.state_dict())
        saved_sparsifier = copy.deepcopy(sparsifier.state_dict())
        saved_rng = torch.get_rng_state()
        saved_cuda_rng = torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None
        total, lr = 0.0, 0.0
        for s in range(br.start_step, br.end_step):   # the batches the main line would see at these steps
            lr = br.schedule(s)
            total += take_step(s, lr, br.index)
        eval_loss = evaluate()
        if not math.isfinite(eval_loss):
            raise TrainingError(f"The eval loss of run {config.name or config.digest()} is {eval_loss} at "
                                f"step {br.end_step} of cooldown branch {br.index}.")
        tokens = br.end_step * config.batch_tokens
        on_point({**point(br.end_step, tokens, total / br.decay_steps, eval_loss, lr, br.index),
                  "decay_steps": br.decay_steps})
        branches_done[br.index] = {"branch": br.index, "end_step": br.end_step, "decay_steps": br.decay_steps,
                                   "eval_loss": eval_loss, "tokens": tokens}
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        sparsifier.load_state_dict(saved_sparsifier)
        torch.set_rng_state(saved_rng)
        if saved_cuda_rng is not None:
            torch.cuda.set_rng_state(saved_cuda_rng, dev)

    # -- the loop ----------------------------------------------------------------------------------
    t0 = time.perf_counter()
    t_log = t0
    while step < steps:
        # cooldown branches that leave the main line at this step: each reports its point, then the
        # main line's state is checkpointed with the branch marked done (a resume skips it)
        for br in branches:
            if br.start_step == step and br.index not in branches_done:
                cooldown(br)
                checkpoint()

        # set this step's learning rate, and take the step
        lr = schedule(step)
        train_loss = take_step(step, lr)
        step += 1
        loss_sum, loss_n = loss_sum + train_loss, loss_n + 1

        # evaluate, report the point, checkpoint (in this order: a crash loses no reported point)
        if step in points_at:
            final_loss = evaluate()
            if not math.isfinite(final_loss):
                raise TrainingError(f"The eval loss of run {config.name or config.digest()} is {final_loss} "
                                    f"at step {step}.")
            tokens = step * config.batch_tokens
            if step in (t_ft, steps):
                at_phase_end[step] = {"eval_loss": final_loss, "N_nonzero": sparsifier.n_nonzero(),
                                      "sparsity": sparsifier.n_pruned() / max(1, sparsifier.n_prunable())}
            on_point(point(step, tokens, loss_sum / loss_n, final_loss, lr, 0))
            loss_sum, loss_n = 0.0, 0
            checkpoint()

        # log
        if log_every and step % log_every == 0:
            now = time.perf_counter()
            log.info("%s step %d/%d loss %.4f lr %.3g %.0f tok/s", config.name, step, steps, train_loss, lr,
                     log_every * config.batch_tokens / (now - t_log))
            t_log = now

    branch_steps = sum(br.decay_steps for br in branches)
    spent_tokens = (steps + branch_steps) * config.batch_tokens
    run_phases = [{**ph, **at_phase_end.get(ph["end_step"], {})} for ph in phases(config.sparsity, steps)]
    end = at_phase_end.get(steps, {})
    return {"N_total": info["N_total"], "N_nonembed": info["N_nonembed"],
            "N_nonzero": end.get("N_nonzero", sparsifier.n_nonzero()),
            "N_nonzero_sparse": at_phase_end.get(t_ft, end).get("N_nonzero", info["N_nonzero"]),
            "sparsity": end.get("sparsity", config.sparsity.target), "shape": info["shape"],
            "flops_per_token": info["flops_per_token"], "flops_per_token_full": info["flops_per_token_full"],
            "steps": steps, "tokens": info["tokens"], "epochs": info["tokens"] / len(data.train),
            "unique_tokens": len(data.train), "corpus_hash": data.corpus_hash, "final_loss": final_loss,
            "phases": run_phases, **sparse_flops(config, steps),
            "branches": [branches_done[k] for k in sorted(branches_done)],
            "flops_spent_with_branches": info["flops_per_token"] * spent_tokens,
            "flops_full_spent_with_branches": info["flops_per_token_full"] * spent_tokens,
            "device": device, "dtype": str(amp_dtype).removeprefix("torch.")}


def _check_finetune_corpus(config: RunConfig) -> None:
    """A BPE is trained per corpus, so another corpus's token ids would not be this model's."""
    corpus = config.sparsity.finetune_corpus
    if corpus and corpus != config.corpus and config.vocab != 256 and Path(corpus).suffix != ".bin":
        raise ConfigError(f"The 'sparsity.finetune_corpus' field {corpus!r} needs the run corpus's "
                          f"tokenizer: with a BPE vocabulary (vocab = {config.vocab}) give it as a .bin "
                          "token file made with that tokenizer, or use vocab = 256 (bytes).")


def _finetune_data(config: RunConfig, data: TokenData) -> TokenData:
    """SPDF's fine-tuning corpus (``sparsity.finetune_corpus``), or the run's own ``data``."""
    corpus = config.sparsity.finetune_corpus
    if not corpus or corpus == config.corpus:
        return data
    ft = load_tokens(corpus, config.vocab)
    if len(ft.train) < config.batch_tokens + 1:
        raise DataError(f"The batch ({config.batch_tokens} tokens) is larger than the training data of the "
                        f"fine-tuning corpus {corpus!r} ({len(ft.train)} tokens).")
    return ft
