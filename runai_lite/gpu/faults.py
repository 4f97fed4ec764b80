"""Injected NVML-like failures for the simulated driver, so tests and the fault harness can drive a
real daemon through the errors a real GPU returns.

A fault spec is a comma-separated list of rules `OPERATION:ERROR:AMOUNT`, plus an optional
`seed=N` for the random draws:

- OPERATION: `create`, `destroy` or `any`;
- ERROR: `insufficient-resources`, `in-use`, `timeout` or `unknown`;
- AMOUNT: a probability in (0, 1] (`0.3`: each call fails with chance 0.3), or `xN` (the next N
  calls fail, then the rule is used up);
- optionally `:after`: the call takes effect and *then* reports the error, as when NVML acted but
  the answer was lost (a timeout after the instance was made): the harshest case for leaks.

Example: `create:insufficient-resources:0.3,destroy:in-use:x2,create:timeout:x1:after,seed=7`.
Pure functions; the simulated driver keeps the spec and draws from a seeded RNG.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from typing import Literal, get_args

from ..errors import UserError

FaultOperation = Literal["create", "destroy", "any"]
FaultCode = Literal["insufficient-resources", "in-use", "timeout", "unknown"]
FAULTS_ENV = "RUNAI_LITE_SIM_FAULTS"
_COUNTED = re.compile(r"^x([0-9]{1,9})$")
_SEED = re.compile(r"^[0-9]{1,18}$")
_EXAMPLE = "create:insufficient-resources:0.3,destroy:in-use:x2,seed=7"


@dataclass(frozen=True, slots=True)
class FaultRule:
    operation: FaultOperation
    code: FaultCode
    probability: float | None = None  # each matching call fails with this chance
    remaining: int | None = None  # or: the next `remaining` matching calls fail
    after: bool = False  # the call takes effect before the error is reported

    def spec(self) -> str:
        amount = f"x{self.remaining}" if self.remaining is not None else repr(self.probability)
        return f"{self.operation}:{self.code}:{amount}" + (":after" if self.after else "")

    def applies_to(self, operation: str) -> bool:
        return self.operation in ("any", operation)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    rules: tuple[FaultRule, ...] = ()
    seed: int = 0

    def spec(self) -> str:
        """The canonical text, which parses back to this plan ("" when there are no rules)."""
        if not self.rules:
            return ""
        return ",".join([*(r.spec() for r in self.rules), f"seed={self.seed}"])

    def draw(self, operation: str, rng: random.Random) -> tuple[FaultRule | None, FaultPlan]:
        """The rule that fails this call (or None), and the plan left afterwards (a counted rule
        that fired has one failure fewer; one used up is dropped)."""
        for index, rule in enumerate(self.rules):
            if not rule.applies_to(operation):
                continue
            if rule.remaining is not None:
                left = rule.remaining - 1
                rules = list(self.rules)
                if left:
                    rules[index] = replace(rule, remaining=left)
                else:
                    del rules[index]
                return rule, replace(self, rules=tuple(rules))
            if rule.probability is not None and rng.random() < rule.probability:
                return rule, self
        return None, self


def parse_faults(text: str | None) -> FaultPlan:
    """Parse a fault spec (see the module doc); "" or None is no faults."""
    if not text or not text.strip():
        return FaultPlan()
    rules: list[FaultRule] = []
    seed = 0
    for part in (p.strip() for p in text.split(",")):
        if part.startswith("seed="):
            value = part.removeprefix("seed=")
            if not _SEED.match(value):
                raise UserError(f"the fault seed {value!r} must be a whole number", f"e.g. {_EXAMPLE}")
            seed = int(value)
            continue
        rules.append(_parse_rule(part))
    return FaultPlan(tuple(rules), seed if rules else 0)  # without rules a seed means nothing


def _parse_rule(part: str) -> FaultRule:
    fields = [f.strip() for f in part.split(":")]
    if len(fields) not in (3, 4):
        raise UserError(f"cannot read the fault rule {part!r}", f"write OPERATION:ERROR:AMOUNT[:after], e.g. {_EXAMPLE}")
    if len(fields) == 4 and fields[3] != "after":
        raise UserError(f"unknown option {fields[3]!r} in fault rule {part!r}", "the only option is :after")
    operation, code, amount = fields[:3]
    after = len(fields) == 4
    if operation not in get_args(FaultOperation):
        raise UserError(f"unknown operation {operation!r} in fault rule {part!r}", "use create, destroy or any")
    if code not in get_args(FaultCode):
        raise UserError(f"unknown error {code!r} in fault rule {part!r}", "use one of " + ", ".join(get_args(FaultCode)))
    counted = _COUNTED.match(amount)
    if counted:
        if int(counted[1]) < 1:
            raise UserError(f"{part!r} fails no call", "write x1 or more")
        return FaultRule(operation, code, remaining=int(counted[1]), after=after)  # type: ignore[arg-type]
    try:
        probability = float(amount)
    except ValueError:
        probability = -1.0
    if not 0 < probability <= 1:
        raise UserError(
            f"the amount {amount!r} in fault rule {part!r} must be a probability in (0, 1] or xN for the next N calls",
            f"e.g. {_EXAMPLE}",
        )
    return FaultRule(operation, code, probability=probability, after=after)  # type: ignore[arg-type]
