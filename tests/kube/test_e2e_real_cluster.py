"""The seeds' dynamic-MIG quickstart against a real cluster with runai-lite installed.

Runs only when RUNAI_LITE_E2E_KUBECONFIG names a kubeconfig (docs/kubernetes.md: kind with the
fake GPU operator, the image loaded, and `runai-adm install --print` applied with the simulated
agent driver). Optional: RUNAI_LITE_E2E_CONTEXT (default: the current context),
RUNAI_LITE_E2E_NODE (default: the first node whose GPU is MIG-capable), RUNAI_LITE_E2E_IMAGE (the
jobs' image, default busybox), RUNAI_LITE_E2E_TIMEOUT (seconds per wait, default 180).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

from runai_lite.backends.kube import KubeBackend
from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.cluster import gpu_inventory, product_model
from runai_lite.backends.kube.rest import core
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec, JobStatus, JobType

KUBECONFIG = os.environ.get("RUNAI_LITE_E2E_KUBECONFIG")
pytestmark = [
    pytest.mark.kube_e2e,
    pytest.mark.skipif(not KUBECONFIG, reason="RUNAI_LITE_E2E_KUBECONFIG is not set: no real cluster to run the "
                                              "Kubernetes end-to-end quickstart against (see docs/kubernetes.md)"),
]
PROJECT = "runai-lite-e2e"
TIMEOUT = float(os.environ.get("RUNAI_LITE_E2E_TIMEOUT", "180"))


def wait_for(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {TIMEOUT:g}s waiting for {what}")
        time.sleep(2)


@pytest.fixture
def backend():
    backend = KubeBackend(os.environ.get("RUNAI_LITE_E2E_CONTEXT"), kubeconfig=KUBECONFIG)
    backend.create_project(PROJECT, 2)
    yield backend
    backend.delete_jobs(PROJECT, None)
    wait_for("the test's pods to go", lambda: not backend.api.list(core("pods", k.project_namespace(PROJECT))))
    backend.delete_project(PROJECT)


def mig_node(backend: KubeBackend) -> str:
    if os.environ.get("RUNAI_LITE_E2E_NODE"):
        return os.environ["RUNAI_LITE_E2E_NODE"]
    for node in backend.api.list(core("nodes")):
        labels = node["metadata"].get("labels") or {}
        model = product_model(labels.get(k.GPU_PRODUCT_LABEL, ""))
        if gpu_inventory(node) or (model and model.mig_capable) or labels.get(k.MIG_CAPABLE_LABEL) == "true":
            return node["metadata"]["name"]
    pytest.fail("no node with a MIG-capable GPU: set RUNAI_LITE_E2E_NODE or the fake GPU operator's gpuProduct")


def submit(backend: KubeBackend, name: str, interactive: bool = False, **flags) -> None:
    backend.submit(JobSpec(name=name, project=PROJECT, image=os.environ.get("RUNAI_LITE_E2E_IMAGE", "busybox"),
                           type=JobType.INTERACTIVE if interactive else JobType.TRAIN,
                           request=request_from_flags(**flags), command=("sleep", "3600"),
                           replace_entrypoint=True, user="e2e"))


def statuses(backend: KubeBackend) -> dict[str, JobStatus]:
    return {j.name: j.status for j in backend.list_jobs(PROJECT)}


def test_quickstart_on_a_real_cluster(backend: KubeBackend):
    node = mig_node(backend)
    backend.set_dynamic_mig(node, True)
    wait_for(f"the node agent on {node} to report its GPUs",
             lambda: bool(gpu_inventory(backend.api.get(core("nodes", name=node)))))

    submit(backend, "mig1", gpu_memory="10GB")
    submit(backend, "mig2", mig_profile="2g.10gb")
    submit(backend, "mig3", mig_profile="2g.10gb")
    wait_for("three running MIG jobs", lambda: set(statuses(backend).values()) == {JobStatus.RUNNING})
    jobs = backend.list_jobs(PROJECT)
    assert all(j.allocation and j.allocation.kind == "mig" and j.allocation.mig_uuid for j in jobs)
    assert len({j.allocation.mig_uuid for j in jobs}) == 3

    submit(backend, "mig1-int", interactive=True, gpu_memory="20G")
    wait_for("the interactive job to run and one training job to be requeued",
             lambda: statuses(backend).get("mig1-int") is JobStatus.RUNNING
             and sorted(statuses(backend).values()).count(JobStatus.PENDING) == 1)
    final = {j.name: j for j in backend.list_jobs(PROJECT)}
    assert final["mig1-int"].allocation.mig_profile == "3g.20gb"
    assert [s for n, s in statuses(backend).items() if n != "mig1-int"].count(JobStatus.RUNNING) == 2
