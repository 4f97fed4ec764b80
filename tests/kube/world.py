"""A small cluster for tests: the HTTP API emulator plus the parts a real cluster runs by itself.

The runai-lite parts are the product code (`Controller`, `NodeAgent` with the simulated GPU driver,
`report_reserved_gpu`, `KubeBackend`), all talking HTTP through the real `kubernetes` client. The
stand-ins are the emulator's Job controller and kubelet, and a device plugin that hands each
reservation pod a GPU UUID; `settle()` runs them all until nothing changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from runai_lite.backends.kube import KubeBackend, render_manifests
from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.client import KubeApi
from runai_lite.backends.kube.controller import Controller
from runai_lite.backends.kube.install import CONTROLLER
from runai_lite.backends.kube.node_agent import NodeAgent, report_reserved_gpu, visible_gpu_uuids
from runai_lite.gpu.simulated import SimulatedDriver
from tests.kube_emulator import KubeEmulator

IMAGE = "runai-lite:test"
RESOURCES = {"Namespace": "namespaces", "PriorityClass": "priorityclasses", "ServiceAccount": "serviceaccounts",
             "ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings", "Role": "roles",
             "RoleBinding": "rolebindings", "Deployment": "deployments", "DaemonSet": "daemonsets",
             "CustomResourceDefinition": "customresourcedefinitions.apiextensions.k8s.io",
             "ValidatingAdmissionPolicy": "validatingadmissionpolicies.admissionregistration.k8s.io",
             "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings.admissionregistration.k8s.io"}


class World:
    def __init__(self, emulator: KubeEmulator, tmp_path: Path):
        self.kube = emulator
        self.tmp_path = tmp_path
        self.api = KubeApi(emulator.api_client())  # a cluster administrator's
        # The controller acts as its ServiceAccount: the rendered RBAC and admission policies apply to it.
        self.controller_api = KubeApi(emulator.api_client(service_account=f"{k.SYSTEM_NAMESPACE}/{CONTROLLER}"))
        self.reservation_api = self.api  # what the reservation pods talk through
        for manifest in render_manifests(create_namespace=True):
            emulator.create(RESOURCES[manifest["kind"]], manifest)
        self.backend = KubeBackend(api=self.api)
        self.controller = Controller(self.controller_api, IMAGE)
        self.agents: dict[str, NodeAgent] = {}
        self.drivers: dict[str, SimulatedDriver] = {}
        self.running: dict[str, tuple[str, str]] = {}  # pod "ns/name" -> (node, MIG UUID) registered as a process

    # -- nodes -----------------------------------------------------------------------------------

    def add_mig_node(self, name: str, inventory: str = "A100-SXM4-40GB:1") -> SimulatedDriver:
        """A node whose GPUs the simulated driver holds, with a node agent (not yet dynamic-MIG)."""
        self.kube.add_node(name, labels={k.GPU_PRODUCT_LABEL: "NVIDIA-A100-SXM4-40GB"})
        driver = SimulatedDriver(self.tmp_path / f"gpus-{name}", inventory)
        self.drivers[name] = driver
        self.agents[name] = NodeAgent(self.api, name, driver)
        self.agents[name].reconcile_once()
        return driver

    def add_gpu_node(self, name: str, count: int, product: str = "Tesla-T4", memory_mib: int = 15360) -> None:
        """A node as the NVIDIA device plugin and GPU feature discovery show it."""
        self.kube.add_node(name, labels={k.GPU_PRODUCT_LABEL: product, k.GPU_MEMORY_LABEL: str(memory_mib)},
                           capacity={k.GPU_RESOURCE: str(count)})

    # -- the cluster's own parts -----------------------------------------------------------------

    def device_plugin(self) -> None:
        """Give each started reservation pod a GPU: run `report_reserved_gpu` as the pod would."""
        for pod in self.kube.objects("pods", k.RESERVATION_NAMESPACE):
            annotations = pod["metadata"].get("annotations") or {}
            if k.RESERVED_UUID not in annotations and not pod["metadata"].get("deletionTimestamp"):
                uuid = f"GPU-{annotations[k.RESERVATION_NODE]}-{annotations[k.RESERVATION_GPU]}"
                report_reserved_gpu(self.reservation_api, k.RESERVATION_NAMESPACE, pod["metadata"]["name"],
                                    visible_gpu_uuids(uuid))

    def processes(self) -> None:
        """A started MIG pod is a process on its MIG device until its pod is gone."""
        live = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in self.kube.objects("pods")}
        for ref, (node, uuid) in list(self.running.items()):
            if ref not in live or live[ref]["status"].get("phase") != "Running":
                self.drivers[node].unregister_process(uuid, os.getpid())
                del self.running[ref]
        for ref, pod in live.items():
            node = pod["spec"].get("nodeName")
            if ref in self.running or node not in self.drivers or pod["status"].get("phase") != "Running":
                continue
            jobs = [r["name"] for r in pod["metadata"].get("ownerReferences") or [] if r.get("kind") == "Job"]
            name = k.pod_configmap(pod["metadata"]["name"], jobs[0] if jobs else None)
            configmap = self.kube.get("configmaps", name, pod["metadata"]["namespace"])
            uuid = ((configmap or {}).get("data") or {}).get("NVIDIA_VISIBLE_DEVICES")
            if uuid:
                # the simulated driver counts live processes only: this test process stands in for the job's
                self.drivers[node].register_process(uuid, os.getpid())
                self.running[ref] = (node, uuid)

    def step(self) -> None:
        self.kube.job_controller.sync()
        self.controller.reconcile_once()
        for agent in self.agents.values():
            agent.reconcile_once()
        self.device_plugin()
        self.kube.kubelet.sync()
        self.processes()

    def settle(self, limit: int = 20) -> int:
        """Step until a whole step changes nothing; returns the steps taken."""
        for steps in range(1, limit + 1):
            before = self.kube.resource_version
            self.step()
            if self.kube.resource_version == before:
                return steps
        raise AssertionError(f"the cluster did not settle in {limit} steps")

    # -- reading ---------------------------------------------------------------------------------

    def pods_of(self, project: str, job: str) -> list[dict[str, Any]]:
        return self.kube.objects("pods", k.project_namespace(project), label_selector=f"{k.JOB_NAME_LABEL}={job}")

    def live_pod(self, project: str, job: str) -> dict[str, Any]:
        pods = [p for p in self.pods_of(project, job) if not p["metadata"].get("deletionTimestamp")]
        assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
        return pods[0]

    def device_env(self, project: str, job: str) -> dict[str, str]:
        configmap = self.kube.get("configmaps", k.job_configmap(job), k.project_namespace(project))
        assert configmap is not None, f"no ConfigMap for {job}"
        return configmap["data"]
