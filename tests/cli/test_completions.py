"""The shell completion scripts in completions/ are generated from the command tree and kept current."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from runai_lite.cli.completion_files import generate

REPO = Path(__file__).resolve().parents[2]


def test_completions_in_the_repo_are_current(tmp_path):
    for fresh in generate(tmp_path):
        committed = REPO / "completions" / fresh.name
        assert committed.exists(), f"{committed} missing: run `python -m runai_lite.cli.completion_files`"
        assert committed.read_text() == fresh.read_text(), (
            f"{committed.name} is stale: run `python -m runai_lite.cli.completion_files`")


def _bash_complete(script: Path, words: list[str], path_dir: Path | None = None) -> list[str]:
    """Run the bash completion function as bash would for `words` (the last one being completed)."""
    program = f"""
{f'PATH={path_dir}:$PATH' if path_dir else ''}
source {script}
COMP_WORDS=({' '.join(repr(w) for w in words)})
COMP_CWORD={len(words) - 1}
_{words[0].replace('-', '_')}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_completion_completes_commands_options_and_values(tmp_path):
    generate(tmp_path)
    runai = tmp_path / "runai.bash"
    assert _bash_complete(runai, ["runai", "su"]) == ["submit", "suspend"]
    assert _bash_complete(runai, ["runai", "logs", "j1", "--att"]) == ["--attempt"]
    assert set(_bash_complete(runai, ["runai", "list", ""])) == {"jobs", "nodes", "projects"}
    assert "--mig-profile" in _bash_complete(runai, ["runai", "submit", "mig1", "--m"])
    assert "2g.10gb" in _bash_complete(runai, ["runai", "submit", "mig1", "--mig-profile", "2g"])
    assert _bash_complete(runai, ["runai", "list", "-o", "j"]) == ["json"]
    assert _bash_complete(runai, ["runai", "top", "node", "-o", "w"]) == []  # no wide form there
    adm = tmp_path / "runai-adm.bash"
    assert "--dynamic-mig-enabled" in _bash_complete(adm, ["runai-adm", "set", "node-role", "--d"])


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
def test_zsh_script_parses(tmp_path):
    generate(tmp_path)
    for name in ("_runai", "_runai-adm"):
        subprocess.run(["zsh", "-n", str(tmp_path / name)], check=True)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed")
def test_fish_script_parses(tmp_path):
    generate(tmp_path)
    for name in ("runai.fish", "runai-adm.fish"):
        subprocess.run(["fish", "--no-execute", str(tmp_path / name)], check=True)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed")
def test_fish_completion_completes_commands_and_values(tmp_path):
    generate(tmp_path)

    def complete(line: str) -> list[str]:
        out = subprocess.run(["fish", "-c", f"source {tmp_path / 'runai.fish'}; complete -C {line!r}"],
                             capture_output=True, text=True, check=True).stdout
        return [row.split("\t")[0] for row in out.splitlines()]

    assert complete("runai su") == ["submit"]
    assert set(complete("runai list ")) == {"jobs", "nodes", "projects"}
    assert "2g.10gb" in complete("runai submit x --mig-profile 2g")


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
def test_zsh_completion_logic_with_stubbed_completion_builtins(tmp_path):
    """zsh's completion system needs a terminal; stub its builtins to print what would be offered."""
    generate(tmp_path)

    def complete(*words: str) -> list[str]:
        program = f"""
compdef() {{ :; }}
compadd() {{ shift; print -l -- "$@"; }}
_describe() {{ local -a arr; arr=("${{(@P)${{@[-1]}}}}"); print -l -- ${{arr%%:*}}; }}
_default() {{ print DEFAULT; }}
source {tmp_path / '_runai'}
words=({' '.join(repr(w) for w in words)}); CURRENT={len(words)}
_runai
"""
        return subprocess.run(["zsh", "-c", program], capture_output=True, text=True, check=True).stdout.split()

    assert "submit" in complete("runai", "su")
    assert complete("runai", "list", "") == ["jobs", "nodes", "projects"]
    assert complete("runai", "list", "-o", "") == ["table", "wide", "json", "yaml"]
    assert "2g.10gb" in complete("runai", "submit", "x", "--mig-profile", "")


def _fake_runai(directory: Path) -> Path:
    """A `runai` whose `completion-names` answers from a table, recording the -p it was given."""
    directory.mkdir()
    fake = directory / "runai"
    fake.write_text("""#!/bin/sh
[ "$1" = completion-names ] || exit 1
case "$2 $3 $4" in
  "jobs -p team-b") echo frac1 ;;
  "jobs  ") printf 'mig1\\nmig2\\n' ;;
  "projects  ") printf 'team-a\\nteam-b\\n' ;;
esac
""")
    fake.chmod(0o755)
    return directory


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_completes_job_and_project_names_at_tab_time(tmp_path):
    generate(tmp_path)
    bin_dir = _fake_runai(tmp_path / "bin")
    runai = tmp_path / "runai.bash"
    assert _bash_complete(runai, ["runai", "describe", "job", ""], bin_dir) == ["mig1", "mig2"]
    assert _bash_complete(runai, ["runai", "logs", "-p", "team-b", ""], bin_dir) == ["frac1"]
    assert _bash_complete(runai, ["runai", "delete", "job", "-p", "t"], bin_dir) == ["team-a", "team-b"]
    assert _bash_complete(runai, ["runai", "config", "project", ""], bin_dir) == ["team-a", "team-b"]
    assert _bash_complete(tmp_path / "runai-adm.bash", ["runai-adm", "project", "delete", ""], bin_dir) == [
        "team-a", "team-b"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed")
def test_fish_completes_job_names_at_tab_time(tmp_path):
    generate(tmp_path)
    bin_dir = _fake_runai(tmp_path / "bin")
    program = f"set PATH {bin_dir} $PATH; source {tmp_path / 'runai.fish'}; complete -C 'runai logs -p team-b '"
    out = subprocess.run(["fish", "-c", program], capture_output=True, text=True, check=True).stdout
    assert [row.split("\t")[0] for row in out.splitlines()] == ["frac1"]


def test_completion_names_lists_names_and_stays_silent_on_errors(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from runai_lite.cli.config import CliConfig
    from runai_lite.cli.runai import app
    from runai_lite.cli.session import CliSession
    from tests.cli import records
    from tests.cli.fake_backend import FakeBackend

    monkeypatch.setenv("RUNAI_LITE_HOME", str(tmp_path / "home"))
    backend = FakeBackend(jobs=records.jobs(), projects=records.projects())

    def names(*args: str, project: str | None = "team-a") -> tuple[int, str]:
        result = CliRunner().invoke(app, ["completion-names", *args],
                                    obj=CliSession(backend=backend, config=CliConfig(project=project)))
        return result.exit_code, result.output

    assert names("jobs") == (0, "mig1\nmig2\nbig\n")
    assert names("jobs", "-p", "team-b") == (0, "frac1\n")
    assert names("projects") == (0, "team-a\nteam-b\n")
    assert names("jobs", project=None) == (0, "")  # no default project: nothing, and no error text


def test_the_completion_commands_print_the_generated_scripts(tmp_path):
    from typer.testing import CliRunner

    from runai_lite.cli import runai, runai_adm

    generate(tmp_path)
    for app, prog in ((runai.app, "runai"), (runai_adm.app, "runai-adm")):
        result = CliRunner().invoke(app, ["completion", "bash"])
        assert result.exit_code == 0 and result.stdout == (tmp_path / f"{prog}.bash").read_text()
        assert CliRunner().invoke(app, ["completion", "tcsh"]).exit_code == 2
