"""Publishing the driver's GPUs to the store: the CLI and the scheduler read GPUs there, never from
the driver."""

from __future__ import annotations

import logging

from ....gpu.driver import DriverError
from ..snapshot import READY, STATIC
from .context import DaemonContext

log = logging.getLogger("runai_lite.daemon")


def publish_gpus(ctx: DaemonContext) -> None:
    """Write the driver's GPUs to the store, keep the static partitions of MIG GPUs the scheduler
    does not manage, and adopt partitions found on dynamic-MIG GPUs that the store does not know
    (made before it was marked) as idle."""
    devices = ctx.driver.gpus()
    with ctx.store.write() as conn:
        known = {g["gpu_index"]: g for g in ctx.store.gpus(ctx.node, conn)}
        conn.execute(f"DELETE FROM gpus WHERE node = ? AND gpu_index NOT IN ({','.join('?' * len(devices))})",
                     (ctx.node, *[d.index for d in devices]))
        for device in devices:
            model = ctx.driver.model(device.index)
            dynamic = bool(known[device.index]["dynamic_mig"]) if device.index in known else False
            if known.get(device.index) is not None and known[device.index]["uuid"] != device.uuid:
                dynamic = False  # a different GPU now has this index
            conn.execute(
                "INSERT OR REPLACE INTO gpus (node, gpu_index, uuid, model, memory_mib, memory_slices, mig_capable, "
                "mig_enabled, simulated, dynamic_mig) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ctx.node, device.index, device.uuid, model.name, device.memory_mib, model.memory_slices,
                 int(model.mig_capable), int(device.mig_enabled), int(device.simulated), int(dynamic)))
            _publish_partitions(ctx, conn, device.index, dynamic and device.mig_enabled, device.mig_enabled)


def _publish_partitions(ctx: DaemonContext, conn, index: int, dynamic: bool, mig_enabled: bool) -> None:
    actual = ctx.driver.mig_instances(index) if mig_enabled else []
    rows = conn.execute("SELECT start, profile, state FROM mig_layout WHERE node = ? AND gpu_index = ?",
                        (ctx.node, index)).fetchall()
    if not dynamic:
        conn.execute("DELETE FROM mig_layout WHERE node = ? AND gpu_index = ?", (ctx.node, index))
    tracked = {(r["start"], r["profile"]) for r in rows}
    for inst in actual:
        if not inst.complete or (dynamic and (inst.start, inst.profile) in tracked):
            continue
        conn.execute(
            "INSERT OR REPLACE INTO mig_layout (node, gpu_index, start, profile, size, state, uuid) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ctx.node, index, inst.start, inst.profile, inst.size, READY if dynamic else STATIC, inst.uuid))


def refresh_mig_modes(ctx: DaemonContext) -> None:
    """An administrator may switch MIG mode on or off (nvidia-smi -mig) while the daemon runs."""
    try:
        modes = {d.index: int(d.mig_enabled) for d in ctx.driver.gpus()}
    except DriverError as error:
        log.warning("cannot read the GPUs' MIG modes: %s", error.message)
        return
    with ctx.store.write() as conn:
        for index, enabled in modes.items():
            conn.execute("UPDATE gpus SET mig_enabled = ? WHERE node = ? AND gpu_index = ? AND mig_enabled != ?",
                         (enabled, ctx.node, index, enabled))
