"""The committed completion scripts (`completions/`) for `runai` and `runai-adm`.

`python -m runai_lite.cli.completion_files [DIRECTORY]` regenerates them from the two Typer apps
(`completion.py` renders one app; it imports neither, so the apps may import it); a test checks
that the committed files are current.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .completion import FILE_NAMES, RENDERERS, walk


def apps() -> dict[str, typer.Typer]:
    from .runai import app as runai_app
    from .runai_adm import app as adm_app

    return {"runai": runai_app, "runai-adm": adm_app}


def generate(directory: Path) -> list[Path]:
    """Write every script into `directory`; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for prog, app in apps().items():
        specs = walk(app, prog)
        for shell, render in RENDERERS.items():
            path = directory / FILE_NAMES[shell].format(prog=prog)
            path.write_text(render(specs, prog))
            written.append(path)
    return written


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "completions"
    for path in generate(target):
        print(path)


if __name__ == "__main__":
    main()
