"""`--help` pages, laid out from the built command tree with the standard library alone.

Typer draws help with rich, and loading the parts of rich it uses (markdown, syntax highlighting,
tracebacks, tables) costs `runai --help` more CPU than everything else it does. The page here has
the same parts in the same order: the usage line, the description (its first paragraph, then the
rest), one box per panel of arguments and of options (`rich_help_panel`), and one of commands; a
flag's name is never cut, and the help column wraps at word boundaries. On a terminal, option
names are bold cyan, value names bold yellow, `[bold]` markup bold and box lines dim.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from typing import Any

ARGUMENTS, OPTIONS, COMMANDS = "Arguments", "Options", "Commands"
GAP = "  "
MIN_HELP_WIDTH = 16  # below this the help column goes under the names instead of beside them
_MARKUP = re.compile(r"\[(/?)bold\]")
_BOLD_ON, _BOLD_OFF = "\x01", "\x02"  # bold markup, kept through wrapping (no width)
_SGR = {"bold": "\x1b[1m", "dim": "\x1b[2m", "cyan": "\x1b[1;36m", "yellow": "\x1b[1;33m", "red": "\x1b[31m",
        "reset": "\x1b[0m"}


def install(command: Any) -> None:
    """Give `command` and its subcommands this help page in place of Typer's rich one."""
    command.format_help = lambda ctx, formatter, command=command: formatter.write(page(command, ctx))
    for sub in (getattr(command, "commands", None) or {}).values():
        install(sub)


def page(command: Any, ctx: Any, width: int | None = None, color: bool | None = None) -> str:
    width = width or page_width()
    color = terminal_colors() if color is None else color
    paint = _painter(color)
    lines = ["", " " + paint("bold", command.get_usage(ctx)), ""]
    if command.help:
        first, *rest = command.help.split("\n\n")
        lines += [" " + line for line in wrap(first.replace("\n", " ").strip(), width - 2, color)]
        for paragraph in rest:
            lines += [""] + [" " + line for line in wrap(paragraph.strip(), width - 2, color)]
        lines.append("")
    for title, rows in _param_panels(command, ctx):
        lines += box(title, grid(rows, width - 4, color), width, color)
    commands = _command_panels(command, ctx)
    name_width = max((len(name) for rows in commands.values() for name, _ in rows), default=0)
    for title, rows in commands.items():
        cells = [[(name.ljust(name_width), "cyan"), (text, "")] for name, text in rows]
        lines += box(title, grid(cells, width - 4, color), width, color)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def page_width() -> int:
    """Typer's rule: `TERMINAL_WIDTH` if set, else the terminal's width (`COLUMNS` first), else 80."""
    fixed = os.environ.get("TERMINAL_WIDTH")
    if fixed and fixed.isdigit():
        return max(int(fixed), 40)
    return max(shutil.get_terminal_size((80, 24)).columns, 40)


def terminal_colors() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR") or os.environ.get("PY_COLORS"):
        return True
    return sys.stdout.isatty()


def _painter(color: bool) -> Any:
    def paint(style: str, text: str) -> str:
        return f"{_SGR[style]}{text}{_SGR['reset']}" if color and style and text else text

    return paint


# ------------------------------------------------------------------------------ panels


def _param_panels(command: Any, ctx: Any) -> list[tuple[str, list[list[tuple[str, str]]]]]:
    """Arguments first, then options, each in its panels in the order first met; a row is a list
    of (text, style) cells: required mark, long names, short names, value name, help."""
    arguments: dict[str, list] = {}
    options: dict[str, list] = {}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if getattr(param, "hidden", False) or record is None:
            continue
        panel = getattr(param, "rich_help_panel", None)
        help_text = record[1].replace("  [", " [")
        mark = ("*", "red") if param.required else ("", "")
        if param.param_type_name == "argument":
            name = param.metavar or (param.name or "").upper()
            arguments.setdefault(panel or ARGUMENTS, []).append([mark, ("", ""), (name, "cyan"), ("", ""),
                                                                 (help_text, "")])
            continue
        longs = ",".join(o for o in param.opts if o.startswith("--"))
        shorts = ",".join(o for o in param.opts if not o.startswith("--"))
        secondary = ",".join(param.secondary_opts)
        options.setdefault(panel or OPTIONS, []).append(
            [mark, (longs + (f"/{secondary}" if secondary else ""), "cyan"), (shorts, "cyan"),
             (param.metavar or "", "yellow"), (help_text, "")])
    return [*arguments.items(), *options.items()]


