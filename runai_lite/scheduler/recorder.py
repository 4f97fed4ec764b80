"""The plan being written, and how each of its actions is worded.

`PlanRecorder` keeps the actions of one cycle by phase (the order `applier.PHASES` applies them)
and the reason each job left pending stays pending; `result()` is the `Plan`. The functions below
word the reasons a person reads in events and `runai describe`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from ..model import MILLI, Bind, CreateMig, DestroyMig, Job, Plan, Preempt, RequestKind, Reserve
from ..units import format_bytes
from .quota import fmt_gpus, gpus_text


@dataclass
class PlanRecorder:
    preempts: list[Preempt] = field(default_factory=list)
    destroys: list[DestroyMig] = field(default_factory=list)
    creates: list[CreateMig] = field(default_factory=list)
    reserves: list[Reserve] = field(default_factory=list)
    binds: list[Bind] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)  # job id -> why it stays pending

    def record(self, action: Preempt | DestroyMig | CreateMig | Reserve | Bind) -> None:
        match action:
            case Preempt():
                self.preempts.append(action)
            case DestroyMig():
                self.destroys.append(action)
            case CreateMig():
                self.creates.append(action)
            case Reserve():
                self.reserves.append(action)
            case Bind():
                self.binds.append(action)

    def result(self) -> Plan:
        actions = [*self.preempts, *self.destroys, *self.creates, *self.reserves, *self.binds]
        return Plan(actions=tuple(actions), pending=tuple(sorted(self.pending.items())))


# -------------------------------------------------------------------------------------- wording


def asked(job: Job) -> str:
    """What the job asked for, as it was typed."""
    request = job.request
    if request is None:
        return "no GPU"
    if request.kind == RequestKind.GPUS:
        return f"--gpu {request.gpus}"
    if request.kind == RequestKind.FRACTION:
        return f"--gpu {request.fraction:g}"
    if request.kind == RequestKind.MEMORY:
        assert request.memory_bytes is not None
        return f"--gpu-memory {format_bytes(request.memory_bytes)}"
    return f"--mig-profile {request.mig_profile}"


def preempt_reason(job: Job, victim: Job, where: str, victim_deserved: Fraction) -> str:
    if victim.project == job.project:
        return (f"preempted by {job.type.display.lower()} job {job.name} (priority {job.priority} > "
                f"{victim.priority}), which needs its resources on {where}")
    return (f"reclaimed for job {job.name} of project {job.project}, which is within its quota; "
            f"project {victim.project} is over its {gpus_text(victim_deserved)} deserved")


def destroy_reason(job: Job, profile: str, owner: Job | None) -> str:
    if owner is None:
        return f"idle; its slices are needed for a {profile} for job {job.name}"
    return (f"partition of preempted job {owner.name}; its slices are needed for a "
            f"{profile} for job {job.name}")


def create_reason(job: Job, profile: str, start: int, gpu_label: str) -> str:
    return f"{profile} at slice {start} of {gpu_label} for job {job.name} ({asked(job)})"


def reserve_reason(job: Job, gpu_label: str) -> str:
    return f"{gpu_label} becomes shared by fractions (first: {job.name})"


def mig_what(profile: str, start: int, where: str, reused: bool, after_preempting: bool) -> str:
    done = "existing idle instance" if reused and not after_preempting else (
        "instance of the preempted job" if reused else "new instance")
    return f"{profile} at slice {start} on {where} ({done})"


def fraction_what(share_milli: int, where: str, memory_mib: int | None) -> str:
    return f"{fmt_gpus(Fraction(share_milli, MILLI))} of {where} ({memory_mib}MiB)"


def whole_what(node: str, indices: list[int]) -> str:
    count = len(indices)
    return f"{count} whole GPU{'s' if count > 1 else ''} on {node} (GPU {', '.join(str(i) for i in indices)})"


def bind_reason(job: Job, what: str, how: str, victims: list[str]) -> str:
    suffix = f" after preempting {', '.join(victims)}" if victims else ""
    return f"{asked(job)} → {what}{f', {how}' if how else ''}{suffix}"
