"""What the embedded mode does with `runai submit`'s host, storage, network and lifetime flags, by
the runtime a job gets (a container, or a process run directly).

Pure: a `JobSpec` and the runtime in, refusals (a `UserError` before anything is stored) and notes
(recorded as a `NotApplicable` event and printed by `runai submit`) out. A flag is refused where
honouring it is impossible and ignoring it would mislead (a bind mount for a process); a note says
where a flag has no meaning here but harms nothing when left out (`--large-shm` for a process).
"""

from __future__ import annotations

from ...errors import UserError
from ...model import JobSpec
from .runner import PROCESS


def check_embedded(spec: JobSpec, runtime: str) -> None:
    """Refuse (exit 2) what the embedded mode cannot give this job."""
    if spec.pvcs:
        raise UserError("--pvc needs Kubernetes: the embedded mode has no PersistentVolumeClaims",
                        "mount a directory of this machine instead: -v /data:/data (in a container), or drop --pvc")
    if spec.volumes and runtime == PROCESS:
        raise UserError(
            "-v needs a container: no usable docker or podman here, so the job runs as a process that sees "
            "this machine's files as they are",
            "drop -v and use the host path directly (e.g. --working-dir), or install podman or docker")
    if spec.service_type is not None:
        raise UserError("--service-type needs Kubernetes: the embedded mode publishes --port on this machine",
                        "drop --service-type; reach the port with `runai port-forward`")
    pending_work = [flag for flag, given in (("--cpu-limit", spec.cpu_limit_milli and runtime == PROCESS),
                                             ("--memory-limit", spec.memory_limit_mib and runtime == PROCESS),
                                             ("--ttl-after-finish", spec.ttl_after_finish_s is not None)) if given]
    if pending_work:
        raise UserError(f"{', '.join(pending_work)}: not yet supported by the embedded mode", "drop it, or use Kubernetes")
    if spec.completions > 1 or spec.parallelism > 1:
        raise UserError("--completions and --parallelism above 1 need Kubernetes (a batch Job's pods); the embedded "
                        "mode runs one attempt of a job at a time",
                        "submit one job per run (e.g. with --name-prefix), or drop them")


def embedded_notes(spec: JobSpec, runtime: str) -> list[str]:
    """What a job asked for that has no meaning for its runtime, said once at submit."""
    notes = []
    if spec.large_shm and runtime == PROCESS:
        notes.append("--large-shm does not apply to a process: it uses this machine's /dev/shm as it is")
    return notes
