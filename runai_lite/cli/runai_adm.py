"""`runai-adm`: the administrator CLI: node roles, projects, the embedded controller, installing on
Kubernetes."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import UserError
from ..kinds import check_name
from .app import DataOutput, RunaiGroup, add_group, emit_data, example, new_app, run, session, show_projects

app = new_app("Administer runai-lite: dynamic-MIG nodes, projects and quotas, the embedded controller, "
              "Kubernetes install.", "runai-adm local init --simulate A100-SXM4-40GB:1", cls=RunaiGroup)
set_app = add_group(app, "set", "Set a node role.", "runai-adm set node-role --dynamic-mig-enabled node-1")
remove_app = add_group(app, "remove", "Remove a node role.", "runai-adm remove node-role --dynamic-mig-enabled node-1")
project_app = add_group(app, "project", "Create, list and delete projects.",
                        "runai-adm project create team-a --deserved-gpus 2")
local_app = add_group(app, "local", "The embedded controller on this machine.", "runai-adm local status")

DynamicMigOpt = Annotated[bool, typer.Option("--dynamic-mig-enabled", help="The dynamic-MIG role: runai-lite "
                                             "creates and deletes MIG partitions on the node's GPUs on demand.")]
NodeArg = Annotated[str, typer.Argument(help="Node name (the embedded node is named after this host).")]


def _role(ctx: typer.Context, dynamic_mig: bool, node: str, enabled: bool) -> None:
    verb = "set" if enabled else "remove"
    if not dynamic_mig:
        raise UserError("name the role", f"runai-adm {verb} node-role --dynamic-mig-enabled {node}")
    session(ctx).backend.set_dynamic_mig(node, enabled)
    if enabled:
        typer.echo(f"Node {node} is now dynamic-MIG enabled: MIG partitions are created on demand")
    else:
        typer.echo(f"Node {node} is no longer dynamic-MIG enabled")


@set_app.command("node-role", help="Give a node a role." + example("runai-adm set node-role --dynamic-mig-enabled node-1"))
def set_node_role(ctx: typer.Context, node: NodeArg, dynamic_mig: DynamicMigOpt = False) -> None:
    _role(ctx, dynamic_mig, node, True)


@remove_app.command("node-role", help="Take a role from a node (refused while MIG jobs run on it)."
                    + example("runai-adm remove node-role --dynamic-mig-enabled node-1"))
def remove_node_role(ctx: typer.Context, node: NodeArg, dynamic_mig: DynamicMigOpt = False) -> None:
    _role(ctx, dynamic_mig, node, False)


@set_app.command("node-type", help="Give a node Run:ai's node type (node label run.ai/type): jobs submitted with "
                  "[bold]--node-type TYPE[/bold] run only on nodes of that type."
                  + example("runai-adm set node-type node-1 dgx"))
def set_node_type(ctx: typer.Context, node: NodeArg,
                  node_type: Annotated[str, typer.Argument(metavar="TYPE", help="The type, a label value: dgx, "
                                                           "a100-pool.")]) -> None:
    from ..model import label_value_problem

    problem = label_value_problem(node_type) or ("it is empty" if not node_type else None)
    if problem:
        raise UserError(f"invalid node type {node_type!r}: {problem}", f"e.g. runai-adm set node-type {node} dgx")
    session(ctx).backend.set_node_type(node, node_type)
    typer.echo(f"Node {node} now has node type {node_type}")


@remove_app.command("node-type", help="Take a node's type away (jobs already running there keep running)."
                    + example("runai-adm remove node-type node-1"))
def remove_node_type(ctx: typer.Context, node: NodeArg) -> None:
    session(ctx).backend.set_node_type(node, None)
    typer.echo(f"Node {node} no longer has a node type")


# --------------------------------------------------------------------------------------------
# projects


@project_app.command("create", help="Create a project with a deserved (guaranteed) GPU quota."
                     + example("runai-adm project create team-a --deserved-gpus 2"))
def project_create(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Project name.")],
                   deserved_gpus: Annotated[float, typer.Option("--deserved-gpus", min=0,
                                                                help="GPUs guaranteed to the project.")] = 0) -> None:
    check_name("project name", name, "team-a")
    project = session(ctx).backend.create_project(name, deserved_gpus)
    plural = "" if project.deserved_gpus == 1 else "s"
    typer.echo(f"Project {project.name} created with {project.deserved_gpus:g} deserved GPU{plural}")


@project_app.command("list", help="List projects." + example("runai-adm project list -o json"))
def project_list(ctx: typer.Context,
                 output: Annotated[DataOutput, typer.Option("--output", "-o", help="Output format.")] = DataOutput.TABLE) -> None:
    show_projects(ctx, output)


@project_app.command("delete", help="Delete a project." + example("runai-adm project delete team-a"))
def project_delete(ctx: typer.Context,
                   name: Annotated[str, typer.Argument(metavar="PROJECT", help="Project name.")]) -> None:
    session(ctx).backend.delete_project(name)
    typer.echo(f"Project {name} deleted")


# --------------------------------------------------------------------------------------------
# the embedded controller


SystemOpt = Annotated[bool, typer.Option("--system", help="The machine-wide daemon shared by every user "
                                          "(run as root; state in /var/lib/runai-lite, socket in /run/runai-lite).")]


def _status_text(status) -> str:
    state = f"running (pid {status.pid})" if status.running else "stopped"
    gpus = f"simulated {status.simulated}" if status.simulated else "this machine's GPUs through NVML"
    mechanism = f" (on this machine: {status.mechanism})" if status.mechanism else ""
    lines = [
        f"Daemon:      {state}",
        f"Mode:        {'system (shared by every user)' if status.socket else 'personal'}",
        f"Home:        {status.home}",
    ]
    if status.socket:
        lines.append(f"Socket:      {status.socket}")
    return "\n".join([
        *lines,
        f"Node:        {status.node or '-'}",
        f"GPUs:        {gpus}",
        f"Enforcement: {status.enforcement}{mechanism}",
        *([f"Processes:   {status.process_tracking_reason}"] if status.process_tracking_reason else []),
        *([f"Devices:     {status.device_confinement}"] if status.device_confinement else []),
        *(f"Left alone:  {why}" for why in (status.foreign_gpus or {}).values()),
    ])


@local_app.command("init", help=(
    "Set up the embedded controller and (re)start it: a simulated GPU inventory (for machines without "
    "GPUs, or to try things out), or the machine's real GPUs through NVML when --simulate is left out. "
    "With --system (as root), the machine-wide daemon every user's `runai` talks to."
    + example("sudo runai-adm local init --system --simulate A100-SXM4-40GB:1")))
def local_init(
    simulate: Annotated[str | None, typer.Option("--simulate", metavar="MODEL:COUNT[,...]",
                                                 help="e.g. A100-SXM4-40GB:1 or H100-SXM5-80GB:2,T4:4. A MIG-capable "
                                                 "GPU starts with MIG mode off and is switched on when its node is made "
                                                 "dynamic-MIG; add :mig-on (already on) or :mig-off (never switched).")] = None,
    enforcement: Annotated[str, typer.Option("--enforcement", help="How fraction memory limits are enforced: "
                                             "auto, hami-core, mps, framework or none.")] = "auto",
    grace_seconds: Annotated[float | None, typer.Option("--grace-seconds", help="How long a stopped job gets "
                                                        "between SIGTERM and SIGKILL.")] = None,
    node_cpus: Annotated[str | None, typer.Option("--node-cpus", metavar="CORES", help="CPU cores the scheduler may "
                                                  "hand out here (default: this machine's).")] = None,
    node_memory: Annotated[str | None, typer.Option("--node-memory", metavar="SIZE", help="Host memory the scheduler "
                                                    "may hand out here, e.g. 64Gi (default: this machine's).")] = None,
    metrics_address: Annotated[str | None, typer.Option("--metrics-address", metavar="[HOST:]PORT", help=(
        "Also serve the daemon's metrics (and /healthz, /readyz) over HTTP here, e.g. 127.0.0.1:9400; "
        "'' stops serving them. Default: as before (none)."))] = None,
    retry_backoff: Annotated[float | None, typer.Option("--retry-backoff", metavar="SECONDS", help="How long a "
                                                        "failed job waits for its first retry; each next wait "
                                                        "doubles (default 10).")] = None,
    retry_backoff_max: Annotated[float | None, typer.Option("--retry-backoff-max", metavar="SECONDS", help="The "
                                                            "longest wait between retries (default 360).")] = None,
    system: SystemOpt = False,
) -> None:
    from ..backends.local.control import local_init as init
    from ..submission.values import parse_cpu, parse_memory

    capacity = (parse_cpu("--node-cpus", node_cpus) if node_cpus is not None else None,
                parse_memory("--node-memory", node_memory) if node_memory is not None else None)
    typer.echo(_status_text(init(simulate=simulate, enforcement=enforcement, grace_seconds=grace_seconds,
                                 system=system, capacity=capacity, metrics_address=metrics_address,
                                 retry_backoff=(retry_backoff, retry_backoff_max))))


@local_app.command("start", help="Start the embedded controller daemon (commands also start a personal one "
                   "when needed)." + example("runai-adm local start"))
def local_start(system: SystemOpt = False) -> None:
    from ..backends.local.control import daemon_start

    typer.echo(_status_text(daemon_start(system=system)))


@local_app.command("stop", help="Stop the embedded controller daemon; running jobs keep running and the next "
                   "daemon adopts them." + example("runai-adm local stop"))
def local_stop(system: SystemOpt = False) -> None:
    from ..backends.local.control import daemon_stop

    typer.echo("Daemon stopped" if daemon_stop(system=system) else "Daemon was not running")


@local_app.command("status", help="Show whether the embedded controller runs, and with which GPUs."
                   + example("runai-adm local status -o json"))
def local_status(output: Annotated[DataOutput, typer.Option("--output", "-o", help="Output format.")]
                 = DataOutput.TABLE, system: SystemOpt = False) -> None:
    from ..backends.local.control import daemon_status

    status = daemon_status(system=system)
    if output is not DataOutput.TABLE:
        emit_data(status.to_json(), output.value)
        return
    typer.echo(_status_text(status))


@local_app.command("metrics", help=(
    "Print the embedded controller's Prometheus metrics: GPUs allocated and their capacity, MIG instances, "
    "pending jobs by reason, preemptions, MIG operations, scheduling pass times."
    + example("runai-adm local metrics | grep runai_lite_gpus_allocated")))
def local_metrics(system: SystemOpt = False) -> None:
    from ..backends.local.control import daemon_metrics

    typer.echo(daemon_metrics(system=system), nl=False)


@local_app.command("repair", help=(
    "Rebuild a damaged state database: the daemon is stopped, the damaged files are kept as a backup, and "
    "every row that can still be read goes into a fresh database." + example("runai-adm local repair")))
def local_repair(system: SystemOpt = False) -> None:
    from ..backends.local.repair import repair_home

    typer.echo(repair_home(system=system).text())


@local_app.command("install-service", help=(
    "Install the machine-wide daemon as a systemd service (as root), or print the unit with --print."
    + example("sudo runai-adm local install-service && sudo systemctl enable --now runai-lite")))
def local_install_service(
    print_: Annotated[bool, typer.Option("--print", help="Print the unit instead of writing it.")] = False,
    simulate: Annotated[str | None, typer.Option("--simulate", help="A simulated inventory for the service "
                                                 "(default: the machine's GPUs through NVML).")] = None,
    enforcement: Annotated[str, typer.Option("--enforcement", help="How fraction memory limits are enforced: "
                                             "auto, hami-core, mps, framework or none.")] = "auto",
) -> None:
    import sys

    from ..backends.local.service_unit import UNIT_PATH, install_unit, package_root, unit_text

    if print_:
        typer.echo(unit_text(sys.executable, package_root()), nl=False)
        return
    path = install_unit(simulate, enforcement)
    typer.echo(f"Wrote {path}. Start it now and at every boot with: systemctl daemon-reload && "
               f"systemctl enable --now {UNIT_PATH.stem}")


# --------------------------------------------------------------------------------------------
# Kubernetes


@app.command("install", help="Print the Kubernetes manifests that install runai-lite (apply them with kubectl), "
             "as the Helm chart in deploy/runai-lite renders them. [bold]--set[/bold] takes the chart's values "
             "(image.repository, image.tag, controller.replicas, agent.driver, metrics.port, ...; dotted paths, "
             "values read as YAML)." + example("runai-adm install --print -n runai-lite --set image.tag=0.1.0 "
                                                "| kubectl apply -f -"))
def install(print_: Annotated[bool, typer.Option("--print", help="Print the manifests as YAML.")] = False,
            values: Annotated[list[str] | None, typer.Option("--set", metavar="PATH=VALUE",
                                                             help="A chart value (repeatable).")] = None,
            namespace: Annotated[str, typer.Option("--namespace", "-n", metavar="NAMESPACE",
                                                   help="The namespace to install into (created first).")]
            = "runai-lite",
            name: Annotated[str, typer.Option("--name", metavar="RELEASE", help="The release name that objects "
                                              "are named after, as `helm install RELEASE`.")] = "runai-lite") -> None:
    from pydantic import ValidationError

    from ..model import dns1123_problem

    if not print_:
        raise UserError("runai-adm install only prints manifests", "runai-adm install --print | kubectl apply -f -")
    for label, text in (("namespace", namespace), ("release name", name)):
        problem = dns1123_problem(text)
        if problem:
            raise UserError(f"invalid {label} {text!r}: {problem}", "use lower-case letters, digits and '-'")
    import yaml

    settings: dict = {}
    for pair in values or ():
        path, sep, value = pair.partition("=")
        keys = path.split(".")
        if not sep or not all(keys):
            raise UserError(f"invalid --set {pair!r}", "use --set PATH=VALUE, e.g. --set image.tag=0.1.0")
        where = settings
        for key in keys[:-1]:
            where = where.setdefault(key, {})
            if not isinstance(where, dict):
                raise UserError(f"invalid --set {pair!r}: {key} is set to a value already", "set each path once")
        try:
            where[keys[-1]] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            where[keys[-1]] = value
    from ..backends.kube import install_manifests_yaml
    from ..backends.kube.install import InstallValues, Release

    try:
        chosen = InstallValues.merged(settings)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where_text = ".".join(str(p) for p in problem["loc"])
        raise UserError(f"invalid --set {where_text}: {problem['msg']}",
                        "the values are those of deploy/runai-lite/values.yaml") from None
    typer.echo(install_manifests_yaml(chosen, Release(name=name, namespace=namespace)), nl=False)


@app.command(help="Print the shell completion script for runai-adm (bash, zsh or fish)."
                  + example("source <(runai-adm completion bash)"))
def completion(shell: Annotated[str, typer.Argument(help="bash, zsh or fish.")]) -> None:
    import sys

    from .completion import script_for

    sys.stdout.write(script_for(app, "runai-adm", shell))


def main() -> None:
    run(app, "runai-adm")


if __name__ == "__main__":
    main()
