"""On a real GPU: does a job limited to a share of the GPU get an out-of-memory error past its limit
and succeed below it, under each enforcement mechanism? (issue 5; results go in docs/enforcement.md)

Each case starts a fresh Python (`--python`, one with CUDA PyTorch) with the environment
`runai_lite.enforcement.job_environment(...).apply(...)` gives a job on GPU 0, and allocates one
tensor of 80% ("below") or 120% ("beyond") of the limit. Expected: below succeeds; beyond fails with
an out-of-memory error, whose message names the limit when the framework hook is in force; under
`none` beyond succeeds too (the limit is advisory, and the run shows it).

    .venv/bin/python benchmarks/enforcement_gpu_check.py --python /usr/bin/python3 --start-mps \
        --json /tmp/enforcement.json

`--start-mps` starts an MPS control daemon on GPU 0 with a private pipe directory, changes no GPU
setting (compute mode is checked before and after), and stops it at the end. HAMi-core cases run
when libvgpu.so is at `--hami-core-path`. Needs nvidia-smi; runs nothing when there is no GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runai_lite.enforcement import (  # noqa: E402
    DEFAULT_HAMI_CORE_PATH,
    JobEnforcement,
    NodeProbe,
    choose_mechanism,
    job_environment,
    probe_node,
)

ALLOCATE = """
import sys, torch
mib = int(sys.argv[1])
free, total = torch.cuda.mem_get_info(0)
print(f"seen by the job: total {total >> 20} MiB, free {free >> 20} MiB")
block = torch.empty(mib << 20, dtype=torch.uint8, device="cuda")
block.fill_(1)
torch.cuda.synchronize()
print(f"allocated {mib} MiB; reserved {torch.cuda.memory_reserved(0) >> 20} MiB")
"""


@dataclass
class Case:
    variant: str
    label: str
    size: str  # below | beyond
    mib: int
    expect_success: bool
    expect_limit_named: bool
    exit_code: int | None = None
    out_of_memory: bool = False
    limit_named: bool = False
    output_tail: str = ""

    @property
    def passed(self) -> bool:
        if self.expect_success:
            return self.exit_code == 0
        named = self.limit_named or not self.expect_limit_named
        return self.exit_code not in (0, None) and self.out_of_memory and named


def nvidia_smi(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, check=True, env=env,
                          timeout=60).stdout.strip()


def gpu_state() -> dict[str, str]:
    fields = "name,memory.total,compute_mode,mig.mode.current"
    values = nvidia_smi("-i", "0", f"--query-gpu={fields}", "--format=csv,noheader,nounits").split(", ")
    return dict(zip(fields.split(","), values, strict=False))


def start_mps(pipe_root: Path) -> dict[str, str]:
    """An MPS control daemon on GPU 0 only, reachable through a private pipe directory."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0", "CUDA_MPS_PIPE_DIRECTORY": str(pipe_root / "pipe"),
           "CUDA_MPS_LOG_DIRECTORY": str(pipe_root / "log")}
    for key in ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    subprocess.run(["nvidia-cuda-mps-control", "-d"], env=env, check=True, timeout=60)
    deadline = time.monotonic() + 20
    while not (pipe_root / "pipe" / "control").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return env


def stop_mps(env: dict[str, str]) -> None:
    subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, env=env, timeout=60, check=False)


def variants(probe: NodeProbe, limit_mib: int, share_milli: int, hami_path: str, pipe_dir: str | None
             ) -> list[tuple[str, JobEnforcement]]:
    def make(mechanism: str, **options: object) -> JobEnforcement:
        return job_environment(mechanism, memory_limit_mib=limit_mib, share_milli=share_milli, **options)

    chosen = [("framework", make("framework")), ("none", make("none"))]
    if probe.mps_available:
        chosen += [("mps alone", make("mps", hook_dir=None, mps_pipe_directory=pipe_dir)),
                   ("mps+framework", make("mps", mps_pipe_directory=pipe_dir))]
    if probe.hami_core_available:
        chosen += [("hami-core alone", make("hami-core", hook_dir=None, hami_core_library=hami_path)),
                   ("hami-core+framework", make("hami-core", hami_core_library=hami_path))]
    return chosen


