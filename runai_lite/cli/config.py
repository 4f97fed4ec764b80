"""The CLI's own settings: the default project and the cluster to talk to.

Stored as a small JSON file, `$RUNAI_LITE_HOME/cli.json` when a home is set (so a temporary home
isolates everything), else `$XDG_CONFIG_HOME/runai-lite/cli.json`. The directory is 0700 and the
file 0600: a kube context name is not secret, but nothing else about the user's setup leaks either.
JSON because every command reads it: a YAML parser cost more CPU than the rest of `runai --help`.
A `cli.yaml` of earlier releases beside it is read once, written as `cli.json` and removed.
"""

# Annotations are not postponed here: a named tuple compiles each postponed field annotation
# (typing.ForwardRef) when the module loads, ~0.2 ms apiece on every command.

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import UserError
from ..files import HOME_ENV, ensure_private_dir, write_private

LOCAL_CLUSTER = "local"  # the embedded default; anything else names a kubeconfig context


class CliConfig(NamedTuple):  # a named tuple: a dataclass costs every command ~1 ms of CPU to define
    project: str | None = None
    cluster: str = LOCAL_CLUSTER

    @property
    def is_local(self) -> bool:
        return self.cluster == LOCAL_CLUSTER

    def with_project(self, project: str) -> "CliConfig":
        return self._replace(project=project)

    def with_cluster(self, cluster: str) -> "CliConfig":
        return self._replace(cluster=cluster)


def config_path() -> Path:
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home) / "cli.json"
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "runai-lite" / "cli.json"


def load_config(path: Path | None = None) -> CliConfig:
    path = path or config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return _migrated(path)
    try:
        data = json.loads(text or "{}")
    except ValueError as exc:
        raise UserError(f"the CLI settings in {path} are not valid JSON ({exc})",
                        f"fix or delete {path}, then run `runai config project NAME` again") from None
    return _config_of(data, path)


def _config_of(data: Any, path: Path) -> CliConfig:
    if not isinstance(data, dict):
        raise UserError(f"the CLI settings in {path} are not a mapping", f"fix or delete {path}")
    project = data.get("project")
    cluster = data.get("cluster") or LOCAL_CLUSTER
    return CliConfig(project=str(project) if project else None, cluster=str(cluster))


def _migrated(path: Path) -> CliConfig:
    """The settings of a `cli.yaml` beside `path` (earlier releases), now kept at `path`."""
    legacy = path.with_suffix(".yaml")
    try:
        text = legacy.read_text()
    except FileNotFoundError:
        return CliConfig()
    import yaml

    try:
        config = _config_of(yaml.safe_load(text) or {}, legacy)
    except yaml.YAMLError as exc:
        raise UserError(f"the CLI settings in {legacy} are not valid YAML ({exc.__class__.__name__})",
                        f"fix or delete {legacy}, then run `runai config project NAME` again") from None
    save_config(config, path)
    legacy.unlink(missing_ok=True)
    return config


def save_config(config: CliConfig, path: Path | None = None) -> Path:
    """Written atomically, so a concurrent reader never sees half a file."""
    path = path or config_path()
    ensure_private_dir(path.parent)
    write_private(path, json.dumps(config._asdict(), sort_keys=True) + "\n")
    return path
