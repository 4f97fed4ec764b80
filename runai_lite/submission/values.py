"""`runai submit`'s environment, host-resource, storage, network, placement and lifetime flags,
read as Run:ai reads them, into the values `JobSpec` holds, and the generated job name.

Pure functions, text in, value out; each raises `UserError` (exit 2) naming the accepted forms.
"""

from __future__ import annotations

import re

from ..errors import UserError
from ..model import PortMapping, PvcMount, ServiceType, VolumeMount
from ..units import bytes_to_mib, parse_size

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CPU = re.compile(r"^(?P<num>\d+(?:\.\d+)?|\.\d+)(?P<milli>m)?$")
MAX_CPU_MILLI = 10**9  # a million cores: beyond any machine, and exact in every integer type


def parse_env(pairs: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """`-e NAME=VALUE`, repeated."""
    result = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _ENV_NAME.match(key):
            raise UserError(f"invalid -e {pair!r}", "use -e NAME=VALUE, where NAME is letters, digits and '_'")
        result.append((key, value))
    return tuple(result)


def next_name(prefix: str, taken: set[str]) -> str:
    """`<prefix>-<n>` with n one more than the highest index in use (Run:ai's --job-name-prefix)."""
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)$")
    used = [int(m[1]) for name in taken if (m := pattern.match(name))]
    return f"{prefix}-{max(used, default=0) + 1}"


def parse_cpu(flag: str, text: str) -> int:
    """`--cpu 0.5`, `--cpu 2` or `--cpu 500m` (Kubernetes' quantity) → millicores."""
    match = _CPU.match(text.strip())
    if not match:
        raise UserError(f"invalid {flag} {text!r}", f"give CPU cores as a number (0.5, 2) or millicores (500m): {flag} 0.5")
    milli = float(match["num"]) * (1 if match["milli"] else 1000)
    if milli != int(milli):
        raise UserError(f"invalid {flag} {text!r}: the smallest unit is a thousandth of a core (1m)", f"e.g. {flag} 0.25")
    if not 0 < milli <= MAX_CPU_MILLI:
        raise UserError(f"invalid {flag} {text!r}: it must be above 0 and at most {MAX_CPU_MILLI // 1000} cores",
                        f"e.g. {flag} 2")
    return int(milli)


def parse_memory(flag: str, text: str) -> int:
    """`--memory 4G`, `--memory 512Mi` (sizes as `--gpu-memory` reads them) → MiB, rounded up."""
    try:
        return bytes_to_mib(parse_size(text))
    except UserError as exc:
        raise UserError(f"invalid {flag}: {exc.message}", exc.hint) from None


def _read_only(flag: str, text: str, mode: str) -> bool:
    if mode not in ("ro", "rw"):
        raise UserError(f"invalid {flag} {text!r}: the mode {mode!r} is neither ro nor rw", _FORMS[flag])
    return mode == "ro"


_FORMS = {
    "-v": "use -v HOST_PATH:CONTAINER_PATH[:ro], both absolute: -v /data:/data:ro",
    "--pvc": "use --pvc [STORAGE_CLASS]:SIZE:MOUNT_PATH[:ro] for a new claim (--pvc :10G:/data) or "
             "--pvc CLAIM_NAME:MOUNT_PATH[:ro] for an existing one (--pvc my-data:/data:ro)",
    "--port": "use --port CONTAINER_PORT or --port HOST_PORT:CONTAINER_PORT, ports 1-65535: --port 8888 or --port 8080:80",
}


def _model(flag: str, text: str, build):
    from pydantic import ValidationError

    try:
        return build()
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise UserError(f"invalid {flag} {text!r}: {message}", _FORMS[flag]) from None


