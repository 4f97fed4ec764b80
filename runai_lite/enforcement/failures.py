"""Saying why a job failed when it ran out of its GPU memory limit.

The framework hook names the limit inside a Python job's own traceback. A job that is not Python
(or that catches the error and exits) gets only CUDA's message; `out_of_memory_note` lets a backend
add the limit to the job's failure event from the end of its output, whatever the mechanism.
"""

from __future__ import annotations

from .mechanisms import Mechanism

# Lower-case fragments of the out-of-memory messages of CUDA (runtime and driver API), PyTorch and
# JAX/XLA. hook/sitecustomize.py keeps the same list (it cannot import this module).
OOM_MARKERS = ("out of memory", "resource_exhausted", "cudaerrormemoryallocation", "cuda_error_out_of_memory")


def shows_out_of_memory(output: str) -> bool:
    """Whether a job's output carries a GPU out-of-memory error."""
    text = output.lower()
    return any(marker in text for marker in OOM_MARKERS)


def out_of_memory_note(output: str, mechanism: Mechanism | str | None, limit_mib: int | None) -> str | None:
    """The sentence a failed job's event should carry when its output shows it ran out of GPU memory
    under a limit, or None (no such error, or no limit recorded)."""
    if not limit_mib or not mechanism or not shows_out_of_memory(output):
        return None
    try:
        mechanism = Mechanism(mechanism)
    except ValueError:
        return f"out of GPU memory: the job is limited to {limit_mib} MiB ({mechanism})"
    if mechanism.advisory:
        return (f"out of GPU memory: the job's {limit_mib} MiB limit is advisory here, so the GPU itself ran out "
                "(other jobs on it may use more than their share)")
    return f"out of GPU memory: the job is limited to {limit_mib} MiB ({mechanism.value} enforcement)"
