"""The MIG unit: make the dynamic-MIG GPUs match the store's layout through `agent.reconcile`, and
record what now exists (partitions made or destroyed, their UUIDs given to the jobs bound there)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ....agent import DesiredInstance, reconcile
from .. import events as ev
from ..crashpoints import crash_point
from ..store import PartitionRow, PartitionState
from .context import DaemonContext
from .publish import refresh_mig_modes
from .supervise import held_by_stopping_jobs

log = logging.getLogger("runai_lite.daemon")
PARTITION_FAILED = "waiting for MIG partition"  # prefix of a pending reason carrying a driver error


@dataclass
class RetryClock:
    """Exponential backoff per key, for driver calls that failed."""

    delays: dict[object, tuple[float, float]] = field(default_factory=dict)  # key -> (next try, delay)

    def ready(self, key: object, now: float) -> bool:
        entry = self.delays.get(key)
        return entry is None or now >= entry[0]

    def failed(self, key: object, now: float) -> None:
        delay = min(30.0, self.delays.get(key, (0.0, 0.25))[1] * 2)
        self.delays[key] = (now + delay, delay)

    def succeeded(self, key: object) -> None:
        self.delays.pop(key, None)


class MigRealiser:
    def __init__(self, ctx: DaemonContext):
        self.ctx = ctx
        self.retry = RetryClock()
        self._last_drift = 0.0

    def __call__(self, now: float) -> bool:
        ctx = self.ctx
        drift = now - self._last_drift >= ctx.settings.drift_seconds
        work: dict[int, list[PartitionRow]] = {}
        for part in ctx.store.mig_layout(ctx.node):
            if part.state != PartitionState.STATIC:
                work.setdefault(part.gpu_index, []).append(part)
        dynamic = [g.gpu_index for g in ctx.store.gpus(ctx.node) if g.dynamic_mig]
        due = [index for index in dynamic if self.retry.ready(("mig", index), now) and (drift or any(
            p.state in (PartitionState.CREATING, PartitionState.DESTROYING) for p in work.get(index, [])))]
        # Who holds what is read only when a GPU is due: every job's row, parsed, is most of what an
        # idle cycle would cost with a long queue (38 ms a cycle, twice a second, for 1,000 jobs).
        holding, stopping = (self._holders(), held_by_stopping_jobs(ctx.store)) if due else (set(), set())
        desired: dict[int, list[DesiredInstance]] = {}
        for index in due:
            parts = work.get(index, [])
            if any(p.state == PartitionState.DESTROYING and (index, p.start) in stopping for p in parts):
                continue  # a stopping job still runs on a partition to be destroyed: wait for it
            desired[index] = [
                DesiredInstance(profile=p.profile, start=p.start,
                                required=p.state == PartitionState.CREATING or (index, p.start) in holding)
                for p in parts if p.state != PartitionState.DESTROYING
            ]
        if drift:
            self._last_drift = now
            refresh_mig_modes(ctx)
        if not desired:
            return False
        result = reconcile(ctx.driver, desired)
        crash_point("mig-reconciled")
        ctx.metrics.observe_mig(result)
        changed = False
        for gpu in result.gpus:
            changed |= self._record_layout(gpu, work.get(gpu.gpu_index, []), now)
            if gpu.errors:
                self.retry.failed(("mig", gpu.gpu_index), now)
            else:
                self.retry.succeeded(("mig", gpu.gpu_index))
        for error in result.machine_errors:
            log.error("MIG reconcile: %s", error.message)
        if changed:
            crash_point("mig-recorded")
        return changed

    def _holders(self) -> set[tuple[int, int]]:
        """Partitions (GPU, start) held by jobs that will run or run there (not stopping ones)."""
        return {(alloc.gpu_indices[0], alloc.mig_start) for row in self.ctx.store.active_jobs()
                if not row.stopping and (alloc := row.alloc) is not None and alloc.kind == "mig"
                and alloc.mig_start is not None}

    def _record_layout(self, gpu, parts: list[PartitionRow], now: float) -> bool:
        store = self.ctx.store
        actual = {(i.start, i.profile): i for i in gpu.instances}
        failures = {(e.start, e.profile): e for e in gpu.errors if e.action == "create"}
        changed = False
        with store.write() as conn:
            for part in parts:
                key = (part.start, part.profile)
                found = actual.get(key)
                if part.state == PartitionState.DESTROYING:
                    if found is None:
                        store.delete_partition(conn, part)
                        for job_id in {part.last_job, part.for_job} - {None}:
                            store.add_event(conn, job_id, ev.PARTITION_DESTROYED, f"{part.label} destroyed", now)
                        changed = True
                    continue
                if found is not None:
                    if part.state != PartitionState.READY or part.uuid != found.uuid:
                        store.partition_ready(conn, part, found.uuid)
                        if part.state == PartitionState.CREATING and part.for_job:
                            store.add_event(conn, part.for_job, ev.PARTITION_CREATED,
                                            f"{part.label} created ({found.uuid})", now)
                        changed = True
                    changed |= self._give_uuid(conn, gpu.gpu_index, gpu.gpu_uuid, part.start, found.uuid)
                elif part.state == PartitionState.READY and part.uuid is not None and key not in failures:
                    # an idle partition that vanished (destroyed outside runai-lite): forget it
                    store.delete_partition(conn, part)
                    changed = True
                elif key in failures and part.for_job:
                    store.set_pending_reason(conn, part.for_job,
                                             f"{PARTITION_FAILED} {part.label}: {failures[key].message}; retrying")
        return changed

    def _give_uuid(self, conn, index: int, gpu_uuid: str, start: int, mig_uuid: str) -> bool:
        """Bound jobs on the partition learn its UUID (and their GPU's)."""
        changed = False
        for row in self.ctx.store.bound_jobs(conn):
            alloc = row.alloc
            if (alloc and alloc.kind == "mig" and alloc.gpu_indices[0] == index and alloc.mig_start == start
                    and alloc.mig_uuid != mig_uuid):
                updated = alloc.model_copy(update={"mig_uuid": mig_uuid, "gpu_uuids": (gpu_uuid,)})
                self.ctx.store.update_job(conn, row.id, allocation=updated.model_dump_json())
                changed = True
        return changed
