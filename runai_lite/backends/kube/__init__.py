"""runai-lite on Kubernetes: the adapter the CLI uses (`KubeBackend`), the in-cluster controller,
the node agent, and the install manifests.

Importing this package does not import the `kubernetes` client; that happens on the first call
that talks to a cluster (`client.py`).
"""

from .backend import KubeBackend
from .install import InstallValues, render_manifests, render_yaml


def install_manifests_yaml(values: InstallValues | dict | None = None) -> str:
    """The install manifests as one YAML stream (`runai-adm install --print`)."""
    return render_yaml(values)


__all__ = ["InstallValues", "KubeBackend", "install_manifests_yaml", "render_manifests", "render_yaml"]
