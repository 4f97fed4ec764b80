"""The LP bound of benchmarks/mig_bound.py on the jobs a mixed cluster (dynamic-MIG GPUs and plain
GPUs shared by fractions) could serve: exact where one resource decides, and never below the best
schedule a brute force finds on tiny cases."""

from __future__ import annotations

import pytest

pytest.importorskip("scipy")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from benchmarks.mig_bound import GpuKind, Stay, maximal_instants, served_bound, share_of  # noqa: E402
from runai_lite.gpu.catalog import default_catalog  # noqa: E402
from runai_lite.model import MILLI  # noqa: E402

A100 = default_catalog().get("A100-SXM4-40GB")
ONE_A100 = [GpuKind("A100", 1, A100.memory_mib, A100)]
ONE_PLAIN = [GpuKind("V100", 1, 16384)]


@pytest.mark.parametrize("kinds,stays,expected", [
    (ONE_A100, [Stay(4000, 0, 5)] * 8, 7.0),  # seven compute slices: seven 1g.5gb
    (ONE_A100, [Stay(30000, 0, 5), Stay(30000, 2, 6)], 1.0),  # both need 7g.40gb at once
    (ONE_A100, [Stay(30000, 0, 1), Stay(30000, 1, 2)], 2.0),  # one leaves as the other arrives
    (ONE_A100, [Stay(19000, 0, 3)] * 3, 2.0),  # three 3g.20gb need 12 of 8 memory slices
    (ONE_PLAIN, [Stay(6000, 0, 2)] * 3, MILLI / share_of(6000, 16384)),  # shares add up (relaxed: 2.72)
    (ONE_PLAIN, [Stay(9000, 0, 2)] * 2, 1.0),  # over half a GPU each: one per GPU
    (ONE_PLAIN + ONE_A100, [Stay(50000, 0, 1)], 0.0),  # fits no GPU
    (ONE_PLAIN + ONE_A100, [Stay(9000, 0, 2)] * 3, 3.0),  # one on the plain GPU, two on the A100
])
def test_the_bound_on_small_clusters(kinds, stays, expected):
    assert served_bound(stays, kinds) == pytest.approx(expected, abs=1e-6)


def test_only_instants_after_the_last_arrival_before_a_departure_are_kept():
    stays = [Stay(1, 0, 4), Stay(1, 1, 2), Stay(1, 2, 5), Stay(1, 3, 6), Stay(1, 7, 8)]
    assert maximal_instants(stays) == [1, 3, 7]


def _options(stay: Stay, kinds: list[GpuKind]) -> list[tuple[int, object]]:
    """Where one job can run: (kind, share) on a plain GPU, (kind, (profile, start)) on a MIG GPU."""
    found = []
    for k, kind in enumerate(kinds):
        if kind.mig is None:
            share = share_of(stay.memory_mib, kind.memory_mib)
            if share is not None:
                found.append((k, share))
            continue
        for profile in kind.mig.profiles:
            if profile.memory_mib >= stay.memory_mib and "+" not in profile.name:
                found.extend((k, (profile, start)) for start in profile.starts)
    return found


def _fits_together(placed: list[tuple[int, object]], kinds: list[GpuKind]) -> bool:
    for k, kind in enumerate(kinds):
        here = [option for kind_index, option in placed if kind_index == k]
        if kind.mig is None:
            if sum(here) > MILLI:
                return False
            continue
        slices = [s for profile, start in here for s in range(start, start + profile.memory_slices)]
        if len(slices) != len(set(slices)) or sum(profile.compute for profile, _ in here) > kind.mig.compute_slices:
            return False
        for profile, _ in here:
            if sum(1 for other, _ in here if other.name == profile.name) > profile.max_instances:
                return False
    return True


def best_schedule(stays: list[Stay], kinds: list[GpuKind]) -> int:
    """The most jobs served (on arrival, to the end, never moved), over every choice of jobs,
    GPU and MIG placement: one GPU per kind."""
    times = sorted({s.at for s in stays})
    best = 0

    def extend(j: int, chosen: list[tuple[Stay, tuple[int, object]]]) -> None:
        nonlocal best
        best = max(best, len(chosen))
        if j == len(stays) or len(chosen) + len(stays) - j <= best:
            return
        for option in _options(stays[j], kinds):
            trial = [*chosen, (stays[j], option)]
            if all(_fits_together([o for s, o in trial if s.at <= t < s.leaves], kinds) for t in times):
                extend(j + 1, trial)
        extend(j + 1, chosen)

    extend(0, [])
    return best


stays_strategy = st.lists(st.builds(Stay, st.sampled_from([4000, 9000, 15000, 19000, 30000]), st.integers(0, 3),
                                    st.integers(1, 3)).map(lambda s: Stay(s.memory_mib, s.at, s.at + s.leaves)),
                          min_size=1, max_size=5)


@settings(max_examples=25, deadline=None)
@given(stays_strategy, st.sampled_from([ONE_A100, ONE_PLAIN, ONE_PLAIN + ONE_A100]))
def test_the_bound_is_never_below_the_best_schedule(stays, kinds):
    assert served_bound(stays, kinds) >= best_schedule(stays, kinds) - 1e-6
