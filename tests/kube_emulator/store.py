"""The emulator's state: objects per resource, a global resourceVersion counter, the watch history,
and the API semantics that act on them (create/update/patch/delete, binding, eviction, garbage collection).

Thread-safe (one re-entrant lock): the HTTP server thread and the test thread both call it.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import threading
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from . import crds, errors, policies, schema
from .admission import SYSTEM_PRIORITY_CLASSES, Admission
from .errors import ApiError
from .patches import apply_patch
from .resources import ResourceTable, ResourceType
from .selectors import fields_match, labels_match, parse_field_selector, parse_label_selector

Obj = dict[str, Any]
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
TERMINAL_POD_PHASES = ("Succeeded", "Failed")
# the same alphabet as k8s.io/apimachinery/pkg/util/rand (no vowels, no confusable characters)
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# metadata fields the server owns: a client's value is ignored on write
_SYSTEM_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                    "selfLink", "managedFields")


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    resource: ResourceType
    object: Obj
    old: Obj | None  # the previous state, for MODIFIED (selector transitions)
    rv: int


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def _write_continue(last: tuple[str, str], rv: int) -> str:
    """A continue token: where the next page starts and the version the list was started at (opaque
    to clients, as the API server's)."""
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": list(last)}).encode()).decode()


def _read_continue(token: str) -> tuple[tuple[str, str], int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return (str(data["start"][0]), str(data["start"][1])), int(data["rv"])
    except (ValueError, TypeError, KeyError, IndexError):
        raise errors.bad_request(f"continue key is not valid: {token!r}") from None


class Store:
    def __init__(
        self,
        resources: ResourceTable,
        *,
        graceful_pod_deletion: bool = False,
        schema_validation: bool = True,
        history_limit: int = 100_000,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        seed: int | None = None,
    ):
        self.lock = threading.RLock()
        self.resources = resources
        self.graceful_pod_deletion = graceful_pod_deletion
        self.schema_validation = schema_validation
        self.warnings: list[str] = []  # every unknown field dropped, as "<kind>/<name>: <warning>"
        self.clock = clock
        self._random = random.Random(seed)
        self._objects: dict[ResourceType, dict[tuple[str, str], Obj]] = defaultdict(dict)
        self._rv = 0
        self._history: deque[WatchEvent] = deque(maxlen=history_limit)
        self._compacted_rv = 0
        self._subscribers: list[Callable[[WatchEvent], None]] = []
        self._crd_types: dict[str, ResourceType] = {}  # CRD name → the resource it serves
        self.logs: dict[tuple[str, str, str], str] = {}
        # (namespace, pod, port) -> the real TCP address that pod port forwards reach (`serve_pod_port`)
        self.pod_ports: dict[tuple[str, str, int], tuple[str, int]] = {}
        self.admission = Admission(lambda name: self.objects(self.resources.by_name(name)))
        self.policies = policies.ValidatingPolicies(self)
        for ns in INITIAL_NAMESPACES:
            self.create(self.resources.by_name("namespaces"), None, {"metadata": {"name": ns}})
        for pc in SYSTEM_PRIORITY_CLASSES:
            self.create(self.resources.by_name("priorityclasses.scheduling.k8s.io"), None, pc)

    # ---- reading -------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def now(self) -> str:
        return rfc3339(self.clock())

    def _find(self, r: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self._objects[r].get(((namespace or "") if r.namespaced else "", name))
        if obj is None:
            raise errors.not_found(r.plural, name, r.group)
        return obj

    def get(self, r: ResourceType, namespace: str | None, name: str) -> Obj:
        with self.lock:
            return copy.deepcopy(self._find(r, namespace, name))

    def objects(self, r: ResourceType, namespace: str | None = None) -> list[Obj]:
        """Copies of the objects of one resource (in one namespace, or all), in key order."""
        with self.lock:
            return [copy.deepcopy(o) for k, o in sorted(self._objects[r].items()) if namespace in (None, k[0])]

    def list(self, r: ResourceType, namespace: str | None, label_selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None, continue_: str | None = None) -> Obj:
        lreqs = parse_label_selector(label_selector)
        freqs = parse_field_selector(field_selector, r.supports_field)
        after, rv = _read_continue(continue_) if continue_ else (None, None)
        with self.lock:
            if rv is not None and rv < self._compacted_rv:
                raise ApiError(410, "The provided continue parameter is too old to display a consistent list "
                                    "result. You can start a new list without the continue parameter.",
                               reason="Expired")
            keys = sorted(k for k in self._objects[r] if namespace in (None, k[0]) and (after is None or k > after))
            selected = [o for k in keys if labels_match(lreqs, o := self._objects[r][k]) and fields_match(freqs, o)]
            rv = self._rv if rv is None else rv
            more = bool(limit) and len(selected) > limit  # type: ignore[operator]
            page = selected[:limit] if more else selected
            items = [copy.deepcopy(o) for o in page]
        meta: Obj = {"resourceVersion": str(rv)}
        if more:
            meta["continue"] = _write_continue(_key(items[-1]), rv)
            meta["remainingItemCount"] = len(selected) - len(page)
        for o in items:  # list items carry no kind/apiVersion on a real server
            o.pop("kind", None)
            o.pop("apiVersion", None)
        return {"kind": r.list_kind, "apiVersion": r.api_version, "metadata": meta, "items": items}

    # ---- committing and watching -----------------------------------------------------------------

    def _commit(self, r: ResourceType, etype: str, obj: Obj, old: Obj | None) -> Obj:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        if etype == "DELETED":
            self._objects[r].pop(_key(obj), None)
        else:
            self._objects[r][_key(obj)] = obj
        event = WatchEvent(etype, r, copy.deepcopy(obj), copy.deepcopy(old), self._rv)
        if self._history.maxlen is not None and len(self._history) == self._history.maxlen:
            self._compacted_rv = self._history[0].rv
        self._history.append(event)
        for notify in list(self._subscribers):
            notify(event)
        if r.key == crds.CRD_KEY:
            self._serve_crd(obj, etype)
        return copy.deepcopy(obj)

    def _serve_crd(self, crd: Obj, etype: str) -> None:
        """Start, change or stop serving a CRD's resource (the apiextensions API server's job)."""
        name = crd["metadata"]["name"]
        old = self._crd_types.pop(name, None)
        if etype == "DELETED":
            if old is not None:
                for obj in [o for _, o in sorted(self._objects[old].items())]:
                    self._remove(old, {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": self.now()}},
                                 "Background")
                self.resources.remove(old)
                self._objects.pop(old, None)
            return
        new = crds.resource_type(crd)
        if old is not None:
            self.resources.remove(old)
            if (old.group, old.version, old.plural) != (new.group, new.version, new.plural):
                moved = self._objects.pop(old, {})
                for obj in moved.values():
                    obj["apiVersion"] = new.api_version
                self._objects[new] = moved
        self.resources.add(new)
        self._crd_types[name] = new

    def watch(self, r: ResourceType, since: str | None, notify: Callable[[WatchEvent], None]
              ) -> tuple[list[WatchEvent], Callable[[], None]]:
        """Subscribe `notify` to the resource's events; return the events a watch from `since` replays first
        (every object as ADDED for no resourceVersion or "0") and the unsubscribe function. ApiError 410
        when `since` is older than the kept history."""
        with self.lock:
            if since in (None, "", "0"):
                replay = [WatchEvent("ADDED", r, o, None, int(o["metadata"]["resourceVersion"]))
                          for o in self.objects(r)]
            else:
                try:
                    start = int(since)
                except ValueError:
                    raise errors.bad_request(f'invalid resource version "{since}"') from None
                if start < self._compacted_rv:
                    raise ApiError(410, f"too old resource version: {start} ({self._compacted_rv})", reason="Expired")
                replay = [e for e in self._history if e.rv > start and e.resource == r]

            def relay(event: WatchEvent) -> None:  # a watch sees its own resource's events only
                if event.resource.key == r.key:
                    notify(event)

            self._subscribers.append(relay)

        def unsubscribe() -> None:
            with self.lock:
                if relay in self._subscribers:
                    self._subscribers.remove(relay)

        return replay, unsubscribe

    def compact(self) -> None:
        """Forget the watch history, as etcd compaction does: watches resuming from older versions get 410."""
        with self.lock:
            self._history.clear()
            self._compacted_rv = self._rv

    # ---- writing -------------------------------------------------------------------------------

    def _check_kind(self, r: ResourceType, obj: Obj) -> None:
        if obj.get("kind") not in (None, "", r.kind) or obj.get("apiVersion") not in (None, "", r.api_version):
            raise errors.bad_request(
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version "
                f"({r.api_version}) or the kind ({obj.get('kind')}) is not {r.kind}")

    def _scope(self, r: ResourceType, namespace: str | None, meta: Obj) -> None:
        if not r.namespaced:
            meta.pop("namespace", None)
            return
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                     "the request")
        meta["namespace"] = namespace

    def _generate_name(self, r: ResourceType, namespace: str, prefix: str) -> str:
        for _ in range(100):
            name = prefix + "".join(self._random.choice(_NAME_ALPHABET) for _ in range(5))
            if (namespace, name) not in self._objects[r]:
                return name
        raise ApiError(500, f"could not generate a unique name from {prefix!r}")  # pragma: no cover

    def _validate(self, r: ResourceType, obj: Obj, warnings: list[str] | None) -> None:
        if not self.schema_validation:
            return
        found = crds.check(obj, r.custom_schema) if r.custom else schema.check(obj)
        self.warnings += [f"{obj['kind']}/{obj['metadata'].get('name', '')}: {w}" for w in found]
        if warnings is not None:
            warnings += found

    def create(self, r: ResourceType, namespace: str | None, body: Obj, dry_run: bool = False,
               warnings: list[str] | None = None) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        self._check_kind(r, obj)
        meta = obj.setdefault("metadata", {})
        with self.lock:
            self._scope(r, namespace, meta)
            ns = meta.get("namespace") or ""
            if r.namespaced:
                ns_obj = self._objects[self.resources.by_name("namespaces")].get(("", ns))
                if ns_obj is None:
                    raise errors.not_found("namespaces", ns)
                if ns_obj["metadata"].get("deletionTimestamp"):
                    raise ApiError(403, f"{r.plural} is forbidden: unable to create new content in namespace {ns} "
                                        "because it is being terminated")
            if meta.get("resourceVersion"):
                raise errors.bad_request("resourceVersion should not be set on objects to be created")
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise errors.invalid(r.kind, "", ["metadata.name: Required value: name or generateName is "
                                                      "required"])
                meta["name"] = self._generate_name(r, ns, meta["generateName"])
            if (ns, meta["name"]) in self._objects[r]:
                raise errors.already_exists(r.plural, meta["name"], r.group)
            for field in _SYSTEM_METADATA:
                meta.pop(field, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = self.now()
            meta["generation"] = 1
            obj["kind"], obj["apiVersion"] = r.kind, r.api_version
            if r.custom and r.has_status():
                obj.pop("status", None)  # the status subresource owns it; a create cannot set it
            self._validate(r, obj, warnings)
            self.admission.on_create(r, obj)
            self.policies.admit(policies.Request("CREATE", r, None, ns or None, meta["name"], obj, None, dry_run),
                                warnings)
            if dry_run:
                return obj
            return self._commit(r, "ADDED", obj, None)

    def update(self, r: ResourceType, namespace: str | None, name: str, body: Obj,
               subresource: str | None = None, dry_run: bool = False, warnings: list[str] | None = None) -> Obj:
        """PUT: a stale metadata.resourceVersion answers 409; none means an unconditional update."""
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        new = copy.deepcopy(body)
        self._check_kind(r, new)
        with self.lock:
            old = self._find(r, namespace, name)
            return self._write(r, old, new, subresource, dry_run, warnings)

    def patch(self, r: ResourceType, namespace: str | None, name: str, content_type: str, patch: Any,
              subresource: str | None = None, dry_run: bool = False, warnings: list[str] | None = None) -> Obj:
        with self.lock:
            old = self._find(r, namespace, name)
            new = apply_patch(content_type, copy.deepcopy(old), patch)
            if not isinstance(new, dict):
                raise errors.invalid(r.kind, name, ["the patch did not produce an object"])
            return self._write(r, old, new, subresource, dry_run, warnings)

    def _write(self, r: ResourceType, old: Obj, new: Obj, subresource: str | None, dry_run: bool,
               warnings: list[str] | None = None) -> Obj:
        meta, old_meta = new.setdefault("metadata", {}), old["metadata"]
        name = old_meta["name"]
        if meta.get("name", name) != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL "
                                     f"({name})")
        self._scope(r, old_meta.get("namespace"), meta)
        meta["name"] = name
        if meta.get("resourceVersion") and meta["resourceVersion"] != old_meta["resourceVersion"]:
            raise errors.conflict(r.plural, name, "the object has been modified; please apply your changes to the "
                                                  "latest version and try again", r.group)
        for field in _SYSTEM_METADATA:
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        new["kind"], new["apiVersion"] = r.kind, r.api_version
        self._validate(r, new, warnings)
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            new["status"] = status if status is not None else {}
        elif r.has_status():
            # the main resource ignores status changes, as the status subresource owns them
            new.pop("status", None)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        if subresource is None:
            self.admission.on_update(r, old, new)
            if crds.generation_changed(old, new) if r.custom else new.get("spec") != old.get("spec"):
                meta["generation"] = old_meta.get("generation", 1) + 1
        self.policies.admit(policies.Request("UPDATE", r, subresource, old_meta.get("namespace"), name, new, old,
                                             dry_run), warnings)
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if new == old:
            return copy.deepcopy(old)  # a no-op write does not bump the resourceVersion nor notify watchers
        if dry_run:
            return new
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") and \
                old_meta.get("finalizers") and not new["metadata"].get("deletionGracePeriodSeconds"):
            return self._remove(r, new, "Background")  # the last finalizer went: the deletion completes
        return self._commit(r, "MODIFIED", new, old)

    def mutate(self, r: ResourceType, namespace: str | None, name: str, change: Callable[[Obj], None]) -> Obj:
        """Apply `change` to a copy of the whole object (status included) and store it: for the emulator's
        own controllers, which write what the kubelet or the job controller would."""
        with self.lock:
            old = self._find(r, namespace, name)
            new = copy.deepcopy(old)
            change(new)
            if new == old:
                return copy.deepcopy(old)
            return self._commit(r, "MODIFIED", new, old)

    # ---- deleting ------------------------------------------------------------------------------

    @staticmethod
    def default_propagation(r: ResourceType) -> str:
        # batch/v1 Jobs (and ReplicationControllers) orphan their pods unless told otherwise: the python
        # client's delete_namespaced_job leaves the pods behind unless propagation_policy is given
        return "Orphan" if (r.group, r.plural) in (("batch", "jobs"), ("", "replicationcontrollers")) else "Background"

    def delete(self, r: ResourceType, namespace: str | None, name: str, options: Obj | None = None,
               dry_run: bool = False) -> Obj:
        """DELETE: answers the deleted object for kinds whose API does so (pods, namespaces, …), else a Status."""
        options = options or {}
        with self.lock:
            old = self._find(r, namespace, name)
            meta = old["metadata"]
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != meta["uid"]:
                raise errors.conflict(r.plural, name, f"Precondition failed: UID in precondition: {pre['uid']}, "
                                                      f"UID in object meta: {meta['uid']}", r.group)
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
                raise errors.conflict(r.plural, name, "Precondition failed: ResourceVersion in precondition: "
                                                      f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                                      f"{meta['resourceVersion']}", r.group)
            policy = options.get("propagationPolicy")
            if policy is None and options.get("orphanDependents") is not None:
                policy = "Orphan" if options["orphanDependents"] else "Background"
            policy = policy or self.default_propagation(r)
            if policy not in ("Orphan", "Background", "Foreground"):
                raise errors.invalid(r.kind, name, [f'propagationPolicy: Unsupported value: "{policy}"'])
            self.policies.admit(policies.Request("DELETE", r, None, meta.get("namespace"), name, None, old, dry_run))
            if dry_run:
                return self._deleted_response(r, old)
            result = self._delete_now_or_mark(r, old, options, policy)
            return self._deleted_response(r, result)

    def _delete_now_or_mark(self, r: ResourceType, old: Obj, options: Obj, policy: str) -> Obj:
        meta = old["metadata"]
        grace = options.get("gracePeriodSeconds")
        ns, name = meta.get("namespace"), meta["name"]
        if meta.get("deletionTimestamp"):
            if grace != 0:
                return copy.deepcopy(old)  # already terminating
            if not meta.get("finalizers"):
                return self._remove(r, copy.deepcopy(old), policy)  # the kubelet's final (or a forced) delete
            # finalizers still hold it: it goes as soon as they are removed
            return self.mutate(r, ns, name, lambda o: o["metadata"].update(deletionGracePeriodSeconds=0))
        if r.key == "pods" and self.graceful_pod_deletion:
            grace = (old.get("spec") or {}).get("terminationGracePeriodSeconds", 30) if grace is None else grace
            bound = (old.get("spec") or {}).get("nodeName")
            running = (old.get("status") or {}).get("phase") not in TERMINAL_POD_PHASES
            if bound and running and grace > 0:
                # the kubelet stops the containers, then deletes it for good (emulator.kubelet.sync)
                deadline = rfc3339(self.clock() + timedelta(seconds=grace))
                return self.mutate(r, ns, name, lambda o: o["metadata"].update(
                    deletionTimestamp=deadline, deletionGracePeriodSeconds=grace))
        if meta.get("finalizers"):
            return self.mutate(r, ns, name, lambda o: o["metadata"].update(
                deletionTimestamp=self.now(), deletionGracePeriodSeconds=0))
        if r.key == "namespaces":
            return self._delete_namespace(r, old)
        final = copy.deepcopy(old)
        final["metadata"].update(deletionTimestamp=self.now(), deletionGracePeriodSeconds=0)
        return self._remove(r, final, policy)

    def _delete_namespace(self, r: ResourceType, ns_obj: Obj) -> Obj:
        # the namespace controller's work, done at once: everything in the namespace goes, then the namespace
        name = ns_obj["metadata"]["name"]
        for res in self.resources.resources:
            if res.namespaced:
                for key, obj in sorted(self._objects[res].items()):
                    if key[0] == name:
                        self._remove(res, obj, "Background")
        final = copy.deepcopy(ns_obj)
        final["metadata"]["deletionTimestamp"] = self.now()
        final["status"] = {"phase": "Terminating"}
        return self._remove(r, final, "Background")

    def _remove(self, r: ResourceType, obj: Obj, policy: str) -> Obj:
        if _key(obj) not in self._objects[r]:
            return copy.deepcopy(obj)
        old = self._objects[r][_key(obj)]
        removed = self._commit(r, "DELETED", obj, old)
        if r.key == "pods":
            ns, name = _key(obj)
            for log_key in [k for k in self.logs if k[:2] == (ns, name)]:
                del self.logs[log_key]
        self._collect_dependents(obj["metadata"]["uid"], policy)
        return removed

    def _all_objects(self) -> Iterator[tuple[ResourceType, Obj]]:
        for r, by_key in list(self._objects.items()):
            for obj in list(by_key.values()):
                yield r, obj

    def _collect_dependents(self, owner_uid: str, policy: str) -> None:
        """The garbage collector, synchronously: dependents whose owners are all gone are deleted
        (Background and Foreground alike); with Orphan the owner reference is removed instead."""
        live_uids = {o["metadata"]["uid"] for _, o in self._all_objects()}
        for r, obj in self._all_objects():
            refs = obj["metadata"].get("ownerReferences") or []
            if not any(ref.get("uid") == owner_uid for ref in refs):
                continue
            if policy == "Orphan":
                kept = [ref for ref in refs if ref.get("uid") != owner_uid]
                self.mutate(r, obj["metadata"].get("namespace"), obj["metadata"]["name"],
                            lambda o, kept=kept: o["metadata"].__setitem__("ownerReferences", kept))
            elif not any(ref.get("uid") in live_uids for ref in refs if ref.get("uid") != owner_uid):
                final = copy.deepcopy(obj)
                final["metadata"]["deletionTimestamp"] = self.now()
                self._remove(r, final, "Background")

    def _deleted_response(self, r: ResourceType, obj: Obj) -> Obj:
        if r.returns_deleted_object:
            return obj
        return errors.success_status(name=obj["metadata"]["name"], group=r.group, kind=r.plural,
                                     uid=obj["metadata"]["uid"])

    def delete_collection(self, r: ResourceType, namespace: str | None, label_selector: str | None,
                          field_selector: str | None, options: Obj | None = None) -> Obj:
        with self.lock:
            listed = self.list(r, namespace, label_selector, field_selector)
            for obj in listed["items"]:
                self.delete(r, obj["metadata"].get("namespace"), obj["metadata"]["name"], options)
        return listed
