"""The shell completion scripts in completions/ are generated from the command tree and kept current."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from runai_lite.cli.completion import generate

REPO = Path(__file__).resolve().parents[2]


def test_completions_in_the_repo_are_current(tmp_path):
    for fresh in generate(tmp_path):
        committed = REPO / "completions" / fresh.name
        assert committed.exists(), f"{committed} missing: run `python -m runai_lite.cli.completion`"
        assert committed.read_text() == fresh.read_text(), (
            f"{committed.name} is stale: run `python -m runai_lite.cli.completion`")


def _bash_complete(script: Path, words: list[str]) -> list[str]:
    """Run the bash completion function as bash would for `words` (the last one being completed)."""
    program = f"""
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
    assert _bash_complete(runai, ["runai", "su"]) == ["submit"]
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
