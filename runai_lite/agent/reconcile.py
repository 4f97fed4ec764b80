"""Make the MIG instances on a machine's GPUs match a desired layout, through any `GpuDriver`.

This is the one place that realises MIG layouts: the embedded daemon calls it in-process and the
Kubernetes node agent (`runai-lite agent`) calls it with the layout read from its node. It knows
nothing of either backend.

Per GPU named in `desired`:
1. list the instances that exist;
2. destroy each one not in the desired layout (or left without its compute instance), unless a
   process still uses it: that one is kept and reported as an `in-use` error (a failed process
   query counts as in use);
3. create each *required* desired instance that is missing, at its explicit placement;
4. list again and report the actual layout.

Destroy comes before create so freed slices can be reused in the same pass. An instance that is
desired but not required (an idle partition kept for reuse) is kept when it exists and not
recreated when it does not. A failure on one instance or GPU is reported and the rest goes on.
Running it twice with the same input changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..gpu.driver import DriverError, GpuDevice, GpuDriver, MigDevice


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DesiredInstance(_Frozen):
    """A MIG instance that should exist: `profile` at memory slice `start`.

    `required=False` marks one that may stay if it exists (an idle partition kept for reuse) but is
    not worth creating.
    """

    profile: str
    start: int
    required: bool = True


class ActualInstance(_Frozen):
    """A MIG instance as it exists on a GPU (what the agent reports back)."""

    profile: str
    start: int
    size: int
    uuid: str
    gi_id: int
    ci_id: int
    memory_mib: int

    @classmethod
    def of(cls, device: MigDevice) -> ActualInstance:
        return cls(
            profile=device.profile, start=device.start, size=device.size, uuid=device.uuid,
            gi_id=device.gi_id, ci_id=device.ci_id, memory_mib=device.memory_mib,
        )


class InstanceError(_Frozen):
    """One thing the agent could not do. `code` is a `DriverError` code (`in-use` for an instance
    kept because processes use it); `retryable` says whether trying again later may work."""

    action: Literal["list", "create", "destroy"]
    code: str
    message: str
    retryable: bool
    profile: str | None = None
    start: int | None = None
    gi_id: int | None = None
    pids: tuple[int, ...] = ()


class GpuReconcileResult(_Frozen):
    gpu_index: int
    gpu_uuid: str
    instances: tuple[ActualInstance, ...] = ()  # the actual layout after reconciling, by start
    created: tuple[ActualInstance, ...] = ()
    destroyed: tuple[ActualInstance, ...] = ()
    errors: tuple[InstanceError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


class ReconcileResult(_Frozen):
    gpus: tuple[GpuReconcileResult, ...] = ()
    machine_errors: tuple[InstanceError, ...] = ()  # GPUs that could not be listed or found

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[InstanceError]:
        return [*self.machine_errors, *(e for g in self.gpus for e in g.errors)]

    def gpu(self, index: int) -> GpuReconcileResult:
        for result in self.gpus:
            if result.gpu_index == index:
                return result
        raise KeyError(index)


DesiredLike = DesiredInstance | tuple[str, int] | tuple[str, int, bool]


def reconcile(driver: GpuDriver, desired: Mapping[int | str, Iterable[DesiredLike]]) -> ReconcileResult:
    """Reconcile the GPUs named in `desired` (by index or GPU UUID) with their desired layouts.

    Each layout is a list of `DesiredInstance` or `(profile, start[, required])` tuples; an empty
    list clears the GPU of every instance no process uses. GPUs not named are left alone. Never
    raises a `DriverError`: failures come back in the result, per instance or per GPU.
    """
    try:
        devices = driver.gpus()
    except DriverError as error:
        return ReconcileResult(machine_errors=(_error("list", error),))
    results: list[GpuReconcileResult] = []
    unknown: list[InstanceError] = []
    for key, items in desired.items():
        device = _find_gpu(devices, key)
        if device is None:
            unknown.append(InstanceError(action="list", code="not-found", message=f"no GPU {key!r} on this machine", retryable=False))
        else:
            results.append(_reconcile_gpu(driver, device, _normalise(items)))
    return ReconcileResult(gpus=tuple(results), machine_errors=tuple(unknown))


def _find_gpu(devices: list[GpuDevice], key: int | str) -> GpuDevice | None:
    for device in devices:
        if device.index == key or device.uuid == key:
            return device
    return None


def _normalise(items: Iterable[DesiredLike]) -> dict[tuple[str, int], DesiredInstance]:
    """Desired instances by (profile, start); a repeated entry is required if any copy is."""
    wanted: dict[tuple[str, int], DesiredInstance] = {}
    for item in items:
        instance = item if isinstance(item, DesiredInstance) else DesiredInstance(profile=item[0], start=item[1], required=item[2] if len(item) > 2 else True)  # type: ignore[misc]
        key = (instance.profile, instance.start)
        if key in wanted and wanted[key].required:
            continue
        wanted[key] = instance
    return wanted


def _reconcile_gpu(driver: GpuDriver, device: GpuDevice, wanted: dict[tuple[str, int], DesiredInstance]) -> GpuReconcileResult:
    errors: list[InstanceError] = []
    try:
        existing = driver.mig_instances(device.index)
    except DriverError as error:
        return GpuReconcileResult(gpu_index=device.index, gpu_uuid=device.uuid, errors=(_error("list", error),))

    destroyed: list[ActualInstance] = []
    present: set[tuple[str, int]] = set()
    for instance in existing:
        key = (instance.profile, instance.start)
        if key in wanted and instance.complete and key not in present:
            present.add(key)
            continue
        failure = _destroy_if_idle(driver, device.index, instance)
        if failure is None:
            destroyed.append(ActualInstance.of(instance))
        else:
            errors.append(failure)

    created: list[ActualInstance] = []
    for key, instance in sorted(wanted.items(), key=lambda kv: kv[0][1]):
        if key in present or not instance.required:
            continue
        try:
            created.append(ActualInstance.of(driver.create_mig(device.index, instance.profile, instance.start)))
        except DriverError as error:
            errors.append(_error("create", error, profile=instance.profile, start=instance.start))

    gone = {i.gi_id for i in destroyed}
    actual = [ActualInstance.of(i) for i in existing if i.gi_id not in gone] + created
    if destroyed or created or errors:  # something was tried: ask the GPU what it has now
        try:
            actual = [ActualInstance.of(i) for i in driver.mig_instances(device.index)]
        except DriverError as error:
            # keep what we know happened: reporting "nothing" would make a caller forget instances
            errors.append(_error("list", error))
    return GpuReconcileResult(
        gpu_index=device.index,
        gpu_uuid=device.uuid,
        instances=tuple(sorted(actual, key=lambda i: i.start)),
        created=tuple(created),
        destroyed=tuple(destroyed),
        errors=tuple(errors),
    )


def _destroy_if_idle(driver: GpuDriver, gpu_index: int, instance: MigDevice) -> InstanceError | None:
    """Destroy `instance` unless a process uses it; the error to report, or None when it is gone."""
    where = {"profile": instance.profile, "start": instance.start, "gi_id": instance.gi_id}
    if instance.complete:
        try:
            pids = driver.processes_on(instance.uuid)
        except DriverError as error:
            return InstanceError(
                action="destroy", code="in-use", retryable=True,
                message=f"kept {instance.profile} at slice {instance.start}: cannot tell which processes use it ({error.message})",
                **where,
            )
        if pids:
            return InstanceError(
                action="destroy", code="in-use", retryable=True, pids=tuple(pids),
                message=f"kept {instance.profile} at slice {instance.start}: processes {', '.join(map(str, pids))} still use it",
                **where,
            )
    try:
        driver.destroy_mig(gpu_index, instance.gi_id)
    except DriverError as error:
        return _error("destroy", error, **where)
    return None


def _error(action: Literal["list", "create", "destroy"], error: DriverError, **where: object) -> InstanceError:
    message = error.message if not error.hint else f"{error.message} ({error.hint})"
    return InstanceError(action=action, code=error.code, message=message, retryable=error.retryable, **where)  # type: ignore[arg-type]
