"""The session's trial context: holds and releases tried out are undone unless committed."""

from __future__ import annotations

from fractions import Fraction

from runai_lite.scheduler.session import Session
from tests.scheduler.builders import a100, cluster, gpu, job, node, on_gpus, on_mig, on_share, running


def _snapshot():
    return cluster([node("n", gpu(0), gpu(1), a100(2))], [
        running(job("whole", project="a"), on_gpus("n", 0)),
        running(job("half", project="b"), on_share("n", 1, 0.5)),
        running(job("mig", project="b"), on_mig("n", 2, "3g.20gb", 0)),
    ], quotas={"a": 1, "b": 1})


def _picture(session: Session) -> tuple:
    state = session.state
    gpus = tuple((g.index, g.free_milli, dict(g.holders), tuple((i.start, i.job) for i in g.instances))
                 for g in state.all_gpus())
    return (gpus, dict(state.usage), dict(state.allocations), session.generation)


def test_a_rolled_back_trial_leaves_the_session_as_it_was() -> None:
    session = Session(_snapshot())
    before = _picture(session)
    with session.trial() as trial:
        for job_id in ("whole", "half", "mig"):
            trial.release(job_id)
        assert session.state.usage == {"a": Fraction(0), "b": Fraction(0)}
        assert session.generation > before[-1]
    assert _picture(session) == before


def test_a_committed_trial_keeps_its_changes() -> None:
    session = Session(_snapshot())
    with session.trial() as trial:
        trial.release("whole")
        trial.commit()
    assert "whole" not in session.state.allocations and session.state.gpu("n", 0).free_milli == 1000


def test_rolling_back_to_a_checkpoint_undoes_only_what_came_after() -> None:
    session = Session(_snapshot())
    with session.trial() as trial:
        trial.release("whole")
        mark = trial.checkpoint()
        allocation = trial.release("half")
        trial.hold("half", allocation)
        trial.release("mig")
        trial.rollback(mark)
        assert set(session.state.allocations) == {"half", "mig"} and session.generation == mark.generation
    assert set(session.state.allocations) == {"whole", "half", "mig"}
