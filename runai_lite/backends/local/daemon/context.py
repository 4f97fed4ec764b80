"""What every unit of the daemon is made from: the store, the GPU driver, the home, the settings,
the process tracker, and what was decided at start (node name, enforcement mechanism)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ....enforcement import Mechanism
from ....gpu.driver import GpuDriver
from ....metrics import Metrics
from ..container_host import ContainerHost, container_host, container_host_key, read_facts
from ..gpu_ownership import GpuLocks
from ..paths import Home
from ..store import Store
from .settings import DaemonSettings
from .tracker import AttemptProcesses


@dataclass
class DaemonContext:
    store: Store
    driver: GpuDriver
    home: Home
    settings: DaemonSettings
    tracker: AttemptProcesses
    node: str
    mechanism: Mechanism
    hami_core_path: str
    gpu_locks: GpuLocks | None = None  # held when the driver drives real GPUs
    metrics: Metrics = field(default_factory=Metrics)  # fed by the units, written out by `metrics.py`
    foreign_gpus: dict[str, str] = field(default_factory=dict)  # GPU UUID -> why another daemon has it
    container_hosts: dict[str, ContainerHost] = field(default_factory=dict)

    def container_host(self, runtime: str) -> ContainerHost:
        """`runtime` with the options this machine needs, read once per daemon and recorded in the
        store: `runai exec` must enter a container with the options it was started with."""
        host = self.container_hosts.get(runtime)
        if host is None:
            host = self.container_hosts[runtime] = container_host(read_facts(runtime))
            with self.store.write() as conn:
                self.store.set_config(conn, container_host_key(runtime), host.to_json())
        return host
