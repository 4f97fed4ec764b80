"""Fault specs for the simulated driver."""

import random

import pytest

from runai_lite.errors import UserError
from runai_lite.gpu.faults import parse_faults


def test_counted_rule_fails_exactly_the_next_n_matching_calls():
    plan = parse_faults("destroy:in-use:x2")
    rng = random.Random(0)
    fired = []
    for operation in ["create", "destroy", "destroy", "destroy"]:
        rule, plan = plan.draw(operation, rng)
        fired.append(rule.code if rule else None)
    assert fired == [None, "in-use", "in-use", None]
    assert plan.spec() == ""


def test_probability_rule_is_reproducible_from_its_seed():
    def failures(seed):
        plan = parse_faults(f"create:timeout:0.5,seed={seed}")
        rng = random.Random(plan.seed)
        return [plan.draw("create", rng)[0] is not None for _ in range(50)]

    assert failures(3) == failures(3)
    assert 5 < sum(failures(3)) < 45
    assert failures(3) != failures(4)


def test_any_applies_to_both_operations_and_spec_round_trips():
    plan = parse_faults("any:unknown:x1, create:insufficient-resources:0.25, seed=9")
    assert parse_faults(plan.spec()) == plan
    rule, _ = plan.draw("destroy", random.Random(0))
    assert rule is not None and rule.code == "unknown"


@pytest.mark.parametrize(
    "text",
    ["create:in-use", "boot:in-use:1", "create:exploded:0.1", "create:in-use:0", "create:in-use:1.5", "create:in-use:x0", "seed=abc"],
)
def test_bad_fault_specs_are_user_errors(text):
    with pytest.raises(UserError):
        parse_faults(text)


def test_empty_spec_is_no_faults():
    assert parse_faults(None).rules == () and parse_faults("  ").rules == ()


def test_after_option_round_trips_and_other_options_are_refused():
    plan = parse_faults("create:timeout:x1:after")
    assert plan.rules[0].after and parse_faults(plan.spec()) == plan
    with pytest.raises(UserError, match="only option"):
        parse_faults("create:timeout:x1:before")


@pytest.mark.parametrize("text", ["create:in-use:x" + "9" * 5000, "seed=" + "9" * 5000, "seed=١", "create:in-use:nan"])
def test_hostile_fault_specs_are_user_errors(text):
    with pytest.raises(UserError):
        parse_faults(text)

