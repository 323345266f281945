"""Training text: the embedded default corpus, user corpora, tokenizers, the train/validation split and
the token cache.

The embedded default (``corpus="default"``) is text that every machine running scalinglab already has,
read at run time with no download: the source files (code and docstrings) of the Python standard
library, found through ``sysconfig.get_paths()["stdlib"]``, without test packages or third-party
``site-packages``, in sorted order. ``corpus="python-docs"`` is the reST source of the Python manual
where Debian's ``python3.X-doc`` package is installed. Any other value is a path:

* a text file: cut into pages of about 4 KiB at line ends, each page a document;
* a directory: every non-hidden file under it (sorted), each a document (JSONL and Parquet files in it
  contribute their records);
* ``.jsonl``: one JSON object a line, its ``"text"`` field a document; ``.parquet``: the ``text``
  column, one document a row (needs pyarrow);
* ``.bin``: nanoGPT-style uint16 tokens, cut into blocks of 65,536 tokens, each block a document.

Documents go to validation by a hash of their name (``VAL_FRAC`` of them, at least one), never by
position in one stream. Tokens are bytes (vocab 256) or a byte-level BPE trained with the
``tokenizers`` library on the training documents to the requested vocabulary size. Tokenised splits
are cached as numpy memmaps under ``$SCALINGLAB_CACHE`` (default ``~/.cache/scalinglab``), keyed by the
corpus hash and the tokenizer; files are written to a temporary name and renamed, so workers that
tokenise the same corpus at once cannot corrupt the cache.

Batches for the trainer (:func:`batch`, :func:`eval_windows`) are pure functions of the seed and the
step, or of the validation stream, so a resumed run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sysconfig
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

VAL_FRAC = 0.03            # fraction of documents held out for evaluation
PAGE_BYTES = 4096          # a single text file is cut into documents of about this size
BIN_BLOCK_TOKENS = 65_536  # a .bin token file is cut into documents of this many tokens
SPLIT_VERSION = 1          # bump when the split or the tokenisation changes, to invalidate caches
TEST_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "__pycache__"})

Document = tuple[str, bytes]  # (name, raw bytes); the name decides the split and enters the hash


@dataclass(frozen=True)
class TokenData:
    """Tokenised corpus: the training and validation token streams (1-D integer arrays)."""

    train: np.ndarray
    val: np.ndarray
    vocab: int
    tokenizer: str        # "bytes" | "bpe" | "bin" (tokens given)
    corpus_hash: str      # sha256 over the documents' names and contents, in order
    n_docs_train: int
    n_docs_val: int


# ----------------------------------------------------------------------------- reading documents

def default_documents() -> list[Document]:
    """The Python standard library's own source files, tests and site-packages left out, sorted."""
    root = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if TEST_DIRS.intersection(rel.parts[:-1]) or not path.is_file():
            continue
        docs.append((rel.as_posix(), path.read_bytes()))
    return docs


def python_docs_documents() -> list[Document]:
    """The reST sources of the Python manual from Debian's ``python3.X-doc`` package, sorted."""
    ver = sysconfig.get_python_version()
    root = Path(f"/usr/share/doc/python{ver}/html/_sources")
    if not root.is_dir():
        raise DataError(f"The 'python-docs' corpus needs Debian's python{ver}-doc package "
                        f"({root} does not exist).")
    return [(p.relative_to(root).as_posix(), p.read_bytes()) for p in sorted(root.rglob("*.txt"))]


def _pages(name: str, data: bytes) -> Iterator[Document]:
    start, i = 0, 0
    while start < len(data):
        end = data.find(b"\n", start + PAGE_BYTES)
        end = len(data) if end < 0 else end + 1
        yield f"{name}#{i}", data[start:end]
        start, i = end, i + 1


def _jsonl_documents(path: Path, name: str) -> Iterator[Document]:
    with path.open("rb") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{i} is not valid JSON ({exc.msg}).") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
                raise DataError(f"{path}:{i} has no string 'text' field.")
            yield f"{name}#{i}", rec["text"].encode("utf-8")


