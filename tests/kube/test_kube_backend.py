"""KubeBackend as the CLI uses it: loaded from a kubeconfig context, projects, errors, logs, exec,
node views and the dynamic-MIG role checks."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from runai_lite.backends.kube import KubeBackend
from runai_lite.backends.kube import conventions as k
from runai_lite.errors import NotFoundError, UserError
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec, JobStatus

from .world import World


@pytest.fixture
def world(kube_emulator, tmp_path) -> World:
    return World(kube_emulator, tmp_path)


def spec(name: str, project: str = "team-a", backoff_limit: int = 6, **flags) -> JobSpec:
    return JobSpec(name=name, project=project, image="busybox", request=request_from_flags(**flags) if flags else None,
                   command=("echo", "hi"), backoff_limit=backoff_limit)


def test_the_backend_loads_the_kubeconfig_context(world: World, kubeconfig: Path):
    backend = KubeBackend("emulator")
    created = backend.create_project("team-a", 1.5)
    assert created.deserved_gpus == 1.5
    namespace = world.kube.get("namespaces", "runai-team-a")
    assert namespace["metadata"]["labels"][k.QUEUE_LABEL] == "team-a"
    assert namespace["metadata"]["annotations"][k.DESERVED_GPUS] == "1.5"
    assert [(p.name, p.deserved_gpus) for p in backend.list_projects()] == [("team-a", 1.5)]


def test_an_unknown_context_is_a_user_error(kubeconfig: Path):
    with pytest.raises(UserError, match="no-such-context"):
        KubeBackend("no-such-context").list_projects()


def test_projects_are_labelled_namespaces_and_quota_updates_in_place(world: World):
    world.backend.create_project("team-a", 1)
    world.backend.create_project("team-a", 3)
    assert [(p.name, p.deserved_gpus) for p in world.backend.list_projects()] == [("team-a", 3.0)]
    world.kube.create_namespace("runai-team-c", labels={k.QUEUE_LABEL: "someone-else"})
    with pytest.raises(UserError, match="belongs to project someone-else"):
        world.backend.create_project("team-c", 1)
    world.backend.submit(spec("j1"))
    world.kube.job_controller.sync()
    with pytest.raises(UserError, match="unfinished job"):
        world.backend.delete_project("team-a")
    world.backend.delete_jobs("team-a", None)
    world.backend.delete_project("team-a")
    assert [p.name for p in world.backend.list_projects()] == ["someone-else"]  # a linked namespace


def test_submitting_to_a_missing_project_or_twice_is_refused(world: World):
    with pytest.raises(NotFoundError, match="project team-a was not found"):
        world.backend.submit(spec("j1"))
    world.backend.create_project("team-a", 1)
    info = world.backend.submit(spec("j1"))
    assert info.status is JobStatus.PENDING and info.project == "team-a" and info.command == ("echo", "hi")
    assert info.started_at is None and info.submitted_at > 0
    with pytest.raises(UserError, match="already exists"):
        world.backend.submit(spec("j1"))
    with pytest.raises(UserError, match="NVIDIA_VISIBLE_DEVICES"):
        world.backend.submit(spec("j2").model_copy(update={"env": (("NVIDIA_VISIBLE_DEVICES", "all"),)}))
    assert world.kube.get("jobs.batch", "j2", "runai-team-a") is None
    with pytest.raises(NotFoundError):
        world.backend.get_job("team-a", "nope")
    with pytest.raises(NotFoundError):
        world.backend.delete_jobs("team-a", ["nope"])


def test_a_cpu_job_runs_and_its_logs_and_exit_show(world: World):
    world.backend.create_project("team-a", 0)
    world.add_gpu_node("cpu-node", 0)
    world.backend.submit(spec("j1", backoff_limit=0))
    world.settle()
    pod = world.live_pod("team-a", "j1")
    assert world.device_env("team-a", "j1") == {"RUNAI_NUM_OF_GPUS": "0", "GPU_PORTION": "0",
                                                "NVIDIA_VISIBLE_DEVICES": "void", "CUDA_VISIBLE_DEVICES": ""}
    world.kube.set_pod_log("runai-team-a", pod["metadata"]["name"], "one\ntwo\nthree\n")
    assert list(world.backend.logs("team-a", "j1")) == ["one", "two", "three"]
    assert list(world.backend.logs("team-a", "j1", tail=1)) == ["three"]

    def finish() -> None:
        world.kube.append_pod_log("runai-team-a", pod["metadata"]["name"], "four\n")
        world.kube.kubelet.finish("runai-team-a", pod["metadata"]["name"], exit_code=3)

    lines = []
    for line in world.backend.logs("team-a", "j1", follow=True):
        lines.append(line)
        if line == "three":
            threading.Thread(target=finish).start()
    assert lines == ["one", "two", "three", "four"]
    world.settle()
    info = world.backend.get_job("team-a", "j1")
    assert (info.status, info.exit_code, info.attempts) == (JobStatus.FAILED, 3, 1)
    assert info.submitted_at <= info.started_at <= info.finished_at


def test_logs_of_a_job_that_has_not_started_say_so(world: World):
    world.backend.create_project("team-a", 0)
    world.backend.submit(spec("j1", gpu="1"))
    world.settle()
    with pytest.raises(UserError, match="has not started"):
        list(world.backend.logs("team-a", "j1"))


def test_interactive_exec_goes_through_kubectl(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    world.backend.create_project("team-a", 0)
    world.add_gpu_node("cpu-node", 0)
    world.backend.submit(spec("j1"))
    world.settle()
    record = tmp_path / "argv"
    fake = tmp_path / "bin" / "kubectl"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport sys\nopen({str(record)!r}, 'w').write('\\n'.join(sys.argv[1:]))\n"
                    "sys.exit(7)\n")
    fake.chmod(0o700)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    backend = KubeBackend("ctx", api=world.api)
    assert backend.exec("team-a", "j1", ["bash", "-c", "echo $HOME"], tty=True, stdin=True) == 7
    pod = world.live_pod("team-a", "j1")["metadata"]["name"]
    assert record.read_text().split("\n") == ["--context", "ctx", "exec", "-it", "-n", "runai-team-a", pod, "--",
                                              "bash", "-c", "echo $HOME"]


def test_nodes_show_gpus_partitions_and_fractions(world: World):
    world.add_mig_node("mig-node")
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-a", 2)
    world.backend.set_dynamic_mig("mig-node", True)
    world.backend.submit(spec("m", mig_profile="3g.20gb"))
    world.backend.submit(spec("f", gpu="0.25"))
    world.settle()
    nodes = {n.name: n for n in world.backend.list_nodes()}
    [a100] = nodes["mig-node"].gpus
    assert a100.dynamic_mig and a100.mig_enabled and a100.simulated and a100.memory_slices == 8
    assert [(m.profile, m.state, m.job) for m in a100.mig_instances] == [("3g.20gb", "used", "team-a/m")]
    assert a100.mig_instances[0].uuid.startswith("MIG-")
    [t4] = nodes["t4-node"].gpus
    assert [(f.job, f.share_milli) for f in t4.fractions] == [("team-a/f", 250)]
    assert not t4.dynamic_mig and t4.model == "T4"

    world.backend.delete_jobs("team-a", ["m"])
    world.settle()
    [a100] = {n.name: n for n in world.backend.list_nodes()}["mig-node"].gpus
    assert [(m.profile, m.state) for m in a100.mig_instances] == [("3g.20gb", "idle")]  # kept for reuse


def test_dynamic_mig_is_refused_where_mig_mode_is_off_or_impossible(world: World):
    world.add_mig_node("mig-off", "A100-SXM4-40GB:1:mig-off")
    with pytest.raises(UserError, match="MIG mode is off on GPU 0") as refused:
        world.backend.set_dynamic_mig("mig-off", True)
    assert "nvidia-smi -i 0 -mig 1" in str(refused.value)
    assert k.DYNAMIC_MIG_LABEL not in world.kube.get("nodes", "mig-off")["metadata"]["labels"]
    world.add_gpu_node("t4-node", 1)
    with pytest.raises(UserError, match="does not show a MIG-capable GPU"):
        world.backend.set_dynamic_mig("t4-node", True)
    with pytest.raises(NotFoundError):
        world.backend.set_dynamic_mig("nowhere", True)


def test_projects_show_usage_and_survive_a_user_who_may_not_read_every_pod(world: World):
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-a", 1)
    world.backend.submit(spec("a", gpu="0.5"))
    world.backend.submit(spec("b", gpu="1"))
    world.settle()
    [project] = world.backend.list_projects()
    assert (project.name, project.deserved_gpus, project.allocated_gpus, project.running, project.pending) == (
        "team-a", 1.0, 0.5, 1, 1)

    world.kube.fail_next(403, verb="list", resource="pods", message='pods is forbidden: User "bob" cannot list '
                                                                    'resource "pods" at the cluster scope')
    assert [(p.name, p.deserved_gpus, p.running) for p in world.backend.list_projects()] == [("team-a", 1.0, 0)]
