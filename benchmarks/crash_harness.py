"""Crash safety of the embedded daemon: SIGKILL it at each step of applying a plan, restart it, and
check that nothing was lost, duplicated, leaked or double-booked.

Each run takes a fresh home on a simulated A100 (dynamic MIG) plus a T4 (fractions), arms one
crash point (`RUNAI_LITE_CRASH_AT=POINT:N`, see runai_lite/backends/local/crashpoints.py), and
drives a randomised workload through the real `LocalBackend`: MIG and fraction training jobs,
an interactive job that preempts, short jobs that end (teardown), a failing job that retries, and
a delete of a running job; a third of the runs also inject NVML errors. Once the daemon has killed
itself, a fresh one (unarmed) is started and left to settle, then the run is audited:

- the daemon's own consistency check ran after every cycle, before and after the crash, and
  found nothing (`invariants.log` is absent), and it finds nothing now;
- every job a submit returned is recorded exactly once, as deleted if and only if it was deleted;
- every Running job has a live process (the restarted daemon lost track of none);
- no command reported an error to the user.

    python -m benchmarks.crash_harness --runs 210 --workers 2

prints one line per run and a table per crash point; exits 1 if any run found a violation.

`--shim-kills RUNS` runs the supervisors' integrity scenario instead: each run submits gated jobs
(each appends a line to its own mark file when it starts, then waits for a gate and exits 0, with
`--backoff-limit 2`, so an invented failure would run it again), SIGKILLs the shims of about half
of them while the jobs go on, opens the gate and waits for every job to end. With `--full-disk`
(root) the home is a small tmpfs that is filled before the gate opens and emptied a moment later.
It prints runs, kills, jobs, lost (a job not Succeeded with exit code 0) and run twice after
success (a mark file with more than one line); exits 1 unless the last two are 0.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from runai_lite.backends.local import LocalBackend, daemon_stop, local_init
from runai_lite.backends.local.checks import CHECK_ENV
from runai_lite.backends.local.consistency import check_consistency, live_job_processes
from runai_lite.backends.local.control import daemon_running, ensure_daemon
from runai_lite.backends.local.crashpoints import CRASH_ENV, MARK_ENV, POINTS
from runai_lite.backends.local.paths import Home
from runai_lite.backends.local.store import Store
from runai_lite.errors import RunaiLiteError
from runai_lite.gpu.simulated import FAULTS_FILE, SimulatedDriver
from runai_lite.model import GpuRequest, JobSpec, JobType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script too
from benchmarks.full_disk import fill_until_full, mount_small_tmpfs, unmount  # noqa: E402

INVENTORY = "A100-SXM4-40GB:1,T4:1"
RETRY_BACKOFF = (0.05, 0.2)  # retries soon after a failure: the harness audits outcomes, not waits
GRACE_SECONDS = 0.5
CRASH_WAIT_SECONDS = 6.0
SETTLE_TIMEOUT_SECONDS = 40.0
SETTLE_QUIET_SECONDS = 1.5
FAULT_SPECS = (
    "create:unknown:x1:after",
    "create:timeout:x2,destroy:in-use:x1",
    "destroy:timeout:x1:after,create:insufficient-resources:x1",
)
LONG = ("sleep", "600")


@dataclass
class Outcome:
    seed: int
    point: str
    count: int
    crashed: bool = False  # the armed daemon reached the point and killed itself
    jobs: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        verdict = "ok" if not self.problems else f"{len(self.problems)} VIOLATION(S)"
        crash = "crashed" if self.crashed else "not reached"
        return (f"seed {self.seed:4d} {self.point}:{self.count} {crash}, {self.jobs} jobs, "
                f"{self.seconds:5.1f} s: {verdict}")


# ---------------------------------------------------------------------------------- the workload


def _spec(name: str, project: str, command: tuple[str, ...], request: GpuRequest | None,
          job_type: JobType = JobType.TRAIN, backoff_limit: int = 6) -> JobSpec:
    return JobSpec(name=name, project=project, image="busybox", type=job_type, request=request, command=command,
                   backoff_limit=backoff_limit if job_type is JobType.TRAIN else 0)


def workload(rng: random.Random) -> list[tuple[str, JobSpec]]:
    """("submit", spec) and ("delete", spec) steps in a random order, each delete after its submit."""
    short = ("sleep", f"{rng.uniform(0.2, 1.2):.2f}")
    specs = [
        _spec("train-a", "team-a", LONG, GpuRequest(mig_profile=rng.choice(["3g.20gb", "4g.20gb", "7g.40gb"]))),
        _spec("train-b", "team-b", LONG, GpuRequest(mig_profile=rng.choice(["1g.5gb", "2g.10gb", "3g.20gb"]))),
        _spec("frac-a", "team-a", rng.choice([LONG, short]), GpuRequest(fraction=rng.choice([0.25, 0.5, 0.75]))),
        _spec("frac-b", "team-b", short, GpuRequest(fraction=rng.choice([0.25, 0.5]))),
        _spec("short-mig", "team-b", short, GpuRequest(mig_profile="1g.5gb")),
        _spec("flaky", "team-a", ("false",), GpuRequest(fraction=0.25), backoff_limit=1),
        _spec("notebook", "team-a", LONG, GpuRequest(mig_profile=rng.choice(["3g.20gb", "4g.20gb", "7g.40gb"])),
              JobType.INTERACTIVE),
        _spec("cpu-only", "team-b", short, None),
    ]
    rng.shuffle(specs)
    steps = [("submit", s) for s in specs[:rng.randint(5, len(specs))]]
    victim = rng.randrange(len(steps))
    steps.insert(rng.randint(victim + 1, len(steps)), ("delete", steps[victim][1]))
    return steps


def scripted_workload() -> list[tuple[str, JobSpec]]:
    """A fixed workload that passes every crash point early (for the tests): a MIG job (plan,
    create, start), a short fraction job (it ends: settle), an interactive job that preempts the
    first (stop, destroy, create), then a delete of the interactive job (stop, teardown)."""
    notebook = _spec("notebook", "team-a", LONG, GpuRequest(mig_profile="4g.20gb"), JobType.INTERACTIVE)
    return [
        ("submit", _spec("train-a", "team-a", LONG, GpuRequest(mig_profile="7g.40gb"))),
        ("submit", _spec("frac-a", "team-b", ("sleep", "0.3"), GpuRequest(fraction=0.5))),
        ("submit", notebook),
        ("delete", notebook),
    ]


# ---------------------------------------------------------------------------------- one run


def run_one(seed: int, point: str, count: int, workdir: Path,
            steps: list[tuple[str, JobSpec]] | None = None) -> Outcome:
    """One crash run in its own home under `workdir` (the home is removed afterwards), with the
    seed's random workload unless `steps` are given."""
    rng = random.Random(seed)
    outcome = Outcome(seed, point, count)
    started = time.monotonic()
    home = workdir / f"run-{seed}-{point}"
    try:
        with daemon_environment({CHECK_ENV: "1"}):
            backend = _prepare(home)
            if rng.random() < 1 / 3:
                (home / FAULTS_FILE).write_text(rng.choice(FAULT_SPECS))
            daemon_stop(home)
            with daemon_environment({CRASH_ENV: f"{point}:{count}", MARK_ENV: str(home / "crashed")}):
                submitted, deleted = _drive(backend, rng, steps or workload(rng), outcome)
                outcome.crashed = _wait_for_crash(home)
                if not outcome.crashed:  # not reached: stop the armed daemon before it gets there later
                    daemon_stop(home)
                    outcome.crashed = (home / "crashed").exists()  # it may have got there meanwhile
            ensure_daemon(Home.at(home))  # the restart: unarmed, with the invariant check on
            _settle(backend)
            outcome.problems += _audit(home, backend, submitted, deleted)
            backend.close()
    except Exception as error:  # a harness run must report, not stop the other runs
        outcome.problems.append(f"the run failed: {type(error).__name__}: {error}")
    finally:
        kill_everything(home)
        if outcome.problems:  # keep what explains it
            for name in ("daemon.log", "invariants.log"):
                if (home / name).exists():
                    shutil.copy(home / name, workdir / f"{home.name}.{name}")
        shutil.rmtree(home, ignore_errors=True)
    outcome.seconds = time.monotonic() - started
    return outcome


