"""Starting and stopping: free ports, open watches ended at shutdown, one server per emulator."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, watch

from tests.kube_emulator import KubeEmulator


def test_each_emulator_gets_its_own_port_and_state():
    with KubeEmulator() as a, KubeEmulator() as b:
        assert a.url != b.url
        a.create_namespace("only-in-a")
        assert b.get("namespaces", "only-in-a") is None


def test_stop_ends_open_watches_and_the_url_needs_a_started_emulator():
    kube = KubeEmulator()
    with pytest.raises(RuntimeError):
        _ = kube.url
    kube.start()
    with pytest.raises(RuntimeError):
        kube.start()
    api = kube.api_client()
    ended = threading.Event()
    opened = threading.Event()

    def watch_nodes() -> None:
        w = watch.Watch()
        # the stream replays the node, then waits: stopping the emulator must end it (no client timeout)
        for _ in w.stream(client.CoreV1Api(api).list_node, timeout_seconds=300):
            opened.set()
        ended.set()

    kube.add_node("n1")
    watcher = threading.Thread(target=watch_nodes, daemon=True)
    watcher.start()
    assert opened.wait(10)
    kube.stop()
    assert ended.wait(10)
    kube.stop()  # a second stop is harmless
