"""Ladder designs: IsoFLOP budgets met, grids, deterministic names, the TOML round trip and its errors."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scalinglab import accounting
from scalinglab.errors import ConfigError
from scalinglab.ladder import design, ladderfile
from scalinglab.runconfig import RunConfig, ScheduleConfig

TINY = {"vocab": 256, "context": 64, "batch_tokens": 512}


def test_isoflop_meets_each_budget_within_half_a_batch() -> None:
    budgets = [1e12, 3e12, 1e13]
    runs = design.isoflop(budgets, 5, batch_tokens=2048)
    assert {r.budget_flops for r in runs} == set(budgets)
    for r in runs:
        fpt = accounting.counts(r)["flops_per_token_full"]
        assert r.tokens % r.batch_tokens == 0 and r.steps >= design.ShapeRule().min_steps
        assert abs(fpt * r.tokens - r.budget_flops) <= fpt * r.batch_tokens / 2
        assert r.group == "isoflop" and r.d_model == 16 * r.n_head


def test_isoflop_sizes_span_the_compute_optimal_size() -> None:
    budget, r = 1e13, 20.0
    runs = design.isoflop([budget], 5, r, batch_tokens=2048)
    n = np.array([accounting.counts(x)["N_nonembed"] for x in runs], dtype=float)
    assert len(runs) == 5 and np.all(np.diff(n) > 0)   # distinct, increasing sizes
    center = design.compute_optimal_params(budget, r)
    assert center == pytest.approx(math.sqrt(budget / 120))
    # the shape rule rounds, but the ends sit near N*/4 and 4 N*, the middle near N*
    assert n[0] == pytest.approx(center / 4, rel=0.5) and n[-1] == pytest.approx(center * 4, rel=0.5)
    assert n[2] == pytest.approx(center, rel=0.35)
    assert design.isoflop([budget], 1, r, batch_tokens=2048)[0].n_layer == runs[2].n_layer


def test_designs_take_any_run_field() -> None:
    runs = design.isoflop([1e11], 3, schedule={"name": "wsd", "decay_frac": 0.1}, seed=4, lr=1e-3, **TINY)
    assert all(r.schedule == ScheduleConfig(name="wsd", decay_frac=0.1) and r.seed == 4 and r.lr == 1e-3
               for r in runs)
    with pytest.raises(ConfigError, match="'bogus'"):
        design.isoflop([1e11], 3, bogus=1)
    with pytest.raises(ConfigError, match="min_steps"):
        design.isoflop([1e9], 3, batch_tokens=8192)
    with pytest.raises(ConfigError, match="'budgets' parameter must be a positive finite number. Got -1"):
        design.isoflop([-1.0], 3)
    with pytest.raises(ConfigError, match="'sizes' parameter must be a positive integer"):
        design.isoflop([1e12], 0)


def test_grid_nd() -> None:
    runs = design.grid_nd([2e4, 1e5], [1e5, 4e5], **TINY)
    assert len(runs) == 4 and all(r.group == "nd" and r.budget_flops == 0 for r in runs)
    assert sorted({r.tokens for r in runs}) == [round(1e5 / 512) * 512, round(4e5 / 512) * 512]
    assert len({(r.n_layer, r.d_model) for r in runs}) == 2
    assert runs[0].name.startswith(f"nd-D{design._num(runs[0].tokens)}-n{runs[0].n_layer}d{runs[0].d_model}-")


def test_grid_lr_batch() -> None:
    runs = design.grid_lr_batch([1e-3, 3e-3], [256, 1024], budgets=[1e11], **TINY)
    assert len(runs) == 4 and len({(r.n_layer, r.d_model) for r in runs}) == 1
    assert {(r.lr, r.batch_tokens) for r in runs} == {(1e-3, 256), (1e-3, 1024), (3e-3, 256), (3e-3, 1024)}
    for r in runs:
        fpt = accounting.counts(r)["flops_per_token_full"]
        assert abs(fpt * r.tokens - 1e11) <= fpt * r.batch_tokens / 2
    grid = design.grid_lr_batch([1e-3], [512], params=[2e4], tokens=[1e5, 2e5], **TINY)
    assert len(grid) == 2 and all(r.budget_flops == 0 for r in grid)
    with pytest.raises(ConfigError, match="either 'budgets' or 'params'"):
        design.grid_lr_batch([1e-3], [512], budgets=[1e11], params=[1e4], tokens=[1e5])
    with pytest.raises(ConfigError, match="batch_tokens"):
        design.grid_lr_batch([1e-3], [100], budgets=[1e11], **TINY)   # not a multiple of the context


def test_names_are_deterministic_and_follow_the_content() -> None:
    a = design.isoflop([1e12, 3e12], 4, batch_tokens=2048)
    b = design.isoflop([1e12, 3e12], 4, batch_tokens=2048)
    assert [r.name for r in a] == [r.name for r in b]
    assert len({r.name for r in a}) == len(a)
    r = a[0]
    assert r.name == f"isoflop-1e12-n{r.n_layer}d{r.d_model}-{r.digest()[:6]}" == design.run_name(r)
    c = design.isoflop([1e12, 3e12], 4, batch_tokens=2048, lr=1e-3)
    assert not {x.name for x in a} & {x.name for x in c}


def test_names_are_those_of_the_designs_before_the_shape_rule() -> None:
    """Run names (and so digests) pinned from the designer before ShapeRule and make_design: the
    refactor designs the very same ladders."""
    rule = design.ShapeRule(min_layers=2, width_step=4, lr_width_exponent=1.0)
    assert [r.name for r in design.isoflop([1e11, 3e11], 3, **TINY)] == [
        "isoflop-1e11-n1d32-c7d720", "isoflop-1e11-n1d48-87bf8b", "isoflop-1e11-n2d64-639b27",
        "isoflop-3e11-n1d32-a3fef9", "isoflop-3e11-n2d48-ee2335", "isoflop-3e11-n3d80-3029ac"]
    assert [r.name for r in design.isoflop([1e11, 2e11], 3, rule=rule, lr=3e-3, **TINY)] == [
        "isoflop-1e11-n2d16-f0bbd7", "isoflop-1e11-n2d36-c59d3a", "isoflop-1e11-n2d68-65d522",
        "isoflop-2e11-n2d20-8a28fe", "isoflop-2e11-n2d40-f5ec73", "isoflop-2e11-n2d84-43f2be"]
    assert [r.name for r in design.grid_nd([2e4], [1e5, 2e5], rule=design.ShapeRule(aspect=16.0, head_dim=8),
                                           **TINY)] == ["nd-D1e5-n2d32-122613", "nd-D2e5-n2d32-7bf1d3"]
    assert [r.name for r in design.grid_lr_batch([1e-3, 3e-3], [256], budgets=[1e11], **TINY)] == [
        "lrbatch-1e11-n1d48-a03ab9", "lrbatch-1e11-n1d48-5b6faa"]
    assert [r.name for r in design.grid_sparse([0.0, 0.5], [2e4], [1e5], **TINY)] == [
        "sparse-D1e5-n1d48-e1946b", "sparse-D1e5-n1d64-s0.5-ffb544"]


def test_shape_rule_sets_shapes_learning_rates_and_least_steps() -> None:
    rule = design.ShapeRule(min_layers=2, width_step=4, lr_width_exponent=1.0, lr_ref_width=64)
    runs = design.isoflop([1e11, 2e11], 5, rule=rule, lr=3e-3, **TINY)
    assert len({r.d_model for r in runs}) >= 4
    for r in runs:
        assert r.n_layer >= 2 and r.d_model % 4 == 0 and (r.d_model // r.n_head >= 16 or r.n_head == 1)
        assert r.lr == pytest.approx(3e-3 * 64 / r.d_model, rel=1e-3) == rule.lr(3e-3, r.d_model)
    assert rule.shape(3e4) == {"n_layer": 2, "d_model": 36, "n_head": 2}      # units.shape_for_params's
    assert rule.shape(3e4, width_step=False)["d_model"] % 16 == 0
    assert rule.record() == {"aspect": 32.0, "head_dim": 16, "min_layers": 2, "min_steps": 10,
                             "lr_width_exponent": 1.0, "lr_ref_width": 64, "width_step": 4}
    assert design.ShapeRule().record() == {"aspect": 32.0, "head_dim": 16, "min_layers": 1, "min_steps": 10}
    short = design.ShapeRule(min_steps=5)
    assert min(r.steps for r in design.isoflop([5e8], 3, rule=short, **TINY)) == 7   # 18 and 7 steps
    with pytest.raises(ConfigError, match="min_steps = 10"):
        design.isoflop([5e8], 3, **TINY)
    with pytest.raises(ConfigError, match=r"'min_steps' is a field of the shape rule.*rule=ShapeRule"):
        design.isoflop([1e9], 3, min_steps=5, **TINY)   # a knob of the rule is not a run field
    with pytest.raises(ConfigError, match="'rule.width_step' and 'rule.lr_width_exponent' apply to IsoFLOP"):
        design.grid_sparse([0.5], [2e4], [1e5], rule=design.ShapeRule(width_step=4), **TINY)


def test_make_design_picks_the_design_a_request_asks_for() -> None:
    iso = design.make_design(design.DesignRequest(budgets=[1e11, 3e11], sizes=3, overrides=TINY))
    assert iso.runs == design.isoflop([1e11, 3e11], 3, **TINY)
    assert iso.meta == {"design": "isoflop", "budgets": [1e11, 3e11], "sizes": 3, "tokens_per_param": 20.0,
                        "span": 4.0, "aspect": 32.0, "head_dim": 16, "min_layers": 1, "min_steps": 10}
    nd = design.make_design(design.DesignRequest(params=[2e4], tokens=[1e5, 2e5], overrides=TINY,
                                                 note={"set": ["seed=0"]}))
    assert nd.runs == design.grid_nd([2e4], [1e5, 2e5], **TINY) and nd.meta["set"] == ["seed=0"]
    grid = design.make_design(design.DesignRequest(budgets=[1e11], lrs=[1e-3, 3e-3], overrides=TINY))
    assert grid.runs == design.grid_lr_batch([1e-3, 3e-3], [512], budgets=[1e11], **TINY)   # the template's batch
    assert grid.meta["design"] == "lr_batch" and grid.meta["batches"] == [512]
    sparse = design.make_design(design.DesignRequest(sparsities=[0.0, 0.5], params=[2e4], tokens=[1e5],
                                                     overrides=TINY))
    assert sparse.runs == design.grid_sparse([0.0, 0.5], [2e4], [1e5], **TINY)
    wsd = {**TINY, "schedule": {"name": "wsd", "warmup_steps": 20}}
    merged = design.make_design(design.DesignRequest(params=[2e4], tokens=[1e5, 2e5, 4e5], overrides=wsd,
                                                     merge_prefixes=True))
    assert len(merged.runs) == 1 and merged.meta["design_runs"] == 3 and merged.meta["merge_prefixes"] is True
    branched = design.make_design(design.DesignRequest(params=[2e4], tokens=[1e5], overrides=TINY,
                                                       wsd_branches=[0.5]))
    assert branched.runs[0].schedule.name == "wsd" and branched.runs[0].schedule.branches == (0.5,)
    assert branched.meta["wsd_branches"] == [0.5]


@pytest.mark.parametrize("request_, message", [
    (design.DesignRequest(), "say what to design: 'budgets' (IsoFLOP profiles), 'params' and 'tokens'"),
    (design.DesignRequest(params=[1e4]), "an N x D grid needs both 'params' and 'tokens'."),
    (design.DesignRequest(lrs=[1e-3]), "a learning-rate x batch grid needs 'budgets', or 'params' and 'tokens'."),
    (design.DesignRequest(sparsities=[0.5], params=[1e4]), "a sparsity grid needs 'params' (non-zero counts)"),
    (design.DesignRequest(sparsities=[0.5], params=[1e4], tokens=[1e5], budgets=[1e12]), "drop 'budgets'"),
    (design.DesignRequest(params=[2e4], tokens=[1e5, 2e5], overrides=TINY, merge_prefixes=True),
     "The 'merge_prefixes' parameter with schedule must be schedule.name = 'wsd' with "
     "'schedule.warmup_steps' > 0 and no 'wsd_branches'"),
    (design.DesignRequest(params=[2e4], tokens=[1e5], overrides=TINY, wsd_branches=[0.02]),
     "(195 steps): The 'schedule.branches' field must be fractions whose cooldowns start after the warmup"),
])
def test_make_design_errors_name_the_request_fields(request_: design.DesignRequest, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        design.make_design(request_)
    assert message in str(info.value) and "--" not in str(info.value)


def test_toml_round_trip(tmp_path: Path) -> None:
    runs = (design.isoflop([1e11, 3e11], 3, schedule={"name": "wsd"}, **TINY)
            + design.grid_lr_batch([1e-3, 3e-3], [256, 512], budgets=[1e11], **TINY))
    path = tmp_path / "ladder.toml"
    ladderfile.write_toml(path, runs, {"design": "mixed", "budgets": [1e11, 3e11], "note": 'a "quoted" word'})
    back, meta = ladderfile.read_ladder(path)
    assert back == runs
    assert [r.digest() for r in back] == [r.digest() for r in runs]
    assert meta == {"design": "mixed", "budgets": [1e11, 3e11], "note": 'a "quoted" word'}
    text = path.read_text()
    assert "[defaults]" in text and text.count("\n[[runs]]\n") == len(runs)
    assert "[defaults.schedule]" in text and "[runs.schedule]" in text   # shared and per-run fields


def test_runs_without_names_get_derived_names(tmp_path: Path) -> None:
    runs = design.isoflop([1e11], 3, **TINY)
    text = "\n".join(line for line in ladderfile.dumps_toml(runs).splitlines() if not line.startswith("name ="))
    back, _ = ladderfile.loads_toml(text)
    assert [r.name for r in back] == [r.name for r in runs]


def test_edited_defaults_apply_to_every_run() -> None:
    runs = design.isoflop([1e11], 3, **TINY)
    text = ladderfile.dumps_toml(runs).replace("lr = 3e-3", "lr = 1").replace("seed = 0", "seed = 5")
    back, _ = ladderfile.loads_toml(text)
    assert all(r.lr == 1.0 and isinstance(r.lr, float) and r.seed == 5 for r in back)
    assert back[0].digest() == RunConfig.from_dict({**runs[0].to_dict(), "lr": 1.0, "seed": 5}).digest()


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("[[runs]]\n", "[[runs]]\nbogus = 1\n", 1), r"run 1 .*'bogus'"),
    (lambda t: t.replace("[defaults]\n", "[defaults]\nwidth = 3\n"), r"run 1 .*'width'"),
    (lambda t: t.replace("[defaults.schedule]\n", "[defaults.schedule]\nwarmup = 3\n"),
     r"schedule config key must be one of .* Got 'warmup'"),
    (lambda t: t + "\n[extra]\nx = 1\n", r"top-level key .* Got 'extra'"),
    (lambda t: t.replace("context = 64", "context = [64"), "is not valid TOML"),
    (lambda t: t.split("[[runs]]")[0], "has no runs"),
    (lambda t: t.replace("n_head = ", "n_head = 5 #", 1), r"run 1 .*'d_model' field must be a multiple of n_head"),
])
def test_bad_ladder_files_name_the_problem(edit, message: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = edit(ladderfile.dumps_toml(design.isoflop([1e11], 2, **TINY)))
    with pytest.raises(ConfigError, match=message):
        ladderfile.loads_toml(text, "ladder.toml")


def test_missing_ladder_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ladderfile.read_toml(tmp_path / "nope.toml")


def test_design_and_ladder_files_import_neither_torch_nor_scipy() -> None:
    code = ("import sys, scalinglab.ladder.design, scalinglab.ladder.ladderfile; "
            "print(sorted(m for m in ('torch', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_parametrizations_grid_with_lr_grid(tmp_path: Path) -> None:
    made = design.make_design(design.DesignRequest(
        params=[2e4, 8e4], tokens=[1e5], lrs=[1e-3, 4e-3], parametrizations=["sp", "mus", "mup"],
        overrides={"parametrization": {"tau": 0.4, "base_width": 32}}))
    runs = made.runs
    assert len(runs) == 2 * 2 * 3 and len({r.name for r in runs}) == 12
    assert made.meta["parametrizations"] == ["sp", "mus", "mup"] and made.meta["design"] == "lr_batch"
    by = {p: [r for r in runs if r.parametrization.name == p] for p in ("sp", "mus", "mup")}
    assert [(r.d_model, r.lr) for r in by["sp"]] == [(r.d_model, r.lr) for r in by["mus"]]
    assert all(r.parametrization.tau == 0.0 and r.parametrization.base_width == 0 for r in by["sp"])
    assert all(r.parametrization.tau == 0.4 and r.parametrization.base_width == 32 for r in by["mus"])
    assert all(r.parametrization.tau == 0.0 and r.parametrization.base_width == 32 for r in by["mup"])
    # sp runs are the runs of the plain design (names and digests unchanged); others are marked
    plain = design.make_design(design.DesignRequest(params=[2e4, 8e4], tokens=[1e5], lrs=[1e-3, 4e-3]))
    assert [r.name for r in by["sp"]] == [r.name for r in plain.runs]
    assert all("-mus-" in r.name for r in by["mus"]) and all("-mup-" in r.name for r in by["mup"])
    path = tmp_path / "l.toml"
    ladderfile.write_toml(path, runs, made.meta)
    assert ladderfile.read_toml(path) == runs


@pytest.mark.parametrize("names,overrides,message", [
    (["sp", "mus"], {}, "'parametrization.tau'"),
    (["sp", "foo"], {}, "'parametrizations'"),
    ([], {}, "'parametrizations'"),
    (["mus", "mus"], {"parametrization": {"tau": 0.4}}, "'parametrizations'"),
])
def test_parametrizations_errors(names: list[str], overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        design.make_design(design.DesignRequest(params=[2e4], tokens=[1e5], parametrizations=names,
                                                overrides=overrides))


def test_parametrization_by_name_in_overrides() -> None:
    runs = design.grid_nd([2e4], [1e5], parametrization="mup")
    assert runs[0].parametrization.name == "mup" and runs[0].parametrization.base_width == 64
