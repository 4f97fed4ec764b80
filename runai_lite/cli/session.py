"""What one CLI invocation works with: the CLI settings and the backend they point at.

The backend is built on first use and imported lazily, so `runai --help` never loads a backend and
a local command never loads the Kubernetes client.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from ..kinds import check_name
from .config import CliConfig, load_config, save_config

if TYPE_CHECKING:
    from ..backends.api import Backend

NO_PROJECT_HINT = "run `runai config project NAME` to set a default project, or pass -p PROJECT (`runai list projects` shows them)"


class CliSession:
    def __init__(self, backend: Backend | None = None, config: CliConfig | None = None,
                 config_file: Path | None = None):
        self._backend = backend
        self._config = config
        self._config_file = config_file

    @property
    def config(self) -> CliConfig:
        if self._config is None:
            self._config = load_config(self._config_file)
        return self._config

    def save_config(self, config: CliConfig) -> Path:
        self._config = config
        return save_config(config, self._config_file)

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = backend_for(self.config)
        return self._backend

    def project(self, explicit: str | None) -> str:
        """The project a command acts on: `-p`, else the configured default."""
        project = explicit or self.config.project
        if not project:
            raise UserError("no project given and no default project set", NO_PROJECT_HINT)
        check_name("project name", project, "team-a")
        return project

    def require_project_exists(self, name: str) -> None:
        names = [p.name for p in self.backend.list_projects()]
        if name not in names:
            known = ", ".join(names) if names else "none yet (an administrator creates them with `runai-adm project create`)"
            raise UserError(f"project {name} was not found",
                            f"run `runai list projects` to view all available projects; known: {known}")


def backend_for(config: CliConfig) -> Backend:
    if config.is_local:
        from ..backends.local import LocalBackend

        return LocalBackend()
    from ..backends.kube import KubeBackend

    return KubeBackend(config.cluster)
