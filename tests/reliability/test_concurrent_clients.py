"""Concurrency (issue 6 item 2), CI-sized: several processes submit, list and delete against one
home at once. Every job is recorded exactly once, nothing is over-committed, and no command fails
(no "database is locked" reaches anyone). The full 8 × 200 run is
`python -m benchmarks.concurrency_harness` (figures in docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.concurrency_harness import run

pytestmark = pytest.mark.e2e


def test_four_processes_submitting_deleting_and_listing_at_once(tmp_path: Path) -> None:
    result = run(tmp_path / "home", processes=4, jobs=32)
    assert result.problems == []
    assert sum(len(r.submitted) for r in result.reports) == 32
    assert sum(len(r.deleted) for r in result.reports) == 8  # every fourth job of each process
    assert all(r.latencies.get("list") for r in result.reports)
