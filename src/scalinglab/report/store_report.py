"""The HTML report of a run store: fit (or a given fit), back-test and plan of its runs, then the page."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError, ParameterError, invalid
from ..fit import Fit, LawFit
from ..fit.anneal import CURVE_LAWS
from ..fit.backtest import backtest as run_backtest
from ..fit.result import json_safe
from ..fit.rollout import rollout
from ..plan.dispatch import plan_fit
from ..store import Store
from . import ladder_report
from .dynamics import dynamics_sections
from .html import Download, Footer

__all__ = ["store_digest", "store_export_csv", "store_report"]


def store_export_csv(store: Store) -> str:
    """The store's content as CSV text: every point (``Store.to_table(points="all")``), exactly what
    ``scalinglab runs export --store S --out F.csv`` writes."""
    return str(store.to_table(points="all").to_csv(index=False))


def store_digest(csv_text: str) -> str:
    """The store's hash in the report: the sha256 of :func:`store_export_csv`'s text (UTF-8), so
    ``scalinglab runs export --store S --out x.csv && sha256sum x.csv`` gives it back. The SQLite file's
    own bytes are no good: in WAL mode they change with checkpoints, not with content."""
    return hashlib.sha256(csv_text.encode("utf-8")).hexdigest()


def store_report(store_path: str | Path, out: str | Path, *, law: str = "chinchilla", fit_path: str | Path | None = None,
                 train_where: str | None = None, flops: float | None = None, points: str = "annealed",
                 bootstrap: int = 200, seed: int = 0, command: str = "", anneal_fit: str | Path | None = None,
                 fit_anneal: bool = True, target_losses: Sequence[float] = (), rollout_key: str | None = None,
                 horizon: int = 1, rollout_json: str | Path | None = None) -> Path:
    """Write ``out/index.html`` for the runs of the store at ``store_path`` and return its path.

    The page holds every done run's annealed points (final points and cooldown-branch ends: the
    IsoFLOP plots, residuals and run table) and every run's loss curves; the fit is ``fit_path``'s or
    one of ``law`` on the rows ``points`` selects (``Store.to_table``: ``annealed``, ``final`` or
    ``all``) with ``bootstrap`` replicates. With ``train_where`` (an expression, ``scalinglab.expr``),
    a back-test fitted on those rows; with ``flops`` (FLOPs), the plan the fit's law calls for
    (:func:`scalinglab.plan.dispatch.plan_fit`). Fit warnings are recorded in the fit, not printed.
    The footer names ``command``, the version and the store's hash (:func:`store_digest`).

    Training dynamics (:func:`.dynamics.dynamics_sections`): the anneal law's predicted against
    measured curves with the fit at ``anneal_fit`` (a FIT.json of law ``anneal``), or fitted on the
    store's runs of one shape when two or more have different schedules (unless ``fit_anneal`` is
    False); the critical batch at ``target_losses`` (picked from the sweep when empty) when one model
    has runs at three or more batch sizes; B_simple against tokens when the points have it.

    Rollout (:mod:`.rollout`): with ``rollout_key`` (``budget_flops``, ``N``), the rollout back-test of
    the fit's law over that key's groups of the fitted rows (``fit.rollout.rollout``, up to ``horizon``
    groups ahead, ``bootstrap`` replicates per fit for the intervals); or the JSON at ``rollout_json``
    (``scalinglab backtest --rollout KEY --json``).
    """
    with Store(store_path, create=False) as st:
        shown = st.to_table(points="annealed", failed=False)   # the IsoFLOP points: ends of every decay
        fitted = st.to_table(points=points, failed=False)      # the rows the fit and the back-test see
        every = st.to_table(points="all")
        done = st.to_table(points="all", failed=False).rename(columns={"D": "tokens"})
        configs = st.run_configs()
        export = store_export_csv(st)
    curves = every.rename(columns={"D": "tokens"})
    given = Fit.from_json(anneal_fit) if anneal_fit else None
    if given is not None and given.law not in CURVE_LAWS:
        raise ParameterError(invalid("The law of the 'anneal_fit' fit", given.law, f"one of {CURVE_LAWS}"))
    if shown.empty:
        raise DataError(f"store {str(store_path)!r} has no finished runs to report.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = Fit.from_json(fit_path) if fit_path else LawFit(
            law, bootstrap=bootstrap, seed=seed, source=f"{store_path} ({points} points)").fit(fitted).result_
        bt = run_backtest(fitted, fit.law, train_where, bootstrap=bootstrap, seed=seed) if train_where else None
    roll = None
    if rollout_json and rollout_key:
        raise ParameterError("give either 'rollout_key' or 'rollout_json', not both.")
    if rollout_json:
        roll = _read_rollout(rollout_json)
    elif rollout_key:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            roll = rollout(fitted, fit.law, rollout_key, horizon=horizon, seed=seed, bootstrap=bootstrap)
    dyn, computed = dynamics_sections(done, configs, anneal_fit=given, fit_anneal=fit_anneal,
                                      targets=list(target_losses), bootstrap=bootstrap, seed=seed)
    extra = []
    if "anneal_fit" in computed and given is None:
        extra.append(Download("anneal-fit.json", computed["anneal_fit"].to_json(), "application/json",
                              "anneal fit (JSON)"))
    if "critical_batch" in computed:
        extra.append(Download("critical-batch.json", json.dumps(json_safe(computed["critical_batch"]), indent=1),
                              "application/json", "critical batch (JSON)"))
    planned = plan_fit(fit, flops, seed=seed) if flops else None
    sparse = planned is not None and planned["law"] == "sparse"
    footer = Footer(command=command, store=str(store_path), store_sha256=store_digest(export))
    return ladder_report(Path(out) / "index.html", final=shown, points=curves, fit=fit, backtest=bt,
                         plan=None if sparse else planned, sparse_plan=planned if sparse else None,
                         title=f"scalinglab report: {store_path}", footer=footer, store_csv=export, seed=seed,
                         extra_sections=dyn, extra_downloads=extra, rollout=roll)


def _read_rollout(path: str | Path) -> dict[str, Any]:
    """A rollout back-test's JSON (``backtest --rollout KEY --json``); anything else is a DataError."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(invalid("The 'rollout_json' file", str(path), f"a readable JSON file ({exc})")) from None
    if not isinstance(data, dict) or not isinstance(data.get("rollout"), list):
        raise DataError(invalid("The 'rollout_json' file", str(path),
                                "a rollout back-test's JSON (a 'rollout' list, as the backtest command writes it)"))
    return data
