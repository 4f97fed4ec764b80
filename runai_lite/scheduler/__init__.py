"""The pure decision engine: a `Snapshot` in, a `Plan` out. No I/O, no clock, no unseeded randomness.

- `plan(snapshot)`: one scheduling cycle (DESIGN.md §4);
- `apply_plan(snapshot, plan)`: the pure effect of a plan, for tests and simulations;
- `applier.PlanApplier` / `applier.apply`: how every backend carries out a plan, one handler per
  action, phase by phase in the order the scheduler writes them;
- `invariants.check_snapshot` / `invariants.check_plan`: backend-independent checks.

Layout, one concern per module (actions separated from policies, in the KAI-Scheduler spirit):

- `engine`: the cycle: order pending jobs, allocate, else wait for stopping jobs, else preempt;
- `actions/allocate`, `actions/preempt`: what can be done for one job (free capacity; victims);
- `ordering`, `quota`, `mig_choice`, `placement/`: the policies actions consult (who goes first;
  deserved quota and reclaim; where a MIG profile goes and what it costs; fraction placement);
- `state` (the working copy of the snapshot), `shared_gpus` (the placement package's view of it),
  `session` (commits a chosen option; trials rolled back), `recorder` (the plan being written and
  its wording), `mig_cache` (MIG choices per layout), `reasons` (why a job stays pending);
- `carried`: `CarriedPlanner`, `plan` keeping the working state between calls (a controller's
  planner: only what changed is built again).
"""

from .engine import plan
from .simulate import apply_plan

__all__ = ["apply_plan", "plan"]
