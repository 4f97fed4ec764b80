"""Watch streams through kubernetes.watch.Watch: replay, resume, selectors, timeouts, 410 after compaction."""

from __future__ import annotations

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.kube_emulator_tests.test_kube_emulator_crud import pod

SAFETY_TIMEOUT_S = 10  # ends a stream if a test's expected events never come; tests stop earlier


def collect(w: watch.Watch, stream, until: int) -> list[tuple[str, str]]:
    seen = []
    for event in stream:
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == until:
            w.stop()
    return seen


def test_watch_without_version_replays_objects_then_streams_changes(kube_client):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", pod("p1"))
    w = watch.Watch()
    seen = []
    for event in w.stream(v1.list_namespaced_pod, "default", timeout_seconds=SAFETY_TIMEOUT_S):
        seen.append((event["type"], event["object"].metadata.name, event["object"].metadata.labels))
        if len(seen) == 1:
            v1.patch_namespaced_pod("p1", "default", {"metadata": {"labels": {"stage": "two"}}})
        elif len(seen) == 2:
            v1.delete_namespaced_pod("p1", "default")
        else:
            w.stop()
    assert seen == [("ADDED", "p1", {}), ("MODIFIED", "p1", {"stage": "two"}), ("DELETED", "p1", {"stage": "two"})]


def test_watch_resumes_after_a_resource_version(kube_client):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "before"}})
    since = v1.list_namespaced_config_map("default").metadata.resource_version
    v1.create_namespaced_config_map("default", {"metadata": {"name": "a"}, "data": {"v": "1"}})
    v1.patch_namespaced_config_map("a", "default", {"data": {"v": "2"}})
    v1.delete_namespaced_config_map("a", "default")
    w = watch.Watch()
    stream = w.stream(v1.list_namespaced_config_map, "default", resource_version=since,
                      timeout_seconds=SAFETY_TIMEOUT_S)
    assert collect(w, stream, 3) == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_watch_resource_versions_increase_and_the_client_tracks_them(kube_client):
    v1 = client.CoreV1Api(kube_client)
    since = v1.list_namespaced_pod("default").metadata.resource_version
    for n in range(3):
        v1.create_namespaced_pod("default", pod(f"p{n}"))
    w = watch.Watch()
    versions = []
    for event in w.stream(v1.list_namespaced_pod, "default", resource_version=since, timeout_seconds=SAFETY_TIMEOUT_S):
        versions.append(int(event["object"].metadata.resource_version))
        if len(versions) == 3:
            w.stop()
    assert versions == sorted(versions) and w.resource_version == str(versions[-1])


def test_watch_ends_after_timeout_seconds_with_a_bookmark_when_allowed(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    since = v1.list_namespaced_pod("default").metadata.resource_version
    kube_emulator.create("configmaps", {"metadata": {"name": "elsewhere"}})  # moves the version on
    w = watch.Watch()
    events = list(w.stream(v1.list_namespaced_pod, "default", resource_version=since, timeout_seconds=1,
                           allow_watch_bookmarks=True))
    assert [e["type"] for e in events] == ["BOOKMARK"]
    assert w.resource_version == str(kube_emulator.resource_version) != since


def test_bookmarks_on_demand_reach_only_watches_that_allow_them(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", pod("p"))
    w = watch.Watch()
    seen = []
    for event in w.stream(v1.list_namespaced_pod, "default", allow_watch_bookmarks=True,
                          timeout_seconds=SAFETY_TIMEOUT_S):
        seen.append(event["type"])
        if len(seen) == 1:
            kube_emulator.send_bookmarks()
        else:
            w.stop()
    assert seen == ["ADDED", "BOOKMARK"]


def test_selector_watch_sees_objects_enter_and_leave_the_selection(kube_client):
    v1 = client.CoreV1Api(kube_client)
    since = v1.list_namespaced_pod("default").metadata.resource_version
    v1.create_namespaced_pod("default", pod("p", labels={"app": "other"}))
    v1.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"app": "x"}}})
    v1.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"tier": "gpu"}}})
    v1.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"app": "gone"}}})
    w = watch.Watch()
    stream = w.stream(v1.list_namespaced_pod, "default", label_selector="app=x", resource_version=since,
                      timeout_seconds=SAFETY_TIMEOUT_S)
    assert collect(w, stream, 3) == [("ADDED", "p"), ("MODIFIED", "p"), ("DELETED", "p")]


