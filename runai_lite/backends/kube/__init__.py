"""runai-lite on Kubernetes: the adapter the CLI uses (`KubeBackend`), the in-cluster controller,
the node agent, and the install manifests.

Importing this package does not import the `kubernetes` client; that happens on the first call
that talks to a cluster (`client.py`).
"""

from __future__ import annotations

from typing import Any

from .backend import KubeBackend


def render_manifests(values: Any = None, release: Any = None, create_namespace: bool = False) -> list[dict[str, Any]]:
    """The install manifests as objects (see `install.render_manifests`)."""
    from .install import render_manifests as render

    return render(values, release, create_namespace)


def install_manifests_yaml(values: Any = None, release: Any = None, create_namespace: bool = True) -> str:
    """The install manifests as one YAML stream (`runai-adm install --print`): the release's
    namespace first, as `helm install --create-namespace` would make it."""
    from .install import render_yaml

    return render_yaml(values, release, create_namespace)


__all__ = ["KubeBackend", "install_manifests_yaml", "render_manifests"]
