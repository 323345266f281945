"""Planning the big run: every optimiser over a law.

Compute-optimal allocation (:mod:`.compute`), the optimal sparsity (:mod:`.sparsity`), number format
(:mod:`.precision`) and vocabulary (:mod:`.vocab`), and the steps and loss curve at a batch size
(:mod:`.steps`, Su et al. 2024). The laws themselves (formulas, closed forms, presets) are in
:mod:`scalinglab.laws`.
"""

from .compute import chinchilla_optimum, optimum, plan
from .precision import optimal_layout, optimal_precision
from .sparsity import contour as sparsity_contour
from .sparsity import optimal_sparsity, optimal_sparsity_grid, plan_sparse
from .steps import StepsToLoss, loss_floor, loss_trajectory, steps_to_loss
from .vocab import optimal_vocab

__all__ = ["StepsToLoss", "chinchilla_optimum", "loss_floor", "loss_trajectory", "optimal_layout",
           "optimal_precision", "optimal_sparsity", "optimal_sparsity_grid", "optimal_vocab", "optimum", "plan",
           "plan_sparse", "sparsity_contour", "steps_to_loss"]
