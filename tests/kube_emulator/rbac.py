"""RBAC authorization, as the API server's RBAC authorizer decides it, for clients that present a
service-account identity (`KubeEmulator.api_client(service_account="ns/name")`).

Requests with any other token are cluster-admin, so tests that do not care about RBAC never meet it.
Tested against the Roles, ClusterRoles and bindings stored in the emulator (a chart's, say), so a
missing verb or resource in least-privilege RBAC answers 403 here as it would on a cluster.
Not emulated: aggregated ClusterRoles, the bootstrap roles beyond discovery, impersonation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .errors import ApiError

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
NODE_CLAIM = "authentication.kubernetes.io/node-name"  # a pod-bound token's node, in userInfo.extra
_NODE_SUFFIX = "#node="


@dataclass(frozen=True)
class Subject:
    user: str
    groups: tuple[str, ...]
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()  # userInfo.extra, as (key, values) pairs

    @classmethod
    def service_account(cls, namespace: str, name: str, node: str | None = None) -> "Subject":
        """A service account; with `node`, as the token of a pod on that node presents it (the API
        server puts the node's name in the user's extra, Kubernetes 1.30+)."""
        return cls(f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
                   ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
                   ((NODE_CLAIM, (node,)),) if node else ())


def token_for(namespace: str, name: str, node: str | None = None) -> str:
    """The bearer token the emulator reads as this service account, bound to a pod on `node` when
    given (a real cluster signs a JWT instead)."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}" + (f"{_NODE_SUFFIX}{node}" if node else "")


def subject_from_authorization(header: str | None) -> Subject | None:
    """The service account a request acts as, or None for the emulator's unrestricted admin."""
    token = (header or "").removeprefix("Bearer ").strip()
    if not token.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    account, _, node = token[len(SERVICE_ACCOUNT_PREFIX):].partition(_NODE_SUFFIX)
    namespace, _, name = account.partition(":")
    return Subject.service_account(namespace, name, node or None)


@dataclass(frozen=True)
class Attributes:
    verb: str
    group: str
    resource: str
    subresource: str | None
    namespace: str | None
    name: str | None


def rule_allows(rule: dict[str, Any], a: Attributes) -> bool:
    verbs, groups, resources = rule.get("verbs") or [], rule.get("apiGroups") or [], rule.get("resources") or []
    if "*" not in verbs and a.verb not in verbs:
        return False
    if "*" not in groups and a.group not in groups:
        return False
    wanted = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    candidates = {"*", wanted} | ({f"*/{a.subresource}", f"{a.resource}/*"} if a.subresource else set())
    if not candidates & set(resources):
        return False
    names = rule.get("resourceNames")
    return not names or (a.name is not None and a.name in names)


def _binds(binding: dict[str, Any], subject: Subject) -> bool:
    for s in binding.get("subjects") or []:
        kind = s.get("kind")
        if kind == "ServiceAccount" and token_for(s.get("namespace", ""), s.get("name", "")) == subject.user:
            return True
        if (kind == "User" and s.get("name") == subject.user) or (kind == "Group" and s.get("name") in subject.groups):
            return True
    return False


def authorized(subject: Subject, a: Attributes, roles: dict[tuple[str, str], dict[str, Any]],
               cluster_roles: dict[str, dict[str, Any]], role_bindings: Iterable[dict[str, Any]],
               cluster_role_bindings: Iterable[dict[str, Any]]) -> bool:
    """Whether some binding of the subject grants a rule that covers the request. `roles` is keyed by
    (namespace, name); RoleBindings grant only in their own namespace."""
    def rules(binding: dict[str, Any], namespace: str | None) -> list[dict[str, Any]]:
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            role = cluster_roles.get(ref.get("name", ""))
        else:
            role = roles.get((namespace or "", ref.get("name", "")))
        return (role or {}).get("rules") or []

    for crb in cluster_role_bindings:
        if _binds(crb, subject) and any(rule_allows(r, a) for r in rules(crb, None)):
            return True
    for rb in role_bindings:
        ns = rb["metadata"].get("namespace")
        if a.namespace == ns and _binds(rb, subject) and any(rule_allows(r, a) for r in rules(rb, ns)):
            return True
    return False


def forbidden(subject: Subject, a: Attributes) -> ApiError:
    what = f'{a.resource} "{a.name}"' if a.name else a.resource
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    return ApiError(403, f'{what} is forbidden: User "{subject.user}" cannot {a.verb} resource "{resource}" '
                         f'in API group "{a.group}" {scope}',
                    details={"name": a.name or "", "group": a.group, "kind": a.resource})
