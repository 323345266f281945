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

Checkpoints (model, optimizer, RNG state, step) are written atomically right after each reported
point, so a crash never loses a reported point, and a resume never reports a point twice.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import units
from ..errors import ConfigError, DataError, TrainingError
from . import schedules
from .config import RunConfig
from .corpus import TokenData, load_tokens
from .model import GPT, GPTConfig

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


def describe(config: RunConfig) -> dict[str, Any]:
    """Parameter counts and FLOPs of a run without training it (no data, no torch work).

    ``N_total``, ``N_nonembed``, ``N_nonzero`` (counts, :func:`scalinglab.units.param_counts`),
    ``flops_per_token`` (6 N_nonembed) and ``flops_per_token_full`` (6 N_nonembed + 6 d V + 12 L T d),
    FLOPs/token; ``steps``; ``tokens`` (steps x batch_tokens); ``flops`` and ``flops_full`` (x tokens).
    """
    L, d, T, V = config.n_layer, config.d_model, config.context, config.vocab
    counts = units.param_counts(L, d, T, V, sparsity=config.sparsity.target)
    fpt = units.flops_per_token(L, d, T, V)
    fpt_full = units.flops_per_token(L, d, T, V, full=True)
    tokens = units.steps_to_tokens(config.steps, config.batch_tokens)
    return {"N_total": counts["N_total"], "N_nonembed": counts["N_nonembed"],
            "N_nonzero": counts["N_nonzero"], "flops_per_token": fpt, "flops_per_token_full": fpt_full,
            "steps": config.steps, "tokens": tokens, "flops": fpt * tokens, "flops_full": fpt_full * tokens}


