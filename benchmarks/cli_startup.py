"""What a `runai` command costs in CPU, beside the cost of a bare `python -c "import typer"`.

One embedded home with a running daemon on a simulated T4 and 1,000 jobs in project `team-a` (one
running, the rest pending). Each round runs every case once as a child process, in turn
(interleaved, so a busy moment of the machine falls on all cases alike), and reads the child's own
user+sys CPU time from `os.wait4`:

- `import typer`: `python -c "import typer"`, the floor any Typer CLI stands on;
- `--help`: `runai --help`;
- `submit`: `runai submit` of a pending job to the running daemon (project `team-b`);
- `list 1k`: `runai list -p team-a`, 1,000 rows;
- `complete`: `runai completion-names jobs -p team-a`, what the shell completion scripts run on
  TAB after `runai logs ` and the like.

    python -m benchmarks.cli_startup --rounds 15 [--baseline OTHER/.venv/bin/runai ...]

prints, per case, the median and lowest CPU time, and the median beyond `import typer` as a share
of it (the goal: at most 50%). `--baseline` runs the same four commands of another installation
(another release's virtual environment, on the same home and daemon) in the same rounds, so that
before and after are measured side by side; it may be given more than once.

Every measured `runai_lite` runs from bytecode, as an installed package does (pip compiles it at
install time, as it compiled typer): the package is compiled once before the rounds. Without that,
where `PYTHONDONTWRITEBYTECODE` is set (as in CI containers and this project's sandbox) every run
would compile the CLI from source while `import typer` never does, and the comparison would
measure the compiler.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

JOBS = 1000
INVENTORY = "T4:1"


def runai_command() -> list[str]:
    """The `runai` console script of this interpreter's environment, as a user runs it."""
    script = Path(sys.executable).parent / "runai"
    if not script.exists():
        sys.exit(f"no runai script beside {sys.executable}: pip install -e . first")
    return [str(script)]


def cases(runai: list[str], suffix: str = "") -> dict[str, list[str]]:
    return {
        f"--help{suffix}": [*runai, "--help"],
        f"submit{suffix}": [*runai, "submit", "-p", "team-b", "-i", "busybox", "--gpu", "1", "--name-prefix", "bench",
                            "--", "sleep", "1"],
        f"list {JOBS // 1000}k{suffix}": [*runai, "list", "-p", "team-a"],
        f"complete{suffix}": [*runai, "completion-names", "jobs", "-p", "team-a"],
    }


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """The child's own user+sys CPU time; it must succeed."""
    child = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    errors = child.stderr.read().decode() if child.stderr else ""
    if child.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {child.returncode}: {errors}")
    return usage.ru_utime + usage.ru_stime


def compile_package(python: Path) -> None:
    """Compile the `runai_lite` that `python` imports into its `__pycache__` (written even where
    `PYTHONDONTWRITEBYTECODE` is set: compileall writes what it is asked to)."""
    where = subprocess.run([str(python), "-c", "import runai_lite, os; print(os.path.dirname(runai_lite.__file__))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([str(python), "-m", "compileall", "-q", where], capture_output=True, check=True)


def prepare(home: Path, jobs: int = JOBS) -> None:
    """A home with a daemon, projects team-a (`jobs` jobs needing the one GPU: one runs) and team-b,
    made in this process."""
    os.environ["RUNAI_LITE_HOME"] = str(home)
    from runai_lite.backends.local import LocalBackend, local_init
    from runai_lite.model import GpuRequest, JobSpec

    local_init(home, simulate=INVENTORY)
    backend = LocalBackend()
    backend.create_project("team-a", 1)
    backend.create_project("team-b", 1)
    for number in range(jobs):
        backend.submit(JobSpec(name=f"job-{number}", project="team-a", image="busybox",
                               command=("sleep", "3600"), request=GpuRequest(gpus=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--baseline", type=Path, metavar="RUNAI", action="append", default=[],
                        help="the runai script of another installation (its venv's bin/runai), measured in the "
                             "same rounds and named after the directory above the venv; repeatable")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="runai-cli-startup-"))
    env = {**os.environ, "RUNAI_LITE_HOME": str(home), "RUNAI_LITE_RUNTIME": "process"}
    env.pop("KUBECONFIG", None)
    runai = runai_command()
    try:
        prepare(home)
        commands = {"import typer": [sys.executable, "-c", "import typer"], **cases(runai)}
        compile_package(Path(sys.executable))
        for baseline in args.baseline:
            commands.update(cases([str(baseline)], f" ({baseline.resolve().parents[2].name})"))
            compile_package(baseline.parent / "python")
        for argv in commands.values():  # warm the page cache and the daemon once
            cpu_seconds(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                samples[name].append(cpu_seconds(argv, env))
        typer_ms = statistics.median(samples["import typer"]) * 1000
        print(f"CPU time (user+sys) of each command, {args.rounds} interleaved rounds, {JOBS} jobs in the listed "
              f"project, {os.cpu_count()} CPUs")
        print(f"{'case':<28}{'median ms':>11}{'lowest ms':>11}{'beyond typer':>14}{'share':>8}")
        for name, values in samples.items():
            median = statistics.median(values) * 1000
            beyond = median - typer_ms
            share = "" if name == "import typer" else f"{beyond / typer_ms:.0%}"
            extra = "" if name == "import typer" else f"{beyond:+.0f} ms"
            print(f"{name:<28}{median:>11.0f}{min(values) * 1000:>11.0f}{extra:>14}{share:>8}")
    finally:
        for project in ("team-a", "team-b"):  # the running job's process too: it would outlive the home
            subprocess.run([*runai, "delete", "job", "--all", "-p", project], env=env, capture_output=True,
                           check=False)
        subprocess.run([str(Path(runai[0]).parent / "runai-adm"), "local", "stop"], env=env, capture_output=True,
                       check=False)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
