"""The launch unit: start bound jobs whose resources are really free (their MIG partition exists,
no preempted or deleted job still runs on their GPU), with their device environment and
enforcement, through the tracker.

A job runs as its submitter (`JobRow.submitter`): their account, groups and umask (switched to
only by a root daemon), their submit directory, and the environment of their submitting shell, to
which the daemon adds only its own variables (GPU visibility, `RUNAI_*`, enforcement). A job
recorded before submitters were (None) runs as the daemon, with the daemon's environment."""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections.abc import Mapping

from ....devices import container_delivery, container_flags
from ....gpu.driver import DriverError
from ....model import Allocation, Submitter
from ...attempts import separator
from .. import events as ev
from .. import machine
from ..container_host import cdi_gpus
from ..crashpoints import crash_point
from ..runner import PROCESS, container_argv, device_grant, large_shm_mib, launch_environment
from ..store import JobRow, PartitionRow, PartitionState
from ..tracking.devices import JobDevices, job_devices
from ..tracking.protocol import RunAs
from .context import DaemonContext
from .mig import PARTITION_FAILED
from .supervise import held_by_stopping_jobs

log = logging.getLogger("runai_lite.daemon")


class Launcher:
    def __init__(self, ctx: DaemonContext):
        self.ctx = ctx

    def __call__(self, now: float) -> bool:
        ctx = self.ctx
        bound = [row for row in ctx.store.bound_jobs() if not row.delete_requested]
        if not bound:
            return False
        busy_gpus = held_by_stopping_jobs(ctx.store)
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
        # submitter's environment (the daemon's for jobs recorded without one) with it, PYTHONPATH and
        # LD_PRELOAD prepended rather than replaced.
        overlay = launch_environment(spec, row.id, granted)
        submitter = row.submitter  # the submit-time environment; the daemon's own only for old rows
        base: Mapping[str, str] = submitter.env if submitter is not None else os.environ
        env = launch_environment(spec, row.id, granted, base=base)
        if in_container:
            delivery = container_delivery(row.runtime, granted.devices, real_gpus=not ctx.driver.simulated,
                                          cdi_names=cdi_gpus() if granted.devices else frozenset())
            argv = container_argv(ctx.container_host(row.runtime), row.id, spec, overlay,
                                  extra=container_flags(granted, delivery),
                                  large_shm_mib=large_shm_mib(spec, machine.memory_mib() or 0) if spec.large_shm else 0)
            cwd = None
        else:
            argv, cwd = list(spec.command), spec.working_dir or (submitter.cwd if submitter is not None else None)
        refusal = _cannot_run_as(submitter)
        number = row.attempts + 1
        header = None
        if number > 1:  # the log says where this attempt's output starts, and how the last one ended
            previous = {a.number: a for a in ctx.store.attempts(row.id)}.get(number - 1)
            header = separator(number, previous)
        with ctx.store.write() as conn:
            if not ctx.store.record_start(conn, row, now, alloc, json.dumps(overlay, sort_keys=True),
                                          enforcement.mechanism.value if enforcement else None,
                                          enforcement.limit_mib if enforcement else alloc.memory_mib):
                return False
            ctx.store.add_event(conn, row.id, ev.STARTED, _started_message(row, alloc, number), now)
        crash_point("start-recorded")
        if refusal:
            ctx.tracker.launch_failed(row.id, number, f"cannot start the job: {refusal}", 126)
            return True
        try:
            launched = ctx.tracker.launch(row.id, number, argv, env, cwd, run_as=_run_as(submitter),
                                          devices=self._devices(on_gpus), header=header)
        except OSError as error:
            ctx.tracker.launch_failed(row.id, number, f"cannot start the job: {error}", 126)
            return True
        pid = launched.pid
        crash_point("process-launched")
        register = getattr(ctx.driver, "register_process", None)
        if register is not None:
            for uuid in alloc.device_uuids:
                register(uuid, pid)
        with ctx.store.write() as conn:
            ctx.store.record_pid(conn, row.id, number, pid)
            ctx.store.add_event(conn, row.id, ev.DEVICE_CONFINEMENT,
                                f"{launched.confinement.value}: {launched.confinement_note}", now)
        return True

    def _devices(self, alloc: Allocation | None) -> JobDevices:
        """The device nodes the job may open: its GPUs, or its MIG instance's GPU and capabilities."""
        if alloc is None:
            return JobDevices()
        mig = None
        if alloc.kind == "mig" and alloc.mig_uuid and self.ctx.tracker.confiner.nodes.present:
            try:
                found = [m for m in self.ctx.driver.mig_instances(alloc.gpu_indices[0]) if m.uuid == alloc.mig_uuid]
            except DriverError:
                found = []
            if found:
                mig = (found[0].gpu_index, found[0].gi_id, found[0].ci_id)
        return job_devices(alloc.gpu_indices, mig)


def _waiting_for(alloc: Allocation, busy: set[tuple[int, int | None]], layout: dict[tuple, PartitionRow]) -> str | None:
    """Why the job cannot start yet: its partition is not made, or a stopping job still holds its
    partition or GPU (until all of that job's processes are gone and it is settled)."""
    if alloc.kind == "mig":
        part = layout.get((alloc.gpu_indices[0], alloc.mig_start, alloc.mig_profile))
        if part is None or part.state != PartitionState.READY or not part.uuid:
            return f"starting: creating MIG partition {alloc.mig_profile} at slice {alloc.mig_start}"
        if (alloc.gpu_indices[0], alloc.mig_start) in busy:
            return "starting: waiting for a preempted job to stop on its MIG partition"
        return None
    if {index for index, _ in busy}.intersection(alloc.gpu_indices):
        return "starting: waiting for a preempted job to stop on its GPU"
    return None


def _run_as(submitter: Submitter | None) -> RunAs | None:
    if submitter is None:
        return None
    return RunAs(uid=submitter.uid, gid=submitter.gid, groups=submitter.groups, umask=submitter.umask)


def _cannot_run_as(submitter: Submitter | None) -> str | None:
    """Why this daemon cannot run a job as its submitter (only root switches accounts)."""
    if submitter is None or os.geteuid() in (0, submitter.uid):
        return None
    return (f"it was submitted by {submitter.user} (uid {submitter.uid}) and this daemon runs as uid "
            f"{os.geteuid()}, which cannot start processes as another account")


def _started_message(row: JobRow, alloc: Allocation, attempt: int) -> str:
    where = ",".join(alloc.device_uuids) or "no GPU"
    how = "directly" if row.runtime == PROCESS else f"with {row.runtime}"
    return f"attempt {attempt} started {how} on {alloc.node} ({where})"
