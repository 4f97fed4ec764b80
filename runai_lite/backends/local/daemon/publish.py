"""Publishing the driver's GPUs to the store: the CLI and the scheduler read GPUs there, never from
the driver. A daemon that drives real GPUs publishes only those whose machine-wide lock it holds
(`gpu_ownership.py`); the others, and who has them, go to `ctx.foreign_gpus` and the config's
`foreign_gpus` (for `runai-adm local status` and pending reasons)."""

from __future__ import annotations

import logging

from ....gpu.driver import DriverError
from ..store import GpuRow, PartitionRow, PartitionState
from .context import DaemonContext

log = logging.getLogger("runai_lite.daemon")


def publish_gpus(ctx: DaemonContext) -> None:
    """Write the driver's GPUs to the store, keep the static partitions of MIG GPUs the scheduler
    does not manage, and adopt partitions found on dynamic-MIG GPUs that the store does not know
    (made before it was marked) as idle."""
    devices = ctx.driver.gpus()
    if ctx.gpu_locks is not None:
        try:
            foreign = {uuid: owner.why(uuid) for uuid, owner in ctx.gpu_locks.claim(d.uuid for d in devices).items()}
        except OSError as error:  # no lock, no GPU: another daemon may be using them
            foreign = {d.uuid: f"cannot take its lock in {ctx.gpu_locks.directory}: {error}" for d in devices}
        for uuid in foreign.keys() - ctx.foreign_gpus.keys():
            log.warning("leaving %s alone: %s", uuid, foreign[uuid])
        ctx.foreign_gpus = foreign
        devices = [d for d in devices if d.uuid not in foreign]
    with ctx.store.write() as conn:
        ctx.store.set_config(conn, "foreign_gpus", ctx.foreign_gpus)
        known = {g.gpu_index: g for g in ctx.store.gpus(ctx.node, conn)}
        layout = ctx.store.mig_layout(ctx.node, conn)
        rows = []
        for device in devices:
            model = ctx.driver.model(device.index)
            before = known.get(device.index)
            dynamic = before is not None and before.dynamic_mig and before.uuid == device.uuid  # else a new GPU
            rows.append(GpuRow(node=ctx.node, gpu_index=device.index, uuid=device.uuid, model=model.name,
                               memory_mib=device.memory_mib, memory_slices=model.memory_slices,
                               mig_capable=model.mig_capable, mig_enabled=device.mig_enabled,
                               simulated=device.simulated, dynamic_mig=dynamic))
        ctx.store.publish_gpus(conn, ctx.node, rows)
        for gpu in rows:
            tracked = {(p.start, p.profile) for p in layout if p.gpu_index == gpu.gpu_index}
            _publish_partitions(ctx, conn, gpu, tracked)


def _publish_partitions(ctx: DaemonContext, conn, gpu: GpuRow, tracked: set[tuple[int, str]]) -> None:
    dynamic = gpu.dynamic_mig and gpu.mig_enabled
    actual = ctx.driver.mig_instances(gpu.gpu_index) if gpu.mig_enabled else []
    if not dynamic:
        ctx.store.forget_partitions(conn, ctx.node, gpu.gpu_index)
    for inst in actual:
        if not inst.complete or (dynamic and (inst.start, inst.profile) in tracked):
            continue
        ctx.store.put_partition(conn, PartitionRow(
            node=ctx.node, gpu_index=gpu.gpu_index, start=inst.start, profile=inst.profile, size=inst.size,
            state=PartitionState.READY if dynamic else PartitionState.STATIC, uuid=inst.uuid))


def refresh_mig_modes(ctx: DaemonContext) -> None:
    """An administrator may switch MIG mode on or off (nvidia-smi -mig) while the daemon runs."""
    try:
        modes = {d.index: d.mig_enabled for d in ctx.driver.gpus()}
    except DriverError as error:
        log.warning("cannot read the GPUs' MIG modes: %s", error.message)
        return
    with ctx.store.write() as conn:
        for index, enabled in modes.items():
            ctx.store.set_mig_enabled(conn, ctx.node, index, enabled)
