"""The node agent: reconciles the desired MIG partitions of a machine's GPUs with a GPU driver.

Shared by the embedded daemon (in-process) and the Kubernetes node agent (`runai-lite agent`);
imports only `gpu` and `model`, never a backend.
"""

from .reconcile import (
    ActualInstance,
    DesiredInstance,
    GpuReconcileResult,
    InstanceError,
    ReconcileResult,
    reconcile,
)

__all__ = ["ActualInstance", "DesiredInstance", "GpuReconcileResult", "InstanceError", "ReconcileResult", "reconcile"]
