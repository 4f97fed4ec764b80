"""An HTTP Kubernetes API emulator for tests (see README.md in this folder)."""

from .jobs import JobController
from .kubelet import DevicePlugin, Kubelet
from .emulator import KubeEmulator
from .errors import ApiError
from .resources import ResourceType
from .server import Fault, Request

__all__ = ["ApiError", "DevicePlugin", "Fault", "JobController", "KubeEmulator", "Kubelet", "Request", "ResourceType"]
