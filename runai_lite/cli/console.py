"""The `runai` console script. TAB completion runs `runai completion-names` on every key press, so
that one command is answered before Typer and the backend are loaded, where it can be (the
embedded personal home: names read from its database); everything else, and completion anywhere
else, goes to the Typer app in `runai.py`."""

from __future__ import annotations

import sys


def runai() -> None:
    args = sys.argv[1:]
    if args[:1] == ["completion-names"]:
        names = completion_names(args[1:])
        if names is not None:
            sys.stdout.write("".join(f"{name}\n" for name in names))
            return
    from .runai import main

    main()


def completion_names(args: list[str]) -> list[str] | None:
    """`completion-names jobs|projects [-p PROJECT]` answered from the personal home's database,
    or None where only the full command can answer (a Kubernetes cluster, the machine-wide daemon,
    arguments it does not know). Like the full command it never fails: a TAB prints no error."""
    parsed = _parse(args)
    if parsed is None:
        return None
    kind, project = parsed
    from ..backends.local.names import job_names, project_names
    from ..backends.local.paths import default_home, system_socket
    from ..errors import RunaiLiteError
    from .config import load_config

    try:
        config = load_config()
    except RunaiLiteError:
        return []
    if not config.is_local or system_socket() is not None:
        return None
    db = default_home() / "state.db"
    try:
        if kind == "projects":
            return project_names(db)
        project = project or config.project
        return job_names(db, project) if project else []
    except Exception:  # noqa: BLE001 - a store it cannot read (locked, another user's): the full command
        return None


def _parse(args: list[str]) -> tuple[str, str | None] | None:
    if not args or args[0] not in ("jobs", "projects"):
        return None
    project = None
    rest = args[1:]
    while rest:
        word = rest.pop(0)
        if word in ("-p", "--project") and rest:
            project = rest.pop(0)
        elif word.startswith("--project="):
            project = word.split("=", 1)[1]
        else:
            return None
    return args[0], project
