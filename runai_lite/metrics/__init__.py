"""Prometheus metrics of runai-lite: one definition (`registry.Metrics`) fed from snapshots, plans
and MIG reconcile results, pure figures behind it (`figures`), and the small HTTP endpoint the
in-cluster programs and the embedded daemon serve them on (`endpoint`)."""

from .figures import pending_category, state_figures
from .registry import FAMILIES, Metrics

__all__ = ["FAMILIES", "Metrics", "pending_category", "state_figures"]
