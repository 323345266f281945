"""Corpora: the embedded default, user inputs, the split by document, tokenizers, the cache, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scalinglab.errors import ConfigError, DataError
from scalinglab.ladder import corpus

pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def default_docs() -> list[corpus.Document]:
    return corpus.read_documents("default")


@pytest.fixture(scope="module")
def sample_text(default_docs: list[corpus.Document]) -> bytes:
    """About 40 KB of real text (a few standard-library modules) for the user-corpus tests."""
    by_name = dict(default_docs)
    return b"".join(by_name[n] for n in ("textwrap.py", "colorsys.py", "bisect.py"))[:40_000]


def test_default_corpus_is_the_stdlib_without_tests(default_docs: list[corpus.Document]) -> None:
    names = [n for n, _ in default_docs]
    assert len(names) > 300 and names == sorted(names)
    assert sum(len(b) for _, b in default_docs) > 5_000_000
    assert "json/decoder.py" in names and "textwrap.py" in names
    assert not [n for n in names if {"test", "tests", "idle_test", "site-packages"} & set(n.split("/")[:-1])]


def test_corpus_hash_is_deterministic_and_content_sensitive(default_docs: list[corpus.Document]) -> None:
    h = corpus.corpus_hash(default_docs)
    assert h == corpus.corpus_hash(corpus.read_documents("default")) and len(h) == 64
    changed = [(default_docs[0][0], default_docs[0][1] + b" ")] + default_docs[1:]
    assert corpus.corpus_hash(changed) != h


def test_split_is_by_document_disjoint_and_stable(default_docs: list[corpus.Document]) -> None:
    names = [n for n, _ in default_docs]
    train, val = corpus.split_documents(names)
    assert not set(train) & set(val) and sorted(train + val) == list(range(len(names)))
    assert 0.01 < len(val) / len(names) < 0.06
    # a document's side depends on its name only: dropping other documents moves nobody
    half = names[::2]
    _, val_half = corpus.split_documents(half)
    assert {half[i] for i in val_half} == {names[i] for i in val} & set(half)


def test_default_tokens_are_the_documents_bytes(tmp_path: Path, default_docs: list[corpus.Document]) -> None:
    data = corpus.load_tokens("default", 256, cache=tmp_path)
    names = [n for n, _ in default_docs]
    train, val = corpus.split_documents(names)
    assert data.tokenizer == "bytes" and data.vocab == 256 and data.train.dtype == np.uint16
    assert (data.n_docs_train, data.n_docs_val) == (len(train), len(val))
    assert bytes(data.val.astype(np.uint8)) == b"".join(default_docs[i][1] for i in val)
    assert len(data.train) == sum(len(default_docs[i][1]) for i in train)
    again = corpus.load_tokens("default", 256, cache=tmp_path)     # from the cache: same arrays
    assert isinstance(again.train, np.memmap) and np.array_equal(again.train, data.train)


def test_bpe_is_deterministic(tmp_path: Path, sample_text: bytes) -> None:
    (tmp_path / "c.txt").write_bytes(sample_text)
    a = corpus.load_tokens(str(tmp_path / "c.txt"), 300, cache=tmp_path / "a")
    b = corpus.load_tokens(str(tmp_path / "c.txt"), 300, cache=tmp_path / "b")
    assert a.tokenizer == "bpe" and np.array_equal(a.train, b.train) and np.array_equal(a.val, b.val)
    assert int(a.train.max()) < 300 and len(a.train) + len(a.val) < 0.9 * len(sample_text)  # merges compress
    tok_files = [sorted(p.glob("*.tokenizer.json")) for p in (tmp_path / "a", tmp_path / "b")]
    assert tok_files[0][0].read_bytes() == tok_files[1][0].read_bytes()


def test_text_file_is_cut_into_pages(tmp_path: Path, sample_text: bytes) -> None:
    (tmp_path / "c.txt").write_bytes(sample_text)
    docs = corpus.read_documents(str(tmp_path / "c.txt"))
    assert len(docs) >= len(sample_text) // (2 * corpus.PAGE_BYTES)
    assert b"".join(d for _, d in docs) == sample_text and docs[0][0] == "c.txt#0"
    assert all(d.endswith(b"\n") for _, d in docs[:-1])


def test_directory_jsonl_and_parquet_inputs(tmp_path: Path) -> None:
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("alpha\n")
    (d / "sub" / "b.md").write_text("beta\n")
    (d / ".hidden").write_text("never\n")
    (d / "r.jsonl").write_text(json.dumps({"text": "gamma"}) + "\n\n" + json.dumps({"text": "delta"}) + "\n")
    docs = corpus.read_documents(str(d))
    assert docs == [("a.txt", b"alpha\n"), ("r.jsonl#1", b"gamma"), ("r.jsonl#3", b"delta"),
                    ("sub/b.md", b"beta\n")]
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"text": ["one", "two", ""], "id": [1, 2, 3]}), tmp_path / "t.parquet")
    docs = corpus.read_documents(str(tmp_path / "t.parquet"))
    assert docs == [("t.parquet#0", b"one"), ("t.parquet#1", b"two")]


def test_bin_token_file(tmp_path: Path) -> None:
    tokens = (np.arange(5 * corpus.BIN_BLOCK_TOKENS) % 1000).astype(np.uint16)
    tokens.tofile(tmp_path / "t.bin")
    data = corpus.load_tokens(str(tmp_path / "t.bin"), 1000, cache=tmp_path / "cache")
    assert data.tokenizer == "bin" and data.n_docs_train + data.n_docs_val == 5 and data.n_docs_val >= 1
    assert len(data.train) + len(data.val) == len(tokens) and data.val.dtype == np.uint16
    with pytest.raises(ConfigError, match="must exceed the largest token id in t.bin \\(999\\). Got 512"):
        corpus.load_tokens(str(tmp_path / "t.bin"), 512, cache=tmp_path / "cache")


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="corpus path '.*nope.txt' does not exist"):
        corpus.load_tokens(str(tmp_path / "nope.txt"), 256, cache=tmp_path)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="is empty"):
        corpus.load_tokens(str(tmp_path / "empty.txt"), 256, cache=tmp_path)
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(DataError, match="is empty"):
        corpus.read_documents(str(tmp_path / "emptydir"))
    (tmp_path / "short.txt").write_text("one short page\n")
    with pytest.raises(DataError, match="has 1 document; at least 2"):
        corpus.load_tokens(str(tmp_path / "short.txt"), 256, cache=tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{oops\n')
    with pytest.raises(DataError, match="bad.jsonl:2 is not valid JSON"):
        corpus.read_documents(str(tmp_path / "bad.jsonl"))
    (tmp_path / "nofield.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(DataError, match="nofield.jsonl:1 has no string 'text' field"):
        corpus.read_documents(str(tmp_path / "nofield.jsonl"))
    with pytest.raises(ConfigError, match="'vocab' field must be an integer of at least 256"):
        corpus.load_tokens("default", 100, cache=tmp_path)
