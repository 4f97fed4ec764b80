"""The machine-wide daemon as a systemd service: the unit's text, and installing it.

The unit runs `backends/local/server.py` in the foreground as root. systemd creates the socket
directory (0755) and the state directory (0700). `KillMode=process`: stopping or restarting the
service stops the daemon only; the jobs (each in its own session) keep running and the next daemon
adopts them, as after `runai-adm local stop`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .control import configure, daemon_stop
from .paths import write_private

UNIT_PATH = Path("/etc/systemd/system/runai-lite.service")
PACKAGED_PYTHON = "/usr/bin/python3"  # the interpreter of the unit shipped in deploy/systemd/


def unit_text(python: str = PACKAGED_PYTHON, pythonpath: str | None = None) -> str:
    """The unit for `python` (which must import runai_lite, with `pythonpath` when given)."""
    environment = f"Environment=PYTHONPATH={pythonpath}\n" if pythonpath else ""
    return f"""[Unit]
Description=runai-lite: GPU sharing for every user of this machine
After=local-fs.target

[Service]
Type=simple
ExecStart={python} -m runai_lite.backends.local.server
{environment}Restart=on-failure
RestartSec=2
# Jobs outlive the daemon; the next one adopts them.
KillMode=process
RuntimeDirectory=runai-lite
RuntimeDirectoryMode=0755
RuntimeDirectoryPreserve=yes
StateDirectory=runai-lite
StateDirectoryMode=0700
UMask=0077

[Install]
WantedBy=multi-user.target
"""


def package_root() -> str:
    """The directory this copy of runai_lite is imported from."""
    return str(Path(__file__).resolve().parents[3])


def install_unit(simulate: str | None = None, enforcement: str = "auto", path: Path = UNIT_PATH) -> Path:
    """Configure the system daemon, stop one started by hand (systemd's takes over its jobs), and
    write the unit for this interpreter and this copy of runai-lite."""
    configure(simulate=simulate, enforcement=enforcement, system=True)
    daemon_stop(system=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, unit_text(sys.executable, package_root()))
    os.chmod(path, 0o644)  # systemd units are world-readable
    return path
