"""A small cluster for tests: the HTTP API emulator plus the parts a real cluster runs by itself.

The runai-lite parts are the product code (`Controller`, `NodeAgent` with the simulated GPU driver,
`report_reserved_gpu`, `KubeBackend`), all talking HTTP through the real `kubernetes` client. The
stand-ins are the emulator's Job controller and kubelet, a device plugin that hands each
reservation pod a GPU UUID, and the GPU Operator's device plugin pods of the MIG nodes, which
(re)register when they start: the node then offers the `nvidia.com/mig-<profile>` devices that
exist and its CDI spec lists them (as the NVIDIA device plugin's mixed strategy and a regenerated
CDI spec do); `settle()` runs them all until nothing changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from runai_lite.backends.kube import KubeBackend, render_manifests
from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.client import KubeApi
from runai_lite.backends.kube.controller import Controller
from runai_lite.backends.kube.install import InstallValues, Release, fullname
from runai_lite.backends.kube.node_agent import OPERATOR_NAMESPACE, NodeAgent, report_reserved_gpu, visible_gpu_uuids
from runai_lite.devices import cdi_device_names
from runai_lite.gpu.simulated import SimulatedDriver
from tests.kube_emulator import KubeEmulator

IMAGE = "runai-lite:test"
PLUGIN_LABEL = "app=nvidia-device-plugin-daemonset"
RESOURCES = {"Namespace": "namespaces", "PriorityClass": "priorityclasses", "ServiceAccount": "serviceaccounts",
             "ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings", "Role": "roles",
             "RoleBinding": "rolebindings", "Deployment": "deployments", "DaemonSet": "daemonsets",
             "CustomResourceDefinition": "customresourcedefinitions.apiextensions.k8s.io",
             "ValidatingAdmissionPolicy": "validatingadmissionpolicies.admissionregistration.k8s.io",
             "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings.admissionregistration.k8s.io"}


class World:
    def __init__(self, emulator: KubeEmulator, tmp_path: Path, release: Release = Release()):
        """runai-lite installed as `release` (objects named after it, in its namespace)."""
        self.kube = emulator
        self.tmp_path = tmp_path
        self.api = KubeApi(emulator.api_client())  # a cluster administrator's
        name = fullname(InstallValues(), release)
        # The controller acts as its ServiceAccount: the rendered RBAC and admission policies apply to it.
        self.controller_api = KubeApi(emulator.api_client(service_account=f"{release.namespace}/{name}-controller"))
        self.agent_account = f"{release.namespace}/{name}-agent"
        self.install_name = name
        self.reservation_api = self.api  # what the reservation pods talk through
        emulator.create_namespace(OPERATOR_NAMESPACE)
        self.plugin_starts: dict[str, int] = {}  # node -> times its device plugin pod started
        for manifest in render_manifests(release=release, create_namespace=True):
            emulator.create(RESOURCES[manifest["kind"]], manifest)
        self.backend = KubeBackend(api=self.api)
        self.controller = Controller(self.controller_api, IMAGE, install_name=name)
        self.agents: dict[str, NodeAgent] = {}
        self.drivers: dict[str, SimulatedDriver] = {}
        self.running: dict[str, tuple[str, str]] = {}  # pod "ns/name" -> (node, MIG UUID) registered as a process

    # -- nodes -----------------------------------------------------------------------------------

    def add_mig_node(self, name: str, inventory: str = "A100-SXM4-40GB:1") -> SimulatedDriver:
        """A node whose GPUs the simulated driver holds, with a node agent (not yet dynamic-MIG)."""
        self.kube.add_node(name, labels={k.GPU_PRODUCT_LABEL: "NVIDIA-A100-SXM4-40GB"})
        driver = SimulatedDriver(self.tmp_path / f"gpus-{name}", inventory)
        self.drivers[name] = driver
        # as its ServiceAccount, with the token of a pod on its node (the node restriction applies)
        self.agents[name] = NodeAgent(self.agent_api(name), name, driver)
        self.gpu_operator()
        self.agents[name].reconcile_once()
        return driver

    def agent_api(self, node: str) -> KubeApi:
        return KubeApi(self.kube.api_client(service_account=self.agent_account, node=node))

    def add_gpu_node(self, name: str, count: int, product: str = "Tesla-T4", memory_mib: int = 15360) -> None:
        """A node as the NVIDIA device plugin and GPU feature discovery show it."""
        self.kube.add_node(name, labels={k.GPU_PRODUCT_LABEL: product, k.GPU_MEMORY_LABEL: str(memory_mib)},
                           capacity={k.GPU_RESOURCE: str(count)})
        # what the reservation pods report (`device_plugin`), in the node's CDI spec
        self.kube.kubelet.cdi.set_devices(name, cdi_device_names([f"GPU-{name}-{i}" for i in range(count)]))

    # -- the cluster's own parts -----------------------------------------------------------------

    def device_plugin(self) -> None:
        """Give each started reservation pod a GPU: run `report_reserved_gpu` as the pod would."""
        for pod in self.kube.objects("pods", k.RESERVATION_NAMESPACE):
            annotations = pod["metadata"].get("annotations") or {}
            if k.RESERVED_UUID not in annotations and not pod["metadata"].get("deletionTimestamp"):
                uuid = f"GPU-{annotations[k.RESERVATION_NODE]}-{annotations[k.RESERVATION_GPU]}"
                report_reserved_gpu(self.reservation_api, k.RESERVATION_NAMESPACE, pod["metadata"]["name"],
                                    visible_gpu_uuids(uuid))

    def gpu_operator(self) -> None:
        """The device plugin DaemonSet on each MIG node: a pod deleted (by the agent, after a MIG
        change) is made again, and when it starts the plugin registers what exists now."""
        live = {p["spec"].get("nodeName") for p in self.kube.objects("pods", OPERATOR_NAMESPACE,
                                                                      label_selector=PLUGIN_LABEL)
                if not p["metadata"].get("deletionTimestamp")}
        for node, driver in self.drivers.items():
            if node in live:
                continue
            starts = self.plugin_starts[node] = self.plugin_starts.get(node, 0) + 1
            self.kube.create("pods", {
                "metadata": {"name": f"nvidia-device-plugin-daemonset-{node}-{starts}", "namespace": OPERATOR_NAMESPACE,
                             "labels": {PLUGIN_LABEL.split("=")[0]: PLUGIN_LABEL.split("=")[1]}},
                "spec": {"nodeName": node, "containers": [{"name": "nvidia-device-plugin", "image": "nvidia/k8s-device-plugin"}]}},
                OPERATOR_NAMESPACE)
            self.register_device_plugin(node, driver)

    def register_device_plugin(self, node: str, driver: SimulatedDriver) -> None:
        gpus = driver.gpus()
        mig = {gpu.index: driver.mig_instances(gpu.index) for gpu in gpus if gpu.mig_enabled}
        by_resource: dict[str, list[str]] = {}
        for devices in mig.values():
            for device in devices:
                by_resource.setdefault(k.mig_resource(device.profile), []).append(device.uuid)

        def advertise(n: dict[str, Any]) -> None:
            for field in ("capacity", "allocatable"):
                values = n["status"][field]
                for resource in [r for r in values if r.startswith(k.RUNAI_MIG_PREFIX)]:
                    del values[resource]
                values.update({resource: str(len(ids)) for resource, ids in by_resource.items()})

        self.kube.mutate("nodes", node, advertise)
        for resource, ids in by_resource.items():
            self.kube.kubelet.device_plugin.set_devices(node, resource, ids)
        uuids = [g.uuid for g in gpus] + [d.uuid for devices in mig.values() for d in devices]
        self.kube.kubelet.cdi.set_devices(node, cdi_device_names(uuids))

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
            uuid = self.device_of(pod)
            if uuid:
                # the simulated driver counts live processes only: this test process stands in for the job's
                self.drivers[node].register_process(uuid, os.getpid())
                self.running[ref] = (node, uuid)

    def device_of(self, pod: dict[str, Any]) -> str | None:
        """The device a started pod's container sees, however it was delivered: its ConfigMap's
        variable, the CDI devices the runtime injected, or what the device plugin gave it."""
        meta = pod["metadata"]
        jobs = [r["name"] for r in meta.get("ownerReferences") or [] if r.get("kind") == "Job"]
        configmap = self.kube.get("configmaps", k.pod_configmap(meta["name"], jobs[0] if jobs else None),
                                  meta["namespace"])
        named = ((configmap or {}).get("data") or {}).get("NVIDIA_VISIBLE_DEVICES")
        injected = [name.partition("=")[2] for name in self.kube.kubelet.cdi_devices_of(meta["namespace"], meta["name"])]
        plugin = [d for resource, ids in self.kube.kubelet.devices_of(meta["namespace"], meta["name"]).items()
                  if resource.startswith(k.RUNAI_MIG_PREFIX) for d in ids]
        return named or ",".join(injected) or ",".join(plugin) or None

    def step(self) -> None:
        self.kube.job_controller.sync()
        self.controller.reconcile_once()
        for agent in self.agents.values():
            agent.reconcile_once()
        self.gpu_operator()
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
