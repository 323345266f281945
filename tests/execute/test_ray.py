"""The Ray executor on a local Ray instance: the same points as the local executor, failures recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import fake_trainer

from scalinglab.execute import execute
from scalinglab.ladder import design
from scalinglab.store import Store


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    # Ray's workers do not see this test directory: ship the fake trainer with the task, by value
    ray.cloudpickle.register_pickle_by_value(fake_trainer)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(fake_trainer)


def test_ray_gives_the_local_executors_points(local_ray: None, tmp_path: Path) -> None:
    runs = design.isoflop([1e10, 3e10], 2, vocab=256, context=64, batch_tokens=512,
                          rule=design.ShapeRule(min_steps=5))
    local = Store(tmp_path / "local.db")
    execute(runs, local, checkpoint_dir=tmp_path / "ck-local", train_fn=fake_trainer.train, progress=False)

    store = Store(tmp_path / "ray.db")
    res = execute(runs, store, checkpoint_dir=tmp_path / "ck-ray", executor="ray", train_fn=fake_trainer.train,
                  progress=False)
    assert sorted(res["done"]) == sorted(r.name for r in runs) and res["failed"] == {}
    assert (res["workers"], res["threads"]) == (2, 1)
    assert store.to_table(final=False).drop(columns="wall_time").equals(
        local.to_table(final=False).drop(columns="wall_time"))
    assert all(r.host for r in store.runs())

    again = execute(runs, store, checkpoint_dir=tmp_path / "ck-ray", executor="ray", train_fn=fake_trainer.train,
                    progress=False)
    assert again["skipped"] == len(runs) and again["points"] == 0


def test_ray_records_a_failing_run(local_ray: None, tmp_path: Path) -> None:
    runs = design.isoflop([1e10], 2, vocab=256, context=64, batch_tokens=512, rule=design.ShapeRule(min_steps=5))
    store = Store(tmp_path / "ray.db")
    res = execute(runs, store, checkpoint_dir=tmp_path / "ck", executor="ray", train_fn=_failing_on(runs[0].name),
                  progress=False)
    assert res["failed"] == {runs[0].name: f"RuntimeError: deliberate failure of {runs[0].name}"}
    assert res["done"] == [runs[1].name]
    assert store.get(runs[0].name).status == "failed"


def _failing_on(name: str):  # type: ignore[no-untyped-def]
    """The fake trainer, failing for one run (a closure: Ray ships it to the workers by value)."""
    def train(config, **kwargs):  # type: ignore[no-untyped-def]
        if config.name == name:
            raise RuntimeError(f"deliberate failure of {name}")
        return fake_trainer.train(config, **kwargs)
    return train