@contextmanager
def daemon_environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables for the daemons started meanwhile (they inherit this process's environment);
    put the old values back afterwards."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _prepare(home: Path) -> LocalBackend:
    local_init(home, simulate=INVENTORY, enforcement="none", grace_seconds=GRACE_SECONDS,
               retry_backoff=RETRY_BACKOFF)
    backend = LocalBackend(home)
    backend.create_project("team-a", 1)
    backend.create_project("team-b", 1)
    backend.set_dynamic_mig(backend.store.config("node"), True)
    return backend


def _drive(backend: LocalBackend, rng: random.Random, steps: list[tuple[str, JobSpec]],
           outcome: Outcome) -> tuple[set[str], set[str]]:
    """Run the steps; what was submitted and deleted as the commands reported it."""
    submitted: set[str] = set()
    deleted: set[str] = set()
    for kind, spec in steps:
        key = f"{spec.project}/{spec.name}"
        try:
            if kind == "submit":
                backend.submit(spec)
                submitted.add(key)
                outcome.jobs += 1
            else:
                backend.delete_jobs(spec.project, [spec.name])
                deleted.add(key)
        except RunaiLiteError as error:
            outcome.problems.append(f"{kind} {key} told the user: {error}")
        time.sleep(rng.uniform(0.0, 0.3))
    return submitted, deleted


def _wait_for_crash(home: Path) -> bool:
    """True once the armed daemon has died at its point. The mark (its pid) is written just before
    the kill: wait for that process to let go of the lock too, or the restart that follows would
    find the dying daemon serving."""
    mark = home / "crashed"
    deadline = time.monotonic() + CRASH_WAIT_SECONDS
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not mark.exists():
        return False
    while time.monotonic() < deadline + 5 and daemon_running(Home.at(home)) and _pid_in(home / "daemon.pid") in (
            None, _pid_in(mark)):
        time.sleep(0.01)
    return True


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _settle(backend: LocalBackend) -> None:
    """Wait until nothing is in flight (no stop, start, create or destroy pending, every Running job
    has its process) and the store has stopped changing for a while. A daemon that never gets there
    is caught by the audit that follows the timeout."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    last, quiet_since = None, time.monotonic()
    while time.monotonic() < deadline:
        with backend.store.read() as conn:
            jobs = conn.execute("SELECT id, status, allocation IS NOT NULL, delete_requested, attempts FROM jobs "
                                "ORDER BY id").fetchall()
            layout = conn.execute("SELECT gpu_index, start, profile, state FROM mig_layout ORDER BY 1, 2").fetchall()
        state = ([tuple(r) for r in jobs], [tuple(r) for r in layout])
        live = live_job_processes({job_id for job_id, status, *_ in state[0] if status == "Running"})
        in_flight = (any(status == "Preempted" or (status == "Pending" and bound) or (status == "Running" and deleting)
                         or (status == "Running" and job_id not in live)  # starting, or ended and not yet settled
                         for job_id, status, bound, deleting, _ in state[0])
                     or any(r[3] in ("creating", "destroying") for r in state[1]))
        if state != last or in_flight:
            last, quiet_since = state, time.monotonic()
        elif time.monotonic() - quiet_since >= SETTLE_QUIET_SECONDS:
            return
        time.sleep(0.1)


def _audit(home: Path, backend: LocalBackend, submitted: set[str], deleted: set[str]) -> list[str]:
    problems = []
    broken = home / "invariants.log"
    if broken.exists():
        lines = broken.read_text().splitlines()
        problems += [f"daemon check: {line.split(' ', 1)[1]}" for line in dict.fromkeys(lines)]
    store = backend.store
    node = store.config("node")
    driver = SimulatedDriver(home, faults="")
    try:
        problems += [f"after restart: {p}" for p in check_consistency(store, driver, node)]
    finally:
        driver.close()
    rows = store.all_jobs()
    recorded = Counter(r.key for r in rows)
    for key in sorted(submitted):
        if recorded[key] != 1:
            problems.append(f"job {key} was submitted once and is recorded {recorded[key]} times")
    for key in sorted(set(recorded) - submitted):
        problems.append(f"job {key} is recorded but no submit returned it")
    live = live_job_processes({r.id for r in rows})
    for row in rows:
        if row.key in deleted and row.status != "Deleted":
            problems.append(f"job {row.key} was deleted but is {row.status}")
        if row.key not in deleted and row.status == "Deleted":
            problems.append(f"job {row.key} was never deleted but is Deleted")
        if row.status == "Running" and row.id not in live:
            problems.append(f"job {row.key} is Running but none of its processes lives")
    if not daemon_running(Home.at(home)):
        problems.append("the restarted daemon is not running")
    return problems


def kill_everything(home: Path) -> None:
    """Stop the daemon and every process of the home's jobs."""
    if not home.exists():
        return
    try:
        daemon_stop(home, timeout=5)
    except RunaiLiteError:
        pass
    if not (home / "state.db").exists():
        return
    store = Store(home / "state.db")
    try:
        job_ids = {r.id for r in store.all_jobs()}
    finally:
        store.close()
    for pids in live_job_processes(job_ids).values():
        for pid in pids:
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


# ---------------------------------------------------------------------------------- the campaign


def plan_runs(runs: int, seed: int) -> list[tuple[int, str, int]]:
    """(seed, point, N) for each run: every point equally often, N from 1 to 3."""
    rng = random.Random(seed)
    points = list(POINTS)
    return [(seed * 10_000 + i, points[i % len(points)], rng.randint(1, 3)) for i in range(runs)]


def _run_in_worker(args: tuple[int, str, int, str]) -> Outcome:
    seed, point, count, workdir = args
    return run_one(seed, point, count, Path(workdir))


def shim_kill_run(seed: int, jobs: int, full_disk: bool) -> tuple[int, int, int, int]:
    """One run of the shim-kill scenario: (kills, jobs, lost, run twice)."""
    from runai_lite.backends.local.tracking.files import AttemptFiles

    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="runai-lite-shims-"))
    root = work / "home-fs"
    root.mkdir()
    mounted = full_disk and mount_small_tmpfs(root, "8m")
    home, gate = root / "home", work / "gate"
    kills = 0
    try:
        with daemon_environment({CHECK_ENV: "1"}):
            local_init(home, simulate="T4:4", enforcement="auto", grace_seconds=GRACE_SECONDS,
                       retry_backoff=RETRY_BACKOFF)
            backend = LocalBackend(home)
            backend.create_project("p", 4)
            names = [f"j{i}" for i in range(jobs)]
            for name in names:
                script = f"echo run >> {work / name}; while [ ! -e {gate} ]; do sleep 0.05; done; exit 0"
                backend.submit(_spec(name, "p", ("sh", "-c", script), None).model_copy(update={"backoff_limit": 2}))
            deadline = time.monotonic() + 60
            attempts = {}
            while time.monotonic() < deadline and len(attempts) < jobs:
                for row in backend.store.live_jobs("p"):
                    files = AttemptFiles(Home.at(home), row.id, max(row.attempts, 1))
                    if row.status == "Running" and files.child_pid() is not None:
                        attempts[row.name] = files
                time.sleep(0.05)
            for files in attempts.values():
                if rng.random() < 0.5 and files.pid() is not None:
                    os.kill(files.pid(), signal.SIGKILL)
                    kills += 1
            filler = root / "filler"
            if mounted:
                fill_until_full(filler)
            gate.touch()
            if mounted:
                time.sleep(1.5)
                filler.unlink()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(not j.status.terminal for j in backend.list_jobs("p")):
                time.sleep(0.1)
            lost = sum(1 for j in backend.list_jobs("p") if j.status.value != "Succeeded" or j.exit_code != 0)
            twice = sum(1 for name in names if (work / name).exists() and len((work / name).read_text().split()) > 1)
            backend.close()
    finally:
        kill_everything(home)
        if mounted:
            unmount(root)
        shutil.rmtree(work, ignore_errors=True)
    return kills, jobs, lost, twice


