"""pytest fixtures; import them into a conftest.py:

    from tests.kube_emulator.fixtures import kube_client, kube_emulator, kubeconfig  # noqa: F401
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from .emulator import KubeEmulator


@pytest.fixture
def kube_emulator(request: pytest.FixtureRequest) -> Iterator[KubeEmulator]:
    """A fresh emulator per test (starting one takes milliseconds), as strict as a cluster: graceful
    deletion, kubelet admission. A test may ask for other options with
    `@pytest.mark.kube_emulator(graceful_pod_deletion=False, ...)`."""
    marker = request.node.get_closest_marker("kube_emulator")
    options = {"seed": 0, **(marker.kwargs if marker else {})}
    with KubeEmulator(**options) as emulator:
        yield emulator


@pytest.fixture
def kube_client(kube_emulator: KubeEmulator) -> Iterator[Any]:
    """A kubernetes.client.ApiClient for the emulator."""
    with kube_emulator.api_client() as client:
        yield client


@pytest.fixture
def kubeconfig(kube_emulator: KubeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig whose context `emulator` points at the emulator, exported as $KUBECONFIG.

    kubernetes.config reads $KUBECONFIG once, at import, for its default; code under test should read the
    variable when it loads (or be given the path), as `kubectl` does."""
    path = kube_emulator.write_kubeconfig(tmp_path / "kubeconfig", context="emulator")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path
