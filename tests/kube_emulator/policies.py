"""ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1), evaluated as the API server's validating
admission evaluates it, with CEL from `cel-python` (`celpy`).

A policy acts through its bindings. For each write (CREATE, UPDATE — of a subresource too, e.g.
`pods/status` —, DELETE, and CREATE of `pods/binding` / `pods/eviction`) every binding whose policy
matches is evaluated:

- matching: the policy's `matchConstraints` and then the binding's `matchResources`: `resourceRules`
  (apiGroups, apiVersions, resources with `sub/resources` and `*`, operations, resourceNames, scope),
  `excludeResourceRules`, `namespaceSelector` (labels of the object's namespace; of the namespace
  itself for namespaces), `objectSelector` (labels of the object, or of the old object);
- then `matchConditions` (all must hold), `variables` (as `variables.<name>`), and `validations`: a
  false expression denies with its `message` (or `messageExpression`, or `failed expression: …`) and
  `reason` (Forbidden 403 by default; Invalid 422, Unauthorized 401, RequestEntityTooLarge 413);
- CEL sees `object` (null on DELETE), `oldObject` (null on CREATE), `request` (operation, kind,
  resource, subResource, name, namespace, userInfo.username/groups/extra (a pod-bound token's
  `authentication.kubernetes.io/node-name`), dryRun), `namespaceObject`,
  `variables`; the standard macros (`has`, `all`, `exists`, `exists_one`, `map`, `filter`) and string
  functions come with celpy;
- an expression that fails to compile or evaluate follows `failurePolicy` (Fail by default: denied;
  Ignore: allowed);
- `validationActions`: `Deny` rejects, `Warn` answers a `Warning` header, `Audit` is not recorded.

The user is the request's: a service-account token's identity, else `kubernetes-admin` (groups
`system:masters`); the emulator's own controllers act as their Kubernetes identities
(`system:serviceaccount:kube-system:job-controller`, …) through `acting_as`.

Not emulated: `paramKind`/`paramRef` (a binding with a paramRef is evaluated as if it had none only
when the policy has no paramKind; otherwise the binding is skipped), `auditAnnotations`, the
`authorizer` and Kubernetes CEL libraries (quantity, url, ip, …), type checking of expressions, the
CEL cost budget, the object's `managedFields`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from .errors import ApiError
from .resources import ResourceType
from .selectors import labels_match, parse_label_selector

if TYPE_CHECKING:
    from .store import Store

Obj = dict[str, Any]
POLICIES = "validatingadmissionpolicies.admissionregistration.k8s.io"
BINDINGS = "validatingadmissionpolicybindings.admissionregistration.k8s.io"
_REASON_CODES = {"Forbidden": 403, "Invalid": 422, "Unauthorized": 401, "RequestEntityTooLarge": 413}


@dataclass(frozen=True)
class UserInfo:
    username: str
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


ADMIN = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))
_current_user: contextvars.ContextVar[UserInfo] = contextvars.ContextVar("kube_emulator_user", default=ADMIN)


def current_user() -> UserInfo:
    return _current_user.get()


@contextlib.contextmanager
def acting_as(user: UserInfo) -> Iterator[None]:
    """Writes made inside are admitted as made by `user`."""
    token = _current_user.set(user)
    try:
        yield
    finally:
        _current_user.reset(token)


@dataclass(frozen=True)
class Request:
    operation: str  # CREATE, UPDATE, DELETE
    resource: ResourceType
    subresource: str | None
    namespace: str | None
    name: str
    object: Obj | None
    old_object: Obj | None
    dry_run: bool = False


@functools.cache
def _environment() -> Any:
    import celpy

    return celpy.Environment()


@functools.cache
def _program(expression: str) -> Any:
    environment = _environment()
    return environment.program(environment.compile(expression))


def _evaluate(expression: str, activation: dict[str, Any]) -> Any:
    import celpy

    result = _program(expression).evaluate(activation)
    if isinstance(result, celpy.evaluation.CELEvalError):
        raise result
    return result


@functools.cache
def _null_comparable() -> tuple[type, type]:
    """celpy 0.5's MapType and ListType answer `x == null` but raise on `x != null`, which Kubernetes
    policies write all the time (`oldObject != null`), and its MapType `!=` answers None (false) for maps
    of more than one key: these subclasses answer `!=` as the negation of `==`, as CEL does."""
    from celpy import celtypes

    class Map(celtypes.MapType):
        def __ne__(self, other: Any) -> bool:
            return True if other is None else not self.__eq__(other)

    class List(celtypes.ListType):
        def __ne__(self, other: Any) -> bool:
            return True if other is None else not self.__eq__(other)

    return Map, List


def _cel(value: Any) -> Any:
    import celpy

    converted = celpy.json_to_cel(value)
    Map, List = _null_comparable()

    def wrap(v: Any) -> Any:
        if isinstance(v, celpy.celtypes.MapType):
            return Map({k: wrap(x) for k, x in v.items()})
        if isinstance(v, celpy.celtypes.ListType):
            return List([wrap(x) for x in v])
        return v

    return wrap(converted)


def _variables(values: dict[str, Any]) -> Any:
    import celpy

    return _null_comparable()[0]({celpy.celtypes.StringType(k): v for k, v in values.items()})


def _rule_matches(rule: Obj, q: Request) -> bool:
    r = q.resource
    resource = f"{r.plural}/{q.subresource}" if q.subresource else r.plural
    resources = set(rule.get("resources") or [])
    candidates = {"*", resource} | ({f"*/{q.subresource}", f"{r.plural}/*"} if q.subresource else set())
    scope = rule.get("scope") or "*"
    return (({"*", r.group} & set(rule.get("apiGroups") or []))
            and ({"*", r.version} & set(rule.get("apiVersions") or []))
            and bool(candidates & resources)
            and bool({"*", q.operation} & set(rule.get("operations") or []))
            and (not rule.get("resourceNames") or q.name in rule["resourceNames"])
            and (scope == "*" or (scope == "Namespaced") == r.namespaced))


def _selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    if not selector:
        return True
    wanted = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for e in selector.get("matchExpressions") or []:
        op, values = e.get("operator"), ",".join(e.get("values") or [])
        wanted.append({"In": f"{e['key']} in ({values})", "NotIn": f"{e['key']} notin ({values})",
                       "Exists": e["key"], "DoesNotExist": f"!{e['key']}"}[op])
    return labels_match(parse_label_selector(",".join(wanted)), {"metadata": {"labels": labels}})


class ValidatingPolicies:
    def __init__(self, store: "Store"):
        self.store = store

    def _namespace(self, q: Request) -> Obj | None:
        if q.resource.key == "namespaces":
            return q.object or q.old_object
        if not q.resource.namespaced or not q.namespace:
            return None
        found = self.store.objects(self.store.resources.by_name("namespaces"))
        return next((n for n in found if n["metadata"]["name"] == q.namespace), None)

    def _matches(self, match: Obj | None, q: Request, namespace: Obj | None) -> bool:
        if match is None:
            return True
        rules = match.get("resourceRules")
        # a binding's matchResources without resourceRules narrows nothing by resource
        if rules is not None and not any(_rule_matches(rule, q) for rule in rules):
            return False
        if any(_rule_matches(rule, q) for rule in match.get("excludeResourceRules") or []):
            return False
        if namespace is not None and not _selector_matches(match.get("namespaceSelector"),
                                                           namespace["metadata"].get("labels") or {}):
            return False
        objects = [o for o in (q.object, q.old_object) if o is not None]
        return any(_selector_matches(match.get("objectSelector"), (o.get("metadata") or {}).get("labels") or {})
                   for o in objects) if objects else True

    def admit(self, q: Request, warnings: list[str] | None = None) -> None:
        """Raise ApiError when a bound policy with action Deny rejects the request; add Warn messages."""
        table = self.store.resources
        try:
            policy_type, binding_type = table.by_name(POLICIES), table.by_name(BINDINGS)
        except KeyError:
            return
        bindings = self.store.objects(binding_type)
        if not bindings:
            return
        policies = {p["metadata"]["name"]: p for p in self.store.objects(policy_type)}
        namespace = None
        for binding in bindings:
            spec = binding.get("spec") or {}
            policy = policies.get(spec.get("policyName", ""))
            if policy is None or (policy.get("spec") or {}).get("paramKind"):
                continue
            namespace = namespace or self._namespace(q)
            pspec = policy.get("spec") or {}
            if not self._matches(pspec.get("matchConstraints"), q, namespace) or \
                    not self._matches(spec.get("matchResources"), q, namespace):
                continue
            denial = self._evaluate(pspec, q, namespace)
            if denial is None:
                continue
            code, reason, message = denial
            text = (f"ValidatingAdmissionPolicy '{policy['metadata']['name']}' with binding "
                    f"'{binding['metadata']['name']}' denied request: {message}")
            actions = spec.get("validationActions") or []
            if "Warn" in actions and warnings is not None:
                warnings.append(text)
            if "Deny" in actions:
                raise ApiError(code, text, reason=reason)

    def _evaluate(self, spec: Obj, q: Request, namespace: Obj | None) -> tuple[int, str, str] | None:
        """None when the request passes; else (code, reason, message)."""
        user = current_user()
        r = q.resource
        request = {
            "operation": q.operation, "name": q.name, "namespace": q.namespace or "",
            "kind": {"group": r.group, "version": r.version, "kind": r.kind},
            "resource": {"group": r.group, "version": r.version, "resource": r.plural},
            "subResource": q.subresource or "", "dryRun": q.dry_run,
            "userInfo": {"username": user.username, "groups": list(user.groups),
                         "extra": {key: list(values) for key, values in user.extra}},
        }
        activation = {"object": _cel(q.object), "oldObject": _cel(q.old_object), "request": _cel(request),
                      "namespaceObject": _cel(namespace), "params": _cel(None)}
        fail_closed = spec.get("failurePolicy", "Fail") == "Fail"
        try:
            for condition in spec.get("matchConditions") or []:
                if not bool(_evaluate(condition["expression"], activation)):
                    return None
            variables: dict[str, Any] = {}
            activation["variables"] = _variables(variables)
            for variable in spec.get("variables") or []:
                variables[variable["name"]] = _evaluate(variable["expression"], activation)
                activation["variables"] = _variables(variables)
        except Exception as error:
            return (403, "Forbidden", f"expression resulted in error: {error}") if fail_closed else None
        for validation in spec.get("validations") or []:
            expression = validation["expression"]
            try:
                passed = bool(_evaluate(expression, activation))
            except Exception as error:
                if fail_closed:
                    return 403, "Forbidden", f"expression '{expression}' resulted in error: {error}"
                continue
            if passed:
                continue
            message = validation.get("message") or f"failed expression: {expression}"
            if validation.get("messageExpression"):
                try:
                    message = str(_evaluate(validation["messageExpression"], activation))
                except Exception:
                    pass  # the API server falls back to the static message
            reason = validation.get("reason") or "Forbidden"
            return _REASON_CODES.get(reason, 403), reason, message
        return None
