"""`runai` against an in-memory backend: what is submitted, what is printed, and how mistakes end."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from runai_lite.cli.config import CliConfig, load_config
from runai_lite.cli.runai import app
from runai_lite.cli.session import CliSession
from runai_lite.model import JobType
from tests.cli import records
from tests.cli.fake_backend import FakeBackend

runner = CliRunner()


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNAI_LITE_HOME", str(tmp_path / "home"))


def invoke(backend: FakeBackend, *args: str, project: str | None = "team-a"):
    return runner.invoke(app, list(args), obj=CliSession(backend=backend, config=CliConfig(project=project)))


# --------------------------------------------------------------------------------------------
# submit


def test_submit_mig_memory_request_builds_the_spec_and_prints_run_ai_message():
    backend = FakeBackend()
    result = invoke(backend, "submit", "mig1", "-i", "gcr.io/run-ai-demo/quickstart-cuda", "--gpu-memory", "10GB",
                    "--", "sleep", "600")
    assert result.exit_code == 0, result.output
    (spec,) = backend.submitted
    assert (spec.name, spec.project, spec.type) == ("mig1", "team-a", JobType.TRAIN)
    assert spec.request.memory_bytes == 10 * 10**9
    assert spec.command == ("sleep", "600")
    assert spec.backoff_limit == 6 and spec.user == "alice"
    assert "The job 'mig1' has been submitted successfully" in result.stdout
    assert "runai describe job mig1 -p team-a" in result.stdout


def test_submit_flags_reach_the_spec():
    backend = FakeBackend()
    result = invoke(backend, "submit", "j", "-i", "img", "--mig-profile", "2g.10gb", "--interactive", "--preemptible",
                    "-e", "A=1", "-e", "B=x=y", "--working-dir", "/tmp", "--", "python", "-c", "print(1)")
    assert result.exit_code == 0, result.output
    (spec,) = backend.submitted
    assert spec.type is JobType.INTERACTIVE_PREEMPTIBLE
    assert spec.request.mig_profile == "2g.10gb"
    assert spec.env == (("A", "1"), ("B", "x=y"))
    assert spec.working_dir == "/tmp"
    assert spec.command == ("python", "-c", "print(1)") and not spec.replace_entrypoint
    assert spec.backoff_limit == 0  # interactive jobs are not retried


def test_submit_command_flag_replaces_the_entrypoint():
    backend = FakeBackend()
    assert invoke(backend, "submit", "j", "-i", "img", "--command", "--", "python", "train.py").exit_code == 0
    assert backend.submitted[0].replace_entrypoint and backend.submitted[0].command == ("python", "train.py")


def test_submit_fraction_and_whole_gpus_and_backoff_limit():
    backend = FakeBackend()
    assert invoke(backend, "submit", "a", "-i", "img", "--gpu", "0.25", "--backoff-limit", "2").exit_code == 0
    assert invoke(backend, "submit", "b", "-i", "img", "-g", "2", "-p", "team-a").exit_code == 0
    a, b = backend.submitted
    assert a.request.fraction == 0.25 and a.backoff_limit == 2
    assert b.request.gpus == 2 and b.request.fraction is None


def test_name_is_generated_from_the_prefix():
    backend = FakeBackend()
    for _ in range(2):
        assert invoke(backend, "submit", "--name-prefix", "exp", "-i", "img", "--", "true").exit_code == 0
    assert invoke(backend, "submit", "-i", "img", "--", "sleep", "1").exit_code == 0
    assert [s.name for s in backend.submitted] == ["exp-1", "exp-2", "job-1"]
    assert backend.submitted[2].command == ("sleep", "1")  # `sleep` after -- is not taken as the name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "x", "-i", "img", "--gpu", "0.5", "--gpu-memory", "4G"], "cannot be used together"),
        (["submit", "x", "-i", "img", "--gpu-memory", "lots"], "invalid size"),
        (["submit", "x", "-i", "img", "--gpu", "1.5"], "whole number"),
        (["submit", "x", "-i", "img", "--mig-profile", "9g.99gb"], "unknown MIG profile"),
        (["submit", "Bad_Name", "-i", "img"], "invalid job name"),
        (["submit", "x", "-i", "img", "-e", "NOEQUALS"], "invalid -e"),
        (["submit", "x", "-i", "img", "--interactive", "--backoff-limit", "3"], "training jobs only"),
        (["submit", "x", "-i", "img", "--command"], "--command needs the command"),
        (["submit", "x", "-i", "img", "-p", "nope"], "project nope was not found"),
        (["submit", "x", "-i", "img", "--name-prefix", "p"], "not both"),
        (["submit", "x", "-i", " ", "--", "true"], "--image must be set"),
        (["submit", "x", "-i", "img", "-p", "Team_A", "--", "true"], "invalid project name"),
    ],
)
def test_submit_mistakes_exit_2_with_a_message_and_submit_nothing(args, message):
    backend = FakeBackend()
    result = invoke(backend, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert backend.submitted == []


def test_missing_image_is_a_usage_error():
    backend = FakeBackend()
    result = invoke(backend, "submit", "x", "--gpu", "1")
    assert result.exit_code == 2
    assert "--image" in result.stderr
    assert backend.submitted == []


def test_no_default_project_says_how_to_set_one():
    backend = FakeBackend()
    result = invoke(backend, "submit", "x", "-i", "img", project=None)
    assert result.exit_code == 2
    assert "runai config project" in result.stderr
    assert backend.submitted == []


# --------------------------------------------------------------------------------------------
# list, describe


def test_list_table_has_run_ai_columns_and_rows_of_the_project():
    result = invoke(FakeBackend(jobs=records.jobs()), "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Showing jobs for project team-a"
    header = lines[1].split("  ")
    assert [h.strip() for h in header if h.strip()] == [
        "NAME", "STATUS", "AGE", "NODE", "IMAGE", "TYPE", "PROJECT", "USER", "GPUs Allocated (Requested)"]
    assert "frac1" not in result.stdout  # other project
    mig1 = next(line for line in lines if line.startswith("mig1"))
    assert mig1.split()[:2] == ["mig1", "Running"]
    assert "2g.10gb (2g.10gb)" in mig1
    big = next(line for line in lines if line.startswith("big"))
    assert "Interactive-Preemptible" in big and "- (30GB)" in big


def test_list_all_projects_wide_shows_allocation_and_enforcement():
    result = invoke(FakeBackend(jobs=records.jobs()), "list", "jobs", "-A", "-o", "wide")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Showing jobs for all projects")
    frac = next(line for line in result.stdout.splitlines() if line.startswith("frac1"))
    assert "0.25 (0.25)" in frac and "0.25 of GPU 1, 3.75GiB" in frac and "hami-core (3840 MiB)" in frac
    assert "no GPU has 30GB free" in result.stdout


def test_list_minus_a_before_the_subcommand_is_kept():
    result = invoke(FakeBackend(jobs=records.jobs()), "list", "-A", "jobs")
    assert "frac1" in result.stdout


def test_list_json_shape():
    result = invoke(FakeBackend(jobs=records.jobs()), "list", "-A", "-o", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    by_name = {j["name"]: j for j in data}
    assert set(by_name) == {"mig1", "mig2", "frac1", "big"}
    mig1 = by_name["mig1"]
    for key in ("name", "project", "type", "status", "node", "gpus_requested", "gpus_allocated", "allocation"):
        assert key in mig1
    assert (mig1["type"], mig1["status"], mig1["node"]) == ("Train", "Running", "host-1")
    assert mig1["allocation"] == {
        "kind": "mig", "node": "host-1", "gpu_index": 0, "gpu_indices": [0], "gpu_uuid": "GPU-aaaa", "share": 0.286,
        "memory_mib": 9856, "mig_profile": "2g.10gb", "mig_uuid": "MIG-mig1", "mig_placement": {"start": 0, "size": 2}}
    assert by_name["big"]["allocation"] is None and by_name["big"]["type"] == "Interactive-Preemptible"
    assert by_name["frac1"]["allocation"]["kind"] == "fraction" and by_name["frac1"]["allocation"]["share"] == 0.25


def test_list_yaml_is_the_same_data():
    backend = FakeBackend(jobs=records.jobs())
    as_json = json.loads(invoke(backend, "list", "-o", "json").stdout)
    assert yaml.safe_load(invoke(backend, "list", "-o", "yaml").stdout) == as_json


def test_list_empty_and_bad_output_format():
    assert "No jobs found." in invoke(FakeBackend(), "list").stdout
    result = invoke(FakeBackend(), "list", "-p", "team-z")
    assert result.exit_code == 2 and "project team-z was not found" in result.stderr
    result = invoke(FakeBackend(), "list", "-o", "xml")
    assert result.exit_code == 2 and "xml" in result.stderr


def test_describe_shows_allocation_enforcement_and_events():
    backend = FakeBackend(jobs=[*records.jobs()])
    result = invoke(backend, "describe", "job", "mig1")
    assert result.exit_code == 0, result.output
    text = result.stdout
    fields = dict(line.split(":", 1) for line in text.split("\n\nEvents:")[0].splitlines())
    assert fields["NAME"].strip() == "mig1" and fields["STATUS"].strip() == "Running"
    assert fields["ALLOCATION"].strip() == "MIG 2g.10gb on GPU 0 at slices 0-1"
    assert "MIG-mig1" in text and "SIMULATED" in text
    assert text.index("Submitted") < text.index("PartitionCreated") < text.index("Bound")
    frac = invoke(backend, "describe", "job", "frac1", "-p", "team-b").stdout
    assert "hami-core" in frac and "3840 MiB" in frac
    pending = invoke(backend, "describe", "job", "big").stdout
    assert "no GPU has 30GB free" in pending
    assert next(line for line in pending.splitlines() if line.startswith("RUNNING FOR:")).split()[-1] == "-"


def test_describe_json_adds_events():
    result = invoke(FakeBackend(jobs=records.jobs()), "describe", "job", "mig1", "-o", "json")
    data = json.loads(result.stdout)
    assert data["allocation"]["mig_profile"] == "2g.10gb"
    assert [e["kind"] for e in data["events"]] == ["Submitted", "PartitionCreated", "Bound"]


def test_describe_unknown_job_is_exit_2():
    result = invoke(FakeBackend(), "describe", "job", "ghost")
    assert result.exit_code == 2
    assert "ghost was not found" in result.stderr and "Traceback" not in result.output


# --------------------------------------------------------------------------------------------
# logs, exec, delete


def test_logs_with_tail():
    backend = FakeBackend(jobs=records.jobs(), logs={"mig1": ["one\n", "two\n", "three"]})
    result = invoke(backend, "logs", "mig1", "--tail", "2")
    assert result.stdout == "two\nthree\n"
    assert invoke(backend, "logs", "mig1", "-f").exit_code == 0
    assert backend.log_calls == [("team-a", "mig1", False, 2), ("team-a", "mig1", True, None)]
    assert invoke(backend, "logs", "ghost").exit_code == 2


def test_exec_passes_argv_and_returns_its_exit_code():
    backend = FakeBackend(jobs=records.jobs())
    result = invoke(backend, "exec", "mig1", "--", "nvidia-smi", "-L")
    assert result.exit_code == 3
    assert backend.exec_calls == [("team-a", "mig1", ["nvidia-smi", "-L"], False, False)]
    invoke(backend, "exec", "-p", "team-a", "mig1", "ls", "-la")
    assert backend.exec_calls[-1][2] == ["ls", "-la"]  # options after the name belong to the command


@pytest.mark.parametrize(("args", "tty", "stdin"), [
    (["exec", "mig1", "-it", "--", "bash"], True, True),
    (["exec", "-it", "mig1", "--", "bash"], True, True),
    (["exec", "-it", "mig1", "bash"], True, True),
    (["exec", "mig1", "-ti", "-p", "team-b", "--", "bash"], True, True),
    (["exec", "-p", "team-b", "mig1", "--stdin", "--tty", "--", "bash"], True, True),
    (["exec", "mig1", "-t", "--", "bash"], True, False),
    (["exec", "mig1", "-i", "--", "bash"], False, True),
    (["exec", "mig1", "--", "bash"], False, False),
    (["bash", "mig1"], True, True),
    (["bash", "-p", "team-b", "mig1"], True, True),
    (["bash", "mig1", "-p", "team-b"], True, True),
])
def test_exec_and_bash_read_their_flags_anywhere_before_the_double_dash(args, tty, stdin):
    backend = FakeBackend(projects=records.projects(),
                          jobs=records.jobs() + [records.mig_job("mig1", 0).model_copy(update={"project": "team-b"})])
    result = invoke(backend, *args)
    assert result.exit_code == 3, result.output
    project = "team-b" if "team-b" in args else "team-a"
    assert backend.exec_calls == [(project, "mig1", ["bash"], tty, stdin)]


@pytest.mark.parametrize(("args", "message"), [
    (["exec", "mig1"], "no command given"),
    (["exec", "mig1", "--"], "no command given"),
    (["exec", "mig1", "ls", "--", "-la"], "unexpected 'ls' before --"),
    (["exec", "mig1", "-x", "--", "ls"], "No such option"),
    (["exec", "-it", "--", "ls"], "Missing argument"),
])
def test_exec_mistakes_exit_2_and_run_nothing(args, message):
    backend = FakeBackend(jobs=records.jobs())
    result = invoke(backend, *args)
    assert result.exit_code == 2 and message in result.output and backend.exec_calls == []


def test_delete_named_all_and_mistakes():
    backend = FakeBackend(jobs=records.jobs())
    result = invoke(backend, "delete", "job", "mig1")
    assert result.exit_code == 0 and "The job 'mig1' has been deleted" in result.stdout
    assert invoke(backend, "delete", "job").exit_code == 2
    assert invoke(backend, "delete", "job", "mig2", "--all").exit_code == 2
    assert invoke(backend, "delete", "job", "ghost").exit_code == 2
    result = invoke(backend, "delete", "job", "--all")
    assert result.exit_code == 0
    assert backend.deleted == [("team-a", "mig1"), ("team-a", "mig2"), ("team-a", "big")]


# --------------------------------------------------------------------------------------------
# config, projects, nodes


def test_config_project_is_checked_and_stored_0600(tmp_path):
    backend = FakeBackend(projects=records.projects())
    result = runner.invoke(app, ["config", "project", "team-b"], obj=CliSession(backend=backend))
    assert result.exit_code == 0, result.output
    assert "Project team-b has been set as default project" in result.stdout
    path = tmp_path / "home" / "cli.json"
    assert load_config(path).project == "team-b"
    assert path.stat().st_mode & 0o777 == 0o600
    result = runner.invoke(app, ["config", "project", "nope"], obj=CliSession(backend=backend))
    assert result.exit_code == 2 and "runai list projects" in result.stderr
    assert load_config(path).project == "team-b"


def test_config_cluster_local_and_unknown_context(tmp_path, monkeypatch):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({"contexts": [{"name": "prod", "context": {}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    path = tmp_path / "home" / "cli.json"
    assert runner.invoke(app, ["config", "cluster", "prod"]).exit_code == 0
    assert load_config(path).cluster == "prod"
    result = runner.invoke(app, ["config", "cluster", "staging"])
    assert result.exit_code == 2 and "prod" in result.stderr
    assert runner.invoke(app, ["config", "cluster", "local"]).exit_code == 0
    assert load_config(path).is_local


def test_a_cli_yaml_of_earlier_releases_becomes_cli_json(tmp_path):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "cli.yaml").write_text("cluster: prod\nproject: team-b\n")
    assert load_config(home / "cli.json") == CliConfig(project="team-b", cluster="prod")
    assert json.loads((home / "cli.json").read_text()) == {"cluster": "prod", "project": "team-b"}
    assert (home / "cli.json").stat().st_mode & 0o777 == 0o600 and not (home / "cli.yaml").exists()
    (home / "cli.json").write_text("{not json")
    result = runner.invoke(app, ["list", "projects"])
    assert result.exit_code == 2 and "cli.json are not valid JSON" in result.stderr


def test_list_projects_marks_the_default():
    result = invoke(FakeBackend(projects=records.projects()), "list", "projects")
    assert "team-a (default)" in result.stdout
    data = json.loads(invoke(FakeBackend(projects=records.projects()), "list", "projects", "-o", "json").stdout)
    assert data[0] == {"name": "team-a", "deserved_gpus": 2.0, "allocated_gpus": 0.571, "running": 2, "pending": 1}


def test_list_nodes():
    result = invoke(FakeBackend(nodes=records.nodes()), "list", "nodes")
    row = next(line for line in result.stdout.splitlines() if line.startswith("host-1"))
    assert "A100-SXM4-40GB,T4" in row and "dynamic on GPU 0" in row and "simulated" in row
    assert row.split()[3] == "0"  # both GPUs run something


def test_top_node_json_shape():
    data = json.loads(invoke(FakeBackend(nodes=records.nodes()), "top", "node", "-o", "json").stdout)
    (node,) = data
    assert node["name"] == "host-1"
    a100, t4 = node["gpus"]
    for key in ("index", "uuid", "model", "memory_mib", "simulated", "dynamic_mig", "mig_instances", "fractions"):
        assert key in a100
    assert a100["mig_instances"][2] == {"profile": "2g.10gb", "placement": {"start": 4, "size": 2},
                                        "uuid": "MIG-idle", "state": "idle", "job": None}
    assert t4["fractions"] == [{"job": "team-b/frac1", "share": 0.25}]


def test_top_node_draws_partitions_idle_free_and_shares():
    result = invoke(FakeBackend(nodes=records.nodes()), "top", "node")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "[simulated]" in text and "dynamic MIG" in text
    bar = [line for line in text.splitlines() if line.lstrip().startswith("│2g.10gb")]
    assert bar and bar[0].count("2g.10gb") == 3 and "free" in bar[0]
    jobs_line = next(line for line in text.splitlines() if "team-a/mig1" in line and "│" in line)
    assert "team-a/mig2" in jobs_line and "idle" in jobs_line
    assert "MIG DEVICE" in text and "9856 MiB" in text  # the device table
    share_bar = next(line for line in text.splitlines() if "team-b/frac1" in line and "│" in line)
    assert "free" in share_bar


def test_backend_failures_exit_1_with_message():
    from runai_lite.errors import OperationalError

    class Broken(FakeBackend):
        def list_jobs(self, project):
            raise OperationalError("the daemon did not answer", "see daemon.log")

    result = invoke(Broken(), "list")
    assert result.exit_code == 1
    assert "the daemon did not answer" in result.stderr and "daemon.log" in result.stderr
    assert "Traceback" not in result.output


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


@pytest.mark.parametrize("prog", ["runai", "runai-adm"])
def test_every_command_has_help_with_an_example(prog):
    import typer

    from runai_lite.cli import runai_adm

    root = typer.main.get_command(app if prog == "runai" else runai_adm.app)
    for path, command in _commands(root):
        if command.hidden:
            continue
        assert "Example:" in (command.help or ""), f"{prog} {' '.join(path)} has no example in its help"
        result = runner.invoke(app if prog == "runai" else runai_adm.app, [*path, "--help"])
        assert result.exit_code == 0 and "Example:" in result.stdout, (path, result.output)


# --------------------------------------------------------------------------------------------
# whoami, list job, describe node


def test_whoami_prints_the_user_the_backend_acts_for():
    result = invoke(FakeBackend(), "whoami")
    assert result.exit_code == 0 and result.stdout == "alice\n"


def test_list_job_is_an_alias_of_list_jobs():
    backend = FakeBackend(jobs=records.jobs())
    assert invoke(backend, "list", "job", "-o", "json").stdout == invoke(backend, "list", "jobs", "-o", "json").stdout


def test_describe_node_table_json_and_unknown():
    backend = FakeBackend(jobs=records.jobs(), nodes=records.nodes())
    shown = invoke(backend, "describe", "node", "host-1")
    assert shown.exit_code == 0
    assert "NAME:       host-1" in shown.stdout and "GPUs:       2 (0 free)" in shown.stdout
    assert "team-b/frac1" in shown.stdout and "A100-SXM4-40GB, T4" in shown.stdout
    data = json.loads(invoke(backend, "describe", "node", "host-1", "-o", "json").stdout)
    assert data == records.nodes()[0].to_json()
    missing = invoke(backend, "describe", "node", "nowhere")
    assert missing.exit_code == 2 and "node nowhere was not found" in missing.output and "host-1" in missing.output
