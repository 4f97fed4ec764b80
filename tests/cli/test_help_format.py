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


@pytest.mark.parametrize("columns", [80, 50])
@pytest.mark.parametrize(("app", "path"), [(runai.app, ()), (runai.app, ("submit",)), (runai.app, ("list",)),
                                           (runai_adm.app, ("local", "init"))],
                         ids=["runai", "submit", "list", "adm local init"])
def test_help_pages_fit_the_width_and_name_every_visible_option(app, path, columns):
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(columns), "TERMINAL_WIDTH": str(columns)})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= columns for line in lines), [line for line in lines if len(line) > columns]
    assert "\x1b[" not in result.stdout  # no colour into a pipe
    boxes = [line for line in lines if line.startswith(("╭", "│", "╰"))]
    assert boxes and all(len(line) == columns for line in boxes)  # every box closed at the right edge
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    for param in command.params:
        if not param.hidden and param.param_type_name == "option":
            assert any(opt in result.stdout for opt in param.opts), param.opts
    assert "Usage: " in result.stdout


def test_help_wraps_words_keeps_bold_markup_on_a_terminal_and_cuts_only_what_cannot_fit():
    from runai_lite.cli.help_page import grid, wrap

    assert wrap("Submit a [bold]job now[/bold] please", 12, color=False) == ["Submit a job", "now please"]
    bold = wrap("Submit a [bold]job now[/bold] please", 12, color=True)
    assert bold == ["Submit a \x1b[1mjob\x1b[0m", "\x1b[1mnow\x1b[0m please"]
    assert wrap("x" * 25, 10, color=False) == ["x" * 10, "x" * 10, "x" * 5]
    rows = [[("--image", ""), ("-i", ""), ("IMAGE", ""), ("Container image to run the job in.", "")],
            [("--gpu", ""), ("", ""), ("N", ""), ("GPUs.", "")]]
    assert grid(rows, 40, color=False) == [
        "--image  -i  IMAGE  Container image to",
        "                    run the job in.",
        "--gpu        N      GPUs.",
    ]
    # Too narrow for a help column beside the names: the help goes under them, the names stay whole.
    assert grid(rows, 30, color=False)[:2] == ["--image  -i  IMAGE", "    Container image to run the"]
