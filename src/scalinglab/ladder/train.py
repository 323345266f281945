"""Train one ladder run: a GPT on a corpus, evaluated on held-out text at log-spaced steps.

The loop follows nanoGPT's ``train.py`` (Karpathy), one story top to bottom: set the learning rate ->
features before the forward -> forward/backward over the micro-batches -> features before clipping ->
clip and step -> features after the step -> at an evaluation step: evaluate, report the point,
checkpoint -> log. Everything a run's curve depends on is in its :class:`RunConfig`; given the config
and the machine (device, thread count, dtype) the curve is reproducible:

* the initial weights come from a generator seeded with ``seed`` (``build.build_model``);
* the batch of step s is a pure function of ``(seed, s)`` (``corpus.batch``), so a resumed run sees
  the batches an uninterrupted one would, whatever the micro-batching;
* evaluation uses fixed windows spread evenly over the validation stream (``corpus.eval_windows``), the
  same for every run of a corpus, so losses compare across runs.

What is not the loop lives beside it: the model, optimizer and features are built by ``build``; sparsity
and SPDF (and every later feature) plug in through the hooks of ``features``; the training state,
checkpoints and resume are ``checkpoint``; WSD cooldown branches are ``cooldown``; the autocast dtype is
``precision``; counts and FLOPs are :mod:`scalinglab.accounting`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..accounting import describe, eval_steps
from ..errors import TrainingError
from ..runconfig import RunConfig
from . import build, checkpoint, cooldown, precision, schedules
from .checkpoint import TrainState
from .corpus import TokenData, batch, check_batch, eval_windows, load_tokens, mean_eval_loss
from .features import Feature
from .model import GPT

log = logging.getLogger(__name__)


class Loop:
    """One run's training context (model, optimizer, features, data, autocast) and its three
    operations: one optimizer step, an evaluation and a point. Shared by the main line and the
    cooldown branches; it holds no progress (that is the :class:`TrainState`)."""

    def __init__(self, config: RunConfig, model: GPT, optimizer: torch.optim.Optimizer, features: Feature,
                 data: TokenData, dev: torch.device, amp_dtype: torch.dtype, state: TrainState) -> None:
        self.config, self.model, self.optimizer, self.features = config, model, optimizer, features
        self.data, self.dev, self.state = data, dev, state
        self.autocast = precision.autocast(dev, amp_dtype)
        self.lr_mults = [float(g.get("lr_mult", 1.0)) for g in optimizer.param_groups]
        self.info = describe(config)
        self.B, self.T = config.batch_tokens // config.context, config.context
        self.micro = (config.micro_batch_tokens or config.batch_tokens) // self.T   # sequences per pass
        self.x_eval, self.y_eval = (t.to(dev) for t in eval_windows(data.val, config.eval_tokens, self.T))

    def _name(self) -> str:
        return self.config.name or self.config.digest()

    def take_step(self, step: int, lr: float, branch: int = 0) -> float:
        """Update ``step`` + 1 at learning rate ``lr``, on the batch of ``step``; returns its train loss."""
        for group, mult in zip(self.optimizer.param_groups, self.lr_mults):
            group["lr"] = lr * mult
        self.features.before_forward(step)

        # forward and backward over the micro-batches of the step's batch
        stream = self.features.train_data(step)
        n_seq = self.features.batch_sequences(step) or self.B
        n_micro = n_seq // self.micro
        x, y = batch(self.data.train if stream is None else stream, self.config.seed, step, n_seq, self.T)
        x, y = x.to(self.dev, non_blocking=True), y.to(self.dev, non_blocking=True)
        step_loss = torch.zeros((), device=self.dev)
        for k, i in enumerate(range(0, n_seq, self.micro)):
            with self.autocast:
                _, loss = self.model(x[i:i + self.micro], y[i:i + self.micro])
            assert loss is not None
            (loss / n_micro).backward()
            step_loss += loss.detach() / n_micro
            self.features.after_backward(step, k, n_micro)
        self.state.tokens += n_seq * self.T
        train_loss = step_loss.item()
        if not math.isfinite(train_loss):
            where = f" of cooldown branch {branch}" if branch else ""
            raise TrainingError(f"The training loss of run {self._name()} is {train_loss} at step {step + 1}"
                                f"{where} (lr {lr:.3g}); lower the learning rate or use float32.")

        # clip the gradient and take the step
        self.features.before_clip(step)
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.features.after_step(step)
        self.optimizer.zero_grad(set_to_none=True)
        return train_loss

    @torch.no_grad()
    def evaluate(self, step: int, branch: int = 0) -> float:
        """The mean eval loss (nats/token) over the fixed windows; a non-finite one is an error."""
        eval_loss = mean_eval_loss(self.model, self.x_eval, self.y_eval, self.micro, self.autocast)
        if not math.isfinite(eval_loss):
            where = f" of cooldown branch {branch}" if branch else ""
            raise TrainingError(f"The eval loss of run {self._name()} is {eval_loss} at step {step}{where}.")
        self.features.on_eval(step, eval_loss, branch)
        return eval_loss

    def point(self, step: int, train_loss: float, eval_loss: float, lr: float, branch: int) -> dict[str, Any]:
        """The reported point after ``step`` updates (see :func:`train`)."""
        tokens, info = self.state.tokens, self.info
        return {"branch": branch, "step": step, "tokens": tokens, "flops": info["flops_per_token"] * tokens,
                "flops_full": info["flops_per_token_full"] * tokens, "train_loss": train_loss,
                "eval_loss": eval_loss, "lr": lr, "wall_time": self.state.wall_time(),
                **self.features.point_fields(step)}


def train(config: RunConfig, *, on_point: Callable[[dict[str, Any]], None],
          checkpoint_path: Path | None = None, device: str | None = None, threads: int | None = None,
          log_every: int = 0, features: Sequence[Feature] = ()) -> dict[str, Any]:
    """Train ``config``; report ``on_point(point)`` at each evaluation; return the run's summary.

    A point is ``{"branch" (0 on the main line, k for the k-th cooldown branch), "step", "tokens"
    (seen), "flops" (6 N_nonembed x tokens), "flops_full", "train_loss" (mean over the steps since
    the previous point; of a branch point, over the branch's steps), "eval_loss" (nats/token), "lr"
    (of the point's step), "wall_time" (seconds of training, resumes and branches included)}`` and
    the fields of the features (sparsity: ``sparsity``, ``N_nonzero`` and the FLOP accounting of
    :func:`scalinglab.accounting.sparse_flops` up to the point). A branch point's tokens and FLOPs are
    those of a run trained to its end step (its D and C), and it also holds ``"decay_steps"``. If
    ``checkpoint_path`` exists the run resumes from it; a checkpoint is written there after each point.
    ``features`` are added after the run's own (``build.build_features``).

    The summary holds the counts of :func:`~scalinglab.accounting.describe`, ``steps``, ``tokens``
    (the main line's tokens trained on, as its last point: exact under an adaptive batch, otherwise
    ``steps x batch_tokens``), ``tokens_planned`` (``steps x batch_tokens``, the config's), ``epochs``
    (tokens / training tokens in the corpus), ``unique_tokens``, ``corpus_hash``,
    ``final_loss`` (last eval loss), ``device`` and ``dtype``; the features' summary fields (sparsity:
    ``N_nonzero``, ``N_nonzero_sparse``, ``sparsity``, ``phases``, the FLOP accounting; see
    ``sparsity.SparsityFeature``); and for cooldown branches: ``branches`` (``[{"branch", "end_step",
    "decay_steps", "decay_tokens" (the branch's own), "eval_loss", "tokens"}]``) and the FLOPs spent on
    the main line and every branch step together, ``flops_spent_with_branches`` (6 N_nonembed per token) and
    ``flops_full_spent_with_branches`` (with attention and the unembedding), FLOPs.

    Raises ConfigError (bad config, foreign checkpoint), DataError (corpus problems, a batch larger
    than the data) and TrainingError (a non-finite loss, naming the step).
    """
    # -- setup: device, data, model, optimizer, features, state --------------------------------------
    build.check(config)
    if threads:
        torch.set_num_threads(threads)
    device = build.resolve_device(device)
    dev = torch.device(device)
    info = describe(config)
    amp_dtype = precision.resolve_dtype(config.dtype, device, info["shape"]["d_model"])
    steps = config.steps
    branches = schedules.branches(config.schedule, config.lr, steps)   # WSD cooldown branches, maybe none

    data = load_tokens(config.corpus, config.vocab)
    check_batch(data.train, max(config.batch_tokens, config.max_batch_tokens), f"corpus {config.corpus!r}")
    model = build.build_model(config, dev)
    optimizer = build.build_optimizer(model, config)
    feats = build.build_features(config, model, optimizer, data, features)
    state = TrainState(model, optimizer, feats, dev, batch_tokens=config.batch_tokens)
    loop = Loop(config, model, optimizer, feats, data, dev, amp_dtype, state)
    schedule = schedules.for_run(config)

    ckpt = checkpoint.load(Path(checkpoint_path), config) if checkpoint_path is not None else None
    if ckpt is not None:
        state.load_state_dict(ckpt)
        log.info("resuming %s from step %d of %d (%s)", config.name, state.step, steps, checkpoint_path)
    points_at = set(eval_steps(steps, config.evals)) | feats.eval_steps(steps)

    def save() -> None:   # the main line's state (never a branch's: a branch is undone by then)
        if checkpoint_path is not None:
            checkpoint.save(Path(checkpoint_path), config, state)

    # -- the loop ----------------------------------------------------------------------------------
    state.start_clock()
    t_log = state.t0
    while state.step < steps:
        # cooldown branches leaving the main line here: each reports its point; then a checkpoint
        # with the branch marked done (a resume skips it)
        for br in branches:
            if br.start_step == state.step and br.index not in state.branches_done:
                cooldown.run_branch(loop, state, br, on_point)
                save()

        # set this step's learning rate, and take the step
        lr = schedule(state.step)
        train_loss = loop.take_step(state.step, lr)
        state.step += 1
        state.loss_sum, state.loss_n = state.loss_sum + train_loss, state.loss_n + 1

        # evaluate, report the point, checkpoint (in this order: a crash loses no reported point)
        if state.step in points_at:
            state.final_loss = loop.evaluate(state.step)
            on_point(loop.point(state.step, state.loss_sum / state.loss_n, state.final_loss, lr, 0))
            state.loss_sum, state.loss_n = 0.0, 0
            save()

        if log_every and state.step % log_every == 0:
            now = time.perf_counter()
            log.info("%s step %d/%d loss %.4f lr %.3g %.0f tok/s", config.name, state.step, steps, train_loss,
                     lr, log_every * config.batch_tokens / (now - t_log))
            t_log = now

    # tokens trained on: the main line's count (exact under an adaptive batch; steps x batch_tokens
    # otherwise) plus each branch's own decay steps (a branch saved by an older version: decay x batch)
    spent_tokens = state.tokens + sum(int(b.get("decay_tokens", b["decay_steps"] * config.batch_tokens))
                                      for b in state.branches_done.values())
    return {"N_total": info["N_total"], "N_nonembed": info["N_nonembed"], "N_nonzero": info["N_nonzero"],
            "shape": info["shape"], "flops_per_token": info["flops_per_token"],
            "flops_per_token_full": info["flops_per_token_full"], "steps": steps, "tokens": state.tokens,
            "tokens_planned": info["tokens"],
            "epochs": state.tokens / len(data.train), "unique_tokens": len(data.train),
            "corpus_hash": data.corpus_hash, "final_loss": state.final_loss, **feats.summary_fields(),
            "branches": [state.branches_done[k] for k in sorted(state.branches_done)],
            "flops_spent_with_branches": info["flops_per_token"] * spent_tokens,
            "flops_full_spent_with_branches": info["flops_per_token_full"] * spent_tokens,
            "device": device, "dtype": str(amp_dtype).removeprefix("torch.")}
