"""A `DeviceGrant` in the form one way of starting a job takes. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Set
from enum import StrEnum

from .delivery import DeliveryMode, cdi_device_names, pod_delivery
from .grant import DeviceGrant


class ContainerDelivery(StrEnum):
    """How a container is handed its GPUs, as the NVIDIA container toolkit expects them."""

    CDI = "cdi"  # `--device nvidia.com/gpu=UUID`, named by a CDI spec (podman; docker 25 and later)
    GPUS = "gpus"  # docker's `--gpus device=UUID`
    ENV = "env"  # only `NVIDIA_VISIBLE_DEVICES`, which the toolkit's OCI hook reads (podman without CDI)


def container_delivery(runtime: str, devices: tuple[str, ...], *, real_gpus: bool,
                       cdi_names: Set[str]) -> ContainerDelivery:
    """CDI when a spec names every device of the grant (a MIG partition made after the spec was
    generated is not in it); otherwise docker's `--gpus` for real GPUs, and the variable alone for
    podman, which has no `--gpus`, and for simulated GPUs, which have no device to pass."""
    if not devices:
        return ContainerDelivery.ENV
    if set(devices) <= cdi_names:
        return ContainerDelivery.CDI
    if real_gpus and runtime == "docker":
        return ContainerDelivery.GPUS
    return ContainerDelivery.ENV


def process_environment(grant: DeviceGrant, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of a process started directly: `base` with the grant's variables winning."""
    return grant.environment(base)


def container_flags(grant: DeviceGrant, delivery: ContainerDelivery) -> list[str]:
    """`docker run` / `podman run` options for the grant's devices and mounts (the environment,
    `NVIDIA_VISIBLE_DEVICES` included, is passed with `-e` like the job's own)."""
    flags: list[str] = []
    if grant.devices and delivery is ContainerDelivery.CDI:
        for name in cdi_device_names(grant.devices):
            flags += ["--device", name]
    elif grant.devices and delivery is ContainerDelivery.GPUS:
        flags += ["--gpus", f"device={','.join(grant.devices)}"]
    for mount in grant.mounts:
        flags += ["-v", f"{mount.source}:{mount.target}" + (":ro" if mount.read_only else "")]
    if grant.host_ipc:
        flags += ["--ipc", "host"]
    return flags


def pod_environment(grant: DeviceGrant) -> dict[str, str]:
    """The data of a pod's device ConfigMap (read with `envFrom`) in the `env` delivery mode. A pod
    of whole GPUs requests them as `nvidia.com/gpu`, and the device plugin sets its visible devices."""
    return pod_delivery(grant, DeliveryMode.ENV).env
