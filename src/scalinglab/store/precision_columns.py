"""The run table's number-format columns: what format a run trained in, as the precision laws read it.

:func:`precision_cells` turns a stored run config into ``format``, ``operands``, ``e_bits``, ``m_bits``,
``P`` (all bits, sign included) and ``block`` (elements sharing one scale: the block size with
``scaling = 'block'``, ``d_model`` per channel (the input width of most hidden layers), ``d_model^2``
per tensor, NaN without scales). The format is that of the quantised weights (P2/P4) when they are
quantised, else of the activations (P1/P6), else of the gradients: Sun et al.'s law (arXiv
2501.02423) is a law of the weight-and-saved-activation format. A run with no quantisation is fp32:
E8M23, P 32 and ``block = d_model`` (its penalty in Sun's law is negligible whatever B is). intK is
E0M(K-1), P = K. :meth:`scalinglab.store.Store.to_table` adds these columns when some row's run
quantises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..numformats import parse_format
from ..runconfig import OPERAND_ROLES, PrecisionConfig

PRECISION_COLUMNS = ("format", "operands", "e_bits", "m_bits", "P", "block")


def precision_cells(cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """The :data:`PRECISION_COLUMNS` of a stored run config; None for a run that quantises nothing."""
    raw = cfg.get("precision")
    d_model = float(cfg.get("d_model", math.nan))
    if not raw:
        return None
    pc = PrecisionConfig(**raw)
    if not pc.active:
        return None
    r = pc.resolved()
    ops = r["operands"]
    roles = [OPERAND_ROLES[o] for o in ops]
    role = next(x for x in ("weights", "activations", "gradients") if x in roles
                and parse_format(r[x], r["convention"]).kind != "none")
    fmt = parse_format(r[role], r["convention"])
    block = {"block": float(r["block"]), "channel": d_model, "tensor": d_model ** 2}.get(r["scaling"], math.nan)
    return {"format": fmt.name, "operands": "+".join(ops), "e_bits": fmt.e_bits, "m_bits": fmt.m_bits,
            "P": fmt.bits, "block": block}


def fp32_cells(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`PRECISION_COLUMNS` of a run that quantises nothing."""
    return {"format": "fp32", "operands": "", "e_bits": 8, "m_bits": 23, "P": 32,
            "block": float(cfg.get("d_model", math.nan))}


__all__ = ["PRECISION_COLUMNS", "fp32_cells", "precision_cells"]