def shim_kills_main(runs: int, jobs: int, full_disk: bool, seed: int) -> int:
    totals = [0, 0, 0, 0]
    for run in range(runs):
        outcome = shim_kill_run(seed + run, jobs, full_disk)
        print(f"run {run}: kills {outcome[0]}, jobs {outcome[1]}, lost {outcome[2]}, run twice {outcome[3]}",
              flush=True)
        totals = [a + b for a, b in zip(totals, outcome)]
    print(f"runs {runs}, kills {totals[0]}, jobs {totals[1]}, lost {totals[2]}, run twice after success {totals[3]}"
          + (" (home on a filled tmpfs)" if full_disk else ""))
    return 1 if totals[2] or totals[3] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=210)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shim-kills", type=int, default=0, metavar="RUNS", help="the shim-kill scenario instead")
    parser.add_argument("--jobs", type=int, default=6, help="jobs per shim-kill run")
    parser.add_argument("--full-disk", action="store_true", help="shim-kill runs on a filled tmpfs home (root)")
    args = parser.parse_args(argv)
    if args.shim_kills:
        return shim_kills_main(args.shim_kills, args.jobs, args.full_disk, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="runai-lite-crash-"))
    started = time.monotonic()
    outcomes: list[Outcome] = []
    jobs = [(s, p, n, str(workdir)) for s, p, n in plan_runs(args.runs, args.seed)]
    with ProcessPoolExecutor(args.workers) as pool:
        for outcome in pool.map(_run_in_worker, jobs):
            outcomes.append(outcome)
            print(outcome.line(), flush=True)
            for problem in outcome.problems:
                print(f"    {problem}", flush=True)
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{len(outcomes)} runs in {time.monotonic() - started:.0f} s with {args.workers} workers")
    print(f"{'crash point':18} {'runs':>5} {'crashed':>8} {'violations':>11}")
    for point in POINTS:
        mine = [o for o in outcomes if o.point == point]
        print(f"{point:18} {len(mine):5d} {sum(o.crashed for o in mine):8d} "
              f"{sum(len(o.problems) for o in mine):11d}")
    total = sum(len(o.problems) for o in outcomes)
    print(f"total: {sum(o.crashed for o in outcomes)} crashes, {sum(o.jobs for o in outcomes)} jobs, "
          f"{total} violations")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
