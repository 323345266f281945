"""Fixtures of the trainer's tests: a private corpus cache per test module, and one torch thread for the
modules that opt in (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="module")
def _cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``SCALINGLAB_CACHE`` in a fresh folder for the module: no test reads another's cached corpus."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCALINGLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the module (tiny tensors: several times faster on a busy machine), restored after."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