def run_case(python: str, variant: str, enforcement: JobEnforcement, size: str, mib: int, base: dict[str, str]
             ) -> Case:
    case = Case(variant=variant, label=enforcement.label, size=size, mib=mib,
                expect_success=size == "below" or enforcement.advisory,
                expect_limit_named="framework" in enforcement.label)
    result = subprocess.run([python, "-c", ALLOCATE, str(mib)], env=enforcement.apply(base), capture_output=True,
                            text=True, timeout=300)
    output = result.stdout + result.stderr
    case.exit_code = result.returncode
    case.out_of_memory = "out of memory" in output.lower()
    case.limit_named = f"limited to {enforcement.limit_mib} MiB" in output
    case.output_tail = output[-1500:]
    return case


def run_cases(args: argparse.Namespace, environ: dict[str, str], base: dict[str, str], limit_mib: int,
              share_milli: int) -> tuple[list[Case], NodeProbe]:
    probe = probe_node(hami_core_path=args.hami_core_path, environ=environ)
    print(f"probe: {probe.model_dump()}; auto chooses {choose_mechanism('auto', probe).value}")
    pipe_dir = probe.mps_pipe_directory if probe.mps_available else None

    cases = []
    for variant, enforcement in variants(probe, limit_mib, share_milli, args.hami_core_path, pipe_dir):
        for size, mib in (("below", limit_mib * 8 // 10), ("beyond", limit_mib * 12 // 10)):
            case = run_case(args.python, variant, enforcement, size, mib, base)
            cases.append(case)
            verdict = "as expected" if case.passed else "NOT AS EXPECTED"
            print(f"{variant:<20} {size:<6} {mib:>7} MiB  exit {case.exit_code}  oom={case.out_of_memory}  "
                  f"limit named={case.limit_named}  {verdict}")
    if probe.hami_core_available:
        hami = job_environment("hami-core", memory_limit_mib=limit_mib, share_milli=share_milli,
                               hami_core_library=args.hami_core_path, hook_dir=None)
        print("nvidia-smi inside a hami-core job:",
              nvidia_smi("--query-gpu=memory.total", "--format=csv,noheader", env=hami.apply(base)))
    return cases, probe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable, help="a Python with CUDA PyTorch (default: this one)")
    parser.add_argument("--share", type=float, default=0.25, help="the job's share of GPU 0 (default 0.25)")
    parser.add_argument("--start-mps", action="store_true", help="start (and afterwards stop) an MPS daemon")
    parser.add_argument("--hami-core-path", default=DEFAULT_HAMI_CORE_PATH)
    parser.add_argument("--json", type=Path, help="write every case, with its output, here")
    args = parser.parse_args()

    if shutil.which("nvidia-smi") is None:
        print("no nvidia-smi: this check needs a machine with an NVIDIA GPU")
        return 2
    before = gpu_state()
    total_mib = int(before["memory.total"])
    share_milli = round(args.share * 1000)
    limit_mib = total_mib * share_milli // 1000
    print(f"GPU 0: {before['name']}, {total_mib} MiB, compute mode {before['compute_mode']}, "
          f"MIG {before['mig.mode.current']}; job limit {limit_mib} MiB ({share_milli / 10:g}%)")

    base = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_MPS_", "RUNAI_", "XLA_"))}
    base["CUDA_VISIBLE_DEVICES"] = "0"
    environ = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="runai-lite-mps-") as mps_root:
        if args.start_mps:
            environ = start_mps(Path(mps_root))
            base["CUDA_MPS_LOG_DIRECTORY"] = environ["CUDA_MPS_LOG_DIRECTORY"]
        try:
            cases, probe = run_cases(args, environ, base, limit_mib, share_milli)
        finally:
            if args.start_mps:
                stop_mps(environ)
    after = gpu_state()
    unchanged = before == after
    print(f"GPU settings unchanged: {unchanged} ({after})")
    mps_found = probe.mps_available or not args.start_mps
    if not mps_found:
        print("the MPS daemon this script started was not found by probe_node")
    if args.json:
        args.json.write_text(json.dumps({"gpu_before": before, "gpu_after": after, "limit_mib": limit_mib,
                                         "probe": probe.model_dump(), "cases": [asdict(c) for c in cases]},
                                        indent=2))
    return 0 if unchanged and mps_found and all(c.passed for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
