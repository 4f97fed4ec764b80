from tests.kube_emulator.fixtures import kube_client, kube_emulator, kubeconfig  # noqa: F401
