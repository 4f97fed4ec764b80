"""Help names what each option takes and never cuts a flag's name; typos get only close suggestions."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from runai_lite.cli import runai, runai_adm

runner = CliRunner()


def commands(app: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []

    def walk(command, path):
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                if not getattr(sub, "hidden", False):
                    walk(sub, (*path, name))
        else:
            found.append(path)

    walk(typer.main.get_command(app), prefix)
    return found


HELP_PAGES = [(runai.app, path) for path in commands(runai.app)] + [(runai_adm.app, path)
                                                                     for path in commands(runai_adm.app)]


@pytest.mark.parametrize(("app", "path"), HELP_PAGES, ids=[" ".join(p) for _, p in HELP_PAGES])
def test_help_at_80_columns_names_values_and_keeps_flag_names_whole(app, path):
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert not re.search(r"<(bool|str|int|float|list\[[a-z]+\]|int range|float range)>", text), text
    assert "<=x<=" not in text and "0<=x" not in text
    for line in text.splitlines():
        assert not re.search(r"--[a-z][a-z-]*…", line), f"a flag name is cut: {line}"


@pytest.mark.parametrize(("args", "shown", "not_shown"), [
    (["submit", "x", "-i", "y", "--cpux", "1"], "(Possible options: --cpu)", "--gpu"),
    (["submit", "x", "-i", "y", "--pot", "80"], "(Possible options: --port)", "--project"),
    (["submit", "x", "-i", "y", "--pvcs", "a:/b"], "(Possible options: --pvc)", "--gpu"),
    (["lsit"], "Did you mean 'list'?", "submit"),
    (["frobnicate"], "No such command 'frobnicate'.", "Did you mean"),
])
def test_typos_get_only_close_suggestions(args, shown, not_shown):
    result = runner.invoke(runai.app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert shown in result.output and not_shown not in result.output.split("Error")[-1], result.output
