"""Planning the big run: compute-optimal allocation (and, per law, hyperparameters)."""

from .compute import chinchilla_optimum, optimum, plan

__all__ = ["chinchilla_optimum", "optimum", "plan"]
