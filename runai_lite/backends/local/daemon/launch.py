"""The launch unit: start bound jobs whose resources are really free (their MIG partition exists,
no preempted or deleted job still runs on their GPU), with their device environment and
enforcement, through the tracker."""

from __future__ import annotations

import json
import logging
import os
import traceback

from ....devices import container_flags
from ....model import Allocation
from .. import events as ev
from ..crashpoints import crash_point
from ..runner import PROCESS, container_argv, device_grant, launch_environment
from ..store import JobRow, PartitionRow, PartitionState
from .context import DaemonContext
from .mig import PARTITION_FAILED

log = logging.getLogger("runai_lite.daemon")


class Launcher:
    def __init__(self, ctx: DaemonContext):
        self.ctx = ctx

    def __call__(self, now: float) -> bool:
        ctx = self.ctx
        bound = [row for row in ctx.store.bound_jobs() if not row.delete_requested]
        if not bound:
            return False
        busy_gpus = self._gpus_of_stopping_jobs()
        layout = {(p.gpu_index, p.start, p.profile): p for p in ctx.store.mig_layout(ctx.node)}
        gpus = {g.gpu_index: g for g in ctx.store.gpus(ctx.node)}
        started = False
        for row in bound:
            alloc = row.alloc
            assert alloc is not None
            waiting = _waiting_for(alloc, busy_gpus, layout)
            if waiting:
                # the driver's reason why the partition could not be made says more than "creating"
                keep = alloc.kind == "mig" and (row.pending_reason or "").startswith(PARTITION_FAILED)
                if row.pending_reason != waiting and not keep:
                    with ctx.store.write() as conn:
                        ctx.store.update_job(conn, row.id, pending_reason=waiting)
                continue
            if alloc.kind == "mig":
                part = layout[(alloc.gpu_indices[0], alloc.mig_start, alloc.mig_profile)]
                alloc = alloc.model_copy(update={"mig_uuid": part.uuid, "gpu_uuids": (gpus[alloc.gpu_indices[0]].uuid,)})
            elif not alloc.gpu_uuids:
                alloc = alloc.model_copy(update={"gpu_uuids": tuple(gpus[i].uuid for i in alloc.gpu_indices)})
            try:
                memory = gpus[alloc.gpu_indices[0]].memory_mib if alloc.gpu_indices else None
                started |= self.launch(row, alloc, memory, now)
            except Exception:  # one job that cannot start must not keep the others from starting
                log.error("starting %s failed:\n%s", row.key, traceback.format_exc())
        return started

    def _gpus_of_stopping_jobs(self) -> set[int]:
        busy: set[int] = set()
        for row in self.ctx.store.supervised_jobs():
            alloc = row.alloc
            if row.stopping and alloc is not None and self.ctx.tracker.alive(row.id, row.attempts):
                busy.update(alloc.gpu_indices)
        return busy

    def launch(self, row: JobRow, alloc: Allocation, gpu_memory_mib: int | None, now: float) -> bool:
        ctx = self.ctx
        spec = row.job_spec
        on_gpus = alloc if alloc.gpu_indices else None  # a job that asked for no GPU gets none
        in_container = row.runtime != PROCESS
        granted = device_grant(on_gpus, ctx.mechanism, in_container=in_container, hami_core_path=ctx.hami_core_path,
                               gpu_memory_mib=gpu_memory_mib,
                               hami_shared_cache=None if in_container else str(ctx.home.run / f"{row.id}.cudevshr"))
        enforcement = granted.enforcement
        # `overlay` is what the job adds to an environment (kept for `runai exec`); `env` is the
        # daemon's environment with it, PYTHONPATH and LD_PRELOAD prepended rather than replaced.
        overlay = launch_environment(spec, row.id, granted)
        env = launch_environment(spec, row.id, granted, base=os.environ)
        if in_container:
            argv = container_argv(row.runtime, row.id, spec, overlay,
                                  extra=container_flags(granted, real_gpus=not ctx.driver.simulated))
            cwd = None
        else:
            argv, cwd = list(spec.command), spec.working_dir
        number = row.attempts + 1
        with ctx.store.write() as conn:
            if not ctx.store.record_start(conn, row, now, alloc, json.dumps(overlay, sort_keys=True),
                                          enforcement.mechanism.value if enforcement else None,
                                          enforcement.limit_mib if enforcement else alloc.memory_mib):
                return False
            ctx.store.add_event(conn, row.id, ev.STARTED, _started_message(row, alloc, number), now)
        crash_point("start-recorded")
        try:
            pid = ctx.tracker.launch(row.id, number, argv, env, cwd)
        except OSError as error:
            ctx.tracker.launch_failed(row.id, number, f"cannot start the job: {error}", 126)
            return True
        crash_point("process-launched")
        register = getattr(ctx.driver, "register_process", None)
        if register is not None:
            for uuid in alloc.device_uuids:
                register(uuid, pid)
        with ctx.store.write() as conn:
            ctx.store.record_pid(conn, row.id, number, pid)
        return True


def _waiting_for(alloc: Allocation, busy_gpus: set[int], layout: dict[tuple, PartitionRow]) -> str | None:
    if alloc.kind == "mig":
        part = layout.get((alloc.gpu_indices[0], alloc.mig_start, alloc.mig_profile))
        if part is None or part.state != PartitionState.READY or not part.uuid:
            return f"starting: creating MIG partition {alloc.mig_profile} at slice {alloc.mig_start}"
        return None
    if busy_gpus.intersection(alloc.gpu_indices):
        return "starting: waiting for a preempted job to stop on its GPU"
    return None


def _started_message(row: JobRow, alloc: Allocation, attempt: int) -> str:
    where = alloc.mig_uuid if alloc.kind == "mig" else ",".join(alloc.gpu_uuids) or "no GPU"
    how = "directly" if row.runtime == PROCESS else f"with {row.runtime}"
    return f"attempt {attempt} started {how} on {alloc.node} ({where})"
