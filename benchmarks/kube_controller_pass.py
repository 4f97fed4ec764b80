"""How long a controller pass takes against the HTTP API emulator (real `kubernetes` client, real
HTTP), and how many API requests it makes: default 20 nodes x 8 GPUs, 200 jobs (whole GPUs and
fractions), one project per 50 jobs.

    .venv/bin/python benchmarks/kube_controller_pass.py [--nodes 20] [--gpus 8] [--jobs 200] [--reader list|watch]
                                                       [--json]

Phases: `first` is the pass that decides every pending job (claims, reservation pods, binds of
whole GPUs); `settle` the passes until nothing changes (fractions bound once their reservation pods
report); `steady` a pass with nothing to do (the cost of every resync). A pass includes the Lease
fence (one conditional renewal before each batch of writes) as a leader's passes do, with the
Lease renewed between passes as the elector thread does. `--reader list` lists every kind on each
pass (`ListingReader`), `--reader watch` reads the watch-fed cache the running controller uses.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runai_lite.backends.kube import conventions as k  # noqa: E402
from runai_lite.backends.kube.cache import WatchCache  # noqa: E402
from runai_lite.backends.kube.controller import Controller  # noqa: E402
from runai_lite.backends.kube.lease import LeaderLease  # noqa: E402
from runai_lite.gpu.requests import request_from_flags  # noqa: E402
from runai_lite.model import JobSpec  # noqa: E402
from tests.kube.world import IMAGE, World  # noqa: E402
from tests.kube_emulator import KubeEmulator  # noqa: E402

FLAGS = [{"gpu": "1"}, {"gpu": "0.5"}, {"gpu": "0.25"}, {"gpu": "2"}]


def timed_pass(world: World) -> tuple[float, int, int]:
    """Seconds, requests, and writes other than the Lease's."""
    assert world.controller.lease is not None and world.controller.lease.acquire_or_renew()  # the elector's part
    if isinstance(world.controller.reader, WatchCache):
        world.controller.reader.read_objects()  # the streams caught up with the emulator's own changes
    before = len(world.kube.requests)
    start = time.perf_counter()
    world.controller.reconcile_once()
    elapsed = time.perf_counter() - start
    made = world.kube.requests[before:]
    writes = [r for r in made if r.verb not in ("get", "list", "watch") and not r.resource.startswith("leases")]
    return elapsed, len(made), len(writes)


def run(nodes: int, gpus: int, jobs: int, reader: str = "list") -> dict:
    stop = threading.Event()
    with KubeEmulator(seed=0) as emulator, tempfile.TemporaryDirectory() as tmp:
        world = World(emulator, Path(tmp))
        for n in range(nodes):
            world.add_gpu_node(f"node-{n:03d}", gpus)
        projects = max(1, jobs // 50)
        for p in range(projects):
            world.backend.create_project(f"p{p}", nodes * gpus / projects)
        lease = LeaderLease(world.controller_api, k.SYSTEM_NAMESPACE, k.LEASE_NAME, "bench")
        world.controller = Controller(world.controller_api, IMAGE, lease=lease)
        threading.Thread(target=lambda: [lease.acquire_or_renew() for _ in iter(lambda: stop.wait(2.0), True)],
                         daemon=True).start()  # the elector: a long first pass must not outlive the Lease
        if reader == "watch":
            cache = WatchCache(world.controller_api)
            cache.start(stop)
            world.controller.reader = world.controller.writes.observer = cache
        for j in range(jobs):
            world.backend.submit(JobSpec(name=f"j{j:04d}", project=f"p{j % projects}", image="busybox",
                                         request=request_from_flags(**FLAGS[j % len(FLAGS)]), command=("sleep", "1")))
        world.kube.job_controller.sync()
        first, first_requests, _ = timed_pass(world)
        settle, settle_requests, passes = 0.0, 0, 0
        for passes in range(1, 20):
            world.device_plugin()
            world.kube.kubelet.sync()
            world.kube.job_controller.sync()
            elapsed, requests, writes = timed_pass(world)
            settle += elapsed
            settle_requests += requests
            if not writes:
                break
        steady, steady_requests, _ = timed_pass(world)
        bound = sum(1 for p in world.kube.objects("pods") if p["spec"].get("schedulerName") == k.SCHEDULER_NAME
                    and p["spec"].get("nodeName"))
        stop.set()
    return {"nodes": nodes, "gpus": gpus, "jobs": jobs, "reader": reader, "bound": bound,
            "first_pass_s": round(first, 3), "first_pass_requests": first_requests,
            "settle_passes": passes, "settle_s": round(settle, 3), "settle_requests": settle_requests,
            "steady_pass_s": round(steady, 3), "steady_pass_requests": steady_requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--reader", choices=("list", "watch"), default="list")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.nodes, args.gpus, args.jobs, args.reader)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['jobs']} jobs on {result['nodes']} nodes x {result['gpus']} GPUs, reader {result['reader']}: "
          f"{result['bound']} bound")
    print(f"first pass   {result['first_pass_s']:8.3f} s  {result['first_pass_requests']:5d} requests")
    print(f"settling     {result['settle_s']:8.3f} s  {result['settle_requests']:5d} requests "
          f"in {result['settle_passes']} passes")
    print(f"steady pass  {result['steady_pass_s']:8.3f} s  {result['steady_pass_requests']:5d} requests")


if __name__ == "__main__":
    main()
