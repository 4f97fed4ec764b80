"""One way to carry out a plan: a `PlanApplier` has one handler per action, `apply` calls them.

The scheduler writes a plan's actions in a fixed order of phases (`PHASES`): every preemption,
then every MIG partition destroyed, then every partition created, then every GPU reserved for
fractions, then every bind. Each phase needs what the earlier ones did: a created partition takes
the slices a destroyed one freed, which a preempted job held; a bind uses the partition or the
room. `apply` dispatches in exactly that order, whatever order the actions arrive in, so no
applier re-derives it (KAI-Scheduler's Statement.Commit over its operations).

Appliers:
- `scheduler.simulate.apply_plan`: the pure effect on a snapshot (tests, benchmarks);
- the embedded daemon records a plan as intents in its store;
- the Kubernetes controller evicts, writes MIG layouts, keeps reservation pods and binds.

Each handler says what became of its action (`Outcome`): `APPLIED`, `SKIPPED` (it no longer applies,
e.g. the job was deleted since the snapshot; the rest of the plan goes on) or `BLOCKED` (it could not
be carried out and later phases count on it, e.g. a victim whose eviction was refused still holds its
GPU). After a phase with a blocked action, `apply` stops: the next cycle plans from what is there.
`phase_done` is called after each phase that completed, e.g. to write the MIG layouts once before
any pod claims a partition in them.

Adding an action to `model.Action` makes `_dispatch`'s `assert_never` fail type checking until the
protocol has a handler for it and every applier implements it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, assert_never

from ..model import Action, Bind, CreateMig, DestroyMig, Plan, Preempt, Reserve


class Phase(StrEnum):
    """The phases of a plan, in the order they are applied."""

    PREEMPT = "preempt"
    DESTROY_MIG = "destroy-mig"
    CREATE_MIG = "create-mig"
    RESERVE = "reserve"
    BIND = "bind"


PHASES: tuple[Phase, ...] = tuple(Phase)


class Outcome(StrEnum):
    APPLIED = "applied"
    SKIPPED = "skipped"
    BLOCKED = "blocked"  # it took effect but is not done yet (a victim still stopping): the rest waits
    REFUSED = "refused"  # the backend said no (a disruption budget): nothing changed, and the rest waits


class PlanApplier(Protocol):
    """Carries out the actions of a plan; `apply` calls one handler per action, phase by phase.

    Handlers are called with the plan's actions in the plan's order within each phase. They do the
    backend's effect (or record the intent to) and return its `Outcome`; they never reorder, drop
    or add actions (what no longer applies is `SKIPPED`).
    """

    def preempt(self, action: Preempt) -> Outcome:
        """Stop (or requeue) the victim so that its resources free up."""
        ...

    def destroy_mig(self, action: DestroyMig) -> Outcome:
        """Remove the MIG partition at `action.start` of the GPU."""
        ...

    def create_mig(self, action: CreateMig) -> Outcome:
        """Create a MIG partition of `action.profile` at `action.start` of the GPU."""
        ...

    def reserve(self, action: Reserve) -> Outcome:
        """The GPU becomes shared by fractions (keep other schedulers off it)."""
        ...

    def bind(self, action: Bind) -> Outcome:
        """Give the job its allocation (it starts once what it was given is free)."""
        ...

    def phase_done(self, phase: Phase) -> None:
        """Called after each phase that was not blocked (also when it had no action)."""
        ...


@dataclass
class Applied:
    """What `apply` did: outcomes counted, the jobs it preempted (victims stopping included, those
    refused not), and the phase it stopped after, if it was blocked."""

    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    preempted: list[str] = field(default_factory=list)
    stopped_after: Phase | None = None

    @property
    def applied(self) -> int:
        return self.counts[Outcome.APPLIED]


def phase_of(action: Action) -> Phase:
    match action:
        case Preempt():
            return Phase.PREEMPT
        case DestroyMig():
            return Phase.DESTROY_MIG
        case CreateMig():
            return Phase.CREATE_MIG
        case Reserve():
            return Phase.RESERVE
        case Bind():
            return Phase.BIND
        case _:
            assert_never(action)


def apply(plan: Plan, applier: PlanApplier) -> Applied:
    """Carry out `plan` through `applier`, phase by phase in `PHASES` order."""
    by_phase: dict[Phase, list[Action]] = {phase: [] for phase in PHASES}
    for action in plan.actions:
        by_phase[phase_of(action)].append(action)
    result = Applied()
    for phase in PHASES:
        blocked = False
        for action in by_phase[phase]:
            outcome = _dispatch(applier, action)
            result.counts[outcome] += 1
            if isinstance(action, Preempt) and outcome in (Outcome.APPLIED, Outcome.BLOCKED):
                result.preempted.append(action.job)
            blocked = blocked or outcome in (Outcome.BLOCKED, Outcome.REFUSED)
        if blocked:
            result.stopped_after = phase
            return result
        applier.phase_done(phase)
    return result


def _dispatch(applier: PlanApplier, action: Action) -> Outcome:
    match action:
        case Preempt():
            return applier.preempt(action)
        case DestroyMig():
            return applier.destroy_mig(action)
        case CreateMig():
            return applier.create_mig(action)
        case Reserve():
            return applier.reserve(action)
        case Bind():
            return applier.bind(action)
        case _:
            assert_never(action)
