"""Node affinity and taint matching as `k8s.io/component-helpers` decides them (the kubelet's admission
and the taint manager use the same rules as kube-scheduler). Pure functions over plain dicts."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def _expression_matches(expr: Obj, values: dict[str, str]) -> bool:
    key, op, wanted = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        try:
            have, bound = int(values[key]), int(wanted[0])
        except (KeyError, IndexError, ValueError):
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def _term_matches(term: Obj, node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    expressions, field_expressions = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not expressions and not field_expressions:
        return False  # an empty term matches no node
    return all(_expression_matches(e, labels) for e in expressions) and \
        all(_expression_matches(e, fields) for e in field_expressions)


def node_affinity_matches(spec: Obj, node: Obj) -> bool:
    """`nodeSelector` and `requiredDuringSchedulingIgnoredDuringExecution` (terms ORed, expressions ANDed)."""
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    return any(_term_matches(term, node) for term in required.get("nodeSelectorTerms") or [])


def tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    if not toleration.get("key"):
        return operator == "Exists"
    if toleration["key"] != taint.get("key"):
        return False
    return operator == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taint(spec: Obj, node: Obj, effects: tuple[str, ...]) -> Obj | None:
    """The first taint with one of `effects` that no toleration of the pod tolerates."""
    tolerations = spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def toleration_seconds(spec: Obj, taint: Obj) -> int | None:
    """How long a pod may stay on a node with this NoExecute taint: None for ever (a toleration without
    tolerationSeconds), else the shortest tolerationSeconds among the tolerations that match."""
    matching = [t for t in spec.get("tolerations") or [] if tolerates(t, taint)]
    if any(t.get("tolerationSeconds") is None for t in matching):
        return None
    return min(max(0, int(t["tolerationSeconds"])) for t in matching)
