"""Flags → GpuRequest validation, and a request × a GPU model → its options."""

import pytest

from runai_lite.errors import UserError
from runai_lite.gpu.catalog import default_catalog
from runai_lite.gpu.requests import mig_candidates, options_for, request_from_flags, share_for_memory
from runai_lite.model import GpuRequest

A100 = default_catalog().get("A100-SXM4-40GB")
H100 = default_catalog().get("H100-SXM5-80GB")
A30 = default_catalog().get("A30")
V100 = default_catalog().get("V100-SXM2-16GB")


@pytest.mark.parametrize("flags", [
    {"gpu": "0.5", "gpu_memory": "4G"},
    {"gpu": "1", "mig_profile": "1g.5gb"},
    {"gpu_memory": "4G", "mig_profile": "1g.5gb"},
    {"gpu": "1", "gpu_memory": "4G", "mig_profile": "1g.5gb"},
])
def test_gpu_flags_are_mutually_exclusive(flags: dict) -> None:
    with pytest.raises(UserError, match="cannot be used together"):
        request_from_flags(**flags)


@pytest.mark.parametrize(("value", "expected"), [
    ("0.5", GpuRequest(fraction=0.5)), ("0.25", GpuRequest(fraction=0.25)), ("1", GpuRequest(gpus=1)),
    ("2", GpuRequest(gpus=2)), ("4.0", GpuRequest(gpus=4)), (0.75, GpuRequest(fraction=0.75)),
])
def test_gpu_is_a_fraction_or_a_whole_number(value, expected) -> None:
    assert request_from_flags(gpu=value) == expected


@pytest.mark.parametrize("value", ["1.5", "0", "-1", "abc", "nan", "inf", "65", "0.0001", ""])
def test_bad_gpu_values_are_user_errors(value: str) -> None:
    with pytest.raises(UserError):
        request_from_flags(gpu=value)


def test_gpu_memory_must_be_at_least_100mb() -> None:
    with pytest.raises(UserError, match="too small") as caught:
        request_from_flags(gpu_memory="50MB")
    assert "100MB" in str(caught.value)
    assert request_from_flags(gpu_memory="100MB") == GpuRequest(memory_bytes=100 * 10**6)
    with pytest.raises(UserError):
        request_from_flags(gpu_memory="10XB")


def test_unknown_mig_profile_lists_the_valid_ones() -> None:
    with pytest.raises(UserError, match="unknown MIG profile '2g.11gb'") as caught:
        request_from_flags(mig_profile="2g.11gb")
    for name in ("1g.5gb", "2g.10gb", "3g.20gb", "7g.40gb", "1g.6gb", "3g.40gb"):
        assert name in str(caught.value)
    assert request_from_flags(mig_profile="3g.20gb") == GpuRequest(mig_profile="3g.20gb")


def test_no_flags_means_no_gpu() -> None:
    assert request_from_flags() is None


def names(profiles) -> list[str]:
    return [p.name for p in profiles]


def test_10gb_on_an_a100_40gb_fits_1g10gb_then_2g10gb() -> None:
    found = names(mig_candidates(GpuRequest(memory_bytes=10 * 10**9), A100))
    assert found[:2] == ["1g.10gb", "2g.10gb"]
    assert "1g.5gb" not in found and found == ["1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"]


def test_20g_fits_3g20gb_first() -> None:
    assert names(mig_candidates(GpuRequest(memory_bytes=20 * 10**9), A100))[0] == "3g.20gb"
    assert names(mig_candidates(GpuRequest(memory_bytes=20 * 10**9), H100))[0] == "1g.20gb"
    assert names(mig_candidates(GpuRequest(memory_bytes=10 * 10**9), A30)) == ["2g.12gb", "4g.24gb"]


def test_memory_requests_never_get_me_variants_and_profiles_only_exactly() -> None:
    assert all("+" not in p for p in names(mig_candidates(GpuRequest(memory_bytes=4 * 10**9), A100)))
    assert names(mig_candidates(GpuRequest(mig_profile="1g.5gb+me"), A100)) == ["1g.5gb+me"]
    assert names(mig_candidates(GpuRequest(mig_profile="2g.10gb"), A100)) == ["2g.10gb"]
    assert mig_candidates(GpuRequest(mig_profile="2g.10gb"), H100) == ()
    assert mig_candidates(GpuRequest(memory_bytes=50 * 10**9), A100) == ()
    assert mig_candidates(GpuRequest(fraction=0.5), A100) == ()
    assert mig_candidates(GpuRequest(memory_bytes=4 * 10**9), V100) == ()


def test_fraction_and_memory_options_on_a_plain_gpu() -> None:
    half = options_for(GpuRequest(fraction=0.5), V100)
    assert (half.share_milli, half.memory_mib, half.mig_profiles) == (500, V100.memory_mib // 2, ())
    eight = options_for(GpuRequest(memory_bytes=8 * 10**9), V100)
    assert eight.share_milli == share_for_memory(8 * 10**9, V100.memory_mib) == 473
    assert eight.memory_mib == 7630
    assert options_for(GpuRequest(memory_bytes=20 * 10**9), V100).share_milli is None
    assert GpuRequest(fraction=0.3333).fraction_milli == 334
