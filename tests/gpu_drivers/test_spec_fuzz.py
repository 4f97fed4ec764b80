"""Any text given as a simulated inventory or a fault spec parses to a canonical form that reads
back the same, or is a UserError: never another exception."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from runai_lite.errors import UserError
from runai_lite.gpu.faults import parse_faults
from runai_lite.gpu.inventory import parse_inventory


@pytest.mark.parametrize("parse", [parse_inventory, parse_faults])
@given(text=st.text(max_size=60))
@example(text="seed=5")
@example(text="create:in-use:0.123456789")
@example(text="any:timeout:1:after, seed=2")
@example(text="a100-sxm4-40gb:07, t4:1")
def test_any_text_parses_to_a_canonical_form_or_is_a_user_error(parse, text):
    try:
        parsed = parse(text)
    except UserError:
        return
    assert parse(parsed.spec()) == parsed