def test_field_selector_watch_across_namespaces(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    kube_emulator.create_namespace("runai-a")
    since = v1.list_pod_for_all_namespaces().metadata.resource_version
    v1.create_namespaced_pod("default", pod("ours-1", schedulerName="runai-lite-scheduler"))
    v1.create_namespaced_pod("runai-a", pod("theirs"))
    v1.create_namespaced_pod("runai-a", pod("ours-2", schedulerName="runai-lite-scheduler"))
    w = watch.Watch()
    stream = w.stream(v1.list_pod_for_all_namespaces, field_selector="spec.schedulerName=runai-lite-scheduler",
                      resource_version=since, timeout_seconds=SAFETY_TIMEOUT_S)
    assert collect(w, stream, 2) == [("ADDED", "ours-1"), ("ADDED", "ours-2")]


def test_cluster_scoped_and_batch_watches(kube_client, kube_emulator):
    v1, batch = client.CoreV1Api(kube_client), client.BatchV1Api(kube_client)
    since = kube_emulator.resource_version
    kube_emulator.add_node("n1")
    kube_emulator.create("jobs.batch", {"metadata": {"name": "j"}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "m", "image": "i"}]}}}})
    w = watch.Watch()
    assert collect(w, w.stream(v1.list_node, resource_version=str(since), timeout_seconds=SAFETY_TIMEOUT_S), 1) \
        == [("ADDED", "n1")]
    w = watch.Watch()
    stream = w.stream(batch.list_namespaced_job, "default", resource_version=str(since),
                      timeout_seconds=SAFETY_TIMEOUT_S)
    assert collect(w, stream, 1) == [("ADDED", "j")]


def test_resuming_from_a_compacted_version_is_410_gone(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    since = v1.list_namespaced_pod("default").metadata.resource_version
    v1.create_namespaced_pod("default", pod("p"))
    kube_emulator.compact()
    with pytest.raises(ApiException) as e:
        list(watch.Watch().stream(v1.list_namespaced_pod, "default", resource_version=since,
                                  timeout_seconds=SAFETY_TIMEOUT_S))
    assert e.value.status == 410
    # a fresh list gives a version to watch from again
    fresh = v1.list_namespaced_pod("default").metadata.resource_version
    v1.create_namespaced_pod("default", pod("q"))
    w = watch.Watch()
    stream = w.stream(v1.list_namespaced_pod, "default", resource_version=fresh, timeout_seconds=SAFETY_TIMEOUT_S)
    assert collect(w, stream, 1) == [("ADDED", "q")]


def test_writes_made_through_the_python_api_reach_open_watches(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    kube_emulator.add_node("n1")
    w = watch.Watch()
    seen = []
    for event in w.stream(v1.list_node, timeout_seconds=SAFETY_TIMEOUT_S):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 1:
            kube_emulator.mutate("nodes", "n1", lambda n: n["metadata"]["annotations"].update(x="1"))
        else:
            w.stop()
    assert seen == [("ADDED", "n1"), ("MODIFIED", "n1")]


def test_end_watches_closes_open_streams_and_a_resumed_watch_misses_nothing(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    kube_emulator.add_node("n1")
    w = watch.Watch()
    seen = []
    # no timeout_seconds: the client itself resumes from the last resourceVersion when the stream ends
    for event in w.stream(v1.list_node):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 1:
            kube_emulator.end_watches()
            kube_emulator.add_node("n2")  # written while the client reconnects
        else:
            w.stop()
    assert seen == [("ADDED", "n1"), ("ADDED", "n2")]
    assert [r.verb for r in kube_emulator.requests_for(resource="nodes")] == ["watch", "watch"]


def test_a_watch_sees_only_its_own_resource(kube_client):
    v1 = client.CoreV1Api(kube_client)
    since = v1.list_namespaced_pod("default").metadata.resource_version
    v1.create_namespaced_config_map("default", {"metadata": {"name": "not-a-pod"}})
    v1.create_namespaced_pod("default", pod("p1"))
    v1.create_namespaced_secret("default", {"metadata": {"name": "not-a-pod-either"}})
    v1.create_namespaced_pod("default", pod("p2"))
    w = watch.Watch()
    stream = w.stream(v1.list_namespaced_pod, "default", resource_version=since, timeout_seconds=SAFETY_TIMEOUT_S)
    assert collect(w, stream, 2) == [("ADDED", "p1"), ("ADDED", "p2")]
    kinds = []
    w = watch.Watch()
    for event in w.stream(v1.list_namespaced_pod, "default", timeout_seconds=SAFETY_TIMEOUT_S):
        kinds.append(event["raw_object"].get("kind"))
        if len(kinds) == 2:
            v1.create_namespaced_config_map("default", {"metadata": {"name": "live"}})
            v1.create_namespaced_pod("default", pod("p3"))
        if len(kinds) == 3:
            w.stop()
    assert kinds == ["Pod", "Pod", "Pod"]
