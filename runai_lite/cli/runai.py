"""`runai`: the researcher CLI, with the command names and flags of Run:ai's CLI v1.

Nothing heavy is imported here: backends, rich tables and the GPU catalog load inside the commands
that need them, so `runai --help` and `runai list` start fast and never load kubernetes or pynvml.
Annotations are evaluated here, not postponed (no `from __future__ import annotations`): Typer
reads every command's signature when it builds the command tree, and resolving postponed
annotations from their text cost more than all the rest of building it.
"""

import sys
import time
from typing import Annotated

import typer

from ..errors import UserError
from ..kinds import check_name
from .app import (DataOutput, DoubleDashCommand, Output, RunaiGroup, add_group, emit_data, example, new_app, run,
                  session, show, show_projects)
from .config import LOCAL_CLUSTER

app = new_app("Submit and manage GPU jobs: whole GPUs, GPU fractions and dynamic MIG partitions.",
              "runai submit mig1 -i gcr.io/run-ai-demo/quickstart-cuda --gpu-memory 10GB -- sleep 600", cls=RunaiGroup)
list_app = add_group(app, "list", "List jobs (the default), projects or nodes.", "runai list -A", no_args_is_help=False)
describe_app = add_group(app, "describe", "Show details of a job or a node.", "runai describe job mig1")
delete_app = add_group(app, "delete", "Delete jobs.", "runai delete job mig1 mig2")
config_app = add_group(app, "config", "Set the default project or cluster.", "runai config project team-a")
top_app = add_group(app, "top", "Show how GPUs are shared (top node) and what each job holds and uses (top job).",
                    "runai top node")

# Metavars JOB and PROJECT also tell the completion scripts which words to complete with names.
ProjectOpt = Annotated[str | None, typer.Option("--project", "-p", metavar="PROJECT",
                                                help="Project (default: `runai config project`).")]


def _job_names(value: str | list[str] | None) -> str | list[str] | None:
    """A name that is no DNS-1123 label names no job: say so (exit 2) before asking a backend,
    whose store or API could not even take some of them (bytes that are not UTF-8)."""
    for name in [value] if isinstance(value, str) else value or ():
        check_name("job name", name, "mig1")
    return value


JobArg = Annotated[str, typer.Argument(metavar="JOB", help="Job name.", callback=_job_names)]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="Output format.")]
DataOutputOpt = Annotated[DataOutput, typer.Option("--output", "-o", help="Output format.")]
AllProjectsOpt = Annotated[bool, typer.Option("--all-projects", "-A", help="Show jobs of every project.")]

# `runai submit --help` groups its many flags as Run:ai's reference does.
_RESOURCES, _STORAGE, _NETWORK, _PLACEMENT, _LIFETIME = ("Host resources", "Storage", "Network", "Placement",
                                                         "Lifetime")


# --------------------------------------------------------------------------------------------
# submit


@app.command(cls=DoubleDashCommand, help=(
    "Submit a job. The command to run goes after [bold]--[/bold].\n\n"
    "Ask for GPUs in one way: [bold]--gpu[/bold] 1 or 0.5, [bold]--gpu-memory[/bold] 10GB, or "
    "[bold]--mig-profile[/bold] 2g.10gb. Training jobs (the default) may be preempted and are then requeued; "
    "[bold]--interactive[/bold] jobs are not."
    + example("runai submit mig1 -i gcr.io/run-ai-demo/quickstart-cuda --gpu-memory 10GB -- sleep 600")))
