"""The embedded backend: state in SQLite, a background controller daemon, jobs as processes.

For the CLI: `LocalBackend(home)` (the `Backend` protocol), and for `runai-adm local ...`:
`local_init(home, simulate=..., enforcement=...)`, `daemon_start(home)`, `daemon_stop(home)`,
`daemon_status(home)`. `home` defaults to `$RUNAI_LITE_HOME`, else the XDG data dir.

Importing this package loads no scheduler, agent or GPU driver: only the daemon does.
"""

from .backend import LocalBackend
from .control import DaemonStatus, daemon_start, daemon_status, daemon_stop, local_init
from .paths import default_home

__all__ = ["DaemonStatus", "LocalBackend", "daemon_start", "daemon_status", "daemon_stop", "default_home", "local_init"]
