"""Workload mixes derived from the default openb pod list, the way the FGD paper derives its
variant lists (§6, Figs. 11-14: resampled from the default list, one property varied at a time):

- `gpushare<P>`: P% of the GPU pods share a GPU (default list: 44%);
- `multigpu<P>`: P% of the GPU pods ask for several GPUs (default: 1%);
- `gpuspec<P>`: P% of the GPU pods may run only on named GPU models (default: none);
- `cpu<P>`: CPU-only pods make up P% of the pods' total CPU request (default: about 8%).

Resampling draws pods with replacement from the default list's own pods of each kind, so shares,
CPU and memory per kind stay the trace's; the pod count stays the default list's. A `gpuspec` pod
keeps its own demand and is given the models of one of the node kinds that can hold it (drawn by
their GPU count), plus, for half of them, a second such model: the named-model lists the trace's
own format carries (`V100M16|V100M32`). Deterministic: the same mix name gives the same list.

    .venv/bin/python benchmarks/openb_mixes.py            # the mixes and what is in them
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.openb_trace import DEFAULT_NODES, DEFAULT_PODS, TraceNode, TracePod, read_nodes, read_pods  # noqa: E402

LEVELS: dict[str, tuple[int, ...]] = {
    "gpushare": (40, 60, 80, 100),
    "multigpu": (20, 30, 40, 50),
    "gpuspec": (10, 20, 25, 33),
    "cpu": (5, 10, 20, 25),
}
MIX_NAMES: tuple[str, ...] = ("default", *(f"{family}{level}" for family, levels in LEVELS.items() for level in levels))


def _resample(pods: Sequence[TracePod], inside: Callable[[TracePod], bool], share: float,
              rng: random.Random, among: Callable[[TracePod], bool] = lambda p: True) -> list[TracePod]:
    """As many pods as given; of those `among`, a `share` drawn from the `inside` ones, the rest
    from the others; pods not `among` kept as they are."""
    chosen = [p for p in pods if among(p) and inside(p)]
    others = [p for p in pods if among(p) and not inside(p)]
    out = []
    for pod in pods:
        if not among(pod):
            out.append(pod)
            continue
        pool = chosen if (rng.random() < share and chosen) or not others else others
        out.append(pool[rng.randrange(len(pool))])
    return [replace(p, name=f"mix-pod-{i:05d}") for i, p in enumerate(out)]


def _is_gpu(pod: TracePod) -> bool:
    return pod.demand.needs_gpu


def _constrain(pods: Sequence[TracePod], nodes: Sequence[TraceNode], share: float, rng: random.Random) -> list[TracePod]:
    gpus_by_model: dict[str, int] = {}
    largest: dict[str, int] = {}
    for node in nodes:
        if node.gpus:
            gpus_by_model[node.model] = gpus_by_model.get(node.model, 0) + node.gpus
            largest[node.model] = max(largest.get(node.model, 0), node.gpus)
    out = []
    for pod in pods:
        demand = pod.demand
        if demand.needs_gpu and rng.random() < share:
            fitting = sorted(m for m in gpus_by_model if largest[m] >= max(demand.gpus, 1))
            first = rng.choices(fitting, weights=[gpus_by_model[m] for m in fitting])[0]
            models = {first}
            rest = [m for m in fitting if m != first]
            if rest and rng.random() < 0.5:
                models.add(rng.choices(rest, weights=[gpus_by_model[m] for m in rest])[0])
            demand = replace(demand, gpu_models=tuple(sorted(models)))
        out.append(replace(pod, demand=demand))
    return out


def _cpu_only_share(pods: Sequence[TracePod], share: float, rng: random.Random) -> list[TracePod]:
    """CPU-only pods making up `share` of the total CPU request: GPU pods are kept; CPU-only pods
    are drawn from the trace's own until their CPU reaches that share."""
    gpu = [p for p in pods if _is_gpu(p)]
    cpu_only = [p for p in pods if not _is_gpu(p)]
    gpu_cpu = sum(p.demand.cpu_milli for p in gpu)
    wanted = share / (1 - share) * gpu_cpu
    drawn: list[TracePod] = []
    total = 0
    while total < wanted:
        pod = cpu_only[rng.randrange(len(cpu_only))]
        drawn.append(pod)
        total += pod.demand.cpu_milli
    mixed = gpu + drawn
    rng.shuffle(mixed)
    return [replace(p, name=f"mix-pod-{i:05d}") for i, p in enumerate(mixed)]


def mix(name: str, pods: Sequence[TracePod], nodes: Sequence[TraceNode]) -> list[TracePod]:
    """The pod list of mix `name` (see MIX_NAMES)."""
    if name == "default":
        return list(pods)
    family = name.rstrip("0123456789")
    if family not in LEVELS or not name[len(family):]:
        raise ValueError(f"unknown mix {name!r}; known: {', '.join(MIX_NAMES)}")
    share = int(name[len(family):]) / 100
    rng = random.Random(name)
    if family == "gpushare":
        return _resample(pods, lambda p: p.demand.is_fraction, share, rng, among=_is_gpu)
    if family == "multigpu":
        return _resample(pods, lambda p: p.demand.gpus > 1, share, rng, among=_is_gpu)
    if family == "gpuspec":
        return _constrain(pods, nodes, share, rng)
    return _cpu_only_share(pods, share, rng)


def describe(pods: Sequence[TracePod]) -> dict[str, float]:
    gpu = [p for p in pods if _is_gpu(p)]
    cpu_total = sum(p.demand.cpu_milli for p in pods) or 1
    return {
        "pods": len(pods),
        "gpu_pods": len(gpu),
        "sharing_pct_of_gpu_pods": round(100 * sum(p.demand.is_fraction for p in gpu) / max(len(gpu), 1), 1),
        "multi_gpu_pct_of_gpu_pods": round(100 * sum(p.demand.gpus > 1 for p in gpu) / max(len(gpu), 1), 1),
        "constrained_pct_of_gpu_pods": round(100 * sum(bool(p.demand.gpu_models) for p in gpu) / max(len(gpu), 1), 1),
        "cpu_only_pct_of_cpu": round(100 * sum(p.demand.cpu_milli for p in pods if not _is_gpu(p)) / cpu_total, 1),
        "gpus_requested": round(sum(p.gpu_milli_total for p in pods) / 1000, 1),
    }


def main() -> int:
    nodes, pods = read_nodes(DEFAULT_NODES), read_pods(DEFAULT_PODS)
    print(f"{'mix':<12}{'pods':>7}{'GPU pods':>10}{'sharing %':>11}{'multi-GPU %':>13}{'constrained %':>15}"
          f"{'CPU-only % of CPU':>19}{'GPUs asked':>12}")
    for name in MIX_NAMES:
        d = describe(mix(name, pods, nodes))
        print(f"{name:<12}{d['pods']:>7}{d['gpu_pods']:>10}{d['sharing_pct_of_gpu_pods']:>11}"
              f"{d['multi_gpu_pct_of_gpu_pods']:>13}{d['constrained_pct_of_gpu_pods']:>15}"
              f"{d['cpu_only_pct_of_cpu']:>19}{d['gpus_requested']:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
