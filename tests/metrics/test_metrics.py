"""The metrics' figures from real snapshots and plans, the registry's samples as a scrape reads
them, and the HTTP endpoint's answers."""

from __future__ import annotations

import pytest

from runai_lite.agent import ActualInstance, GpuReconcileResult, InstanceError, ReconcileResult
from runai_lite.errors import UserError
from runai_lite.metrics import Metrics, pending_category, state_figures
from runai_lite.metrics.endpoint import Endpoint, Heartbeat, parse_address
from runai_lite.model import JobStatus, Plan, Preempt
from runai_lite.scheduler import plan
from tests.metrics.scrape import get, samples, value
from tests.scheduler.builders import a100, cluster, gpu, job, node, on_gpus, on_mig, on_share, running

BUSY = [running(job("big", gpu="1"), on_gpus("n1", 0)),
        running(job("half", gpu="0.5"), on_share("n1", 1, 0.5)),
        running(job("m1", mig_profile="2g.10gb"), on_mig("n2", 0, "2g.10gb", 0)),
        running(job("m2", mig_profile="1g.5gb"), on_mig("n2", 0, "1g.5gb", 6))]
NODES = [node("n1", gpu(0, "T4"), gpu(1, "T4")), node("n2", a100(0, idle=(("1g.5gb", 5),)))]


def test_state_figures_count_capacity_allocations_and_partitions():
    figures = state_figures(cluster(NODES, [*BUSY, job("waits", gpu="2")]))
    assert figures.capacity == {("n1", "shared"): 2, ("n2", "dynamic-mig"): 1}
    assert figures.allocated == {("n1", "whole"): 1.0, ("n1", "fraction"): 0.5, ("n2", "mig"): 0.429}
    assert figures.allocations == {("n1", "whole"): 1, ("n1", "fraction"): 1, ("n2", "mig"): 2}
    assert figures.mig_instances == {("n2", "2g.10gb", "used"): 1, ("n2", "1g.5gb", "used"): 1,
                                     ("n2", "1g.5gb", "idle"): 1}
    assert figures.jobs == {"Running": 4, "Pending": 1}


def test_finished_jobs_hold_nothing():
    done = running(job("done", gpu="1"), on_gpus("n1", 0), status=JobStatus.SUCCEEDED)
    assert state_figures(cluster(NODES, [done])).allocated == {}


# Each scenario: a cluster where one pending job waits, and the category its real reason falls in.
PENDING = [
    ("gpu-capacity", NODES, [*BUSY, job("waits", gpu="2")]),
    ("mig", [node("n2", a100(0))], [running(job("m", mig_profile="7g.40gb"), on_mig("n2", 0, "7g.40gb", 0)),
                                    job("waits", mig_profile="3g.20gb")]),
    ("quota", NODES, [job("waits", type="interactive", gpu="2")]),
    ("host-resources", [node("n1", gpu(0, "T4"), cpu_milli=1000)], [job("waits", gpu="1", cpu_milli=4000)]),
    ("node-filter", [node("n1", gpu(0, "T4"), schedulable=False)], [job("waits", gpu="1")]),
]


@pytest.mark.parametrize(("category", "nodes", "jobs"), PENDING, ids=[p[0] for p in PENDING])
def test_each_pending_reason_falls_in_its_category(category, nodes, jobs):
    why = plan(cluster(nodes, jobs, quotas={"team-a": 1})).pending_reason("waits")
    assert why is not None and pending_category(why) == category, why


def test_a_scrape_reads_what_the_loops_handed_over():
    metrics = Metrics()
    snapshot = cluster(NODES, [*BUSY, job("waits", gpu="2")])
    metrics.observe_state(snapshot)
    # planned, its eviction refused, then planned again and done: counted once
    metrics.observe_plan(snapshot, Plan(actions=(Preempt(job="half", reason="r"),)), 0.02)
    metrics.observe_plan(snapshot, Plan(actions=(Preempt(job="half", reason="r"),), pending=(("waits", "x"),)),
                         0.02, waiting={"m1": "waiting-for-device"}, preempted=["half"])
    mig = ActualInstance(profile="1g.5gb", start=0, size=1, uuid="MIG-1", gi_id=1, ci_id=0, memory_mib=4864)
    metrics.observe_mig(ReconcileResult(gpus=(GpuReconcileResult(
        gpu_index=0, gpu_uuid="GPU-0", created=(mig, mig), destroyed=(mig,),
        errors=(InstanceError(action="create", code="insufficient-resources", message="m", retryable=True),
                InstanceError(action="destroy", code="in-use", message="kept", retryable=True))),)))
    metrics.observe_api_request("list", 200)
    metrics.observe_api_request("patch", 409)
    scraped = samples(metrics.exposition().decode())
    assert value(scraped, "runai_lite_gpus_allocated", node="n1") == 1.5
    assert value(scraped, "runai_lite_gpu_capacity") == 3
    assert scraped["runai_lite_pending_jobs"] == {frozenset({("reason", "gpu-capacity")}): 1,
                                                  frozenset({("reason", "waiting-for-device")}): 1}
    assert value(scraped, "runai_lite_preemptions_total", project="team-a") == 1
    assert value(scraped, "runai_lite_mig_operations_total", operation="create") == 2
    assert value(scraped, "runai_lite_mig_operations_total", operation="destroy") == 1
    # a partition kept because a process uses it is not a failure
    assert scraped["runai_lite_mig_failures_total"] == {
        frozenset({("operation", "create"), ("code", "insufficient-resources")}): 1}
    assert value(scraped, "runai_lite_scheduling_pass_duration_seconds_count") == 2  # both passes
    assert value(scraped, "runai_lite_api_requests_total", verb="patch", code="409") == 1
    metrics.observe_state(cluster(NODES[:1], []))  # n2 went away: its series go too
    metrics.observe_no_pending()
    scraped = samples(metrics.exposition().decode())
    assert {dict(k)["node"] for k in scraped["runai_lite_gpu_capacity"]} == {"n1"}
    assert "runai_lite_mig_instances" not in scraped and "runai_lite_pending_jobs" not in scraped


def test_the_endpoint_serves_metrics_and_probes():
    clock = [0.0]
    heartbeat = Heartbeat(stale_after=30, monotonic=lambda: clock[0])
    metrics = Metrics()
    endpoint = Endpoint(metrics.exposition, heartbeat.alive, heartbeat.ready, host="127.0.0.1", port=0).start()
    url = f"http://127.0.0.1:{endpoint.port}"
    try:
        assert get(url + "/healthz") == (200, "ok\n")
        status, text = get(url + "/readyz")
        assert status == 503 and "first pass" in text
        heartbeat.beat()
        assert get(url + "/readyz") == (200, "ok\n")
        clock[0] = 31.0
        status, text = get(url + "/healthz")
        assert status == 503 and "not turned for 31s" in text
        status, text = get(url + "/metrics")
        assert status == 200 and "runai_lite_mig_operations_total" in samples(text)
        assert get(url + "/other")[0] == 404
    finally:
        endpoint.stop()


@pytest.mark.parametrize(("text", "expected"), [("9400", ("127.0.0.1", 9400)), ("0.0.0.0:80", ("0.0.0.0", 80)),
                                                ("[::1]:9400", ("::1", 9400))])
def test_metrics_addresses(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "host", "host:", ":9400", "1.2.3.4:70000", "localhost:http"])
def test_bad_metrics_addresses_are_refused(text):
    with pytest.raises(UserError, match="HOST:PORT"):
        parse_address(text)
