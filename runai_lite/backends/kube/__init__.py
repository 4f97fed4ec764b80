"""runai-lite on Kubernetes: the adapter the CLI uses (`KubeBackend`), the in-cluster controller,
the node agent, and the install manifests.

Importing this package does not import the `kubernetes` client; that happens on the first call
that talks to a cluster (`client.py`).
"""

from __future__ import annotations

from typing import Any

from .backend import KubeBackend


def render_manifests(values: Any = None) -> list[dict[str, Any]]:
    """The install manifests as objects (see `install.render_manifests`)."""
    from .install import render_manifests as render

    return render(values)


def install_manifests_yaml(values: Any = None) -> str:
    """The install manifests as one YAML stream (`runai-adm install --print`)."""
    from .install import render_yaml

    return render_yaml(values)


__all__ = ["KubeBackend", "install_manifests_yaml", "render_manifests"]
