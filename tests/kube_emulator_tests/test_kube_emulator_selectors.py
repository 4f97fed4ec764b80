"""Label and field selector grammar and matching, on their own and through the client."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube_emulator.errors import ApiError
from tests.kube_emulator.selectors import labels_match, parse_field_selector, parse_label_selector
from tests.kube_emulator_tests.test_kube_emulator_crud import pod

OBJ = {"metadata": {"labels": {"app": "train", "tier": "gpu", "n": "3"}}}


@pytest.mark.parametrize("selector, expected", [
    ("", True),
    ("app=train", True),
    ("app==train", True),
    ("app!=train", False),
    ("app!=serve", True),
    ("missing!=x", True),
    ("app in (serve, train)", True),
    ("app in (serve)", False),
    ("app notin (serve,build)", True),
    ("missing notin (x)", True),
    ("tier", True),
    ("!tier", False),
    ("!missing", True),
    ("app=train,tier=gpu", True),
    ("app=train,tier=cpu", False),
    ("app in (train),!missing,tier", True),
    ("n>2", True),
    ("n<3", False),
    ("missing=", False),
    ("runai/queue", False),
])
def test_label_selector_operators(selector, expected):
    assert labels_match(parse_label_selector(selector), OBJ) is expected


@pytest.mark.parametrize("selector", ["app in (a", "app in ()", "=x", "a=b c", "app notin x", "a,,b"])
def test_malformed_label_selectors_are_400(selector):
    with pytest.raises(ApiError) as e:
        parse_label_selector(selector)
    assert e.value.code == 400


def test_field_selectors_compare_strings_and_refuse_unknown_fields():
    reqs = parse_field_selector("spec.nodeName=,status.phase!=Failed", lambda p: True)
    assert all(r.matches({"spec": {}, "status": {"phase": "Pending"}}) for r in reqs)
    assert not all(r.matches({"spec": {"nodeName": "n"}, "status": {}}) for r in reqs)
    with pytest.raises(ApiError) as e:
        parse_field_selector("spec.foo=bar", lambda p: False)
    assert e.value.code == 400


def test_selectors_through_the_client(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    kube_emulator.add_node("n1")
    v1.create_namespaced_pod("default", pod("a", labels={"runai/queue": "team", "app": "x"},
                                            schedulerName="runai-lite-scheduler"))
    v1.create_namespaced_pod("default", pod("b", labels={"runai/queue": "other"}, nodeName="n1"))
    v1.create_namespaced_pod("default", pod("c"))

    def names(**kw) -> list[str]:
        return [p.metadata.name for p in v1.list_namespaced_pod("default", **kw).items]

    assert names(label_selector="runai/queue") == ["a", "b"]
    assert names(label_selector="runai/queue in (team),app=x") == ["a"]
    assert names(label_selector="runai/queue notin (team)") == ["b", "c"]
    assert names(label_selector="!runai/queue") == ["c"]
    assert names(field_selector="spec.schedulerName=runai-lite-scheduler") == ["a"]
    assert names(field_selector="spec.nodeName=n1") == ["b"]
    assert names(field_selector="spec.nodeName=") == ["a", "c"]
    assert names(field_selector="metadata.name!=a,status.phase=Pending") == ["b", "c"]
    with pytest.raises(ApiException) as e:
        names(field_selector="spec.containers=x")
    assert e.value.status == 400
    with pytest.raises(ApiException) as e:
        names(label_selector="app in (x")
    assert e.value.status == 400
