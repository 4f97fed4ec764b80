"""The MIG layout algebra against the documented facts (NVIDIA MIG User Guide, mig-and-nvml.md)."""

import pytest

from runai_lite.gpu.catalog import default_catalog
from runai_lite.gpu.mig_layout import (
    Placed,
    can_place,
    find_layout,
    fits,
    fragmentation_key,
    free_runs,
    free_starts,
    is_valid,
)

A100 = default_catalog().get("A100-SXM4-40GB")
H100 = default_catalog().get("H100-SXM5-80GB")
A30 = default_catalog().get("A30")

A100_FACTS = [  # as the issue and the MIG User Guide state them
    (["1g.5gb"] * 7, True),
    (["2g.10gb"] * 3 + ["1g.5gb"], True),
    (["3g.20gb", "4g.20gb"], True),
    (["3g.20gb"] * 2, True),
    (["1g.10gb"] * 4, True),
    (["3g.20gb"] * 3, False),
    (["4g.20gb"] * 2, False),
]
# The H100 80GB has the A100's placements with the profile names scaled (mig-and-nvml.md §2.4).
H100_NAMES = {"1g.5gb": "1g.10gb", "1g.10gb": "1g.20gb", "2g.10gb": "2g.20gb", "3g.20gb": "3g.40gb",
              "4g.20gb": "4g.40gb"}

FACTS = [
    *((A100, profiles, fit) for profiles, fit in A100_FACTS),
    *((H100, [H100_NAMES[p] for p in profiles], fit) for profiles, fit in A100_FACTS),
    (A100, ["1g.5gb"] * 8, False),  # 7 compute slices
    (A100, ["1g.5gb+me"] * 2, False),  # one +me
    (A100, ["7g.40gb", "1g.5gb"], False),
    (A100, ["2g.10gb"] * 4, False),  # instance cap 3
    # A30: 4 slices
    (A30, ["1g.6gb"] * 4, True),
    (A30, ["2g.12gb"] * 2, True),
    (A30, ["2g.12gb", "1g.6gb", "1g.6gb"], True),
    (A30, ["4g.24gb"], True),
    (A30, ["4g.24gb", "1g.6gb"], False),
    (A30, ["1g.6gb"] * 5, False),
    (A30, ["2g.12gb+me"] * 2, False),
]

@pytest.mark.parametrize(("model", "profiles", "expected"), FACTS,
                         ids=[f"{m.name}:{'+'.join(p)}" for m, p, _ in FACTS])
def test_documented_fits(model, profiles, expected) -> None:
    assert fits(model, profiles) is expected
    layout = find_layout(model, profiles)
    if expected:
        assert layout is not None and is_valid(model, layout) and sorted(p.profile for p in layout) == sorted(profiles)


def test_a_live_h100_layout_is_valid() -> None:
    # 2g at 0:2, 1g at 2:1 and 3:1, 3g at 4:4 (NVIDIA/DCGM issue 138)
    layout = [Placed(0, "2g.20gb"), Placed(2, "1g.10gb"), Placed(3, "1g.10gb"), Placed(4, "3g.40gb")]
    assert is_valid(H100, layout)


def test_placements_must_start_at_allowed_slices_and_not_overlap() -> None:
    three = A100.profile("3g.20gb")
    assert not can_place(A100, [], three, 2)
    assert can_place(A100, [], three, 4)
    assert not can_place(A100, [Placed(4, "1g.5gb")], three, 4)
    assert free_starts(A100, [Placed(0, "2g.10gb"), Placed(2, "2g.10gb"), Placed(4, "2g.10gb")], three) == []
    assert free_starts(A100, [Placed(0, "2g.10gb"), Placed(2, "2g.10gb")], three) == [4]
    assert not is_valid(A100, [Placed(0, "3g.20gb"), Placed(2, "2g.10gb")])


def test_existing_instances_are_respected() -> None:
    assert find_layout(A100, ["1g.5gb"], [Placed(0, "3g.20gb"), Placed(4, "3g.20gb")]) is None  # no slice left
    assert find_layout(A100, ["1g.5gb+me"], [Placed(0, "1g.5gb+me")]) is None  # one +me, counted with existing
    assert find_layout(A100, ["3g.20gb"], [Placed(0, "4g.20gb")]) == [Placed(4, "3g.20gb")]


def test_fragmentation_prefers_large_free_runs() -> None:
    assert free_runs(A100, [Placed(2, "2g.10gb")]) == [2, 4]
    at_edge = fragmentation_key(A100, [Placed(0, "1g.5gb")])
    in_middle = fragmentation_key(A100, [Placed(3, "1g.5gb")])
    assert at_edge > in_middle
    assert fragmentation_key(A100, []) == (8, 7, sum(len(p.starts) for p in A100.profiles))