def submit(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Job name (generated from --name-prefix when left out).")] = None,
    image: Annotated[str, typer.Option("--image", "-i", help="Container image.")] = ...,
    gpu: Annotated[str | None, typer.Option("--gpu", "-g", help="Whole GPUs (1, 2) or a fraction (0.5).")] = None,
    gpu_memory: Annotated[str | None, typer.Option("--gpu-memory", help="GPU memory: 4G, 10GB, 500Mi.")] = None,
    mig_profile: Annotated[str | None, typer.Option("--mig-profile", help="A MIG profile, e.g. 2g.10gb.")] = None,
    interactive: Annotated[bool, typer.Option("--interactive", help="Interactive job (never preempted).")] = False,
    preemptible: Annotated[bool, typer.Option("--preemptible", help="With --interactive: may be preempted.")] = False,
    project: ProjectOpt = None,
    environment: Annotated[list[str] | None, typer.Option("--environment", "-e", help="NAME=VALUE (repeatable).")] = None,
    working_dir: Annotated[str | None, typer.Option("--working-dir", help="Working directory of the command.")] = None,
    backoff_limit: Annotated[int | None, typer.Option("--backoff-limit", min=0, max=100,
                                                      help="Retries of a failing training job (default 6).")] = None,
    command: Annotated[bool, typer.Option("--command", help="The words after -- replace the image's entrypoint.")] = False,
    name_prefix: Annotated[str | None, typer.Option("--name-prefix", metavar="PREFIX",
                                                    help="Generate the name as PREFIX-<n> (also "
                                                         "--job-name-prefix).")] = None,
    job_name_prefix: Annotated[str | None, typer.Option("--job-name-prefix", hidden=True)] = None,
    cpu: Annotated[str | None, typer.Option("--cpu", metavar="CORES", rich_help_panel=_RESOURCES,
                                            help="CPU cores to reserve (0.5, 2, 500m); scheduled.")] = None,
    memory: Annotated[str | None, typer.Option("--memory", metavar="SIZE", rich_help_panel=_RESOURCES,
                                               help="Host memory to reserve (4G, 512Mi); scheduled.")] = None,
    cpu_limit: Annotated[str | None, typer.Option("--cpu-limit", metavar="CORES", rich_help_panel=_RESOURCES,
                                                  help="At most this many cores (cgroup cpu.max, container, pod).")] = None,
    memory_limit: Annotated[str | None, typer.Option("--memory-limit", metavar="SIZE", rich_help_panel=_RESOURCES,
                                                     help="At most this much host memory (killed above it).")] = None,
    volume: Annotated[list[str] | None, typer.Option("--volume", "-v", metavar="HOST:CONTAINER[:ro]",
                                                     rich_help_panel=_STORAGE,
                                                     help="Mount a host path (containers, Kubernetes; repeatable).")] = None,
    pvc: Annotated[list[str] | None, typer.Option("--pvc", metavar="PVC",
                                                  rich_help_panel=_STORAGE,
                                                  help="[CLASS]:SIZE:PATH[:ro] (a new claim) or CLAIM:PATH[:ro] (an existing one; Kubernetes; "
                                                       "repeatable).")] = None,
    large_shm: Annotated[bool, typer.Option("--large-shm", rich_help_panel=_STORAGE,
                                            help="A large /dev/shm (containers, Kubernetes).")] = False,
    port: Annotated[list[str] | None, typer.Option("--port", metavar="[HOST:]CONTAINER", rich_help_panel=_NETWORK,
                                                   help="Publish a container port (a Service port on Kubernetes; "
                                                        "repeatable).")] = None,
    service_type: Annotated[str | None, typer.Option("--service-type", "-s", metavar="TYPE", rich_help_panel=_NETWORK,
                                                     help="Kubernetes Service for --port: nodeport, loadbalancer, "
                                                          "clusterip (= portforward).")] = None,
    label: Annotated[list[str] | None, typer.Option("--label", "-l", metavar="KEY=VALUE", rich_help_panel=_PLACEMENT,
                                                    help="A label on the job (and its pods; repeatable).")] = None,
    node_type: Annotated[str | None, typer.Option("--node-type", metavar="TYPE", rich_help_panel=_PLACEMENT,
                                                  help="Run only on nodes of this type (node label run.ai/type).")] = None,
    ttl_after_finish: Annotated[str | None, typer.Option("--ttl-after-finish", metavar="DURATION",
                                                         rich_help_panel=_LIFETIME,
                                                         help="Delete the job this long after it ends (30s, 1h).")] = None,
    completions: Annotated[int | None, typer.Option("--completions", metavar="N", min=1, max=10_000,
                                                    rich_help_panel=_LIFETIME,
                                                    help="Successful runs needed (training jobs).")] = None,
    parallelism: Annotated[int | None, typer.Option("--parallelism", metavar="N", min=1, max=10_000,
                                                    rich_help_panel=_LIFETIME,
                                                    help="Runs at once, at most --completions (training jobs).")] = None,
    attach_: Annotated[bool, typer.Option("--attach", rich_help_panel=_LIFETIME,
                                          help="Wait for the job to start, then show its output (runai attach).")] = False,
) -> None:
    from ..submission.flags import SubmitFlags

    s = session(ctx)
    flags = SubmitFlags(
        project=s.project(project), image=image, name=name, name_prefix=name_prefix or job_name_prefix, gpu=gpu,
        gpu_memory=gpu_memory, mig_profile=mig_profile, interactive=interactive, preemptible=preemptible,
        environment=tuple(environment or ()), working_dir=working_dir, backoff_limit=backoff_limit,
        command=tuple(ctx.meta.get("after_dash", ())), replace_entrypoint=command, cpu=cpu, memory=memory,
        cpu_limit=cpu_limit, memory_limit=memory_limit, volumes=tuple(volume or ()), pvcs=tuple(pvc or ()),
        large_shm=large_shm, ports=tuple(port or ()), service_type=service_type, labels=tuple(label or ()),
        node_type=node_type, ttl_after_finish=ttl_after_finish, completions=completions, parallelism=parallelism)
    job = s.backend.submit_flags(flags)  # checked where the spec is built (`submission/spec.py`)
    typer.echo(f"The job '{job.name}' has been submitted successfully")
    typer.echo(f"You can run `runai describe job {job.name} -p {job.project}` to check the job status")
    for note in job.notes:  # what the backend could not give this job as asked, said at once
        typer.echo(f"Note: {note}", err=True)
    for warning in job.warnings:
        typer.echo(f"Warning: {warning}", err=True)
    if attach_:
        _attach(s, job.project, job.name)


