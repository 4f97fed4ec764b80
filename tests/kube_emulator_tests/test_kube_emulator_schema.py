"""Objects are checked against the Kubernetes OpenAPI schemas as the API server decodes them.

The typed client refuses such bodies before sending them; code that writes plain dicts (as the
Kubernetes backend does) gets the server's answer, so these tests send raw JSON.
"""

from __future__ import annotations

import json

import urllib3

from tests.kube_emulator import KubeEmulator
from tests.kube_emulator.schema import check


def send(kube: KubeEmulator, method: str, path: str, body: dict,
         content_type: str = "application/json") -> urllib3.BaseHTTPResponse:
    return urllib3.request(method, kube.url + path, body=json.dumps(body), headers={"Content-Type": content_type})


def test_unknown_fields_are_dropped_with_a_warning(kube_emulator):
    response = send(kube_emulator, "POST", "/api/v1/namespaces/default/pods", {
        "metadata": {"name": "p"},
        "spec": {"schedulername": "runai-lite-scheduler", "containers": [{"name": "m", "image": "i", "envfrom": []}]},
    })
    assert response.status == 201
    assert sorted(response.headers.getlist("Warning")) == [
        r'299 - "unknown field \"spec.containers[0].envfrom\""', r'299 - "unknown field \"spec.schedulername\""']
    stored = kube_emulator.get("pods", "p", "default")
    assert stored["spec"]["schedulerName"] == "default-scheduler" and "schedulername" not in stored["spec"]
    assert "envfrom" not in stored["spec"]["containers"][0]
    assert sorted(kube_emulator.warnings) == ['Pod/p: unknown field "spec.containers[0].envfrom"',
                                              'Pod/p: unknown field "spec.schedulername"']


def test_a_wrongly_typed_value_is_400(kube_emulator):
    response = send(kube_emulator, "POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases", {
        "metadata": {"name": "l"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": "15"}})
    assert response.status == 400 and "spec.leaseDurationSeconds" in response.json()["message"]
    response = send(kube_emulator, "POST", "/api/v1/namespaces/default/configmaps",
                    {"metadata": {"name": "cm", "annotations": {"gpu-memory": 10240}}})
    assert response.status == 400 and response.json()["reason"] == "BadRequest"


def test_a_missing_required_field_is_422(kube_emulator):
    response = send(kube_emulator, "POST", "/api/v1/namespaces/default/events", {"metadata": {"name": "e"}})
    assert response.status == 422 and "involvedObject" in response.json()["message"]


def test_patches_are_checked_too(kube_emulator):
    kube_emulator.create("configmaps", {"metadata": {"name": "cm"}})
    path = "/api/v1/namespaces/default/configmaps/cm"
    assert send(kube_emulator, "PATCH", path, {"data": {"n": 1}}, "application/merge-patch+json").status == 400
    response = send(kube_emulator, "PATCH", path, {"data": {"n": "1"}, "dataa": {"typo": "x"}},
                    "application/merge-patch+json")
    assert response.status == 200 and response.json()["data"] == {"n": "1"} and "dataa" not in response.json()


def test_validation_can_be_turned_off_and_unknown_kinds_pass():
    with KubeEmulator(schema_validation=False) as kube:
        kube.create("configmaps", {"metadata": {"name": "cm"}, "extra": {"kept": True}})
        assert kube.get("configmaps", "cm", "default")["extra"] == {"kept": True}
    assert check({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"anything": 1}}) == []
