"""Static shell completion scripts for bash, zsh and fish, generated from the Typer command tree.

Static scripts complete commands, options and option values without starting Python on every TAB.
`python -m runai_lite.cli.completion_files` regenerates `completions/`; a test checks they are current.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

import typer



@cache
def _extra_values() -> dict[str, tuple[str, ...]]:
    """Values an option takes that its type does not list (they are checked later, with better
    messages than a choice list gives)."""
    from ..gpu.catalog import default_catalog

    return {"--mig-profile": tuple(default_catalog().mig_profile_names())}


# Parameters whose metavar is JOB or PROJECT are completed with the names `runai completion-names`
# prints (asked at TAB time, since they change); everything else is static.
NAMES_BY_METAVAR = {"JOB": "jobs", "PROJECT": "projects"}
NAMES_COMMAND = "runai completion-names"


def _names_of(param) -> str | None:
    return NAMES_BY_METAVAR.get((param.metavar or "").rstrip("."))


@dataclass(frozen=True)
class OptionSpec:
    names: tuple[str, ...]
    help: str
    takes_value: bool
    values: tuple[str, ...] = ()
    names_of: str | None = None  # "jobs" / "projects": complete the value with those names


@dataclass(frozen=True)
class CommandSpec:
    path: tuple[str, ...]  # ("runai", "list")
    help: str
    subcommands: tuple[tuple[str, str], ...] = ()  # (name, help)
    options: tuple[OptionSpec, ...] = field(default_factory=tuple)
    arguments_of: str | None = None  # "jobs" / "projects": complete the arguments with those names


def _plain(text: str | None) -> str:
    first = (text or "").strip().split("\n")[0]
    return re.sub(r"\[/?[a-z ]+\]", "", first).strip()


def walk(app: typer.Typer, prog: str) -> list[CommandSpec]:
    """Every visible command path with its subcommands and options, in a stable order."""
    root = typer.main.get_command(app)
    specs: list[CommandSpec] = []

    def visit(command, path: tuple[str, ...]) -> None:
        options = []
        arguments_of = None
        for param in command.params:
            if param.param_type_name == "argument":
                arguments_of = arguments_of or _names_of(param)
                continue
            if getattr(param, "hidden", False):
                continue
            names = tuple(param.opts) + tuple(param.secondary_opts)
            values = tuple(str(c) for c in (param.type_descriptor.choices or ()))
            for name in names:
                values = values or _extra_values().get(name, ())
            options.append(OptionSpec(names, _plain(param.help), not param.is_flag, values, _names_of(param)))
        options.append(OptionSpec(("--help",), "Show help and exit.", False))
        children = getattr(command, "commands", {})
        visible = sorted((name, sub) for name, sub in children.items() if not sub.hidden)
        specs.append(CommandSpec(path, _plain(command.help), tuple((n, _plain(s.help)) for n, s in visible),
                                 tuple(options), arguments_of))
        for name, sub in visible:
            visit(sub, (*path, name))

    visit(root, (prog,))
    return specs


def _function_name(prog: str) -> str:
    return "_" + re.sub(r"[^A-Za-z0-9]", "_", prog)


def _quote(text: str) -> str:
    """Single-quoted for any of the three shells."""
    return "'" + text.replace("'", "'\\''") + "'"


def _path_steps(specs: list[CommandSpec]) -> list[str]:
    return [" ".join(s.path) for s in specs if len(s.path) > 1]


def _valued_options(specs: list[CommandSpec]):
    """(option, its `"path|-o"|"path|--output"` case pattern) for each option that takes a value."""
    for spec in specs:
        path = " ".join(spec.path)
        for option in spec.options:
            if option.takes_value:
                yield option, "|".join(f'"{path}|{name}"' for name in option.names)


def _value_cases(specs: list[CommandSpec], line: str, names: str, values: str, nothing: str) -> list[str]:
    """One `case` line per option that takes a value. `line` is a format with {pattern} and {action};
    the action is `names` (a format with {kind}) for job/project names, `values` (with {words}) for
    a fixed list, else `nothing`."""
    cases = []
    for option, pattern in _valued_options(specs):
        if option.names_of:
            action = names.format(kind=option.names_of)
        else:
            action = values.format(words=" ".join(option.values)) if option.values else nothing
        cases.append(line.format(pattern=pattern, action=action))
    return cases


def bash_script(specs: list[CommandSpec], prog: str) -> str:
    fn = _function_name(prog)
    steps = "|".join(f'"{step}"' for step in _path_steps(specs))
    value_cases = _value_cases(specs, "        {pattern}) COMPREPLY={action}; return ;;",
                               names='($(compgen -W "$(' + NAMES_COMMAND + ' {kind} 2>/dev/null)" -- "$cur"))',
                               values='($(compgen -W "{words}" -- "$cur"))', nothing="()")
    command_cases = []
    for spec in specs:
        path = " ".join(spec.path)
        subs = " ".join(name for name, _ in spec.subcommands)
        opts = " ".join(name for option in spec.options for name in option.names)
        command_cases.append(f'        "{path}") subs="{subs}"; opts="{opts}"; names="{spec.arguments_of or ""}" ;;')
    return "\n".join([
        f"# bash completion for {prog}. Generated by `python -m runai_lite.cli.completion_files`; do not edit.",
        f"{fn}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        f'    local path="{prog}" subs="" opts="" names="" i',
        "    local -a project=()",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        [[ "${COMP_WORDS[i]}" == "--" ]] && return 0',
        '        [[ "${COMP_WORDS[i]}" == -p || "${COMP_WORDS[i]}" == --project ]] && project=(-p "${COMP_WORDS[i+1]}")',
        '        case "$path ${COMP_WORDS[i]}" in',
        f'            {steps}) path="$path ${{COMP_WORDS[i]}}" ;;' if steps else "            \"\") ;;",
        "        esac",
        "    done",
        '    case "$path|$prev" in',
        *value_cases,
        "    esac",
        '    case "$path" in',
        *command_cases,
        "    esac",
        '    if [[ "$cur" == -* ]]; then',
        '        COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
        '    elif [[ -n "$subs" ]]; then',
        '        COMPREPLY=($(compgen -W "$subs" -- "$cur"))',
        '    elif [[ -n "$names" ]]; then',
        f'        COMPREPLY=($(compgen -W "$({NAMES_COMMAND} $names "${{project[@]}}" 2>/dev/null)" -- "$cur"))',
        "    fi",
        "}",
        f"complete -o default -F {fn} {prog}",
        "",
    ])


def zsh_script(specs: list[CommandSpec], prog: str) -> str:
    fn = _function_name(prog)
    steps = "|".join(f'"{step}"' for step in _path_steps(specs))
    value_cases = _value_cases(specs, "        ({pattern}) {action}; return ;;",
                               names='compadd -- ${{(f)"$(' + NAMES_COMMAND + ' {kind} 2>/dev/null)"}}',
                               values="compadd -- {words}", nothing="_default")
    command_cases = []
    for spec in specs:
        path = " ".join(spec.path)
        subs = " ".join(_quote(f"{name}:{text.replace(':', ' ')}") for name, text in spec.subcommands)
        opts = " ".join(_quote(f"{name.replace(':', ' ')}:{option.help.replace(':', ' ')}")
                        for option in spec.options for name in option.names)
        command_cases.append(f'        ("{path}") subs=({subs}); opts=({opts}); names="{spec.arguments_of or ""}" ;;')
    return "\n".join([
        f"#compdef {prog}",
        f"# zsh completion for {prog}. Generated by `python -m runai_lite.cli.completion_files`; do not edit.",
        f"{fn}() {{",
        f'    local cmdpath="{prog}" cur="${{words[CURRENT]}}" prev="${{words[CURRENT-1]}}" names="" i',
        "    local -a subs opts project",
        "    for ((i = 2; i < CURRENT; i++)); do",
        '        [[ "${words[i]}" == "--" ]] && { _default; return }',
        '        [[ "${words[i]}" == -p || "${words[i]}" == --project ]] && project=(-p "${words[i+1]}")',
        '        case "$cmdpath ${words[i]}" in',
        f'            ({steps}) cmdpath="$cmdpath ${{words[i]}}" ;;' if steps else '            ("") ;;',
        "        esac",
        "    done",
        '    case "$cmdpath|$prev" in',
        *value_cases,
        "    esac",
        '    case "$cmdpath" in',
        *command_cases,
        "    esac",
        '    if [[ "$cur" == -* ]]; then',
        "        _describe -t options 'option' opts",
        "    elif (( ${#subs} )); then",
        "        _describe -t commands 'command' subs",
        '    elif [[ -n "$names" ]]; then',
        f'        compadd -- ${{(f)"$({NAMES_COMMAND} $names $project 2>/dev/null)"}}',
        "    else",
        "        _default",
        "    fi",
        "}",
        f'if [[ "${{funcstack[1]}}" == "{fn}" ]]; then {fn} "$@"; else compdef {fn} {prog}; fi',
        "",
    ])


def fish_script(specs: list[CommandSpec], prog: str) -> str:
    fn = "__" + re.sub(r"[^A-Za-z0-9]", "_", prog) + "_path"
    project_fn = "__" + re.sub(r"[^A-Za-z0-9]", "_", prog) + "_project"
    steps = " ".join(f'"{step}"' for step in _path_steps(specs))
    lines = [
        f"# fish completion for {prog}. Generated by `python -m runai_lite.cli.completion_files`; do not edit.",
        f"function {fn}",
        f"    set -l path {prog}",
        "    for word in (commandline -opc)[2..-1]",
        '        test "$word" = "--"; and break',
        f'        contains -- "$path $word" {steps}; and set path "$path $word"',
        "    end",
        "    echo $path",
        "end",
        f"function {project_fn}",
        "    set -l words (commandline -opc)",
        "    for i in (seq 2 (count $words))",
        "        contains -- $words[(math $i - 1)] -p --project; and printf '%s\\n' -p $words[$i]",
        "    end",
        "end",
        f"complete -c {prog} -f",
    ]
    for spec in specs:
        condition = _quote(f'test ({fn}) = "{" ".join(spec.path)}"')
        for name, text in spec.subcommands:
            lines.append(f"complete -c {prog} -n {condition} -a {_quote(name)} -d {_quote(text)}")
        if spec.arguments_of:
            names = f"({NAMES_COMMAND} {spec.arguments_of} ({project_fn}) 2>/dev/null)"
            lines.append(f"complete -c {prog} -n {condition} -a {_quote(names)}")
        for option in spec.options:
            flags = " ".join(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}" for n in option.names)
            value = ""
            if option.names_of:
                value = f" -x -a {_quote(f'({NAMES_COMMAND} {option.names_of} 2>/dev/null)')}"
            elif option.takes_value:
                value = f" -x -a {_quote(' '.join(option.values))}" if option.values else " -r"
            lines.append(f"complete -c {prog} -n {condition} {flags}{value} -d {_quote(option.help)}")
    return "\n".join(lines) + "\n"


RENDERERS = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}
FILE_NAMES = {"bash": "{prog}.bash", "zsh": "_{prog}", "fish": "{prog}.fish"}


def script_for(app: typer.Typer, prog: str, shell: str) -> str:
    from ..errors import UserError

    if shell not in RENDERERS:
        raise UserError(f"no completion for shell {shell!r}", "choose bash, zsh or fish")
    return RENDERERS[shell](walk(app, prog), prog)
