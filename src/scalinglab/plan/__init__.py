"""Planning the big run: compute-optimal allocation (and, per law, hyperparameters and sparsity)."""

from .compute import chinchilla_optimum, optimum, plan
from .sparsity import contour as sparsity_contour
from .sparsity import plan_sparse

__all__ = ["chinchilla_optimum", "optimum", "plan", "plan_sparse", "sparsity_contour"]
