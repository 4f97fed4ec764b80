"""Which kubeconfig contexts exist, read as plain YAML so `runai config cluster` can check a name
without loading the Kubernetes client (the same files client-go reads: `$KUBECONFIG`, else
`~/.kube/config`)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from ..errors import UserError


def kubeconfig_files() -> list[Path]:
    listed = os.environ.get("KUBECONFIG")
    if listed:
        return [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def context_names(files: list[Path] | None = None) -> list[str]:
    names: list[str] = []
    for path in files if files is not None else kubeconfig_files():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue  # client-go skips unreadable files in the list too
        contexts = data.get("contexts") if isinstance(data, dict) else None
        for context in contexts or ():
            if isinstance(context, dict) and context.get("name") and context["name"] not in names:
                names.append(str(context["name"]))
    return names


def require_context(name: str) -> None:
    names = context_names()
    if name not in names:
        known = ", ".join(names) if names else "none found in " + ", ".join(str(p) for p in kubeconfig_files())
        raise UserError(f"no kubeconfig context named {name!r}",
                        f"use `runai config cluster local` for this machine, or one of: {known}")
