"""Which memory-enforcement mechanism a node's fraction pods get (node label `runai-lite/enforcement`).

On Kubernetes the device environment reaches a pod only through its ConfigMap (`envFrom`), so the
mechanisms that work are those driven by variables: `hami-core` (libvgpu.so must be in the image or
mounted at the path the node annotation `runai-lite/hami-core-path` names) and `mps` (the node runs
an MPS control daemon the pod can reach). `none` (the default) makes the limit advisory. The
`framework` hook needs its files inside the container and is not offered here.
"""

from __future__ import annotations

from typing import Any

from ...enforcement import DEFAULT_HAMI_CORE_PATH, JobEnforcement, Mechanism, for_allocation
from ...model import Allocation
from .meta import Meta

ENFORCEMENT_LABEL = "runai-lite/enforcement"
HAMI_CORE_PATH_ANNOTATION = "runai-lite/hami-core-path"
SUPPORTED = (Mechanism.HAMI_CORE, Mechanism.MPS, Mechanism.NONE)


def node_enforcement(node: dict[str, Any]) -> tuple[Mechanism, str]:
    """The node's mechanism and the libvgpu.so path as containers see it."""
    meta = Meta(node)
    value = meta.labels.get(ENFORCEMENT_LABEL, Mechanism.NONE.value)
    try:
        mechanism = Mechanism(value)
    except ValueError:
        mechanism = Mechanism.NONE
    if mechanism not in SUPPORTED:
        mechanism = Mechanism.NONE
    path = meta.annotations.get(HAMI_CORE_PATH_ANNOTATION, DEFAULT_HAMI_CORE_PATH)
    return mechanism, path


def pod_enforcement(allocation: Allocation, node: dict[str, Any] | None) -> JobEnforcement | None:
    """The enforcement a pod bound with `allocation` gets on `node`, with paths as the container
    sees them (the framework hook is not mounted there)."""
    if not allocation.gpu_indices:
        return None
    mechanism, library = node_enforcement(node) if node is not None else (Mechanism.NONE, DEFAULT_HAMI_CORE_PATH)
    return for_allocation(allocation, mechanism, hami_core_library=library, hook_dir=None)
