"""The one definition of runai-lite's Prometheus metrics, fed from what the control loops already
produce: the snapshot each pass reads, the plan it computes, the MIG reconcile results and the
Kubernetes API requests. The embedded daemon, the Kubernetes controller and the node agent each
hold one `Metrics` and hand it those results; nothing else in the code touches a metric.

Each `Metrics` has its own registry (not the process-wide default), so two controllers in one test
process, or a daemon restarted in-process, never share counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..agent import ReconcileResult
from ..model import Plan, Snapshot
from .figures import StateFigures, pending_figures, preempted_projects, state_figures

PREFIX = "runai_lite"

# Name -> help of every metric family exposed (without the _total/_bucket suffixes). The Grafana
# dashboard's queries are checked against these names (tests/metrics).
FAMILIES = {
    f"{PREFIX}_gpu_capacity": "GPUs on a node, by how they are used (shared, dynamic-mig, mig)",
    f"{PREFIX}_gpus_allocated": "GPUs held by jobs, by allocation kind (whole, fraction, mig: its compute share)",
    f"{PREFIX}_allocations": "Jobs holding GPUs, by allocation kind",
    f"{PREFIX}_mig_instances": "MIG instances, by profile and state (used, idle)",
    f"{PREFIX}_jobs": "Jobs the scheduler sees, by status",
    f"{PREFIX}_pending_jobs": "Jobs left pending by the last plan, by reason",
    f"{PREFIX}_preemptions": "Jobs preempted, by project",
    f"{PREFIX}_mig_operations": "MIG instances created and destroyed",
    f"{PREFIX}_mig_failures": "MIG creates and destroys that failed, by error code",
    f"{PREFIX}_scheduling_pass_duration_seconds": "Time of one scheduling pass: reading the state, planning, applying",
    f"{PREFIX}_api_requests": "Kubernetes API requests, by verb and HTTP status code",
}

# A pass takes milliseconds on a workstation and up to seconds on a 1,000-node cluster.
PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# An in-use partition is kept on purpose (a process still holds it), not a failed destroy.
KEPT_IN_USE = "in-use"


class _StateCollector(Collector):
    """Gauges for the latest snapshot and plan, rebuilt at each scrape from the figures, so a node,
    profile or reason that went away stops being reported instead of keeping its last value."""

    def __init__(self) -> None:
        self.state = StateFigures()
        self.pending: Mapping[str, int] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = (
            ("gpu_capacity", ("node", "mode"), self.state.capacity),
            ("gpus_allocated", ("node", "kind"), self.state.allocated),
            ("allocations", ("node", "kind"), self.state.allocations),
            ("mig_instances", ("node", "profile", "state"), self.state.mig_instances),
            ("jobs", ("status",), {(k,): v for k, v in self.state.jobs.items()}),
            ("pending_jobs", ("reason",), {(k,): v for k, v in self.pending.items()}),
        )
        for name, labels, values in families:
            family = GaugeMetricFamily(f"{PREFIX}_{name}", FAMILIES[f"{PREFIX}_{name}"], labels=labels)
            for key, value in sorted(values.items()):
                family.add_metric(list(key), value)
            yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._state = _StateCollector()
        self.registry.register(self._state)

        def family(kind, name: str, labels: tuple[str, ...] = (), **extra):
            return kind(f"{PREFIX}_{name}", FAMILIES[f"{PREFIX}_{name}"], labels, registry=self.registry, **extra)

        self.preemptions = family(Counter, "preemptions", ("project",))
        self.mig_operations = family(Counter, "mig_operations", ("operation",))
        self.mig_failures = family(Counter, "mig_failures", ("operation", "code"))
        self.pass_seconds = family(Histogram, "scheduling_pass_duration_seconds", buckets=PASS_BUCKETS)
        self.api_requests = family(Counter, "api_requests", ("verb", "code"))
        for operation in ("create", "destroy"):  # a zero is a fact worth plotting, not a missing series
            self.mig_operations.labels(operation)

    # -- what the loops hand over ----------------------------------------------------------------

    def observe_state(self, snapshot: Snapshot) -> None:
        """The cluster as a pass read it: capacity, allocations, MIG instances, jobs."""
        self._state.state = state_figures(snapshot)

    def observe_plan(self, snapshot: Snapshot, plan: Plan, seconds: float,
                     waiting: Mapping[str, str] | None = None, preempted: Iterable[str] = ()) -> None:
        """A pass that planned: why jobs wait, whom it preempted, how long the pass took. `waiting`
        are jobs the plan placed that still wait on the backend (by category); `preempted` the
        jobs the backend did stop (a refused eviction, planned again next pass, is not counted)."""
        self._state.pending = pending_figures(plan, waiting)
        for project in preempted_projects(preempted, snapshot):
            self.preemptions.labels(project).inc()
        self.pass_seconds.observe(seconds)

    def observe_no_pending(self) -> None:
        """A pass that found nothing to plan: no job waits."""
        self._state.pending = {}

    def observe_mig(self, result: ReconcileResult) -> None:
        for gpu in result.gpus:
            if gpu.created:
                self.mig_operations.labels("create").inc(len(gpu.created))
            if gpu.destroyed:
                self.mig_operations.labels("destroy").inc(len(gpu.destroyed))
        for error in result.errors:
            if error.code != KEPT_IN_USE:
                self.mig_failures.labels(error.action, error.code).inc()

    def observe_api_request(self, verb: str, code: int) -> None:
        self.api_requests.labels(verb, str(code)).inc()

    # -- what a scrape reads ---------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
