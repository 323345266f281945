"""The FIT.json form of a fit: what it accepts back (every law's presets, a fit with fixed
parameters, a user's law) and its one-line errors (the CLI tests cover each field's message)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab import laws
from scalinglab.errors import DataError, ParameterError
from scalinglab.fit import Fit, LawFit
from scalinglab.fit.predict import input_names, predict
from scalinglab.fit.result import too_few_points_warning


@pytest.mark.parametrize("law, preset", [(lw, ps) for lw in laws.available() for ps in laws.get(lw).presets])
def test_every_preset_round_trips(tmp_path: Path, law: str, preset: str) -> None:
    fit = Fit.from_preset(law, preset)
    fit.to_json(tmp_path / "fit.json")
    assert Fit.from_json(tmp_path / "fit.json") == fit


def _surface(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), n))
    D = np.exp(rng.uniform(np.log(1e8), np.log(1e11), n))
    return pd.DataFrame({"N": N, "D": D, "loss": (1.7 + 400 / N**0.34 + 410 / D**0.28)
                         * np.exp(rng.normal(0, 0.01, n))})


@pytest.mark.filterwarnings("ignore")
def test_fit_with_fixed_parameters_round_trips_and_counts_free_ones(tmp_path: Path) -> None:
    fit = LawFit("chinchilla", bootstrap=4, seed=0, fixed={"E": 1.7, "alpha": 0.34, "beta": 0.28}) \
        .fit(_surface(3)).result_
    assert fit.n_free == 2 and not fit.too_few_points()     # 3 points for 2 free parameters
    assert too_few_points_warning(3, 2) not in fit.warnings and fit.draws() is not None
    fit.to_json(tmp_path / "fit.json")
    assert Fit.from_json(tmp_path / "fit.json").to_json() == fit.to_json()
    two = LawFit("chinchilla", bootstrap=4, seed=0, fixed={"E": 1.7, "alpha": 0.34, "beta": 0.28}) \
        .fit(_surface(2)).result_
    assert two.too_few_points() and two.warnings.count(too_few_points_warning(2, 2)) == 1
    assert two.ci == {k: None for k in laws.get("chinchilla").param_names} and two.draws() is None


def test_from_dict_names_the_field() -> None:
    d = json.loads(Fit.from_preset("chinchilla", "hoffmann2022").to_json())
    d["params"]["beta"] = 9.0
    with pytest.raises(DataError, match=r"^the fit: field 'params.beta' must be within the law's bounds \[0, 5\]. "
                                        r"Got 9.0 instead.$"):
        Fit.from_dict(d)


def test_predict_mapping_names_are_checked_and_warnings_travel() -> None:
    fit = Fit.from_preset("chinchilla", "hoffmann2022")
    fit.warnings = ["made-up warning"]
    out = predict(fit, {"N": 7e10, "D": 1.4e12})
    assert out.attrs["warnings"] == ["made-up warning"]
    with pytest.raises(ParameterError, match=r"^The input of the prediction point for law 'chinchilla' must be "
                                             r"one of \['N', 'D', 'C'\]. Got 'Q' instead.$"):
        predict(fit, {"N": 7e10, "D": 1.4e12, "Q": 1.0})
    assert input_names(Fit.from_preset("overtrain", next(iter(laws.get("overtrain").presets)))) == ["N", "D", "C", "M"]
