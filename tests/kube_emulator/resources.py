"""The table of API resources the emulator serves: group, version, plural, kind, scope, subresources.

Every handler is generic over this table, so adding a resource (a CRD in a test, say) is one entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

# Field selectors every resource accepts, as on a real API server.
COMMON_FIELD_LABELS = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: frozenset[str] = frozenset()
    # Field selector paths beyond metadata.name/namespace that this resource supports (others → 400).
    field_labels: frozenset[str] = frozenset()
    # The real API server answers DELETE with the object (not a Status) for a few kinds; the Python
    # client's return types depend on it (delete_namespaced_pod → V1Pod).
    returns_deleted_object: bool = False
    short_names: tuple[str, ...] = ()
    singular_name: str | None = None  # a CRD's names.singular; kind.lower() otherwise
    # a custom resource's openAPIV3Schema (None for built-in kinds); not part of the identity, so a CRD
    # updated with a new schema keeps serving the same stored objects
    custom_schema: Any = field(default=None, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def key(self) -> str:
        """kubectl-style name: `pods`, `jobs.batch`, `leases.coordination.k8s.io`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.singular_name or self.kind.lower()

    @property
    def custom(self) -> bool:
        return self.custom_schema is not None

    def supports_field(self, path: str) -> bool:
        return path in COMMON_FIELD_LABELS or path in self.field_labels

    def has_status(self) -> bool:
        return "status" in self.subresources


def _r(group: str, version: str, plural: str, kind: str, **kw) -> ResourceType:
    for name in ("subresources", "field_labels"):
        if name in kw:
            kw[name] = frozenset(kw[name])
    return ResourceType(group, version, plural, kind, **kw)


_STATUS = ("status",)
_EVENT_FIELDS = (
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
    "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
    "reason", "reportingComponent", "type", "source",
)

DEFAULT_RESOURCES: tuple[ResourceType, ...] = (
    # core/v1
    _r("", "v1", "namespaces", "Namespace", namespaced=False, subresources=_STATUS,
       field_labels=("status.phase",), returns_deleted_object=True, short_names=("ns",)),
    _r("", "v1", "nodes", "Node", namespaced=False, subresources=_STATUS,
       field_labels=("spec.unschedulable",), short_names=("no",)),
    _r("", "v1", "pods", "Pod", subresources=("status", "binding", "eviction", "log", "portforward"),
       field_labels=("spec.nodeName", "spec.schedulerName", "spec.restartPolicy", "spec.serviceAccountName",
                     "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
       returns_deleted_object=True, short_names=("po",)),
    _r("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _r("", "v1", "secrets", "Secret", field_labels=("type",)),
    _r("", "v1", "services", "Service", subresources=_STATUS, returns_deleted_object=True, short_names=("svc",)),
    _r("", "v1", "serviceaccounts", "ServiceAccount", returns_deleted_object=True, short_names=("sa",)),
    _r("", "v1", "events", "Event", field_labels=_EVENT_FIELDS, short_names=("ev",)),
    _r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", subresources=_STATUS,
       returns_deleted_object=True, short_names=("pvc",)),
    _r("", "v1", "resourcequotas", "ResourceQuota", subresources=_STATUS, returns_deleted_object=True),
    _r("", "v1", "limitranges", "LimitRange"),
    # apps/v1
    _r("apps", "v1", "deployments", "Deployment", subresources=_STATUS, short_names=("deploy",)),
    _r("apps", "v1", "daemonsets", "DaemonSet", subresources=_STATUS, short_names=("ds",)),
    _r("apps", "v1", "statefulsets", "StatefulSet", subresources=_STATUS, short_names=("sts",)),
    _r("apps", "v1", "replicasets", "ReplicaSet", subresources=_STATUS, short_names=("rs",)),
    # batch/v1
    _r("batch", "v1", "jobs", "Job", subresources=_STATUS, field_labels=("status.successful",)),
    _r("batch", "v1", "cronjobs", "CronJob", subresources=_STATUS, short_names=("cj",)),
    # others the project uses
    _r("coordination.k8s.io", "v1", "leases", "Lease"),
    _r("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", namespaced=False, short_names=("pc",)),
    _r("events.k8s.io", "v1", "events", "Event", field_labels=_EVENT_FIELDS, short_names=("ev",)),
    _r("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", subresources=_STATUS, short_names=("pdb",)),
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _r("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", "ValidatingAdmissionPolicy",
       namespaced=False, subresources=_STATUS),
    _r("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding",
       namespaced=False),
    _r("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False,
       subresources=_STATUS, short_names=("crd", "crds")),
)


@dataclass
class ResourceTable:
    """Lookup of resource types by URL (group, version, plural) and by kubectl-style name."""

    resources: list[ResourceType] = field(default_factory=lambda: list(DEFAULT_RESOURCES))

    def add(self, resource: ResourceType) -> None:
        if self.by_url(resource.group, resource.version, resource.plural) is not None:
            raise ValueError(f"resource {resource.key}/{resource.version} is already registered")
        self.resources.append(resource)

    def remove(self, resource: ResourceType) -> None:
        self.resources = [r for r in self.resources if r != resource]

    def by_url(self, group: str, version: str, plural: str) -> ResourceType | None:
        for r in self.resources:
            if (r.group, r.version, r.plural) == (group, version, plural):
                return r
        return None

    def by_name(self, name: str) -> ResourceType:
        """`pods`, `pod`, `po`, `Pod`, `jobs.batch`, `events.events.k8s.io`; the core group wins ties."""
        plural, _, group = name.partition(".")
        candidates = [
            r for r in self.resources
            if plural.lower() in (r.plural, r.singular, *r.short_names) and (not group or r.group == group)
        ]
        if not candidates:
            raise KeyError(f"unknown resource {name!r}; known: {', '.join(r.key for r in self.resources)}")
        candidates.sort(key=lambda r: (r.group != "", r.group))
        return candidates[0]

    def groups(self) -> dict[str, list[str]]:
        """Named API groups → their versions (the core group is served under /api)."""
        out: dict[str, list[str]] = {}
        for r in self.resources:
            if r.group and r.version not in out.setdefault(r.group, []):
                out[r.group].append(r.version)
        return out

    def in_group_version(self, group: str, version: str) -> Iterable[ResourceType]:
        return [r for r in self.resources if (r.group, r.version) == (group, version)]
