"""A `DeviceGrant` in the form one way of starting a job takes. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from .grant import VISIBLE_DEVICES, DeviceGrant

CDI_KIND = "nvidia.com/gpu"  # the CDI device kind nvidia-ctk generates (`nvidia.com/gpu=UUID`)


def process_environment(grant: DeviceGrant, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of a process started directly: `base` with the grant's variables winning."""
    return grant.environment(base)


def container_flags(grant: DeviceGrant, *, real_gpus: bool, cdi: bool = False) -> list[str]:
    """`docker run` / `podman run` options for the grant's devices and mounts (the environment is
    passed with `-e` like the job's own). Real GPUs go by `--gpus device=UUID,…` (NVIDIA's
    container toolkit) or, with `cdi`, by CDI names; a simulated GPU has no device to pass."""
    flags: list[str] = []
    if grant.devices and real_gpus:
        if cdi:
            for uuid in grant.devices:
                flags += ["--device", f"{CDI_KIND}={uuid}"]
        else:
            flags += ["--gpus", f"device={','.join(grant.devices)}"]
    for mount in grant.mounts:
        flags += ["-v", f"{mount.source}:{mount.target}" + (":ro" if mount.read_only else "")]
    if grant.host_ipc:
        flags += ["--ipc", "host"]
    return flags


def pod_environment(grant: DeviceGrant) -> dict[str, str]:
    """The data of a pod's device ConfigMap (read with `envFrom`). A pod of whole GPUs requests
    them as `nvidia.com/gpu`, and the device plugin sets its visible devices."""
    if grant.whole_gpus:
        return {key: value for key, value in grant.env.items() if key not in VISIBLE_DEVICES}
    return dict(grant.env)