# --------------------------------------------------------------------------------------------
# list


def _show_jobs(ctx: typer.Context, all_projects: bool, project: str | None, output: Output) -> None:
    s = session(ctx)
    chosen = None if all_projects else s.project(project)
    if output is Output.TABLE:  # plain rows, no record models: the common case stays cheap
        jobs, wide = s.backend.job_summaries(chosen), None
    else:
        records = s.backend.list_jobs(chosen)
        if output is not Output.WIDE:
            if not records and chosen is not None:
                s.require_project_exists(chosen)
            emit_data([j.to_json() for j in records], output.value)
            return
        from .render import wide_cells

        jobs, wide = [j.summary() for j in records], {(j.project, j.name): wide_cells(j) for j in records}
    if not jobs and chosen is not None:
        s.require_project_exists(chosen)  # "no jobs" must not hide a mistyped project
    from .render import jobs_table

    heading = "Showing jobs for all projects" if chosen is None else f"Showing jobs for project {chosen}"
    show(heading, jobs_table(jobs, time.time(), wide) if jobs else "No jobs found.")


@list_app.callback(invoke_without_command=True)
def list_default(ctx: typer.Context, all_projects: AllProjectsOpt = False, project: ProjectOpt = None,
                 output: OutputOpt = Output.TABLE) -> None:
    # `runai list` alone lists jobs, as Run:ai's does; its help is the group's.
    if ctx.invoked_subcommand is None:
        _show_jobs(ctx, all_projects, project, output)


@list_app.command("jobs", help="List jobs with Run:ai's columns." + example("runai list jobs -p team-a -o json"))
@list_app.command("job", hidden=True)  # Run:ai's singular alias
def list_jobs(ctx: typer.Context, all_projects: AllProjectsOpt = False, project: ProjectOpt = None,
              output: OutputOpt = Output.TABLE) -> None:
    parent = ctx.parent.params if ctx.parent else {}  # `runai list -A jobs` keeps the -A
    _show_jobs(ctx, all_projects or parent.get("all_projects", False), project or parent.get("project"),
               output if output is not Output.TABLE else parent.get("output", Output.TABLE))


