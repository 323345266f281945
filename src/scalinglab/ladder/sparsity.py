"""Sparse training of the ladder's GPT: pruning masks, their schedule, and the FLOPs they cost.

What is pruned: the weights of the linear layers inside the transformer blocks (attention ``c_attn``,
``c_proj``; MLP ``c_fc``, ``c_proj``), 12 L d^2 weights, as Frantar et al. 2023 (arXiv 2309.08520)
count them. Not the embeddings, not the (tied) unembedding, not the LayerNorms, not biases.

Methods (``SparsityConfig.method``):

* ``gmp``: gradual magnitude pruning on the cubic schedule of Zhu & Gupta 2017 (arXiv 1710.01878),
  the schedule of the official code of Frantar et al. 2023 (LAWS.md section 4):

  .. math:: s_t = S \\left(1 - (1 - p)^3\\right), \\quad
            p = \\operatorname{clip}\\left(\\frac{t - t_s}{t_e - t_s}, 0, 1\\right)

  with masks recomputed every ``update_every`` steps; ranking per layer (uniform sparsity) or over all
  prunable weights together (``scope='global'``). With ``n:m`` set, only weights outside the n largest
  of their group are candidates, so the final mask is exactly the n:m pattern.
* ``static``: a seeded random mask drawn at step 0 and kept (random n:m pattern when n:m is set).
* ``nm``: the n:m pattern of the weights' magnitudes at step 0 (initialisation), kept fixed
  (Mishra et al. 2021, arXiv 2104.08378, 2:4 for sparse tensor cores; Zhou et al. 2021, arXiv 2102.04010).

Optional phases and shapes: SPDF (Thangarasa et al. 2023, arXiv 2303.10464) lifts the masks for the
last ``dense_finetune_frac`` of training (the dense fine-tuning phase, on ``finetune_corpus`` if set);
Sparse-IFT "Sparse Wide" (Thangarasa et al. 2023, arXiv 2303.11525) widens the model so its non-zero
FLOPs equal the dense model's (:func:`sift_width`, :func:`model_shape`).

A masked weight stays exactly zero: :meth:`Sparsifier.mask_grads` zeroes its gradient before the
optimizer step (so AdamW's moments of masked entries stay zero and the clipped norm is the sparse
model's), :meth:`Sparsifier.apply` multiplies weights and optimizer state by the mask afterwards.
Masks are float tensors (an in-place ``mul_`` by a bool tensor is ~50x slower on CPU).

No sparse kernels are used (none exist on CPU): FLOPs are counted analytically (:func:`training_flops`).

The schedule, phases, shapes, counts and FLOP accounting are pure NumPy and live in
:mod:`scalinglab.accounting` (so the designer, the executors and the store use them without torch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..accounting import check_steps, finetune_start, phases, run_counts, sparsity_schedule
from ..accounting import sparse_flops as _run_sparse_flops
from ..errors import ConfigError, ParameterError, invalid
from ..runconfig import RunConfig, SparsityConfig
from .corpus import TokenData, check_batch, load_tokens
from .features import Feature

# -- masks (pure functions of weights or a generator) ------------------------------------------------


def _check_fraction(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value <= 1.0):
        raise ParameterError(invalid(f"The {name!r} parameter", value, "a fraction in [0, 1]"))


def _check_nm(weight_shape: torch.Size, n: int, m: int) -> None:
    if not (isinstance(n, int) and isinstance(m, int) and 0 < n < m):
        raise ParameterError(invalid("The n:m pattern", (n, m), "integers with 0 < n < m"))
    if len(weight_shape) != 2 or weight_shape[1] % m:
        raise ParameterError(invalid("The weight shape", tuple(weight_shape),
                                     f"(out, in) with in a multiple of m = {m}"))


def _top_n_of_m(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Bool mask of the n highest scores in each group of m consecutive input weights (dim 1)."""
    out_dim, in_dim = scores.shape
    groups = scores.reshape(out_dim, in_dim // m, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(2, groups.topk(n, dim=2).indices, True)
    return keep.reshape(out_dim, in_dim)


def nm_mask(weight: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """The n:m magnitude mask: in each group of m consecutive input weights, keep the n largest |w|.

    ``weight`` is an ``nn.Linear`` weight (out, in); groups run along the input dimension, as NVIDIA's
    2:4 pattern (Mishra et al. 2021) and ``torch.ao.pruning.WeightNormSparsifier`` with
    ``sparse_block_shape=(1, m)``, ``zeros_per_block=m - n``. Returns a bool tensor, True = kept;
    its sparsity is exactly 1 - n/m.
    """
    _check_nm(weight.shape, n, m)
    return _top_n_of_m(weight.detach().abs(), n, m)


def _prune_lowest(flat: torch.Tensor, k: int) -> torch.Tensor:
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k > 0:
        keep[torch.topk(flat, k, largest=False, sorted=False).indices] = False
    return keep


def _masks_from_scores(scores: list[torch.Tensor], sparsity: float, scope: str,
                       nm: tuple[int, int] | None) -> list[torch.Tensor]:
    """Prune the lowest scores: round(s numel) per tensor (``layer``) or round(s sum numel) overall."""
    if scope not in ("layer", "global"):
        raise ParameterError(invalid("The 'scope' parameter", scope, "one of ('layer', 'global')"))
    if nm is not None:  # the n largest of each group are never candidates
        for s in scores:
            _check_nm(s.shape, *nm)
        scores = [torch.where(_top_n_of_m(s, *nm), math.inf, s) for s in scores]
    if scope == "layer":
        return [_prune_lowest(s.flatten(), round(sparsity * s.numel())).view(s.shape) for s in scores]
    flat = torch.cat([s.flatten() for s in scores])
    keep = _prune_lowest(flat, round(sparsity * flat.numel()))
    return [k.view(s.shape) for k, s in zip(torch.split(keep, [s.numel() for s in scores]), scores)]


def magnitude_masks(weights: Sequence[torch.Tensor], sparsity: float, scope: str = "layer", *,
                    masks: Sequence[torch.Tensor] | None = None,
                    nm: tuple[int, int] | None = None) -> list[torch.Tensor]:
    """Magnitude pruning masks (bool, True = kept) with an exact count of pruned weights.

    ``scope='layer'``: each tensor loses exactly ``round(sparsity * numel)`` weights, those of smallest
    |w|. ``scope='global'``: ``round(sparsity * total)`` weights of smallest |w| over all tensors
    together, so layers end at different sparsities. ``masks``: the current masks; their pruned entries
    rank below every weight, so masks only grow (as GMP requires) while ``sparsity`` does not decrease.
    ``nm=(n, m)``: the n largest of each group of m input weights are kept, so at
    ``sparsity = 1 - n/m`` the masks are exactly the n:m pattern (gradual n:m pruning).
    """
    _check_fraction("sparsity", sparsity)
    scores = [w.detach().abs().float() for w in weights]
    if masks is not None:
        scores = [torch.where(mk.to(torch.bool), s, -1.0) for s, mk in zip(scores, masks)]
    return _masks_from_scores(scores, sparsity, scope, nm)


def random_masks(weights: Sequence[torch.Tensor], sparsity: float, generator: torch.Generator,
                 scope: str = "layer", *, nm: tuple[int, int] | None = None) -> list[torch.Tensor]:
    """Random masks (bool, True = kept) of the weights' shapes: a function of ``generator`` alone.

    Same counts as :func:`magnitude_masks` (exact per layer, or over all layers with
    ``scope='global'``), with uniform random scores in place of |w|; ``nm=(n, m)`` with
    ``sparsity = 1 - n/m`` gives a random n:m pattern. Scores are drawn on the CPU, so the masks do
    not depend on the device.
    """
    _check_fraction("sparsity", sparsity)
    scores = [torch.rand(w.shape, generator=generator).to(w.device) for w in weights]
    return _masks_from_scores(scores, sparsity, scope, nm)


# -- which layers --------------------------------------------------------------------------------


def prunable_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The linear layers that sparsity applies to, by module path.

    Every ``nn.Linear`` of ``model`` except (a) a module whose path ends in ``lm_head`` (the
    unembedding) and (b) one whose weight is also an ``nn.Embedding``'s weight (tied embeddings). For
    ``ladder.model.GPT`` that is ``blocks.{i}.attn.c_attn``, ``blocks.{i}.attn.c_proj``,
    ``blocks.{i}.mlp.c_fc`` and ``blocks.{i}.mlp.c_proj``: 12 L d^2 weights. Biases are never pruned.
    """
    embedded = {id(mod.weight) for mod in model.modules() if isinstance(mod, nn.Embedding)}
    return [(name, mod) for name, mod in model.named_modules()
            if isinstance(mod, nn.Linear) and name.rsplit(".", 1)[-1] != "lm_head"
            and id(mod.weight) not in embedded]


def _nonembedding_count(model: nn.Module) -> int:
    """N_nonembed: ``model.nonembedding_parameters()`` if it has one, else all parameters less the
    embeddings' and ``lm_head``'s (each shared tensor counted once)."""
    get = getattr(model, "nonembedding_parameters", None)
    if callable(get):
        return sum(p.numel() for p in get())
    skip = {id(p) for name, mod in model.named_modules()
            if isinstance(mod, nn.Embedding) or name.rsplit(".", 1)[-1] == "lm_head"
            for p in mod.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


# -- the controller -------------------------------------------------------------------------------


class Sparsifier:
    """Keeps the prunable weights of a model on their sparsity schedule (:func:`sparsity_schedule`).

    In the training loop (``total_steps`` optimizer steps, ``step`` counted from 0)::

        sparsifier = Sparsifier(model, cfg.sparsity, total_steps=cfg.steps, seed=cfg.seed)
        for step in range(start_step, cfg.steps):
            sparsifier.update(step, optimizer)    # before the forward pass: new masks when due
            ...forward and backward (all micro-batches)...
            sparsifier.mask_grads()               # before clipping: the norm is the sparse model's
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            sparsifier.apply(optimizer)           # masked weights and their AdamW moments back to 0

    With a dense config (``target == 0``) every method is a no-op. Checkpoints store
    :meth:`state_dict`; :meth:`load_state_dict` restores the masks exactly.
    """

    def __init__(self, model: nn.Module, cfg: SparsityConfig, total_steps: int, seed: int = 0) -> None:
        self.model = model
        self.cfg = cfg
        self.total_steps = check_steps(total_steps)
        self.seed = seed
        layers = prunable_linears(model)
        if cfg.target > 0 and not layers:
            raise ConfigError(invalid("The model's prunable linear layers", [], "a non-empty list"))
        self._names = [name for name, _ in layers]
        self._weights = [mod.weight for _, mod in layers]
        self._n_nonembed = _nonembedding_count(model)
        self._schedule = sparsity_schedule(cfg, self.total_steps)
        self._generator = torch.Generator().manual_seed(seed)
        self._masks: list[torch.Tensor] | None = None    # bool, True = kept; None = dense
        self._fmasks: list[torch.Tensor] = []            # the same, in the weights' dtype (for mul_)
        self._level = 0.0                                # the scheduled sparsity the masks hold

    # -- during training ------------------------------------------------------------------------
    def scheduled(self, step: int) -> float:
        """The sparsity the schedule puts in force at ``step`` (the last step's after the end)."""
        return float(self._schedule[min(max(step, 0), self.total_steps - 1)])

    @torch.no_grad()
    def update(self, step: int, optimizer: torch.optim.Optimizer | None = None) -> bool:
        """Recompute the masks if the schedule's sparsity changed at ``step``; True if it did.

        New masks are applied at once to the weights and (given ``optimizer``) to its state, so the
        forward pass of ``step`` sees them. At SPDF's fine-tuning step the masks are lifted.
        """
        level = self.scheduled(step)
        if level == self._level:
            return False
        if level == 0.0:
            self._set_masks(None)
        elif self.cfg.method == "gmp":
            nm = (self.cfg.n, self.cfg.m) if self.cfg.n else None
            self._set_masks(magnitude_masks(self._weights, level, self.cfg.scope, masks=self._masks, nm=nm))
        elif self._masks is None:   # static and nm: drawn once, at the first step
            if self.cfg.method == "static":
                nm = (self.cfg.n, self.cfg.m) if self.cfg.n else None
                masks = random_masks(self._weights, level, self._generator, self.cfg.scope, nm=nm)
            else:
                masks = [nm_mask(w, self.cfg.n, self.cfg.m) for w in self._weights]
            self._set_masks(masks)
        self._level = level
        self.apply(optimizer)
        return True

    @torch.no_grad()
    def mask_grads(self) -> None:
        """Zero the gradients of masked weights (call after backward, before clipping and the step)."""
        for w, fm in zip(self._weights, self._fmasks):
            if w.grad is not None:
                w.grad.mul_(fm)

    @torch.no_grad()
    def apply(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Zero the masked weights and, given ``optimizer``, every state tensor of their shape (AdamW's
        ``exp_avg`` and ``exp_avg_sq``, SGD's momentum): call after ``optimizer.step()``."""
        for w, fm in zip(self._weights, self._fmasks):
            w.mul_(fm)
            if optimizer is not None:
                for v in optimizer.state.get(w, {}).values():
                    if isinstance(v, torch.Tensor) and v.shape == w.shape:
                        v.mul_(fm.to(v.dtype))

    def _set_masks(self, masks: list[torch.Tensor] | None) -> None:
        self._masks = masks
        self._fmasks = [] if masks is None else [mk.to(w.dtype) for mk, w in zip(masks, self._weights)]

    # -- what a run records --------------------------------------------------------------------------
    @property
    def masks(self) -> dict[str, torch.Tensor] | None:
        """The current masks by layer name (bool, True = kept), or None while dense."""
        return None if self._masks is None else dict(zip(self._names, self._masks))

    def sparsity(self) -> dict[str, float]:
        """Fraction of each prunable layer's weights that is masked (0.0 for every layer while dense)."""
        if self._masks is None:
            return {name: 0.0 for name in self._names}
        return {name: 1.0 - int(mk.sum()) / mk.numel() for name, mk in zip(self._names, self._masks)}

    def n_prunable(self) -> int:
        """Number of weights the masks cover (12 L d^2 for ``ladder.model.GPT``)."""
        return sum(w.numel() for w in self._weights)

    def n_pruned(self) -> int:
        """Number of masked weights."""
        return 0 if self._masks is None else sum(mk.numel() - int(mk.sum()) for mk in self._masks)

    def n_nonzero(self) -> int:
        """N_nonzero: non-embedding parameters less the masked weights (``units.param_counts``'s count)."""
        return self._n_nonembed - self.n_pruned()

    # -- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Masks (bool, CPU), the sparsity they hold and the random generator: all a resume needs."""
        return {"level": self._level,
                "masks": None if self._masks is None else {
                    n: mk.cpu() for n, mk in zip(self._names, self._masks)},
                "generator": self._generator.get_state()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s masks (and re-apply them to the weights)."""
        masks = state["masks"]
        if masks is not None:
            if sorted(masks) != sorted(self._names):
                raise ConfigError(invalid("The checkpoint's masked layers", sorted(masks),
                                          f"{sorted(self._names)}"))
            for name, w in zip(self._names, self._weights):
                if masks[name].shape != w.shape:
                    raise ConfigError(invalid(f"The checkpoint's mask shape of {name!r}",
                                              tuple(masks[name].shape), f"{tuple(w.shape)}"))
            self._set_masks([masks[name].to(device=w.device, dtype=torch.bool)
                             for name, w in zip(self._names, self._weights)])
        else:
            self._set_masks(None)
        self._level = float(state["level"])
        self._generator.set_state(state["generator"])
        self.apply()


# -- the trainer feature --------------------------------------------------------------------------


def check_finetune_corpus(config: RunConfig) -> None:
    """A BPE is trained per corpus, so another corpus's token ids would not be this model's."""
    corpus = config.sparsity.finetune_corpus
    if corpus and corpus != config.corpus and config.vocab != 256 and Path(corpus).suffix != ".bin":
        raise ConfigError(f"The 'sparsity.finetune_corpus' field {corpus!r} needs the run corpus's "
                          f"tokenizer: with a BPE vocabulary (vocab = {config.vocab}) give it as a .bin "
                          "token file made with that tokenizer, or use vocab = 256 (bytes).")


class SparsityFeature(Feature):
    """Sparse training and SPDF as a trainer feature (:mod:`scalinglab.ladder.features`).

    Hooks: new masks before the forward pass (lifted at SPDF's dense phase), masked gradients zeroed
    before clipping, masked weights and AdamW moments zeroed after the step (:class:`Sparsifier`);
    the batches of SPDF's dense phase from ``sparsity.finetune_corpus`` when one is given; an extra
    evaluation at the end of the sparse phase, so both phases have a loss. With a dense config the
    masks never exist, and the feature only reports the counts (``sparsity`` 0, ``N_nonzero`` =
    N_nonembed) and the FLOP accounting.

    Point fields: ``sparsity`` (of the prunable weights), ``N_nonzero`` and
    :func:`scalinglab.accounting.sparse_flops` up to the point. Summary fields: ``N_nonzero`` (the
    final model's, measured on its masks: N_nonembed after SPDF's dense phase), ``N_nonzero_sparse``
    (at the end of the sparse phase), ``sparsity`` (final), ``phases`` (``[{"phase", "start_step",
    "end_step", "corpus", "eval_loss", "N_nonzero", "sparsity"}]``, each phase's loss and counts at its
    end) and the whole run's sparse FLOP accounting.
    """

    name = "sparsity"

    def __init__(self, config: RunConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
                 data: TokenData) -> None:
        self.config, self.optimizer = config, optimizer
        self.steps = config.steps
        self.sparsifier = Sparsifier(model, config.sparsity, total_steps=self.steps, seed=config.seed)
        self.t_ft = finetune_start(config.sparsity, self.steps)    # first step of SPDF's dense phase
        self.ft_train = _finetune_train(config, data)              # None: the run's own corpus
        self.phase_ends: dict[int, dict[str, Any]] = {}           # end step of a phase -> loss, counts

    def eval_steps(self, total_steps: int) -> set[int]:
        return {self.t_ft} if 0 < self.t_ft < total_steps else set()

    def train_data(self, step: int) -> np.ndarray | None:
        return self.ft_train if self.ft_train is not None and step >= self.t_ft else None

    def before_forward(self, step: int) -> None:
        self.sparsifier.update(step, self.optimizer)

    def before_clip(self, step: int) -> None:
        self.sparsifier.mask_grads()

    def after_step(self, step: int) -> None:
        self.sparsifier.apply(self.optimizer)

    def _level(self) -> float:
        return self.sparsifier.n_pruned() / max(1, self.sparsifier.n_prunable())

    def on_eval(self, step: int, eval_loss: float, branch: int) -> None:
        if branch == 0 and step in (self.t_ft, self.steps):
            self.phase_ends[step] = {"eval_loss": eval_loss, "N_nonzero": self.sparsifier.n_nonzero(),
                                     "sparsity": self._level()}

    def point_fields(self, step: int) -> dict[str, Any]:
        return {"sparsity": self._level(), "N_nonzero": self.sparsifier.n_nonzero(),
                **_run_sparse_flops(self.config, step)}

    def summary_fields(self) -> dict[str, Any]:
        end = self.phase_ends.get(self.steps, {})
        target_nonzero = run_counts(self.config)["N_nonzero"]
        return {"N_nonzero": end.get("N_nonzero", self.sparsifier.n_nonzero()),
                "N_nonzero_sparse": self.phase_ends.get(self.t_ft, end).get("N_nonzero", target_nonzero),
                "sparsity": end.get("sparsity", self.config.sparsity.target),
                "phases": [{**ph, **self.phase_ends.get(ph["end_step"], {})}
                           for ph in phases(self.config.sparsity, self.steps)],
                **_run_sparse_flops(self.config, self.steps)}

    def state_dict(self) -> dict[str, Any]:
        return {"sparsifier": self.sparsifier.state_dict(), "phase_ends": self.phase_ends}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("sparsifier") is not None:
            self.sparsifier.load_state_dict(state["sparsifier"])
        self.phase_ends = dict(state.get("phase_ends") or {})


def _finetune_train(config: RunConfig, data: TokenData) -> np.ndarray | None:
    """The training split of SPDF's fine-tuning corpus, or None when it is the run's own."""
    corpus = config.sparsity.finetune_corpus
    if not corpus or corpus == config.corpus:
        return None
    ft = load_tokens(corpus, config.vocab)
    check_batch(ft.train, config.batch_tokens, f"the fine-tuning corpus {corpus!r}")
    return ft.train


__all__ = ["Sparsifier", "SparsityFeature", "check_finetune_corpus", "magnitude_masks", "nm_mask",
           "prunable_linears", "random_masks"]
