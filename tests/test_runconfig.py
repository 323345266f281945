"""Run config fields: types and ranges named in one ConfigError, the corpus checked when a ladder is
run, and a warning when the embedding dwarfs N (issue 16, item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.errors import ConfigError
from scalinglab.ladder import ladderfile
from scalinglab.runconfig import MAX_VOCAB, RunConfig


def tiny(**kw: object) -> RunConfig:
    return RunConfig(n_layer=1, d_model=16, n_head=1, context=64, batch_tokens=512, tokens=5120, evals=2,
                     eval_tokens=512, **kw)  # type: ignore[arg-type]


BAD = [("lr", "abc"), ("lr", 0.0), ("lr", float("nan")), ("lr", float("inf")), ("lr", True),
       ("beta1", 1.5), ("beta2", 1.0), ("beta1", -0.1), ("weight_decay", -1), ("grad_clip", "x"),
       ("seed", "x"), ("seed", -1), ("seed", 1.5), ("seed", 2 ** 63), ("budget_flops", -1.0),
       ("micro_batch_tokens", "x"), ("corpus", ""), ("corpus", 3), ("group", 3), ("vocab", MAX_VOCAB + 1),
       ("schedule.warmup_frac", 2.0), ("schedule.final_lr_frac", "a"), ("schedule.decay_shape", "x"),
       ("schedule.name", 3), ("sparsity.target", "a"), ("sparsity.start_frac", -1.0), ("sparsity.n", "x"),
       ("sparsity.finetune_corpus", 3)]


@pytest.mark.parametrize(("field", "value"), BAD)
def test_bad_field_is_one_error_naming_it(field: str, value: object) -> None:
    head, _, sub = field.partition(".")
    d = tiny().to_dict()
    if sub:
        d[head] = {**d[head], sub: value}
    else:
        d[head] = value
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(d)
    assert f"'{field}'" in str(err.value) and "\n" not in str(err.value)


def test_set_lr_abc_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "l.toml"
    r = CliRunner().invoke(main, ["ladder", "design", "--params", "1e4", "--tokens", "1e5", "--set", "lr=abc",
                                  "--out", str(out)])
    assert r.exit_code == 2 and "'lr'" in r.stderr and "positive finite number" in r.stderr
    assert not out.exists()


def test_valid_configs_and_digests_unchanged() -> None:
    assert RunConfig().digest() == RunConfig.from_dict(RunConfig().to_dict()).digest()
    tiny(lr=1, weight_decay=0, grad_clip=0, beta1=0.0, seed=2 ** 40)   # ints for floats pass, uncoerced


def test_vocab_warning_at_design(tmp_path: Path) -> None:
    out = tmp_path / "l.toml"
    r = CliRunner().invoke(main, ["ladder", "design", "--params", "1e4", "--tokens", "1e5", "--vocab", "1000000",
                                  "--out", str(out)])
    assert r.exit_code == 0 and r.stderr.startswith("warning: ") and "embedding" in r.stderr
    r = CliRunner().invoke(main, ["ladder", "design", "--params", "1e4", "--tokens", "1e5", "--out", str(out)])
    assert r.exit_code == 0 and "warning" not in r.stderr
    r = CliRunner().invoke(main, ["ladder", "design", "--params", "1e4", "--tokens", "1e5", "--vocab",
                                  "100000000", "--out", str(tmp_path / "x.toml")])
    assert r.exit_code == 2 and "'vocab'" in r.stderr and not (tmp_path / "x.toml").exists()


@pytest.mark.parametrize("kind", ["missing", "empty_file", "empty_dir", "binary"])
def test_bad_corpus_refused_when_the_ladder_runs(tmp_path: Path, kind: str) -> None:
    corpus = tmp_path / {"missing": "nope.txt", "empty_file": "e.txt", "empty_dir": "d",
                         "binary": "b.dat"}[kind]
    if kind == "empty_file":
        corpus.write_bytes(b"")
    elif kind == "empty_dir":
        corpus.mkdir()
        (corpus / ".hidden").write_text("x")
    elif kind == "binary":
        corpus.write_bytes(bytes(range(256)) * 4)
    ladder = tmp_path / "l.toml"
    ladderfile.write_toml(ladder, [tiny(name="r1", corpus=str(corpus))])
    store = tmp_path / "runs.db"
    r = CliRunner().invoke(main, ["ladder", "run", str(ladder), "--store", str(store), "--no-progress"])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and "corpus" in r.stderr
    assert not store.exists() and not (tmp_path / "runs.checkpoints").exists()


def test_good_corpora_pass(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("héllo " * 3000)
    (tmp_path / "tok.bin").write_bytes(b"\0\1" * 10)
    for c in ["default", "python-docs", str(tmp_path / "t.txt"), str(tmp_path / "tok.bin"), str(tmp_path)]:
        ladderfile.check_corpus(c)
