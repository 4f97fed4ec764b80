"""What `runai` and `runai-adm` share: error handling, the session, output formats, printing.

One exit-code rule: every `RunaiLiteError` that escapes a command becomes `Error: <message>` (and
its hint) on stderr and the error's exit code, 2 for what a person should retype and 1 for a
failure, never a traceback; Typer's own usage errors exit 2 too. Output into a pipe that was closed
(`runai logs big | head -1`) ends quietly with 141, as a program killed by SIGPIPE does.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from enum import StrEnum
from typing import Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from ..errors import RunaiLiteError
from . import help_page, param_values
from .help_format import UsageError, name_values, only_close_suggestions
from .session import CliSession
from .table import TextTable


class Output(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


class DataOutput(StrEnum):
    """For commands whose table form has no wider variant."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def print_error(error: RunaiLiteError) -> None:
    sys.stderr.write(f"Error: {error.message}\n")
    if error.hint:
        sys.stderr.write(f"Hint: {error.hint}\n")
    sys.stderr.flush()


CLOSED_PIPE_EXIT = 128 + 13  # 128 + SIGPIPE


class RunaiGroup(TyperGroup):
    """The root group: turns our errors into a message and an exit code, names option values
    readably in help, suggests only close matches for a typo (`help_format.py`), and draws help
    pages (`help_page.py`) and coerces parameter values (`param_values.py`) without rich or pydantic."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        name_values(self)
        param_values.install(self)
        help_page.install(self)

    def invoke(self, ctx: Any) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
            return result
        except UsageError as error:
            only_close_suggestions(error)
            raise
        except RunaiLiteError as error:
            print_error(error)
            raise typer.Exit(error.exit_code) from None
        except BrokenPipeError:
            # Whoever read our output has stopped: nothing to say; later flushes go nowhere.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(CLOSED_PIPE_EXIT) from None


class DoubleDashCommand(TyperCommand):
    """A command whose words after `--` are kept whole in `ctx.meta["after_dash"]`, so that a
    positional NAME before them stays optional (`runai submit -i IMG -- sleep 60` has no name).
    Before a `--`, options may come anywhere (`runai exec b1 -it -- bash`); without one, the
    command's own `allow_interspersed_args` decides (`runai exec b1 ls -la` keeps `-la` for `ls`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["after_dash"] = args[cut + 1:]
            args = args[:cut]
            ctx.allow_interspersed_args = True
        return super().parse_args(ctx, args)


def example(command_line: str) -> str:
    """The example every command's help ends with."""
    return f"\n\nExample: [bold]{command_line}[/bold]"


def new_app(help_text: str, example_line: str, **kwargs: Any) -> typer.Typer:
    kwargs.setdefault("no_args_is_help", True)
    return typer.Typer(help=help_text + example(example_line), add_completion=False, suggest_commands=False,
                       rich_markup_mode="rich", pretty_exceptions_enable=False, **kwargs)


def add_group(parent: typer.Typer, name: str, help_text: str, example_line: str, **kwargs: Any) -> typer.Typer:
    group = new_app(help_text, example_line, **kwargs)
    parent.add_typer(group, name=name)
    return group


def session(ctx: typer.Context) -> CliSession:
    """The invocation's session: the one a caller passed as `obj` (tests), or a fresh one."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliSession):
        root.obj = CliSession()
    return root.obj


def emit_data(data: Any, output: str) -> None:
    """`-o json` / `-o yaml`: machine-readable, on stdout, nothing else printed."""
    if output == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))


def show(*items: Any) -> None:
    """Print to stdout, one item after another: strings as they are, `TextTable`s as plain aligned
    text (bold header on a terminal), anything else through rich, laid out wide enough that rows are
    never wrapped or cut, with rich's padding stripped. Colour only on a terminal."""
    terminal = sys.stdout.isatty()
    parts = []
    for item in items:
        if isinstance(item, str):
            parts.append(item + "\n")
        elif isinstance(item, TextTable):
            parts.append("".join(line + "\n" for line in item.lines(bold_header=terminal)))
        else:
            parts.append(_rich_text(item, terminal))
    sys.stdout.write("".join(parts))


def _rich_text(renderable: Any, terminal: bool) -> str:
    from rich.console import Console

    out = Console(width=250, highlight=False, force_terminal=terminal, no_color=not terminal)
    with out.capture() as captured:
        out.print(renderable)
    return "".join(line.rstrip() + "\n" for line in captured.get().splitlines())


def show_projects(ctx: typer.Context, output: DataOutput) -> None:
    """`runai list projects` and `runai-adm project list`; the default project is marked."""
    s = session(ctx)
    projects = s.backend.list_projects()
    if output is not DataOutput.TABLE:
        emit_data([p.to_json() for p in projects], output.value)
        return
    from .render import projects_table

    show(projects_table(projects, s.config.project) if projects else "No projects found.")


def run(app: typer.Typer, prog_name: str) -> NoReturn:
    """Console-script entry point."""
    # A group even when one command is left: Typer would make a lone command the program itself.
    group = typer.main.get_group(only_the_named_command(app, sys.argv[1:]))
    try:
        group.main(prog_name=prog_name)  # standalone: it ends with SystemExit
    except SystemExit as done:
        exit_without_teardown(done.code)
    exit_without_teardown(0)


def exit_without_teardown(code: Any) -> NoReturn:
    """End the process as `sys.exit(code)` would, less the interpreter's teardown.

    Tearing down the modules of a Typer CLI costs 20-25 ms of CPU on the 2-core test machine (a bare
    `python -c "import typer"` spends 17-20 of its ~90 ms on it), on every command, and a command
    has nothing left to do then. What exiting must still do is done here: the standard
    streams are flushed (a closed pipe ends quietly with 141, as `RunaiGroup.invoke` does) and the
    `atexit` functions run. Where a thread other than the main one is still working, which the
    normal exit waits for, the normal exit is taken."""
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        raise SystemExit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # as the interpreter does with a message
        sys.stderr.write(f"{code}\n")
        status = 1
    import atexit

    atexit._run_exitfuncs()  # noqa: SLF001 - what the interpreter's own exit runs first, then the flush
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        status = CLOSED_PIPE_EXIT
    try:
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(status)


def only_the_named_command(app: typer.Typer, args: list[str]) -> typer.Typer:
    """`app` with only the command or group that `args` start with, when they start with one.

    Typer builds every command's parameters from its signature on each run (about 6 ms of CPU for
    `runai`'s 30 commands, more than `runai list` spends reading 1,000 rows), and a run invokes one.
    Anything else (no command, an option first, a name that matches none, so that the typo is
    answered with the close names) gets the whole tree. The app itself is left as it is."""
    if not args or args[0].startswith("-") or any(group.name is None for group in app.registered_groups):
        return app
    wanted = args[0]
    commands = [c for c in app.registered_commands if _command_name(c) == wanted]
    groups = [g for g in app.registered_groups if g.name == wanted]
    if not commands and not groups:
        return app
    pruned = copy.copy(app)
    pruned.registered_commands, pruned.registered_groups = commands, groups
    return pruned


def _command_name(command: Any) -> str | None:
    if command.name:
        return command.name
    return typer.main.get_command_name(command.callback.__name__) if command.callback else None
