"""runai-lite's own placement policy (work in progress while benchmarking)."""

from __future__ import annotations

from .fragmentation import FragmentModel
from .policies import FragmentScorer, ScoredPolicy


def make_default(model: FragmentModel) -> ScoredPolicy:
    return ScoredPolicy("default", FragmentScorer(model))
