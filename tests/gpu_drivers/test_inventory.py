"""Parsing declared simulated inventories: MODEL:COUNT[:mig-on|:mig-off][,...]."""

import pytest

from runai_lite.errors import UserError
from runai_lite.gpu.inventory import parse_inventory


def test_one_model_indexes_gpus_in_order():
    inventory = parse_inventory("A100-SXM4-40GB:2")
    gpus = inventory.gpus()
    assert [g.index for g in gpus] == [0, 1]
    assert {g.model.name for g in gpus} == {"A100-SXM4-40GB"}
    assert all(g.mig == "on-demand" and not g.mig_enabled for g in gpus)  # off, as from the factory


def test_several_models_keep_declaration_order_and_plain_gpus_have_mig_off():
    gpus = parse_inventory("H100-SXM5-80GB:2, T4:4").gpus()
    assert [g.model.name for g in gpus] == ["H100-SXM5-80GB"] * 2 + ["T4"] * 4
    assert [g.mig for g in gpus] == ["on-demand"] * 2 + ["off"] * 4
    assert not any(g.mig_enabled for g in gpus)


def test_aliases_resolve_to_catalog_names_and_spec_is_canonical():
    inventory = parse_inventory("nvidia a100-sxm4-40gb:1,Tesla T4:1")
    assert inventory.spec() == "A100-SXM4-40GB:1,T4:1"
    assert parse_inventory(inventory.spec()) == inventory


@pytest.mark.parametrize(("text", "mig", "enabled"), [("A100-SXM4-40GB:1:mig-off", "off", False),
                                                      ("A100-SXM4-40GB:1:mig-on", "on", True),
                                                      ("A100-SXM4-40GB:1", "on-demand", False)])
def test_mig_settings_are_declared_and_round_trip(text, mig, enabled):
    inventory = parse_inventory(text)
    assert (inventory.gpus()[0].mig, inventory.gpus()[0].mig_enabled) == (mig, enabled)
    assert inventory.spec() == text
    assert parse_inventory(inventory.spec()) == inventory


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("A100-SXM4-40GB", "MODEL:COUNT"),
        ("A100-SXM4-40GB:0", "whole number"),
        ("A100-SXM4-40GB:-1", "whole number"),
        ("A100-SXM4-40GB:1.5", "whole number"),
        ("A100-SXM4-40GB:1:mig-maybe", "unknown option"),
        ("T4:1:mig-off", "does not support MIG"),
        ("A100-SXM4-40GB:1,,T4:1", "cannot read"),
        ("A100-SXM4-40GB:1000,T4:100", "at most"),
    ],
)
def test_bad_specs_are_user_errors_saying_what_is_wrong(text, expected):
    with pytest.raises(UserError, match=expected):
        parse_inventory(text)


def test_unknown_model_lists_known_models():
    with pytest.raises(UserError) as caught:
        parse_inventory("Z900:1")
    assert "Z900" in caught.value.message
    assert "A100-SXM4-40GB" in caught.value.hint and "T4" in caught.value.hint


@pytest.mark.parametrize("text", ["T4:" + "9" * 5000, "T4:１", "T4:1\x00", "Ä100:1", ":" * 3000])
def test_hostile_specs_are_user_errors_too(text):
    with pytest.raises(UserError):
        parse_inventory(text)

