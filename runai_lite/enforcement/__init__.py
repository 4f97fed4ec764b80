"""Enforcing the GPU memory limit of fraction jobs.

Pure core: `choose_mechanism(setting, probe)` and `job_environment(mechanism, ...)` /
`for_allocation(allocation, mechanism, ...)`. Edge: `probe_node()` reads what the node offers.
`hook/sitecustomize.py` is the framework hook that jobs' Python picks up through `PYTHONPATH`;
`out_of_memory_note(output, mechanism, limit)` names the limit in a failed job's event.
Mechanisms, their reach and their gaps: docs/enforcement.md.
"""

from .environment import HOOK_DIR, JobEnforcement, for_allocation, hook_files, job_environment
from .failures import out_of_memory_note, shows_out_of_memory
from .mechanisms import (
    EnforcementSetting,
    EnforcementUnavailableError,
    Mechanism,
    choose_mechanism,
    display_enforcement,
    parse_setting,
)
from .probe import DEFAULT_HAMI_CORE_PATH, DEFAULT_MPS_PIPE_DIRECTORY, NodeProbe, probe_node

__all__ = [
    "DEFAULT_HAMI_CORE_PATH",
    "DEFAULT_MPS_PIPE_DIRECTORY",
    "HOOK_DIR",
    "EnforcementSetting",
    "EnforcementUnavailableError",
    "JobEnforcement",
    "Mechanism",
    "NodeProbe",
    "choose_mechanism",
    "display_enforcement",
    "for_allocation",
    "hook_files",
    "job_environment",
    "out_of_memory_note",
    "parse_setting",
    "probe_node",
    "shows_out_of_memory",
]
