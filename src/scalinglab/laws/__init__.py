"""The catalog of scaling laws.

``laws.get(name)`` returns a :class:`Law`; ``laws.available()`` lists them; ``laws.register(law)``
adds a user's own law, which every fit, back-test, predict and plan command can then use.

A law module holds formulas, closed forms and presets only: the numerical optimisers over a law live in
:mod:`scalinglab.plan`, special fitting procedures in :mod:`scalinglab.fit`.
"""

from __future__ import annotations

# Importing a law module registers its laws.
from . import anneal, chinchilla, datablations, kaplan, overtrain, precision, sparse, steplaw, vocab  # noqa: F401
from . import kumar, ouyang  # noqa: F401  (precision laws of issue 12)
from ._base import Law, Objective, Param, Preset, available, get, positive_array, register, resolve_params

__all__ = ["Law", "Objective", "Param", "Preset", "available", "get", "positive_array", "register", "resolve_params"]