@list_app.command("projects", help="List projects and their GPU quotas." + example("runai list projects"))
def list_projects(ctx: typer.Context, output: DataOutputOpt = DataOutput.TABLE) -> None:
    show_projects(ctx, output)


@list_app.command("nodes", help="List nodes and their GPUs." + example("runai list nodes"))
def list_nodes(ctx: typer.Context, output: DataOutputOpt = DataOutput.TABLE) -> None:
    nodes = session(ctx).backend.list_nodes()
    if output is not DataOutput.TABLE:
        emit_data([n.to_json() for n in nodes], output.value)
        return
    from .render import nodes_table

    show(nodes_table(nodes) if nodes else "No nodes found.")


# --------------------------------------------------------------------------------------------
# describe, logs, exec, delete


@describe_app.command("job", help="Show a job: its allocation, why it is pending, its memory enforcement and "
                                  "its events." + example("runai describe job mig1 -o json"))
def describe_job(ctx: typer.Context, name: JobArg,
                 project: ProjectOpt = None, output: DataOutputOpt = DataOutput.TABLE) -> None:
    s = session(ctx)
    job = s.backend.get_job(s.project(project), name)
    from .render import describe_json, describe_lines, events_table

    if output is not DataOutput.TABLE:
        emit_data(describe_json(job), output.value)
        return
    now = time.time()
    lines = describe_lines(job, now)
    width = max(len(key) for key, _ in lines)
    show(*(f"{key + ':':<{width + 2}}{value}" for key, value in lines), "", "Events:",
         events_table(job.events, now) if job.events else "  <none>")


@app.command(help="Print a job's output. A line [bold]--- attempt N (why) ---[/bold] starts each retry's output "
                  "(why: how the attempt before it ended)." + example("runai logs mig1 --tail 20 -f"))
def logs(ctx: typer.Context, name: JobArg, project: ProjectOpt = None,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new output.")] = False,
         tail: Annotated[int | None, typer.Option("--tail", "-t", min=0, help="Only the last N lines.")] = None,
         attempt: Annotated[int | None, typer.Option("--attempt", metavar="N", min=1,
                                                     help="Only attempt N's output (1 is the first run).")] = None,
         ) -> None:
    s = session(ctx)
    try:
        for line in s.backend.logs(s.project(project), name, follow=follow, tail=tail, attempt=attempt):
            sys.stdout.write(line if line.endswith("\n") else line + "\n")
            if follow:
                sys.stdout.flush()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


StdinOpt = Annotated[bool, typer.Option("--stdin", "-i", help="Pass this terminal's input to the command.")]
TtyOpt = Annotated[bool, typer.Option("--tty", "-t", help="Give the command a terminal of its own.")]


@app.command(
    "exec", cls=DoubleDashCommand, context_settings={"allow_interspersed_args": False},
    help="Run a command in a job's environment (its device, variables and working directory, or its "
         "container). Options go before [bold]--[/bold] (or before JOB when there is no --); the "
         "command's exit code is runai's." + example("runai exec mig1 -it -- bash"),
)
def exec_(ctx: typer.Context, name: JobArg,
          command: Annotated[list[str] | None, typer.Argument(metavar="COMMAND",
                                                              help="The command and its arguments.")] = None,
          project: ProjectOpt = None, stdin: StdinOpt = False, tty: TtyOpt = False) -> None:
    after_dash = ctx.meta.get("after_dash")
    if after_dash is not None and command:
        raise UserError(f"unexpected {command[0]!r} before --", f"e.g. runai exec {name} -it -- {command[0]}")
    argv = list(after_dash if after_dash is not None else command or ())
    if not argv:
        raise UserError("no command given", f"e.g. runai exec {name} -- nvidia-smi -L")
    _exec(ctx, project, name, argv, tty=tty, stdin=stdin)


def _exec(ctx: typer.Context, project: str | None, name: str, argv: list[str], tty: bool, stdin: bool) -> None:
    s = session(ctx)
    code = s.backend.exec(s.project(project), name, argv, tty=tty, stdin=stdin)
    raise typer.Exit(code)


