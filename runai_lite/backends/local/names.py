"""The job and project names TAB completion offers, read straight from a home's database.

Every TAB runs `runai completion-names`, so it must cost next to nothing: this reads the names
read-only with `sqlite3` alone, without `store.Store` (whose rows are pydantic models, the bulk of a
command's start-up). Only names are read; `store.py` stays the one module that writes or interprets
jobs, and `tests/local/test_completion_names.py` holds this module to `Store.live_jobs`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

DELETED = "Deleted"  # JobStatus.DELETED's value, as the store writes it


def job_names(db: Path, project: str) -> list[str]:
    """Names of the project's jobs that are not deleted, oldest first ([] without a database)."""
    return _names(db, "SELECT name FROM jobs WHERE project = ? AND status != ? ORDER BY submitted_at",
                  (project, DELETED))


def project_names(db: Path) -> list[str]:
    return _names(db, "SELECT name FROM projects ORDER BY name", ())


def _names(db: Path, query: str, parameters: tuple) -> list[str]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=2.0)
    try:
        return [row[0] for row in conn.execute(query, parameters)]
    finally:
        conn.close()
