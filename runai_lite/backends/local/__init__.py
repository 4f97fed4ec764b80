"""The embedded backend: state in SQLite, a background controller daemon, jobs as processes.

For the CLI: `LocalBackend(home)` (the `Backend` protocol), and for `runai-adm local ...`:
`local_init(home, simulate=..., enforcement=...)`, `daemon_start(home)`, `daemon_stop(home)`,
`daemon_status(home)`. `home` defaults to `$RUNAI_LITE_HOME`, else the XDG data dir.

Importing this package loads no scheduler, agent or GPU driver: only the daemon does. Nor does it
load its own modules until one of these names is used, so that a light module of it (`names.py`,
for TAB completion) costs only itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import LocalBackend
    from .control import DaemonStatus, daemon_start, daemon_status, daemon_stop, local_init
    from .paths import default_home

_HOMES = {"LocalBackend": ".backend", "DaemonStatus": ".control", "daemon_start": ".control",
          "daemon_status": ".control", "daemon_stop": ".control", "local_init": ".control", "default_home": ".paths"}


def __getattr__(name: str) -> Any:
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


__all__ = ["DaemonStatus", "LocalBackend", "daemon_start", "daemon_status", "daemon_stop", "default_home", "local_init"]
