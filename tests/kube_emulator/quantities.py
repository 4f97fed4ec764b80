"""Resource quantities and pod requests, as the kubelet and kube-scheduler compute them."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}
_QUANTITY = re.compile(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?")


def parse(value: Any) -> Fraction:
    """`"100m"` → 1/10, `"64Mi"` → 67108864, `2` → 2; ValueError for what the API server would refuse."""
    if isinstance(value, (int, float)):
        return Fraction(Decimal(str(value)))
    m = _QUANTITY.fullmatch(str(value).strip())
    if not m:
        raise ValueError(f"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': "
                         f"{value!r}")
    return Fraction(Decimal(m.group(1))) * Fraction(_SUFFIXES[m.group(2) or ""])


def is_extended(resource: str) -> bool:
    """An extended resource (a device plugin's, say): a domain-qualified name outside kubernetes.io."""
    return "/" in resource and not resource.split("/")[0].endswith("kubernetes.io") \
        and not resource.startswith("requests.")


def _container_requests(container: dict[str, Any]) -> dict[str, Fraction]:
    resources = container.get("resources") or {}
    # a resource given only as a limit is requested at the limit (the API server's defaulting)
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return {name: parse(value) for name, value in merged.items()}


def pod_requests(spec: dict[str, Any]) -> dict[str, Fraction]:
    """What a pod needs on its node: the containers' requests summed, at least each init container's
    (they run one at a time before), plus the pod overhead; `pods` is 1."""
    total: dict[str, Fraction] = {}
    for container in spec.get("containers") or []:
        for name, value in _container_requests(container).items():
            total[name] = total.get(name, Fraction(0)) + value
    for container in spec.get("initContainers") or []:
        for name, value in _container_requests(container).items():
            total[name] = max(total.get(name, Fraction(0)), value)
    for name, value in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, Fraction(0)) + parse(value)
    total["pods"] = Fraction(1)
    return total


def scaled(resource: str, value: Fraction) -> int:
    """How the kubelet prints a quantity in its messages: CPU in millicores, the rest in units."""
    return int(value * 1000) if resource == "cpu" else int(value)