def _command_panels(command: Any, ctx: Any) -> dict[str, list[tuple[str, str]]]:
    panels: dict[str, list[tuple[str, str]]] = {}
    for name in getattr(command, "list_commands", lambda _: [])(ctx):
        sub = command.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        text = (sub.short_help or sub.help or "").split("\n\n")[0].replace("\n", " ").strip()
        panels.setdefault(getattr(sub, "rich_help_panel", None) or COMMANDS, []).append((name, text))
    return panels


def grid(rows: list[list[tuple[str, str]]], width: int, color: bool) -> list[str]:
    """Rows of cells, columns two spaces apart (columns empty in every row left out); every column
    as wide as its widest cell but the last, which wraps in what is left (or, when too little is
    left, goes on its own lines under the others)."""
    kept = [i for i in range(len(rows[0])) if i == len(rows[0]) - 1 or any(row[i][0] for row in rows)]
    rows = [[row[i] for i in kept] for row in rows]
    widths = [max(len(row[i][0]) for row in rows) for i in range(len(kept) - 1)]
    indent = sum(widths) + len(GAP) * len(widths)
    beside = width - indent >= MIN_HELP_WIDTH
    paint = _painter(color)
    lines = []
    for row in rows:
        head = GAP.join(paint(style, text) + " " * (w - len(text)) for (text, style), w in zip(row, widths))
        text = row[-1][0]
        if beside:
            wrapped = wrap(text, width - indent, color) or [""]
            lines.append(head + GAP + wrapped[0])
            lines += [" " * indent + line for line in wrapped[1:]]
        else:
            lines.append(head.rstrip())
            lines += ["    " + line for line in wrap(text, width - 4, color)]
    return lines


def box(title: str, lines: list[str], width: int, color: bool) -> list[str]:
    """`lines` in a box of `width` columns with `title` in its top edge."""
    paint = _painter(color)
    top = "╭─ " + title + " " + "─" * max(0, width - len(title) - 5) + "╮"
    out = [paint("dim", top)]
    for line in lines:
        out.append(paint("dim", "│") + " " + line + " " * max(0, width - 4 - visible_len(line)) + " " + paint("dim", "│"))
    out.append(paint("dim", "╰" + "─" * (width - 2) + "╯"))
    return out


# ------------------------------------------------------------------------------ text


def visible_len(text: str) -> int:
    return len(re.sub(r"\x1b\[[0-9;]*m", "", text))


def wrap(text: str, width: int, color: bool) -> list[str]:
    """Words of `text` (its `[bold]` markup honoured) in lines of at most `width` visible columns;
    a word longer than a line is cut across lines."""
    marked = _MARKUP.sub(lambda m: _BOLD_OFF if m[1] else _BOLD_ON, text)
    lines: list[str] = []
    current, length = "", 0
    for word in marked.split():
        size = len(word) - word.count(_BOLD_ON) - word.count(_BOLD_OFF)
        if current and length + 1 + size <= width:
            current, length = f"{current} {word}", length + 1 + size
            continue
        if current:
            lines.append(current)
        while size > width:
            cut = _cut(word, width)
            lines.append(word[:cut])
            word = word[cut:]
            size = len(word) - word.count(_BOLD_ON) - word.count(_BOLD_OFF)
        current, length = word, size
    if current:
        lines.append(current)
    return _styled(lines, color)


def _cut(word: str, width: int) -> int:
    """The index in `word` after `width` visible characters."""
    seen = 0
    for index, char in enumerate(word):
        if char not in (_BOLD_ON, _BOLD_OFF):
            seen += 1
            if seen == width:
                return index + 1
    return len(word)


def _styled(lines: list[str], color: bool) -> list[str]:
    """The bold marks as terminal bold (closed at each line's end, reopened on the next), or none."""
    if not color:
        return [line.replace(_BOLD_ON, "").replace(_BOLD_OFF, "") for line in lines]
    out, bold = [], False
    for line in lines:
        text = (_SGR["bold"] if bold else "") + line
        for char in line:
            if char in (_BOLD_ON, _BOLD_OFF):
                bold = char == _BOLD_ON
        text = text.replace(_BOLD_ON, _SGR["bold"]).replace(_BOLD_OFF, _SGR["reset"])
        out.append(text + (_SGR["reset"] if bold else ""))
    return out
