"""An HTTP Kubernetes API emulator for tests (see README.md in this folder)."""

from .controllers import JobController, Kubelet
from .emulator import KubeEmulator
from .errors import ApiError
from .resources import ResourceType
from .server import Fault, Request

__all__ = ["ApiError", "Fault", "JobController", "KubeEmulator", "Kubelet", "Request", "ResourceType"]
