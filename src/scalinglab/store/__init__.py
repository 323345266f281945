"""The SQLite run store: runs, curve points and fits, with named migrations and one writer."""

from .imported import RUN_FIELDS, ImportedRun
from .migrations import FORMAT, MIGRATIONS, SCHEMA_VERSION
from .sqlite import METRIC_PREFIX, POINT_FIELDS, POINT_SELECTIONS, STATUSES, TABLE_COLUMNS, RunRecord, Store

__all__ = ["FORMAT", "RUN_FIELDS", "ImportedRun", "METRIC_PREFIX", "MIGRATIONS", "POINT_FIELDS", "POINT_SELECTIONS", "SCHEMA_VERSION",
           "STATUSES", "TABLE_COLUMNS", "RunRecord", "Store"]