def _parquet_documents(path: Path, name: str) -> Iterator[Document]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"Reading {path} needs pyarrow: pip install 'scalinglab[parquet]'.") from None
    table = pq.read_table(path)
    if "text" not in table.column_names:
        raise DataError(f"{path} has no 'text' column; its columns are {table.column_names}.")
    for i, text in enumerate(table.column("text").to_pylist()):
        if text:
            yield f"{name}#{i}", str(text).encode("utf-8")


def read_documents(corpus: str) -> list[Document]:
    """The documents of a corpus (see the module docstring), empty ones dropped, in a fixed order."""
    if corpus == "default":
        docs = default_documents()
    elif corpus == "python-docs":
        docs = python_docs_documents()
    else:
        path = Path(corpus).expanduser()
        if not path.exists():
            raise DataError(f"The corpus path {corpus!r} does not exist.")
        if path.suffix == ".bin":
            raise DataError(f"{corpus!r} is a token file; load it with load_tokens.")
        if path.is_dir():
            docs = []
            for p in sorted(path.rglob("*")):
                rel = p.relative_to(path)
                if not p.is_file() or any(part.startswith(".") for part in rel.parts):
                    continue
                docs.extend(_file_documents(p, rel.as_posix(), whole=True))
        else:
            docs = list(_file_documents(path, path.name, whole=False))
    docs = [d for d in docs if d[1]]
    if not docs:
        raise DataError(f"The corpus {corpus!r} is empty (no non-empty documents).")
    return docs


def _file_documents(path: Path, name: str, whole: bool) -> Iterator[Document]:
    if path.suffix == ".jsonl":
        yield from _jsonl_documents(path, name)
    elif path.suffix == ".parquet":
        yield from _parquet_documents(path, name)
    elif whole:
        yield name, path.read_bytes()
    else:
        yield from _pages(name, path.read_bytes())