def eval_steps(steps: int, evals: int) -> list[int]:
    """``evals`` log-spaced steps over 1..steps (rounded, so repeats at the low end merge), always
    including the last step (and step 1 when evals > 1)."""
    spaced = np.rint(np.geomspace(1, steps, evals)) if evals > 1 else np.zeros(0)
    return sorted({int(s) for s in spaced} | {steps})


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


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """The autocast dtype. ``auto`` is bf16 where the hardware does bf16 natively (CUDA with bf16,
    CPUs with AVX512-BF16 or AMX), where it measured 1.1-1.6x faster than float32 at the
    ladder's sizes; float32 otherwise."""
    if dtype == "float32":
        return torch.float32
    if dtype == "bfloat16":
        return torch.bfloat16
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if dev.type == "cpu" and _cpu_has_bf16() else torch.float32


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

    A point is ``{"step", "tokens" (seen), "flops" (6 N_nonembed x tokens), "flops_full", "train_loss"
    (mean over the steps since the previous point), "eval_loss" (nats/token), "lr" (of the point's
    step), "wall_time" (seconds of training, resumes included)}``. If ``checkpoint_path`` exists the run
    resumes from it; a checkpoint is written there after each point. The summary holds the counts of
    :func:`describe`, ``steps``, ``tokens``, ``epochs`` (tokens / training tokens in the corpus),
    ``unique_tokens``, ``corpus_hash``, ``final_loss`` (last eval loss), ``device`` and ``dtype``.

    Raises ConfigError (bad config, foreign checkpoint), DataError (corpus problems, a batch larger
    than the data) and TrainingError (a non-finite loss, naming the step).
    """
    # -- setup -------------------------------------------------------------------------------------
    if config.sparsity.target > 0:
        # the hook for ladder.sparsity.Sparsifier (update before forward, mask_grads before
        # clipping, apply after the optimizer step, its state_dict in the checkpoint)
        raise ConfigError(f"sparsity is not supported yet by the trainer (sparsity.target = "
                          f"{config.sparsity.target}).")
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device)
    amp_dtype = resolve_dtype(config.dtype, device)
    dev = torch.device(device)
    autocast = (torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype != torch.float32
                else contextlib.nullcontext())
    info = describe(config)
    steps, B, T = config.steps, config.batch_tokens // config.context, config.context
    micro = (config.micro_batch_tokens or config.batch_tokens) // T    # sequences per forward pass
    n_micro = B // micro

    # -- data --------------------------------------------------------------------------------------
    data: TokenData = load_tokens(config.corpus, config.vocab)
    if len(data.train) < config.batch_tokens + 1:
        raise DataError(f"The batch ({config.batch_tokens} tokens) is larger than the training data of "
                        f"corpus {config.corpus!r} ({len(data.train)} tokens).")
    x_eval, y_eval = (t.to(dev) for t in eval_windows(data.val, config.eval_tokens, T))

    # -- model and optimizer -------------------------------------------------------------------------
    model = GPT(GPTConfig(config.n_layer, config.d_model, config.n_head, T, config.vocab),
                generator=torch.Generator().manual_seed(config.seed)).to(dev)
    # weight decay on matrices only, not on LayerNorm weights (as nanoGPT)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2),
                                  fused=dev.type == "cuda")
    schedule = schedules.from_config(config.schedule, config.lr, steps)

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
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        # loaded on the CPU: the RNG state must stay there; load_state_dict moves the rest
        ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if ckpt.get("digest") != config.digest():
            raise ConfigError(f"The checkpoint {str(checkpoint_path)!r} belongs to another run config "
                              f"(digest {ckpt.get('digest')!r}, this run's {config.digest()!r}).")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if dev.type == "cuda" and ckpt["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], dev)
        step, wall_before, final_loss = ckpt["step"], ckpt["wall_time"], ckpt["final_loss"]
        log.info("resuming %s from step %d of %d (%s)", config.name, step, steps, checkpoint_path)
    points_at = set(eval_steps(steps, config.evals))

    # -- the loop ----------------------------------------------------------------------------------
    t0 = time.perf_counter()
    loss_sum, loss_n, t_log = 0.0, 0, t0
    while step < steps:
        # set this step's learning rate
        lr = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = lr

        # forward and backward over the micro-batches of the step's batch
        x, y = batch(data.train, config.seed, step, B, T)
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
            raise TrainingError(f"The training loss of run {config.name or config.digest()} is {train_loss} "
                                f"at step {step + 1} (lr {lr:.3g}); lower the learning rate or use float32.")

        # clip the gradient and take the optimizer step
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        loss_sum, loss_n = loss_sum + train_loss, loss_n + 1

        # evaluate, report the point, checkpoint (in this order: a crash loses no reported point)
        if step in points_at:
            final_loss = evaluate()
            if not math.isfinite(final_loss):
                raise TrainingError(f"The eval loss of run {config.name or config.digest()} is {final_loss} "
                                    f"at step {step}.")
            tokens = step * config.batch_tokens
            on_point({"step": step, "tokens": tokens, "flops": info["flops_per_token"] * tokens,
                      "flops_full": info["flops_per_token_full"] * tokens, "train_loss": loss_sum / loss_n,
                      "eval_loss": final_loss, "lr": lr, "wall_time": wall_before + time.perf_counter() - t0})
            loss_sum, loss_n = 0.0, 0
            if checkpoint_path is not None:
                _save_checkpoint(Path(checkpoint_path), {
                    "version": CHECKPOINT_VERSION, "digest": config.digest(), "config": config.to_dict(),
                    "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "rng": {"torch": torch.get_rng_state(),
                            "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None},
                    "wall_time": wall_before + time.perf_counter() - t0, "final_loss": final_loss})

        # log
        if log_every and step % log_every == 0:
            now = time.perf_counter()
            log.info("%s step %d/%d loss %.4f lr %.3g %.0f tok/s", config.name, step, steps, train_loss, lr,
                     log_every * config.batch_tokens / (now - t_log))
            t_log = now

    return {"N_total": info["N_total"], "N_nonembed": info["N_nonembed"], "N_nonzero": info["N_nonzero"],
            "flops_per_token": info["flops_per_token"], "flops_per_token_full": info["flops_per_token_full"],
            "steps": steps, "tokens": info["tokens"], "epochs": info["tokens"] / len(data.train),
            "unique_tokens": len(data.train), "corpus_hash": data.corpus_hash, "final_loss": final_loss,
            "device": device, "dtype": str(amp_dtype).removeprefix("torch.")}
