"""The plan-applier protocol: one handler per action, called phase by phase in the scheduler's order."""

from __future__ import annotations

import typing

import pytest

from runai_lite.model import Action, Allocation, Bind, CreateMig, DestroyMig, Plan, Preempt, Reserve
from runai_lite.scheduler.applier import PHASES, Outcome, Phase, PlanApplier, apply, phase_of


class Recorder:
    def __init__(self, outcomes: dict[str, Outcome] | None = None) -> None:
        self.calls: list[str] = []
        self.outcomes = outcomes or {}

    def _did(self, what: str) -> Outcome:
        self.calls.append(what)
        return self.outcomes.get(what, Outcome.APPLIED)

    def preempt(self, action: Preempt) -> Outcome:
        return self._did(f"preempt {action.job}")

    def destroy_mig(self, action: DestroyMig) -> Outcome:
        return self._did(f"destroy {action.start}")

    def create_mig(self, action: CreateMig) -> Outcome:
        return self._did(f"create {action.start}")

    def reserve(self, action: Reserve) -> Outcome:
        return self._did(f"reserve {action.gpu_index}")

    def bind(self, action: Bind) -> Outcome:
        return self._did(f"bind {action.job}")

    def phase_done(self, phase: Phase) -> None:
        self.calls.append(f"done {phase}")


ALLOC = Allocation(kind="gpu", node="n", gpu_indices=(0,))
SHUFFLED = Plan(actions=(
    Bind(job="b", allocation=ALLOC, reason="r"),
    Reserve(node="n", gpu_index=1, reason="r"),
    CreateMig(node="n", gpu_index=0, profile="1g.5gb", start=6, reason="r"),
    Preempt(job="v1", reason="r"),
    DestroyMig(node="n", gpu_index=0, profile="1g.5gb", start=4, reason="r"),
    Preempt(job="v2", reason="r"),
))


def test_actions_are_dispatched_phase_by_phase_keeping_the_plan_order_within_a_phase() -> None:
    recorder = Recorder()
    result = apply(SHUFFLED, recorder)
    assert recorder.calls == [
        "preempt v1", "preempt v2", "done preempt", "destroy 4", "done destroy-mig", "create 6", "done create-mig",
        "reserve 1", "done reserve", "bind b", "done bind",
    ]
    assert result.applied == 6 and result.stopped_after is None


def test_a_blocked_action_finishes_its_phase_and_stops_the_plan() -> None:
    recorder = Recorder({"preempt v1": Outcome.BLOCKED})
    result = apply(SHUFFLED, recorder)
    assert recorder.calls == ["preempt v1", "preempt v2"]
    assert result.stopped_after is Phase.PREEMPT
    assert result.counts == {Outcome.APPLIED: 1, Outcome.SKIPPED: 0, Outcome.BLOCKED: 1, Outcome.REFUSED: 0}


@pytest.mark.parametrize("first, preempted", [
    (Outcome.APPLIED, ["v1", "v2"]),
    (Outcome.BLOCKED, ["v1", "v2"]),  # still stopping: it was preempted all the same
    (Outcome.REFUSED, ["v2"]),  # a disruption budget said no: nothing happened to it
    (Outcome.SKIPPED, ["v2"]),
])
def test_preempted_are_the_victims_the_backend_did_stop(first: Outcome, preempted: list[str]) -> None:
    result = apply(SHUFFLED, Recorder({"preempt v1": first}))
    assert result.preempted == preempted
    assert (result.stopped_after is Phase.PREEMPT) is (first in (Outcome.BLOCKED, Outcome.REFUSED))


def test_skipped_actions_do_not_stop_the_plan() -> None:
    recorder = Recorder({"preempt v1": Outcome.SKIPPED})
    result = apply(SHUFFLED, recorder)
    assert recorder.calls[-1] == "done bind" and result.counts[Outcome.SKIPPED] == 1


def test_every_action_type_has_its_own_phase_and_handler() -> None:
    action_types = typing.get_args(typing.get_args(Action)[0])
    samples = {Preempt: SHUFFLED.actions[3], DestroyMig: SHUFFLED.actions[4], CreateMig: SHUFFLED.actions[2],
               Reserve: SHUFFLED.actions[1], Bind: SHUFFLED.actions[0]}
    assert set(action_types) == set(samples)
    phases = [phase_of(samples[t]) for t in action_types]
    assert sorted(phases, key=PHASES.index) == list(PHASES)
    handlers = {name for name in vars(PlanApplier) if not name.startswith("_")} - {"phase_done"}
    assert handlers == {phase.value.replace("-", "_") for phase in PHASES}
