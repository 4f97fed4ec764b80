"""The pure decision engine: a `Snapshot` in, a `Plan` out. No I/O, no clock, no unseeded randomness.

- `plan(snapshot)`: one scheduling cycle (DESIGN.md §4);
- `apply_plan(snapshot, plan)`: the pure effect of a plan, for tests and simulations;
- `invariants.check_snapshot` / `invariants.check_plan`: backend-independent checks.
"""

from .engine import plan
from .simulate import apply_plan

__all__ = ["apply_plan", "plan"]
