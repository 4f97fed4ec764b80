"""How `--help` names what each option takes, and which typo suggestions are worth making.

Typer's own help shows a parameter's Python type (`<bool>` on a flag that takes no value,
`<list[str]>`, `<int range> [0<=x<=100]`). Here every value is named for what it is: a flag shows
nothing, a value the upper-case name of its option (`--image IMAGE`), a bounded number `N` with its
bounds in words; a metavar set by hand wins. And a mistyped command or option is answered with a
suggestion only when it is close (`--cpux` gets `--cpu`, `--pvc` never gets `--gpu`).
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import Any

import typer

# Typer's parser is Click, vendored inside recent Typer and imported in older ones: both raise
# this usage error, and commands and parameters are told apart by what they have.
UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
SUGGESTION_CUTOFF = 0.75  # difflib's ratio; its default, 0.6, pairs --pvc with --gpu and --port with --project


def name_values(command: Any) -> None:
    """Give every parameter of `command` and its subcommands a readable metavar (once)."""
    for param in command.params:
        _name_value(param)
    made = command.get_help_option

    def help_option(ctx: Any) -> Any:  # made on demand, when help is asked for
        option = made(ctx)
        if option is not None:
            _name_value(option)
        return option

    command.get_help_option = help_option
    for sub in (getattr(command, "commands", None) or {}).values():
        name_values(sub)


def _name_value(param: Any) -> None:
    if param.param_type_name == "argument":
        param.metavar = param.metavar or (param.name or "value").upper()
        param.display_type_rich = lambda ctx: None  # the name says it; Typer would add `<str>`
        return
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if (low is not None or high is not None) and not param.count:
        bounds = f"from {low} to {high}" if low is not None and high is not None else (
            f"at least {low}" if low is not None else f"at most {high}")
        param.help = f"{param.help or ''} ({bounds})".strip()
        param._get_number_range_help_str = lambda: None  # the bounds are in the help, in words
        param.metavar = param.metavar or "N"
        return
    if param.metavar is not None:
        return
    if param.is_flag or param.count:
        param.metavar = ""
        return
    param.metavar = max(param.opts, key=len).lstrip("-").upper().replace("-", "_")


def close_matches(typed: str, candidates: Any) -> list[str]:
    return get_close_matches(typed, list(candidates), n=3, cutoff=SUGGESTION_CUTOFF)


def only_close_suggestions(error: Any) -> None:
    """Keep only close suggestions in a usage error about an unknown option or command."""
    if hasattr(error, "option_name") and hasattr(error, "possibilities"):  # no such option
        error.possibilities = close_matches(error.option_name, error.possibilities or ())
        return
    ctx = error.ctx
    prefix = "No such command '"
    if ctx is not None and hasattr(ctx.command, "list_commands") and error.message.startswith(prefix):
        typed = error.message[len(prefix):].split("'", 1)[0]
        matches = close_matches(typed, ctx.command.list_commands(ctx))
        base = f"No such command '{typed}'."
        error.message = f"{base} Did you mean {', '.join(repr(m) for m in matches)}?" if matches else base
