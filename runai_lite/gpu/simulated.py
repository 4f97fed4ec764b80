"""The simulated GPU driver: a declared inventory that follows the catalog's MIG rules exactly.

A machine without NVIDIA GPUs declares what it pretends to have (`runai-adm local init --simulate
A100-SXM4-40GB:1`); this driver then behaves like NVML on those GPUs: MIG instances at explicit
placements, overlap / compute / instance-cap checks answered with the same insufficient-resources
error, MIG mode on or off, stable GPU-… and MIG-… UUIDs, and failures injected on request
(`faults.py`). Everything it reports is marked simulated.

State lives in one JSON file under the directory it is given (`simulated-gpus.json`, mode 0600),
written atomically under an exclusive file lock, so several processes (the daemon, a CLI command,
a test harness) may use the same simulated machine at once.

Which processes use a simulated device is known only to whoever started them: the embedded
backend calls `register_process(uuid, pid)` when a job process starts on a device and
`unregister_process(uuid, pid)` when it is reaped. `processes_on(uuid)` then answers with the
registered PIDs that are still alive (a recycled PID does not count), so the agent never destroys
a partition a job still runs on, even after a daemon restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import tempfile
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from ..errors import OperationalError, UserError
from .catalog import Catalog, GpuModel, MigProfile, default_catalog
from .driver import DriverError, GpuDevice, MigDevice, MigMode
from .faults import FAULTS_ENV, FaultRule, parse_faults
from .inventory import ON_DEMAND, Inventory, parse_inventory
from .mig_layout import Placed, can_place, compute_used, occupied_mask

STATE_FILE = "simulated-gpus.json"
LOCK_FILE = "simulated-gpus.lock"
FAULTS_FILE = "simulated-faults"  # an inbox: a fault spec written here replaces the stored one
STATE_VERSION = 1
_UUID_NAMESPACE = uuidlib.UUID("6f1d7c52-3c1e-4b9e-9a53-0d1f3e2b7a41")  # fixed: UUIDs stay stable
DECLARE_HINT = "declare a simulated inventory: runai-adm local init --simulate A100-SXM4-40GB:1"
_FAULT_MESSAGES = {
    "insufficient-resources": "Insufficient Resources",
    "in-use": "In use by another client",
    "timeout": "Timeout",
    "unknown": "Unknown Error",
}


class _Instance(BaseModel):
    gi_id: int
    ci_id: int = 0
    profile: str
    start: int
    serial: int  # creation number on this machine: a recreated instance gets a new MIG UUID


class _Gpu(BaseModel):
    index: int
    model: str
    mig_enabled: bool
    mig_setting: str = ON_DEMAND  # inventory.ON_DEMAND, ON or OFF: who may switch MIG mode
    instances: list[_Instance] = Field(default_factory=list)


class _Process(BaseModel):
    pid: int
    started: str | None = None  # /proc/<pid>/stat start time, so a recycled PID is not mistaken


class _State(BaseModel):
    version: int = STATE_VERSION
    inventory_id: str
    inventory: str
    gpus: list[_Gpu]
    next_serial: int = 1
    processes: dict[str, list[_Process]] = Field(default_factory=dict)
    faults: str = ""


class SimulatedDriver:
    """A `GpuDriver` over a declared inventory persisted in `state_dir`.

    `SimulatedDriver(state_dir, "A100-SXM4-40GB:1")` declares (or re-declares) the inventory;
    `SimulatedDriver(state_dir)` opens the one declared before and raises `OperationalError` when
    there is none (`SimulatedDriver.is_declared(state_dir)` tells beforehand). Re-declaring keeps
    the instances of every GPU whose index and model are unchanged.

    Injected failures (spec in `faults.py`) come from three places:
    - `faults` (default: `$RUNAI_LITE_SIM_FAULTS`): this process only;
    - `set_faults(spec)`: stored with the machine, seen by every process that uses it, `xN`
      counts shared;
    - a file `simulated-faults` in `state_dir` (e.g. `echo create:timeout:x3 > .../simulated-faults`
      from a shell harness): taken in on the next create/destroy as if by `set_faults`, then
      removed. A bad spec there is removed too and reported once as a `not-supported` error.
    """

    simulated = True

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        inventory_spec: str | None = None,
        *,
        faults: str | None = None,
        catalog: Catalog | None = None,
    ):
        self.state_dir = Path(state_dir)
        self._catalog = catalog or default_catalog()
        self._process_faults = parse_faults(os.environ.get(FAULTS_ENV) if faults is None else faults)
        self._process_rng = random.Random(self._process_faults.seed)
        self._shared_rngs: dict[str, random.Random] = {}
        if inventory_spec is not None:
            self.declare(inventory_spec)
        elif not self.is_declared(self.state_dir):
            raise OperationalError(f"no simulated GPU inventory is declared in {self.state_dir}", DECLARE_HINT)

    # ----------------------------------------------------------------------------------------
    # The declared machine

    @staticmethod
    def is_declared(state_dir: str | os.PathLike[str]) -> bool:
        return (Path(state_dir) / STATE_FILE).is_file()

    def declare(self, inventory_spec: str) -> Inventory:
        """Declare the simulated GPUs (a `UserError` for a bad spec, before anything changes)."""
        inventory = parse_inventory(inventory_spec, self._catalog)
        with self._locked_state(create=True) as holder:
            state = holder[0] or _State(inventory_id=uuidlib.uuid4().hex, inventory="", gpus=[])
            kept = {(g.index, g.model, g.mig_setting): g for g in state.gpus}
            state.gpus = [
                kept.get((d.index, d.model.name, d.mig))
                or _Gpu(index=d.index, model=d.model.name, mig_enabled=d.mig_enabled, mig_setting=d.mig)
                for d in inventory.gpus()
            ]
            state.inventory = inventory.spec()
            holder[0] = state
        return inventory

    def inventory(self) -> Inventory:
        return parse_inventory(self._read().inventory, self._catalog)

    # ----------------------------------------------------------------------------------------
    # GpuDriver

    def gpus(self) -> list[GpuDevice]:
        state = self._read()
        return [self._device(state, gpu) for gpu in state.gpus]

    def model(self, gpu_index: int) -> GpuModel:
        return self._catalog.get(self._gpu(self._read(), gpu_index).model)

    def mig_mode(self, gpu_index: int) -> MigMode:
        gpu = self._gpu(self._read(), gpu_index)
        self._require_mig_capable(gpu)
        return MigMode(current=gpu.mig_enabled, pending=gpu.mig_enabled)

    def mig_instances(self, gpu_index: int) -> list[MigDevice]:
        state = self._read()
        gpu = self._gpu(state, gpu_index)
        if not gpu.mig_enabled:
            return []
        model = self._catalog.get(gpu.model)
        return [self._mig_device(state, gpu, model, i) for i in sorted(gpu.instances, key=lambda i: i.start)]

    def create_mig(self, gpu_index: int, profile: str, start: int) -> MigDevice:
        """Create a GPU instance of `profile` at memory slice `start`, with its compute instance.

        Raises DriverError: `not-found` (no such GPU), `not-supported` (not a MIG GPU, unknown
        profile, a start the profile cannot use), `mig-disabled`, `insufficient-resources`
        (overlap, compute slices used up, the profile's instance cap), or an injected fault.
        """
        with self._locked_state() as holder:
            state = holder[0]
            gpu = self._gpu(state, gpu_index)
            model, wanted = self._check_creatable(gpu, profile, start)
            fault = self._draw_fault(state, "create")
            if fault is None or fault.after:
                created = self._add_instance(state, gpu, model, wanted, start)
        if fault is not None:
            raise _fault_error(fault, f"create {profile} at slice {start} on simulated GPU {gpu_index}")
        return self._mig_device(state, gpu, model, created)

    def destroy_mig(self, gpu_index: int, gi_id: int) -> None:
        """Destroy GPU instance `gi_id` and its compute instance. Gone already is done.

        Raises DriverError `in-use` while a registered live process uses the instance (as NVML
        refuses to destroy a compute instance that runs processes), or an injected fault.
        """
        with self._locked_state() as holder:
            state = holder[0]
            gpu = self._gpu(state, gpu_index)
            found = [i for i in gpu.instances if i.gi_id == gi_id]
            if not found:
                return
            fault = self._draw_fault(state, "destroy")
            if fault is None or fault.after:
                self._remove_instance(state, gpu, found[0])
        if fault is not None:
            raise _fault_error(fault, f"destroy MIG instance {gi_id} on simulated GPU {gpu_index}")

    def processes_on(self, uuid: str) -> list[int]:
        """Live registered PIDs on device `uuid`; for a whole GPU, also those on its MIG
        instances (as NVML answers on the parent handle in MIG mode)."""
        state = self._read()
        entries = list(state.processes.get(uuid, []))
        for gpu in state.gpus:
            if self._gpu_uuid(state, gpu) == uuid:
                for instance in gpu.instances:
                    entries += state.processes.get(self._mig_uuid(state, gpu, instance), [])
        return _live_pids(entries)

    def process_memory(self, uuid: str) -> dict[int, int | None]:
        """The registered live processes; a simulated device has no memory to measure."""
        return dict.fromkeys(self.processes_on(uuid))

    def close(self) -> None:
        """Nothing to release: every call opens, locks and closes the state file itself."""

    # ----------------------------------------------------------------------------------------
    # Simulation controls (not part of GpuDriver)

    def register_process(self, uuid: str, pid: int) -> None:
        """Record that process `pid` uses the simulated GPU or MIG device `uuid`."""
        with self._locked_state() as holder:
            state = holder[0]
            entries = [p for p in state.processes.get(uuid, []) if p.pid != pid]
            state.processes[uuid] = [*entries, _Process(pid=pid, started=_start_time(pid))]
            _drop_dead(state)

    def unregister_process(self, uuid: str, pid: int | None = None) -> None:
        """Forget process `pid` (or every process) on device `uuid`; also drops dead entries."""
        with self._locked_state() as holder:
            state = holder[0]
            state.processes[uuid] = [p for p in state.processes.get(uuid, []) if pid is not None and p.pid != pid]
            _drop_dead(state)

    def set_faults(self, spec: str) -> None:
        """Store a fault spec with the machine (see `faults.py`); "" clears it. Every process
        using this state dir sees it on its next create/destroy; `xN` counts are shared."""
        plan = parse_faults(spec)
        with self._locked_state() as holder:
            holder[0].faults = plan.spec()

    def faults(self) -> str:
        return self._read().faults

    def mig_mode_on_demand(self, gpu_index: int) -> bool:
        """Whether the GPU was declared without `:mig-on`/`:mig-off`: its MIG mode follows its
        node's dynamic-MIG role (whoever sets the role switches it with `set_mig_mode`)."""
        gpu = self._gpu(self._read(), gpu_index)
        return gpu.mig_setting == ON_DEMAND and self._catalog.get(gpu.model).mig_capable

    def set_mig_mode(self, gpu_index: int, enabled: bool) -> None:
        """Turn a simulated GPU's MIG mode on or off, as `nvidia-smi -mig 1|0` followed by a reset
        does (refused while instances exist, as NVML refuses with In Use)."""
        with self._locked_state() as holder:
            gpu = self._gpu(holder[0], gpu_index)
            self._require_mig_capable(gpu)
            if gpu.instances and not enabled:
                raise DriverError("in-use", f"simulated GPU {gpu_index} still has MIG instances", "destroy them first")
            gpu.mig_enabled = enabled

    # ----------------------------------------------------------------------------------------
    # Internals

    def _check_creatable(self, gpu: _Gpu, profile: str, start: int) -> tuple[GpuModel, MigProfile]:
        self._require_mig_capable(gpu)
        if not gpu.mig_enabled:
            hint = ("make its node dynamic-MIG (runai-adm set node-role --dynamic-mig-enabled NODE), which "
                    "switches MIG mode on" if gpu.mig_setting == ON_DEMAND
                    else f"declare it without ':mig-off' (runai-adm local init --simulate {gpu.model}:1)")
            raise DriverError("mig-disabled", f"MIG mode is off on simulated GPU {gpu.index} ({gpu.model})", hint)
        model = self._catalog.get(gpu.model)
        try:
            wanted = model.profile(profile)
        except UserError as error:
            raise DriverError("not-supported", error.message, error.hint) from None
        if start not in wanted.starts:
            raise DriverError(
                "not-supported",
                f"{profile} cannot start at memory slice {start} on {model.name}",
                "valid starts: " + ", ".join(map(str, wanted.starts)),
            )
        return model, wanted

    @staticmethod
    def _add_instance(state: _State, gpu: _Gpu, model: GpuModel, wanted: MigProfile, start: int) -> _Instance:
        refusal = _refusal(model, [Placed(i.start, i.profile) for i in gpu.instances], wanted, start)
        if refusal:
            raise DriverError(
                "insufficient-resources",
                f"cannot create {wanted.name} at slice {start} on simulated GPU {gpu.index}: Insufficient Resources ({refusal})",
                "destroy the instances in the way, or choose another placement",
            )
        used_ids = {i.gi_id for i in gpu.instances}
        created = _Instance(gi_id=min(set(range(1, len(used_ids) + 2)) - used_ids), profile=wanted.name, start=start, serial=state.next_serial)
        gpu.instances.append(created)
        state.next_serial += 1
        return created

    def _remove_instance(self, state: _State, gpu: _Gpu, instance: _Instance) -> None:
        mig_uuid = self._mig_uuid(state, gpu, instance)
        pids = _live_pids(state.processes.get(mig_uuid, []))
        if pids:
            raise DriverError(
                "in-use",
                f"cannot destroy MIG instance {instance.gi_id} ({instance.profile}) on simulated GPU {gpu.index}: "
                f"In use by another client (processes {', '.join(map(str, pids))})",
                "wait for the job on it to end, or stop it",
            )
        gpu.instances.remove(instance)
        state.processes.pop(mig_uuid, None)

    def _require_mig_capable(self, gpu: _Gpu) -> None:
        if not self._catalog.get(gpu.model).mig_capable:
            raise DriverError("not-supported", f"simulated GPU {gpu.index} ({gpu.model}) does not support MIG")

    def _draw_fault(self, state: _State, operation: str) -> FaultRule | None:
        """The injected fault for this call, if any: the machine's stored faults first (their
        counts go down in `state`), then this process's."""
        self._take_in_fault_file(state)
        if state.faults:
            plan = parse_faults(state.faults)
            rng = self._shared_rngs.setdefault(state.faults, random.Random(plan.seed))
            rule, left = plan.draw(operation, rng)
            state.faults = left.spec()
            if rule is not None:
                return rule
        rule, self._process_faults = self._process_faults.draw(operation, self._process_rng)
        return rule

    def _take_in_fault_file(self, state: _State) -> None:
        inbox = self.state_dir / FAULTS_FILE
        try:
            text = inbox.read_text()
        except FileNotFoundError:
            return
        inbox.unlink(missing_ok=True)
        try:
            state.faults = parse_faults(text).spec()
        except UserError as error:
            raise DriverError("not-supported", f"ignored the fault file {inbox}: {error.message}", error.hint) from None

    def _device(self, state: _State, gpu: _Gpu) -> GpuDevice:
        model = self._catalog.get(gpu.model)
        return GpuDevice(
            index=gpu.index,
            uuid=self._gpu_uuid(state, gpu),
            name=model.name,
            memory_mib=model.memory_mib,
            mig_capable=model.mig_capable,
            mig_enabled=gpu.mig_enabled and model.mig_capable,
            simulated=True,
        )

    def _mig_device(self, state: _State, gpu: _Gpu, model: GpuModel, instance: _Instance) -> MigDevice:
        profile = model.profile(instance.profile)
        return MigDevice(
            gpu_index=gpu.index,
            profile=profile.name,
            profile_id=profile.id,
            start=instance.start,
            size=profile.memory_slices,
            gi_id=instance.gi_id,
            ci_id=instance.ci_id,
            uuid=self._mig_uuid(state, gpu, instance),
            memory_mib=profile.memory_mib,
        )

    @staticmethod
    def _gpu_uuid(state: _State, gpu: _Gpu) -> str:
        return "GPU-" + str(uuidlib.uuid5(_UUID_NAMESPACE, f"{state.inventory_id}/gpu/{gpu.index}/{gpu.model}"))

    @staticmethod
    def _mig_uuid(state: _State, gpu: _Gpu, instance: _Instance) -> str:
        name = f"{state.inventory_id}/gpu/{gpu.index}/{gpu.model}/mig/{instance.serial}"
        return "MIG-" + str(uuidlib.uuid5(_UUID_NAMESPACE, name))

    @staticmethod
    def _gpu(state: _State, gpu_index: int) -> _Gpu:
        if not 0 <= gpu_index < len(state.gpus):
            raise DriverError(
                "not-found",
                f"no GPU {gpu_index} on this simulated machine ({len(state.gpus)} GPUs: {state.inventory})",
            )
        return state.gpus[gpu_index]

    @property
    def _state_path(self) -> Path:
        return self.state_dir / STATE_FILE

    def _read(self) -> _State:
        try:
            text = self._state_path.read_text()
        except FileNotFoundError:
            raise OperationalError(f"no simulated GPU inventory is declared in {self.state_dir}", DECLARE_HINT) from None
        try:
            state = _State.model_validate_json(text)
        except ValidationError as error:
            raise OperationalError(
                f"the simulated GPU state {self._state_path} is unreadable: {error.error_count()} problems",
                "declare the inventory again: runai-adm local init --simulate MODEL:COUNT",
            ) from None
        if state.version != STATE_VERSION:
            raise OperationalError(f"{self._state_path} has version {state.version}; this runai-lite reads {STATE_VERSION}")
        return state

    @contextlib.contextmanager
    def _locked_state(self, create: bool = False) -> Iterator[list[_State]]:
        """Lock the machine, read its state, let the caller change `holder[0]`, write it back.

        The holder is a one-item list so the caller may replace the state; with `create` it holds
        None when nothing is declared yet (declare). Nothing is written when the block raises, so
        a refused call changes nothing.
        """
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            holder: list[_State] = [self._read() if (self._state_path.exists() or not create) else None]  # type: ignore[list-item]
            before = holder[0].model_dump_json() if holder[0] is not None else None
            yield holder
            if holder[0].model_dump_json() != before:
                for stale in self.state_dir.glob(f".{STATE_FILE}.*.tmp"):
                    stale.unlink(missing_ok=True)  # left by a writer killed mid-write; we hold the lock
                _write_atomically(self._state_path, holder[0].model_dump_json(indent=1))
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def _refusal(model: GpuModel, layout: list[Placed], profile: MigProfile, start: int) -> str | None:
    """Why NVML would answer Insufficient Resources, or None when the instance fits."""
    if can_place(model, layout, profile, start):
        return None
    wanted = ((1 << profile.memory_slices) - 1) << start
    if occupied_mask(model, layout) & wanted:
        return f"memory slices {start}-{start + profile.memory_slices - 1} overlap an existing instance"
    if compute_used(model, layout) + profile.compute > model.compute_slices:
        return f"only {model.compute_slices - compute_used(model, layout)} of {model.compute_slices} compute slices are free"
    return f"{profile.name} allows at most {profile.max_instances} instance(s)"


def _fault_error(rule: FaultRule, what: str) -> DriverError:
    return DriverError(rule.code, f"cannot {what}: {_FAULT_MESSAGES[rule.code]} (simulated fault {rule.spec()})")


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` all at once: readers and a process killed mid-write see the old
    state or the new one, never a mix. The data is flushed before the rename so that even a
    power loss leaves one or the other; the rename itself is not waited for (losing the newest
    state to a power cut is acceptable for a simulated machine, and it halves the cost)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name, or None where /proc cannot tell."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def _alive(process: _Process) -> bool:
    try:
        os.kill(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    fields = _stat_fields(process.pid)
    if fields is None:
        return True
    if fields[0] == "Z":
        return False  # exited, not yet reaped: it holds no GPU memory any more
    return process.started is None or _start_time(process.pid) == process.started


def _drop_dead(state: _State) -> None:
    """Forget processes that ended (a daemon that crashed never unregistered them)."""
    for uuid, entries in list(state.processes.items()):
        alive = [p for p in entries if _alive(p)]
        if alive:
            state.processes[uuid] = alive
        else:
            del state.processes[uuid]


def _live_pids(entries: list[_Process]) -> list[int]:
    return sorted({p.pid for p in entries if _alive(p)})


__all__ = ["DECLARE_HINT", "FAULTS_FILE", "LOCK_FILE", "STATE_FILE", "SimulatedDriver"]
