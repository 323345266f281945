"""Named schema migrations of the run store, applied in order (after sqlite-utils' migrations).

Each migration is a name and a list of SQL statements. A store records the names it has applied in
its ``migrations`` table and its schema version (the number applied) in ``meta``; opening a store
applies the missing ones, each in its own transaction. Never edit a migration that has shipped:
add a new one at the end.
"""

from __future__ import annotations

#: the value of meta.format that marks a file as a scalinglab store
FORMAT = "scalinglab.store"

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("0001_initial", [
        """CREATE TABLE meta (
               key   TEXT PRIMARY KEY,
               value TEXT NOT NULL
           )""",
        """CREATE TABLE migrations (
               name    TEXT PRIMARY KEY,
               applied TEXT NOT NULL            -- ISO 8601, UTC
           )""",
        """CREATE TABLE runs (
               id                   INTEGER PRIMARY KEY,
               name                 TEXT NOT NULL UNIQUE,
               status               TEXT NOT NULL DEFAULT 'planned'
                                    CHECK (status IN ('planned', 'running', 'done', 'failed')),
               config               TEXT NOT NULL,   -- RunConfig as JSON
               digest               TEXT NOT NULL,   -- RunConfig.digest(): every field but the name
               N_total              INTEGER,         -- parameters, count
               N_nonembed           INTEGER,
               N_nonzero            INTEGER,
               target_tokens        INTEGER,         -- tokens the run will see (whole steps)
               target_flops         REAL,            -- flops_per_token_full x target_tokens, FLOPs
               flops_per_token      REAL,            -- 6 N-style count, FLOPs/token
               flops_per_token_full REAL,            -- with attention and unembedding, FLOPs/token
               code_version         TEXT,
               host                 TEXT,
               error                TEXT,
               created              TEXT NOT NULL,
               updated              TEXT NOT NULL,
               summary              TEXT             -- the trainer's summary as JSON, once done
           )""",
        """CREATE TABLE points (
               run_id     INTEGER NOT NULL REFERENCES runs(id),
               step       INTEGER NOT NULL,          -- optimizer step
               tokens     INTEGER NOT NULL,          -- training tokens seen
               flops      REAL,                      -- cumulative training FLOPs, 6 N-style
               flops_full REAL,                      -- cumulative, with attention and unembedding
               train_loss REAL,                      -- nats/token
               eval_loss  REAL,                      -- held-out cross-entropy, nats/token
               lr         REAL,                      -- learning rate at this step
               wall_time  REAL,                      -- seconds since the run (first) started
               PRIMARY KEY (run_id, step)
           ) WITHOUT ROWID""",
        """CREATE TABLE fits (
               id      INTEGER PRIMARY KEY,
               law     TEXT NOT NULL,
               created TEXT NOT NULL,
               fit     TEXT NOT NULL                 -- Fit JSON (fit.result)
           )""",
    ]),
    ("0002_run_attempts", [
        # how many times the executor has started a run (a resume counts); index for status queries
        "ALTER TABLE runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX runs_status ON runs(status)",
    ]),
    ("0003_point_branches", [
        # WSD cooldown branches (Hägele et al. 2024): a run's points are keyed by (branch, step), the main
        # line being branch 0. SQLite cannot change a primary key in place: build the new table, copy
        # every point into the main line, swap the tables.
        """CREATE TABLE points_0003 (
               run_id     INTEGER NOT NULL REFERENCES runs(id),
               branch     INTEGER NOT NULL DEFAULT 0,  -- 0: the main line; k: the k-th cooldown branch
               step       INTEGER NOT NULL,          -- optimizer step (of a branch: its end step)
               tokens     INTEGER NOT NULL,          -- training tokens seen
               flops      REAL,                      -- cumulative training FLOPs, 6 N-style
               flops_full REAL,                      -- cumulative, with attention and unembedding
               train_loss REAL,                      -- nats/token
               eval_loss  REAL,                      -- held-out cross-entropy, nats/token
               lr         REAL,                      -- learning rate at this step
               wall_time  REAL,                      -- seconds since the run (first) started
               PRIMARY KEY (run_id, branch, step)
           ) WITHOUT ROWID""",
        """INSERT INTO points_0003 (run_id, branch, step, tokens, flops, flops_full, train_loss, eval_loss,
                                    lr, wall_time)
           SELECT run_id, 0, step, tokens, flops, flops_full, train_loss, eval_loss, lr, wall_time
           FROM points""",
        "DROP TABLE points",
        "ALTER TABLE points_0003 RENAME TO points",
    ]),
    ("0004_point_metrics", [
        # every field of a point beyond the fixed columns (the trainer's sparsity, N_nonzero, sparse-FLOP
        # counts, a branch's decay_steps ...), as one JSON object; NULL for a point that had none (every
        # point written before this migration). NaN and +-Infinity are written as Python's json module
        # writes them (the JSON5 tokens NaN, Infinity, -Infinity), so they round-trip.
        "ALTER TABLE points ADD COLUMN metrics TEXT",
    ]),
    ("0005_run_sources", [
        # a run imported from another tracker (W&B, TensorBoard, MLflow; scalinglab.ingest): JSON of its
        # provenance (source format, path, original run id, metric keys) and the run fields known there
        # (N counts, batch, peak lr, schedule ...); NULL for a run scalinglab trained
        "ALTER TABLE runs ADD COLUMN source TEXT",
    ]),
]

SCHEMA_VERSION = len(MIGRATIONS)
