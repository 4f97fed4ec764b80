"""Recording a plan as intents (the embedded `PlanApplier`): each action checked against the row as
it is now, a Reserve accounted for rather than dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from runai_lite.backends.local.intents import record_plan
from runai_lite.backends.local.store import GpuRow, Store
from runai_lite.model import Allocation, Bind, JobSpec, Plan, Reserve

GPU = GpuRow(node="n", gpu_index=0, uuid="GPU-0", model="T4", memory_mib=15360, memory_slices=0, mig_capable=False,
             mig_enabled=False, simulated=True, dynamic_mig=False)


@pytest.mark.parametrize("reserved_gpu, deleted, applied, bound", [
    (0, False, 2, True),  # a new shared GPU and its first fraction
    (7, False, 1, True),  # a GPU the store does not know: the reserve is skipped, the bind stands
    (0, True, 1, False),  # the job was deleted since the snapshot: only the reserve is left
])
def test_a_fraction_plan_is_recorded_reserve_included(tmp_path: Path, reserved_gpu: int, deleted: bool,
                                                      applied: int, bound: bool) -> None:
    store = Store(tmp_path / "state.db")
    with store.write() as conn:
        store.publish_gpus(conn, "n", [GPU])
        job = store.insert_job(conn, JobSpec(name="half", project="p", image="i", command=("true",)), "me",
                               "process", 1.0)
        if deleted:
            store.update_job(conn, job.id, delete_requested=1)
    alloc = Allocation(kind="fraction", node="n", gpu_indices=(0,), share_milli=500)
    plan = Plan(actions=(Reserve(node="n", gpu_index=reserved_gpu, reason="shared"),
                         Bind(job=job.id, allocation=alloc, reason="fits")))
    with store.write() as conn:
        assert record_plan(store, conn, plan, "n", 2.0).applied == applied
    assert (store.job(job.id).alloc == alloc) is bound
