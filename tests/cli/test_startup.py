"""CLI start-up stays light: `runai --help`, `runai list` and `runai submit` to a running daemon import
neither kubernetes, pynvml, rich nor pydantic: help pages are laid out without rich, `list`'s table is plain text of rows read as
plain values, and option values are coerced without Typer's pydantic adapters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("kubernetes", "pynvml", "rich", "pydantic")

# Runs a CLI entry point in-process and reports, as the process exits (the CLI ends it without the
# interpreter's teardown, `atexit` functions run), which heavy modules it loaded.
PROBE = """
import atexit, json, sys
from runai_lite.cli.{module} import main
sys.argv = [{prog!r}, *{args!r}]
atexit.register(lambda: print("\\n" + json.dumps(sorted({{name.split('.')[0] for name in sys.modules}} & set({heavy!r})))))
main()
"""


def probe(home: Path, module: str, prog: str, *args: str) -> dict:
    env = {**os.environ, "RUNAI_LITE_HOME": str(home), "PYTHONPATH": str(REPO)}
    script = PROBE.format(module=module, prog=prog, args=list(args), heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    return {"code": done.returncode, "loaded": json.loads(done.stdout.strip().splitlines()[-1])}


@pytest.mark.parametrize(("module", "prog", "args"), [
    ("runai", "runai", ["--help"]),
    ("runai", "runai", ["submit", "--help"]),
    ("runai_adm", "runai-adm", ["--help"]),
    ("runai", "runai", ["config", "cluster", "local"]),
])
def test_help_and_config_load_no_kubernetes_nvml_rich_or_pydantic(tmp_path, module, prog, args):
    # Help pages are drawn without rich (help_page.py), values coerced without pydantic (param_values.py).
    assert probe(tmp_path, module, prog, *args) == {"code": 0, "loaded": []}


@pytest.mark.e2e
def test_list_on_the_embedded_default_loads_neither(tmp_path):
    home = tmp_path / "home"
    assert probe(home, "runai_adm", "runai-adm", "local", "init", "--simulate", "A100-SXM4-40GB:1")["code"] == 0
    try:
        probe(home, "runai_adm", "runai-adm", "project", "create", "team-a", "--deserved-gpus", "1")
        # The first submission starts the daemon; the second is handed to it as plain JSON over the
        # home's socket, the flags checked there.
        submitted = [probe(home, "runai", "runai", "submit", name, "-p", "team-a", "-i", "busybox", "--gpu", "0.5",
                           "--", "sleep", "60") for name in ("first", "second")]
        assert [s["code"] for s in submitted] == [0, 0] and submitted[1]["loaded"] == []
        refused = probe(home, "runai", "runai", "submit", "third", "-p", "team-a", "-i", "busybox", "--gpu", "half")
        assert refused == {"code": 2, "loaded": []}
        result = probe(home, "runai", "runai", "list", "-p", "team-a")
        assert result == {"code": 0, "loaded": []}
        assert probe(home, "runai", "runai", "list", "-p", "team-a", "-o", "wide")["code"] == 0
    finally:
        probe(home, "runai_adm", "runai-adm", "local", "stop")


def loaded_by(code: str, home: Path, *watched: str) -> list[str]:
    """Which of `watched` (modules, dotted or not) are in sys.modules after running `code`."""
    env = {**os.environ, "RUNAI_LITE_HOME": str(home), "PYTHONPATH": str(REPO)}
    script = f"{code}\nimport sys, json\nprint(json.dumps(sorted(m for m in {list(watched)!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_yaml_kubernetes_pydantic_or_rich_tables(tmp_path):
    # Each costs more CPU than the rest of the CLI's start-up: only the commands that need them load them.
    assert loaded_by("import runai_lite.cli.runai", tmp_path, "yaml", "kubernetes", "pydantic", "rich.table") == []


def test_reading_the_settings_needs_no_yaml_parser(tmp_path):
    (tmp_path / "cli.json").write_text('{"project": "team-a", "cluster": "local"}')
    code = "from runai_lite.cli.config import load_config; assert load_config().project == 'team-a'"
    assert loaded_by(code, tmp_path, "yaml") == []


def console(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The `runai` console script's entry, as the completion scripts run it."""
    env = {**os.environ, "RUNAI_LITE_HOME": str(home), "PYTHONPATH": str(REPO)}
    code = "import sys; from runai_lite.cli.console import runai; sys.argv[0] = 'runai'; runai()"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.e2e
def test_tab_completion_of_names_skips_typer_and_says_what_the_full_command_says(tmp_path):
    home = tmp_path / "home"
    assert probe(home, "runai_adm", "runai-adm", "local", "init", "--simulate", "T4:1")["code"] == 0
    try:
        for project in ("team-a", "team-b"):
            probe(home, "runai_adm", "runai-adm", "project", "create", project, "--deserved-gpus", "1")
        for name in ("first", "second", "gone"):
            probe(home, "runai", "runai", "submit", name, "-p", "team-a", "-i", "busybox", "--", "sleep", "60")
        probe(home, "runai", "runai", "delete", "job", "gone", "-p", "team-a")
        probe(home, "runai", "runai", "config", "project", "team-b")
        for args in (["jobs", "-p", "team-a"], ["jobs", "--project=team-a"], ["jobs"], ["projects"]):
            fast = console(home, "completion-names", *args)
            full = subprocess.run([sys.executable, "-m", "runai_lite.cli.runai", "completion-names", *args],
                                  env={**os.environ, "RUNAI_LITE_HOME": str(home), "PYTHONPATH": str(REPO)},
                                  capture_output=True, text=True, timeout=120)
            assert (fast.returncode, fast.stdout, fast.stderr) == (0, full.stdout, ""), args
        assert console(home, "completion-names", "jobs", "-p", "team-a").stdout == "first\nsecond\n"
        assert console(home, "completion-names", "projects").stdout == "team-a\nteam-b\n"
        code = ("import sys; from runai_lite.cli.console import runai; "
                "sys.argv = ['runai', 'completion-names', 'jobs', '-p', 'team-a']; runai()")
        assert loaded_by(code, home, "typer", "pydantic", "runai_lite.model", "runai_lite.backends.local.store") == []
    finally:
        probe(home, "runai_adm", "runai-adm", "local", "stop")


def test_completion_arguments_it_does_not_know_go_to_the_full_command(tmp_path):
    from runai_lite.cli.console import completion_names

    assert completion_names(["nodes"]) is None and completion_names(["jobs", "--all"]) is None
    assert completion_names(["jobs", "-p"]) is None  # -p without its value
