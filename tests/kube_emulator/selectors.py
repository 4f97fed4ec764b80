"""Label and field selectors with the API server's grammar (k8s.io/apimachinery labels.Parse, fields.ParseSelector)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .errors import ApiError, bad_request

_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")


@dataclass(frozen=True)
class LabelRequirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        if not present:
            return False
        try:
            have, want = int(value), int(self.values[0])  # type: ignore[arg-type]
        except ValueError:
            return False
        return have > want if self.operator == "gt" else have < want


def _tokens(text: str) -> list[str]:
    pos, out = 0, []
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:  # pragma: no cover - the pattern accepts every non-space character
            raise bad_request(f"unable to parse requirement: {text!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_label_selector(text: str | None) -> list[LabelRequirement]:
    """Parse `a=b,c!=d,e in (f,g),h notin (i),j,!k,l>3`; raises ApiError 400 on a malformed selector."""
    if not text or not text.strip():
        return []
    toks = _tokens(text)
    reqs: list[LabelRequirement] = []
    i = 0

    def fail(why: str) -> ApiError:
        return bad_request(f"unable to parse requirement: {why} in label selector {text!r}")

    def word(at: int) -> str:
        if at >= len(toks) or toks[at] in ("!=", "==", "=", "!", "(", ")", ",", ">", "<"):
            raise fail("expected a key or value")
        return toks[at]

    while i < len(toks):
        if toks[i] == "!":
            reqs.append(LabelRequirement(word(i + 1), "!"))
            i += 2
        else:
            key = word(i)
            i += 1
            op = toks[i] if i < len(toks) else ","
            if op == ",":
                reqs.append(LabelRequirement(key, "exists"))
            elif op in ("=", "==", "!="):
                # `key=` selects the empty value
                value = toks[i + 1] if i + 1 < len(toks) and toks[i + 1] != "," else ""
                reqs.append(LabelRequirement(key, "!=" if op == "!=" else "=", (value,)))
                i += 2 if value else 1
            elif op in (">", "<"):
                reqs.append(LabelRequirement(key, "gt" if op == ">" else "lt", (word(i + 1),)))
                i += 2
            elif op in ("in", "notin"):
                if i + 1 >= len(toks) or toks[i + 1] != "(":
                    raise fail(f"expected '(' after {op}")
                i += 2
                values: list[str] = []
                while i < len(toks) and toks[i] != ")":
                    if toks[i] != ",":
                        values.append(toks[i])
                    i += 1
                if i >= len(toks):
                    raise fail("missing ')'")
                if not values:
                    raise fail(f"{op} needs at least one value")
                reqs.append(LabelRequirement(key, op, tuple(values)))
                i += 1
            else:
                raise fail(f"unexpected {op!r}")
        if i < len(toks):
            if toks[i] != ",":
                raise fail(f"expected ',' before {toks[i]!r}")
            i += 1
    return reqs


def labels_match(reqs: list[LabelRequirement], obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    equal: bool
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (field_value(obj, self.path) == self.value) == self.equal


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The value a field selector compares against: missing → "", booleans as `true`/`false`."""
    if path == "source":  # core/v1 Event: the reporting component
        path = "source.component"
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(text: str | None, supports: Callable[[str], bool]) -> list[FieldRequirement]:
    """Parse `spec.nodeName=n1,status.phase!=Failed`; unsupported fields answer 400 as on a real cluster."""
    if not text or not text.strip():
        return []
    reqs = []
    for term in text.split(","):
        m = re.fullmatch(r"\s*([^=!\s]+)\s*(!=|==|=)\s*(.*?)\s*", term)
        if m is None:
            raise bad_request(f"invalid selector: {text!r}; can't understand {term!r}")
        path, op, value = m.groups()
        if not supports(path):
            raise bad_request(f'field label not supported: {path}')
        reqs.append(FieldRequirement(path, op != "!=", value))
    return reqs


def fields_match(reqs: list[FieldRequirement], obj: Mapping[str, Any]) -> bool:
    return all(r.matches(obj) for r in reqs)
