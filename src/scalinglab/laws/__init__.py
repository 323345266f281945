"""The catalog of scaling laws.

``laws.get(name)`` returns a :class:`Law`; ``laws.available()`` lists them; ``laws.register(law)``
adds a user's own law, which every fit, back-test, predict and plan command can then use.

A law module holds formulas, closed forms and presets only: the numerical optimisers over a law live in
:mod:`scalinglab.plan`, special fitting procedures in :mod:`scalinglab.fit`.
"""

from __future__ import annotations

# Importing a law module registers its laws.
from . import (  # noqa: F401
    anneal,
    chinchilla,
    datablations,
    kaplan,
    kumar,
    multipower,
    ouyang,
    overtrain,
    precision,
    sparse,
    steplaw,
    vocab,
)
from ._base import Law, Objective, Param, Preset, available, get, positive_array, register, resolve_params

__all__ = ["Law", "Objective", "Param", "Preset", "available", "get", "positive_array", "register", "resolve_params"]
