"""An install named after another Helm release (`helm install gpu ... -n gpu-system`): the CLI
learns the install's PriorityClass names from the classes, the controller is told them
(`--install-name`), and a job runs end to end with the release's classes and ServiceAccounts,
through the release's RBAC and admission policies."""

from __future__ import annotations

import pytest

from runai_lite.backends.kube import KubeBackend
from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.client import KubeApi
from runai_lite.backends.kube.install import Release
from runai_lite.errors import OperationalError
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec, JobStatus, JobType

from .world import World

RELEASE = Release(name="gpu", namespace="gpu-system")


def test_a_job_runs_with_the_release_s_priority_class_and_reservation_account(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path, RELEASE)
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-a", 1)
    world.backend.submit(JobSpec(name="notebook", project="team-a", image="jupyter", type=JobType.INTERACTIVE,
                                 request=request_from_flags(gpu="0.5"), user="alice"))
    world.settle()

    assert world.backend.priority_classes == k.PriorityClassNames(prefix="gpu-runai-lite-")
    [job] = world.backend.list_jobs("team-a")
    assert job.status is JobStatus.RUNNING and job.type is JobType.INTERACTIVE
    assert world.live_pod("team-a", "notebook")["spec"]["priorityClassName"] == "gpu-runai-lite-build"
    [reservation] = world.kube.objects("pods", k.RESERVATION_NAMESPACE)
    assert reservation["spec"]["serviceAccountName"] == "gpu-runai-lite-reservation"
    assert reservation["spec"]["priorityClassName"] == "gpu-runai-lite-build"


def test_the_cli_says_when_runai_lite_is_not_installed(kube_emulator):
    backend = KubeBackend(api=KubeApi(kube_emulator.api_client()))
    backend.create_project("team-a", 1)
    with pytest.raises(OperationalError, match="not installed on this cluster") as raised:
        backend.submit(JobSpec(name="j", project="team-a", image="busybox", request=request_from_flags(gpu="1")))
    assert "helm install" in raised.value.hint
    assert kube_emulator.objects("jobs.batch", "runai-team-a") == []  # nothing was submitted
