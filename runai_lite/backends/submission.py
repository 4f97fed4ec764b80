"""Submitting from the flags as typed, in this process: build the spec (`submission.spec`), hand it
to the backend's `submit`, and answer with the receipt the CLI prints. What `KubeBackend` does for
every submission, and `LocalBackend` where no daemon takes the flags over its socket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..submission.spec import submit_from_flags

if TYPE_CHECKING:
    from ..submission.flags import SubmitFlags, SubmitReceipt
    from .api import Backend


def submit_in_process(backend: Backend, flags: SubmitFlags) -> SubmitReceipt:
    return submit_from_flags(flags, backend.current_user(),
                             lambda: (job.name for job in backend.list_jobs(flags.project)), backend.submit)
