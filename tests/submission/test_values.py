"""`runai submit`'s host, storage, network, placement and lifetime flags: each accepted form, each
mistake refused with a message that says what would be right (exit 2), and the values `JobSpec`
keeps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from runai_lite.submission import values as f
from runai_lite.cli.config import CliConfig
from runai_lite.cli.runai import app
from runai_lite.cli.session import CliSession
from runai_lite.errors import UserError
from runai_lite.model import JobSpec, PortMapping, PvcMount, ServiceType, VolumeMount
from tests.cli.fake_backend import FakeBackend


@pytest.mark.parametrize(("text", "milli"), [("1", 1000), ("0.5", 500), ("2.25", 2250), ("500m", 500), (".1", 100),
                                             ("64", 64000)])
def test_cpu_reads_cores_and_millicores(text, milli):
    assert f.parse_cpu("--cpu", text) == milli


@pytest.mark.parametrize("text", ["0", "0m", "x", "-1", "1.0001", "0.5m", "1e3", "", "2 cores", "1000001"])
def test_cpu_mistakes_are_user_errors(text):
    with pytest.raises(UserError, match="--cpu"):
        f.parse_cpu("--cpu", text)


@pytest.mark.parametrize(("text", "mib"), [("512Mi", 512), ("1Gi", 1024), ("1G", 954), ("100M", 96), ("4GB", 3815)])
def test_memory_is_read_as_gpu_memory_is_and_rounded_up_to_mib(text, mib):
    assert f.parse_memory("--memory", text) == mib


@pytest.mark.parametrize("text", ["0", "1x", "", "-1G"])
def test_memory_mistakes_name_the_flag(text):
    with pytest.raises(UserError, match="--memory-limit"):
        f.parse_memory("--memory-limit", text)


@pytest.mark.parametrize(("text", "volume"), [
    ("/data:/data", VolumeMount(host_path="/data", container_path="/data")),
    ("/d:/mnt/d:ro", VolumeMount(host_path="/d", container_path="/mnt/d", read_only=True)),
    ("/d:/e:rw", VolumeMount(host_path="/d", container_path="/e")),
])
def test_volume_forms(text, volume):
    assert f.parse_volume(text) == volume


@pytest.mark.parametrize(("text", "why"), [("/data", "HOST_PATH:CONTAINER_PATH"), ("data:/data", "absolute"),
                                           ("/data:data", "absolute"), ("/a:/b:rx", "neither ro nor rw"),
                                           ("/a:/b:ro:x", "HOST_PATH"), (":/b", "HOST_PATH")])
def test_volume_mistakes(text, why):
    with pytest.raises(UserError, match=why):
        f.parse_volume(text)


@pytest.mark.parametrize(("text", "pvc"), [
    (":10G:/data", PvcMount(size_bytes=10**10, container_path="/data")),
    ("fast:1Gi:/scratch:ro", PvcMount(storage_class="fast", size_bytes=2**30, container_path="/scratch", read_only=True)),
    ("my-claim:/data", PvcMount(claim_name="my-claim", container_path="/data")),
    ("my-claim:/data:ro", PvcMount(claim_name="my-claim", container_path="/data", read_only=True)),
])
def test_pvc_forms_of_run_ai(text, pvc):
    assert f.parse_pvc(text) == pvc


@pytest.mark.parametrize("text", ["foo", "a:b:c", ":10x:/d", "BadClaim:/d", "c:/d:rx", "fast:1G:data", ":0:/d"])
def test_pvc_mistakes(text):
    with pytest.raises(UserError, match="--pvc"):
        f.parse_pvc(text)


@pytest.mark.parametrize(("text", "port"), [("8888", PortMapping(container_port=8888)),
                                            ("8080:80", PortMapping(host_port=8080, container_port=80))])
def test_port_forms(text, port):
    assert f.parse_port(text) == port


@pytest.mark.parametrize("text", ["0", "65536", "a", "1:2:3", "-1", ":80", "80:", "８０"])
def test_port_mistakes(text):
    with pytest.raises(UserError, match="--port"):
        f.parse_port(text)


@pytest.mark.parametrize(("text", "kind"), [("nodeport", ServiceType.NODE_PORT), ("NodePort", ServiceType.NODE_PORT),
                                            ("loadbalancer", ServiceType.LOAD_BALANCER),
                                            ("portforward", ServiceType.CLUSTER_IP), ("ClusterIP", ServiceType.CLUSTER_IP)])
def test_service_types_of_run_ai(text, kind):
    assert f.parse_service_type(text) == kind


def test_ingress_and_unknown_service_types_are_refused_saying_what_exists():
    with pytest.raises(UserError, match="ingress is not supported") as caught:
        f.parse_service_type("ingress")
    assert "nodeport" in (caught.value.hint or "")
    with pytest.raises(UserError, match="invalid --service-type"):
        f.parse_service_type("public")


@pytest.mark.parametrize(("text", "label"), [("team=vision", ("team", "vision")), ("a=", ("a", "")),
                                             ("example.com/owner=ana", ("example.com/owner", "ana")),
                                             ("A_b.c-d=E_f.g-h", ("A_b.c-d", "E_f.g-h"))])
def test_labels_as_kubernetes_takes_them(text, label):
    assert f.parse_label(text) == label


@pytest.mark.parametrize(("text", "why"), [("team", "no '='"), ("-team=x", "key"), ("team=-x", "value"),
                                           ("x" * 64 + "=v", "key"), ("k=" + "v" * 64, "value"),
                                           ("Example.com/o=x", "prefix"), ("/o=x", "prefix"),
                                           ("runai/queue=x", "sets the label"), ("app=x", "sets the label"),
                                           ("kubernetes.io/arch=x", "sets the label"),
                                           ("node.kubernetes.io/x=y", "sets the label")])
def test_label_mistakes(text, why):
    with pytest.raises(UserError, match=why):
        f.parse_label(text)


@pytest.mark.parametrize(("text", "seconds"), [("30", 30), ("30s", 30), ("10m", 600), ("1h30m", 5400), ("1.5h", 5400),
                                               ("0s", 0), ("2h0m5s", 7205)])
def test_durations_as_go_writes_them(text, seconds):
    assert f.parse_duration("--ttl-after-finish", text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "1d", "-1s", "0.5s", "h", "99999999999"])
def test_duration_mistakes(text):
    with pytest.raises(UserError, match="--ttl-after-finish"):
        f.parse_duration("--ttl-after-finish", text)


@given(st.integers(1, 65535), st.one_of(st.none(), st.integers(1, 65535)))
def test_a_port_reads_back_as_written(container, host):
    text = f"{host}:{container}" if host else str(container)
    assert f.parse_port(text) == PortMapping(container_port=container, host_port=host)


def _spec(**fields) -> JobSpec:
    return JobSpec(name="j", project="p", image="i", **fields)


@pytest.mark.parametrize(("fields", "why"), [
    ({"cpu_milli": 2000, "cpu_limit_milli": 1000}, "above the CPU limit"),
    ({"memory_mib": 2, "memory_limit_mib": 1}, "above the memory limit"),
    ({"completions": 2, "parallelism": 3}, "above completions"),
    ({"completions": 2, "type": "interactive"}, "training jobs only"),
    ({"service_type": ServiceType.NODE_PORT}, "needs at least one --port"),
    ({"ports": (PortMapping(container_port=80), PortMapping(container_port=80))}, "container port is given twice"),
    ({"ports": (PortMapping(container_port=80, host_port=1), PortMapping(container_port=81, host_port=1))},
     "host port is given twice"),
    ({"volumes": (VolumeMount(host_path="/a", container_path="/x"),),
      "pvcs": (PvcMount(claim_name="c", container_path="/x"),)}, "same container path"),
    ({"labels": (("a", "1"), ("a", "2"))}, "given twice"),
    ({"node_type": ""}, "node type"),
])
def test_a_spec_that_contradicts_itself_is_invalid(fields, why):
    with pytest.raises(ValidationError, match=why):
        _spec(**fields)


def test_an_old_spec_without_the_new_fields_still_loads_with_their_defaults():
    old = '{"name": "j", "project": "p", "image": "i", "cpu_milli": 0, "memory_mib": 0}'
    spec = JobSpec.model_validate_json(old)
    assert (spec.volumes, spec.ports, spec.labels, spec.node_type, spec.ttl_after_finish_s, spec.completions) == (
        (), (), (), None, None, 1)


def _submit(*args: str, backend: FakeBackend | None = None):
    backend = backend or FakeBackend()
    result = CliRunner().invoke(app, ["submit", "j", "-i", "img", *args, "--", "true"],
                                obj=CliSession(backend=backend, config=CliConfig(project="team-a")))
    return result, backend


def test_the_cli_turns_every_flag_into_the_spec(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNAI_LITE_HOME", str(tmp_path))
    result, backend = _submit("--cpu", "0.5", "--memory", "1Gi", "--cpu-limit", "2", "--memory-limit", "2Gi",
                              "-v", "/a:/b:ro", "--pvc", "c:/d", "--port", "8080:80", "-s", "nodeport",
                              "-l", "team=x", "--label", "k=v", "--node-type", "dgx", "--ttl-after-finish", "1h",
                              "--large-shm", "--completions", "4", "--parallelism", "2")
    assert result.exit_code == 0, result.output
    (spec,) = backend.submitted
    assert (spec.cpu_milli, spec.memory_mib, spec.cpu_limit_milli, spec.memory_limit_mib) == (500, 1024, 2000, 2048)
    assert spec.volumes == (VolumeMount(host_path="/a", container_path="/b", read_only=True),)
    assert spec.pvcs == (PvcMount(claim_name="c", container_path="/d"),)
    assert spec.ports == (PortMapping(host_port=8080, container_port=80),) and spec.service_type == "NodePort"
    assert spec.labels == (("team", "x"), ("k", "v")) and spec.node_type == "dgx"
    assert (spec.ttl_after_finish_s, spec.large_shm, spec.completions, spec.parallelism) == (3600, True, 4, 2)


def test_a_limit_alone_is_also_the_request_as_in_kubernetes(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNAI_LITE_HOME", str(tmp_path))
    result, backend = _submit("--cpu-limit", "1.5", "--memory-limit", "1Gi")
    assert result.exit_code == 0, result.output
    (spec,) = backend.submitted
    assert (spec.cpu_milli, spec.memory_mib, spec.cpu_limit_milli, spec.memory_limit_mib) == (1500, 1024, 1500, 1024)


@pytest.mark.parametrize(("args", "why"), [
    (["--cpu", "2", "--cpu-limit", "1"], "--cpu 2 is above --cpu-limit 1"),
    (["--memory", "2G", "--memory-limit", "1G"], "above --memory-limit"),
    (["--parallelism", "2"], "needs --completions"),
    (["--completions", "2", "--interactive"], "training jobs only"),
    (["--service-type", "nodeport"], "needs at least one --port"),
    (["--node-type", "a b"], "node type"),
    (["-l", "runai/queue=other"], "sets the label runai/queue itself"),
    (["--completions", "0"], "--completions"),
])
def test_cli_mistakes_exit_2_and_submit_nothing(monkeypatch, tmp_path, args, why):
    monkeypatch.setenv("RUNAI_LITE_HOME", str(tmp_path))
    result, backend = _submit(*args)
    assert result.exit_code == 2, result.output
    assert why in result.output and "Traceback" not in result.output
    assert backend.submitted == []


def test_help_documents_every_new_flag():
    shown = CliRunner().invoke(app, ["submit", "--help"], env={"COLUMNS": "200"}).output
    for flag in ("--cpu", "--memory", "--cpu-limit", "--memory-limit", "--volume", "--pvc", "--large-shm", "--port",
                 "--service-type", "--label", "--node-type", "--ttl-after-finish", "--completions", "--parallelism",
                 "--attach"):
        assert flag in shown, flag