@app.command("bash", help="Open a shell in a job: [bold]runai exec -it JOB -- bash[/bold]."
                          + example("runai bash mig1"))
def bash(ctx: typer.Context, name: JobArg, project: ProjectOpt = None) -> None:
    _exec(ctx, project, name, ["bash"], tty=True, stdin=True)


ATTACH_POLL_SECONDS = 0.5


@app.command(help="Wait for a job to start, then show its output as it comes until it ends; runai's exit code is "
                  "the job's. The job's own input is closed: for a shell in it use [bold]runai bash JOB[/bold]."
                  + example("runai attach mig1"))
def attach(ctx: typer.Context, name: JobArg, project: ProjectOpt = None, stdin: StdinOpt = False,
           tty: TtyOpt = False) -> None:
    s = session(ctx)
    project = s.project(project)
    s.backend.get_job(project, name)  # a job that does not exist: exit 2 before any note
    if stdin or tty:
        typer.echo(f"Note: job {name} runs with its input closed; showing its output "
                   f"(for a shell in it: runai bash {name})", err=True)
    _attach(s, project, name)


def _attach(s, project: str, name: str) -> None:
    """Wait while the job is Pending, then follow its output; exit with its exit code."""
    from ..model import JobStatus

    job = s.backend.get_job(project, name)
    try:
        while job.status is JobStatus.PENDING:
            time.sleep(ATTACH_POLL_SECONDS)
            job = s.backend.get_job(project, name)
        for line in s.backend.logs(project, name, follow=True):
            sys.stdout.write(line if line.endswith("\n") else line + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    job = s.backend.get_job(project, name)
    if job.exit_code is not None:
        raise typer.Exit(job.exit_code)
    raise typer.Exit(0 if job.status is JobStatus.SUCCEEDED else 1)


@app.command(help="Stop a job without losing it: its processes are stopped (SIGTERM, then SIGKILL) and its GPUs, "
                  "fraction or MIG partition freed; it stays Suspended until [bold]runai resume[/bold]."
                  + example("runai suspend train1"))
def suspend(ctx: typer.Context, name: JobArg, project: ProjectOpt = None) -> None:
    s = session(ctx)
    project = s.project(project)
    s.backend.suspend_job(project, name)
    typer.echo(f"The job '{name}' has been suspended in project {project}")


@app.command(help="Queue a suspended job again: it is Pending, then scheduled as any job; its attempts are kept."
                  + example("runai resume train1"))
def resume(ctx: typer.Context, name: JobArg, project: ProjectOpt = None) -> None:
    s = session(ctx)
    project = s.project(project)
    s.backend.resume_job(project, name)
    typer.echo(f"The job '{name}' has been resumed in project {project}")


def parse_forward(text: str) -> tuple[int, int]:
    """`LOCAL:REMOTE` (Run:ai's syntax) or `PORT` (the same on both sides); LOCAL 0 lets the system
    choose a free port."""
    local, sep, remote = text.partition(":")
    if not sep:
        local = remote = text
    if not (local.isdigit() and remote.isdigit() and 0 <= int(local) <= 65535 and 1 <= int(remote) <= 65535):
        raise UserError(f"invalid --port {text!r}", "give LOCAL:REMOTE ports, e.g. --port 8080:8888 (LOCAL 0: any free)")
    return int(local), int(remote)


@app.command("port-forward", help=(
    "Forward local ports to a running job's ports until interrupted (Ctrl-C): on the embedded default to its "
    "container's published port or, for a job run as processes, that port on this machine; on Kubernetes to its "
    "pod (pods/portforward, as kubectl port-forward)." + example("runai port-forward jupyter1 --port 8888:8888")))
def port_forward(ctx: typer.Context, name: JobArg,
                 port: Annotated[list[str], typer.Option("--port", metavar="LOCAL:REMOTE",
                                                         help="A local port and the job's port (repeatable).")],
                 project: ProjectOpt = None,
                 address: Annotated[str, typer.Option("--address", metavar="ADDRESS",
                                                      help="The local address to listen on.")] = "127.0.0.1") -> None:
    from ..backends.relay import Forward, Relay

    pairs = [parse_forward(p) for p in port]
    remote_ports = [remote for _, remote in pairs]
    if len(set(remote_ports)) != len(remote_ports):
        raise UserError("a job port is given twice", "forward each of the job's ports once")
    s = session(ctx)
    project = s.project(project)
    forwards = [Forward(local, remote, s.backend.port_opener(project, name, remote)) for local, remote in pairs]

    def failed(forward: Forward, error: Exception) -> None:
        typer.echo(f"Error: a connection to port {forward.remote_port} of job {name} failed: {error}", err=True)

    try:
        relay = Relay(forwards, address, on_error=failed)
    except OSError as error:
        raise UserError(f"cannot listen on {address}: {error.strerror or error}",
                        "choose other local ports (LOCAL 0 lets the system choose one)") from None
    for host, local, remote in relay.bound():
        typer.echo(f"Forwarding from {host}:{local} -> {remote}")
    sys.stdout.flush()
    # Ctrl-C stops it (exit 130) even where it was started with SIGINT ignored, as kubectl's does.
    import signal
    import threading

    interrupted = threading.Event()

    def on_interrupt(signum: int, frame: object) -> None:
        interrupted.set()
        relay.stop()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        relay.serve()
    finally:
        relay.stop()
        signal.signal(signal.SIGINT, previous)
    if interrupted.is_set():
        raise typer.Exit(130)


@delete_app.command("job", help="Delete jobs (their processes are stopped: SIGTERM, then SIGKILL)."
                                + example("runai delete job mig1-int"))
def delete_job(ctx: typer.Context,
               names: Annotated[list[str] | None, typer.Argument(metavar="JOB...", help="Job names.",
                                                                 callback=_job_names)] = None,
               project: ProjectOpt = None,
               all_jobs: Annotated[bool, typer.Option("--all", "-A", help="Delete every job of the project.")] = False) -> None:
    if bool(names) == all_jobs:
        raise UserError("name the jobs to delete, or pass --all (not both)", "e.g. runai delete job mig1 mig2")
    s = session(ctx)
    project = s.project(project)
    deleted = s.backend.delete_jobs(project, None if all_jobs else list(names or ()))
    if not deleted:
        typer.echo(f"No jobs to delete in project {project}")
    for name in deleted:
        typer.echo(f"The job '{name}' has been deleted from project {project}")


# --------------------------------------------------------------------------------------------
# config, top, completion, version


@config_app.command("project", help="Set the default project." + example("runai config project team-a"))
def config_project(ctx: typer.Context,
                   name: Annotated[str, typer.Argument(metavar="PROJECT", help="Project name.")]) -> None:
    s = session(ctx)
    s.require_project_exists(name)
    s.save_config(s.config.with_project(name))
    typer.echo(f"Project {name} has been set as default project")


@config_app.command("cluster", help=(
    "Choose where jobs run: [bold]local[/bold] (this machine, the default) or a kubeconfig context."
    + example("runai config cluster local")))
def config_cluster(ctx: typer.Context, name: Annotated[str, typer.Argument(help="`local` or a kubeconfig context.")]) -> None:
    from .kubeconfig import require_context

    s = session(ctx)
    if name != LOCAL_CLUSTER:
        require_context(name)
    s.save_config(s.config.with_cluster(name))
    if name == LOCAL_CLUSTER:
        typer.echo("Cluster set to local: jobs run on this machine")
    else:
        typer.echo(f"Cluster set to Kubernetes context {name}")


def _top(ctx: typer.Context, output: DataOutput) -> None:
    nodes = session(ctx).backend.list_nodes()
    if output is not DataOutput.TABLE:
        emit_data([n.to_json() for n in nodes], output.value)
        return
    from .topview import node_view

    show(*(node_view(node) for node in sorted(nodes, key=lambda n: n.name)) if nodes else "No nodes found.")


@top_app.command("node", help="Draw each GPU: MIG partitions with their profiles and jobs (idle ones marked), "
                              "fraction shares, free room." + example("runai top node -o json"))
def top_node(ctx: typer.Context, output: DataOutputOpt = DataOutput.TABLE) -> None:
    _top(ctx, output)


@top_app.command("job", help="One row per unfinished job: its project, status, node and allocation (GPUs, fraction "
                             "or MIG profile, GPU memory limit) and, where the GPU driver reports them (NVML), the "
                             "GPU memory its processes use and their pids." + example("runai top job -A -o json"))
def top_job(ctx: typer.Context, all_projects: AllProjectsOpt = False, project: ProjectOpt = None,
            output: DataOutputOpt = DataOutput.TABLE) -> None:
    s = session(ctx)
    chosen = None if all_projects else s.project(project)
    rows = s.backend.top_jobs(chosen)
    if not rows and chosen is not None:
        s.require_project_exists(chosen)
    if output is not DataOutput.TABLE:
        emit_data([r.to_json() for r in rows], output.value)
        return
    from .render import top_jobs_table

    show(top_jobs_table(rows) if rows else "No jobs found.")


@top_app.command("jobs", hidden=True)
def top_jobs(ctx: typer.Context, all_projects: AllProjectsOpt = False, project: ProjectOpt = None,
             output: DataOutputOpt = DataOutput.TABLE) -> None:
    top_job(ctx, all_projects, project, output)


@top_app.command("nodes", hidden=True)
def top_nodes(ctx: typer.Context, output: DataOutputOpt = DataOutput.TABLE) -> None:
    _top(ctx, output)


@app.command(help="Print the shell completion script for runai (bash, zsh or fish)."
                  + example("source <(runai completion bash)"))
def completion(shell: Annotated[str, typer.Argument(help="bash, zsh or fish.")]) -> None:
    from .completion import script_for

    sys.stdout.write(script_for(app, "runai", shell))


@app.command("completion-names", hidden=True)
def completion_names(ctx: typer.Context, kind: str, project: ProjectOpt = None) -> None:
    """Job or project names, one a line, for the completion scripts; silent when it cannot answer
    (a TAB must never print an error)."""
    from ..errors import RunaiLiteError

    s = session(ctx)
    try:
        if kind == "projects":
            names = [p.name for p in s.backend.list_projects()]
        else:
            names = [j.name for j in s.backend.list_jobs(s.project(project))]
    except RunaiLiteError:
        return
    sys.stdout.write("".join(f"{n}\n" for n in names))


@describe_app.command("node", help="Show a node: its GPUs, how each is shared and by which jobs."
                                   + example("runai describe node vm -o json"))
def describe_node(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NODE", help="Node name.")],
                  output: DataOutputOpt = DataOutput.TABLE) -> None:
    from ..errors import NotFoundError

    nodes = {n.name: n for n in session(ctx).backend.list_nodes()}
    node = nodes.get(name)
    if node is None:
        raise NotFoundError(f"node {name} was not found",
                            f"known nodes: {', '.join(sorted(nodes)) or 'none'} (`runai list nodes`)")
    if output is not DataOutput.TABLE:
        emit_data(node.to_json(), output.value)
        return
    from .render import gpu_is_free
    from .topview import node_view

    models = ", ".join(sorted({g.model for g in node.gpus})) or "-"
    free = sum(1 for g in node.gpus if gpu_is_free(g))
    show(f"NAME:       {node.name}", f"GPU TYPE:   {models}", f"GPUs:       {len(node.gpus)} ({free} free)", "",
         node_view(node))


@app.command(help="Print the user the backend acts for: the account jobs are submitted, listed and "
                  "deleted as." + example("runai whoami"))
def whoami(ctx: typer.Context) -> None:
    typer.echo(session(ctx).backend.current_user())


@app.command(help="Print the runai-lite version." + example("runai version"))
def version() -> None:
    from .. import __version__

    typer.echo(f"runai-lite {__version__}")


def main() -> None:
    run(app, "runai")


if __name__ == "__main__":
    main()