def corpus_hash(docs: list[Document]) -> str:
    """sha256 over every document's name and bytes, in order (lengths included, so it is unambiguous)."""
    h = hashlib.sha256()
    for name, data in docs:
        raw = name.encode("utf-8")
        h.update(len(raw).to_bytes(8, "little") + raw + len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def is_validation(name: str, val_frac: float = VAL_FRAC) -> bool:
    """Whether a document goes to validation: the first 8 bytes of sha256(name) below val_frac * 2^64."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") < val_frac * 2.0**64


def split_documents(names: list[str], val_frac: float = VAL_FRAC) -> tuple[list[int], list[int]]:
    """Indices of the training and validation documents; at least one of each.

    A document's side depends on its name alone, so adding documents never moves another across.
    When the hash picks none, the document with the smallest hash goes to validation.
    """
    if len(names) < 2:
        raise DataError(f"The corpus has {len(names)} document; at least 2 are needed to hold one out "
                        "for validation.")
    val = [i for i, n in enumerate(names) if is_validation(n, val_frac)]
    if not val:
        val = [min(range(len(names)), key=lambda i: hashlib.sha256(names[i].encode("utf-8")).digest())]
    if len(val) == len(names):
        val = val[:-1]
    held = set(val)
    return [i for i in range(len(names)) if i not in held], val


# ----------------------------------------------------------------------------- tokenizers

def train_bpe(texts: list[str], vocab: int) -> Any:
    """A byte-level BPE (GPT-2 style pre-tokenisation) trained to ``vocab`` tokens; deterministic.

    Returns a ``tokenizers.Tokenizer``. The 256 byte symbols are the initial alphabet, so any text
    can be encoded; ``vocab - 256`` merges are learned (fewer if the text runs out of pairs).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def _token_dtype(vocab: int) -> type[np.unsignedinteger[Any]]:
    return np.uint16 if vocab <= 2**16 else np.uint32


def _tokenize(docs: list[Document], train_idx: list[int], val_idx: list[int], vocab: int,
              tokenizer_path: Path) -> tuple[np.ndarray, np.ndarray]:
    dtype = _token_dtype(vocab)
    if vocab == 256:
        def encode(idx: list[int]) -> np.ndarray:
            return np.frombuffer(b"".join(docs[i][1] for i in idx), dtype=np.uint8).astype(dtype)
        return encode(train_idx), encode(val_idx)
    texts = [d[1].decode("utf-8", errors="replace") for d in docs]
    tok = train_bpe([texts[i] for i in train_idx], vocab)
    _atomic_write(tokenizer_path, [tok.to_str().encode("utf-8")])

    def encode_bpe(idx: list[int]) -> np.ndarray:
        ids = [np.asarray(e.ids, dtype=dtype) for e in tok.encode_batch([texts[i] for i in idx])]
        return np.concatenate(ids) if ids else np.zeros(0, dtype=dtype)
    return encode_bpe(train_idx), encode_bpe(val_idx)


# ----------------------------------------------------------------------------- cache

def cache_dir() -> Path:
    """``$SCALINGLAB_CACHE`` or ``~/.cache/scalinglab``."""
    return Path(os.environ.get("SCALINGLAB_CACHE") or Path.home() / ".cache" / "scalinglab")


def _atomic_write(path: Path, chunks: Iterable[bytes]) -> None:
    """Write to a temporary file beside ``path``, then rename it over ``path`` (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_LOADED: dict[tuple[Any, ...], TokenData] = {}


def _signature(corpus: str) -> tuple[Any, ...]:
    """What must not change for a loaded corpus to be reused within a process: the built-in corpora
    never change while a process runs; a user's file or directory is identified by its files'
    paths, sizes and modification times."""
    if corpus in ("default", "python-docs"):
        return (corpus,)
    path = Path(corpus).expanduser()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files if p.exists())


def load_tokens(corpus: str = "default", vocab: int = 256, *, cache: Path | None = None) -> TokenData:
    """Tokenised training and validation streams of ``corpus`` for a ``vocab``-token tokenizer.

    vocab = 256 means raw bytes; a larger vocab trains a BPE (see :func:`train_bpe`); for a ``.bin``
    token file the tokens are used as they are and ``vocab`` must exceed the largest id. Cached by
    corpus hash and tokenizer; the returned arrays are read-only memmaps. Within one process, a
    corpus already loaded (unchanged, same vocab and cache) is returned without reading it again: a
    ladder worker trains many runs on one corpus.
    """
    key = (_signature(corpus), vocab, str(cache or cache_dir()))
    if key not in _LOADED:
        _LOADED[key] = _load_tokens(corpus, vocab, cache=cache)
    return _LOADED[key]


def _load_tokens(corpus: str, vocab: int, *, cache: Path | None = None) -> TokenData:
    if not isinstance(vocab, int) or isinstance(vocab, bool) or vocab < 256:
        raise ConfigError(f"The 'vocab' field must be an integer of at least 256 (the byte alphabet). "
                          f"Got {vocab!r} instead.")
    cache = cache or cache_dir()
    path = Path(corpus).expanduser()
    is_bin = corpus not in ("default", "python-docs") and path.suffix == ".bin"
    if is_bin:
        tokens = _read_bin(path)
        digest, tokenizer = _file_hash(path), "bin"
    else:
        docs = read_documents(corpus)
        digest, tokenizer = corpus_hash(docs), ("bytes" if vocab == 256 else "bpe")
    key_text = f"{digest}|{tokenizer}|{vocab}|{VAL_FRAC}|v{SPLIT_VERSION}"
    key = hashlib.sha256(key_text.encode()).hexdigest()[:20]
    meta_path = cache / f"{key}.json"
    if not meta_path.exists():
        if is_bin:
            top = int(tokens.max())
            if top >= vocab:
                raise ConfigError(f"The 'vocab' field must exceed the largest token id in {path.name} "
                                  f"({top}). Got {vocab} instead.")
            starts = range(0, len(tokens), BIN_BLOCK_TOKENS)
            train_idx, val_idx = split_documents([f"{path.name}#{i}" for i in range(len(starts))])
            for split, idx in (("train", train_idx), ("val", val_idx)):
                _atomic_write(cache / f"{key}.{split}",
                              (tokens[starts[i]:starts[i] + BIN_BLOCK_TOKENS].tobytes() for i in idx))
        else:
            train_idx, val_idx = split_documents([d[0] for d in docs])
            train, val = _tokenize(docs, train_idx, val_idx, vocab, cache / f"{key}.tokenizer.json")
            _atomic_write(cache / f"{key}.train", [train.tobytes()])
            _atomic_write(cache / f"{key}.val", [val.tobytes()])
        meta = {"corpus": corpus, "corpus_hash": digest, "tokenizer": tokenizer, "vocab": vocab,
                "n_docs_train": len(train_idx), "n_docs_val": len(val_idx)}
        # written last: its presence marks a complete cache entry
        _atomic_write(meta_path, [json.dumps(meta, indent=1).encode()])
    meta = json.loads(meta_path.read_text())
    dtype = _token_dtype(vocab)
    return TokenData(train=_memmap(cache / f"{key}.train", dtype), val=_memmap(cache / f"{key}.val", dtype),
                     vocab=vocab, tokenizer=tokenizer, corpus_hash=digest,
                     n_docs_train=meta["n_docs_train"], n_docs_val=meta["n_docs_val"])


def _memmap(path: Path, dtype: Any) -> np.ndarray:
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


def _read_bin(path: Path) -> np.ndarray:
    if not path.exists():
        raise DataError(f"The corpus path {str(path)!r} does not exist.")
    size = path.stat().st_size
    if size < 2:
        raise DataError(f"The corpus {str(path)!r} is empty (no tokens).")
    if size % 2:
        raise DataError(f"{str(path)!r} is not a uint16 token file: its size ({size} bytes) is odd.")
    return np.memmap(path, dtype=np.uint16, mode="r")


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


# -- sampling for the trainer (torch imported here only: the reader above needs none) ------------------


def check_batch(train: np.ndarray, batch_tokens: int, what: str) -> None:
    """A batch needs ``batch_tokens + 1`` tokens of training data (inputs and their next tokens)."""
    if len(train) < batch_tokens + 1:
        raise DataError(f"The batch ({batch_tokens} tokens) is larger than the training data of "
                        f"{what} ({len(train)} tokens).")


def batch(data: np.ndarray, seed: int, step: int, n_seq: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training batch of ``step``: ``n_seq`` random windows of ``context + 1`` tokens (inputs and
    next-token targets), a pure function of ``(seed, step)`` (a generator seeded from both)."""
    import torch

    state = np.random.SeedSequence([seed, step]).generate_state(2, dtype=np.uint32)
    g = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    starts = torch.randint(len(data) - context, (n_seq,), generator=g).numpy()
    windows = torch.from_numpy(data[starts[:, None] + np.arange(context + 1)].astype(np.int64))
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


def eval_windows(val: np.ndarray, eval_tokens: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed evaluation windows: ``eval_tokens // context`` windows spread evenly over the validation
    stream (fewer if it is shorter; they never overlap), the same for every run of a corpus."""
    import torch

    n = min(eval_tokens // context, (len(val) - 1) // context)
    if n < 1:
        raise DataError(f"The validation split has {len(val)} tokens; one window needs context + 1 = "
                        f"{context + 1}. Use a larger corpus or a shorter context.")
    if n < eval_tokens // context:
        log.warning("the validation split holds %d tokens: evaluating on %d tokens, not %d",
                    len(val), n * context, eval_tokens)
    starts = np.linspace(0, len(val) - context - 1, n).round().astype(np.int64)
    windows = torch.from_numpy(val[starts[:, None] + np.arange(context + 1)].astype(np.int64))
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


def mean_eval_loss(model: Any, x: torch.Tensor, y: torch.Tensor, micro: int, autocast: Any) -> float:
    """The mean loss (nats/token) of ``model`` over the windows ``x``/``y`` (:func:`eval_windows`), ``micro``
    windows at a time under ``autocast``, without gradients; the model is left in the mode it was in.
    The trainer's evaluation and every extra one (post-training quantisation) go through here, so they
    agree to the bit."""
    import torch

    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), micro):
            with autocast:
                _, loss = model(x[i:i + micro], y[i:i + micro])
            assert loss is not None
            total += loss.item() * len(x[i:i + micro])
    model.train(was_training)
    return total / len(x)