def parse_volume(text: str) -> VolumeMount:
    """`-v HOST:CONTAINER[:ro|rw]`."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise UserError(f"invalid -v {text!r}", _FORMS["-v"])
    read_only = _read_only("-v", text, parts[2]) if len(parts) == 3 else False
    return _model("-v", text, lambda: VolumeMount(host_path=parts[0], container_path=parts[1], read_only=read_only))


def parse_pvc(text: str) -> PvcMount:
    """Run:ai's `--pvc [STORAGE_CLASS]:SIZE:MOUNT_PATH[:ro]` (a new claim; an empty class is the
    cluster's default) or `--pvc CLAIM_NAME:MOUNT_PATH[:ro]` (an existing claim). The two are told
    apart by where the absolute mount path is."""
    parts = text.split(":")
    if len(parts) in (2, 3) and parts[1].startswith("/"):
        read_only = _read_only("--pvc", text, parts[2]) if len(parts) == 3 else False
        return _model("--pvc", text, lambda: PvcMount(claim_name=parts[0], container_path=parts[1], read_only=read_only))
    if len(parts) in (3, 4) and parts[2].startswith("/"):
        read_only = _read_only("--pvc", text, parts[3]) if len(parts) == 4 else False
        try:
            size = parse_size(parts[1])
        except UserError as exc:
            raise UserError(f"invalid --pvc {text!r}: {exc.message}", _FORMS["--pvc"]) from None
        return _model("--pvc", text, lambda: PvcMount(storage_class=parts[0] or None, size_bytes=size,
                                                      container_path=parts[2], read_only=read_only))
    raise UserError(f"invalid --pvc {text!r}", _FORMS["--pvc"])


def parse_port(text: str) -> PortMapping:
    """`--port CONTAINER` or `--port HOST:CONTAINER` (Run:ai's `local:container`)."""
    parts = text.split(":")
    if len(parts) not in (1, 2) or not all(p.isdigit() and p.isascii() for p in parts):
        raise UserError(f"invalid --port {text!r}", _FORMS["--port"])
    ports = [int(p) for p in parts]
    if not all(1 <= p <= 65535 for p in ports):
        raise UserError(f"invalid --port {text!r}: a port is a number from 1 to 65535", _FORMS["--port"])
    if len(ports) == 1:
        return _model("--port", text, lambda: PortMapping(container_port=ports[0]))
    return _model("--port", text, lambda: PortMapping(host_port=ports[0], container_port=ports[1]))


SERVICE_TYPES = {"clusterip": ServiceType.CLUSTER_IP, "portforward": ServiceType.CLUSTER_IP,
                 "nodeport": ServiceType.NODE_PORT, "loadbalancer": ServiceType.LOAD_BALANCER}


def parse_service_type(text: str) -> ServiceType:
    """Run:ai's `--service-type` names (case-insensitive); `portforward` is a ClusterIP Service."""
    chosen = SERVICE_TYPES.get(text.strip().lower().replace("-", "").replace("_", ""))
    if chosen is None:
        hint = "use nodeport, loadbalancer or clusterip (portforward is clusterip: reach it with `runai port-forward`)"
        if text.strip().lower() == "ingress":
            raise UserError("--service-type ingress is not supported by runai-lite (it needs an ingress controller)", hint)
        raise UserError(f"invalid --service-type {text!r}", hint)
    return chosen


def parse_label(text: str) -> tuple[str, str]:
    """`-l KEY=VALUE`, both as Kubernetes labels take them; keys runai-lite sets itself are refused."""
    from ..model import label_key_problem, label_value_problem

    key, sep, value = text.partition("=")
    hint = "use -l KEY=VALUE, e.g. -l team=vision (KEY may have a prefix: -l example.com/owner=ana)"
    if not sep:
        raise UserError(f"invalid -l {text!r}: no '='", hint)
    problem = label_key_problem(key)
    if problem:
        raise UserError(f"invalid -l {text!r}: the key {key!r} is not a Kubernetes label key: {problem}", hint)
    problem = label_value_problem(value)
    if problem:
        raise UserError(f"invalid -l {text!r}: the value {value!r} is not a Kubernetes label value: {problem}", hint)
    prefix = key.rpartition("/")[0]
    if key in RESERVED_LABEL_KEYS or prefix in RESERVED_LABEL_PREFIXES or prefix.endswith(RESERVED_PREFIX_SUFFIXES):
        raise UserError(f"invalid -l {text!r}: runai-lite or Kubernetes sets the label {key} itself",
                        "choose another key, e.g. -l team=vision")
    return key, value


RESERVED_LABEL_KEYS = frozenset({"runai/queue", "priorityClassName", "runai-gpu-group", "app", "release",
                                 "controller-uid", "job-name", "batch.kubernetes.io/job-name"})
RESERVED_LABEL_PREFIXES = frozenset({"runai", "runai-lite", "run.ai", "kubernetes.io", "k8s.io"})
RESERVED_PREFIX_SUFFIXES = (".kubernetes.io", ".k8s.io", ".runai-lite.io")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:h|m|s))+$")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}
MAX_TTL_SECONDS = 2**31 - 1  # ttlSecondsAfterFinished is an int32


def parse_duration(flag: str, text: str) -> int:
    """Go's duration as Run:ai's CLI reads it (`30s`, `10m`, `1h30m`), or plain seconds → seconds."""
    raw = text.strip()
    if raw.isdigit() and raw.isascii():
        seconds = float(raw)
    elif _DURATION.match(raw):
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(raw))
    else:
        raise UserError(f"invalid {flag} {text!r}", f"give a duration such as 30s, 10m, 1h30m (or seconds): {flag} 1h")
    if seconds != int(seconds) or seconds > MAX_TTL_SECONDS:
        raise UserError(f"invalid {flag} {text!r}: it must be whole seconds, at most {MAX_TTL_SECONDS}", f"e.g. {flag} 1h")
    return int(seconds)
