"""The GPU/MIG catalog, looked up by the names NVML reports."""

import pytest

from runai_lite.errors import UserError
from runai_lite.gpu.catalog import default_catalog

CATALOG = default_catalog()


@pytest.mark.parametrize(("nvml_name", "model"), [
    ("NVIDIA A100-SXM4-40GB", "A100-SXM4-40GB"),
    ("NVIDIA A100-PCIE-40GB", "A100-SXM4-40GB"),
    ("NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB"),
    ("NVIDIA A100 80GB PCIe", "A100-SXM4-80GB"),
    ("NVIDIA A30", "A30"),
    ("NVIDIA H100 80GB HBM3", "H100-SXM5-80GB"),
    ("NVIDIA H100 PCIe", "H100-PCIE-80GB"),
    ("NVIDIA H100 NVL", "H100-NVL-94GB"),
    ("NVIDIA H200", "H200-141GB"),
    ("NVIDIA GH200 480GB", "GH200-96GB"),
    ("NVIDIA B200", "B200-180GB"),
    ("Tesla V100-SXM2-16GB", "V100-SXM2-16GB"),
    ("Tesla V100-PCIE-32GB", "V100-SXM2-32GB"),
    ("Tesla T4", "T4"),
    ("NVIDIA L4", "L4"),
    ("NVIDIA L40S", "L40S"),
    ("NVIDIA A10", "A10"),
    ("Tesla P100-PCIE-16GB", "P100-PCIE-16GB"),
    ("NVIDIA RTX 6000 Ada Generation", "RTX-6000-Ada"),
    ("nvidia a100-sxm4-40gb", "A100-SXM4-40GB"),
])
def test_lookup_by_nvml_name(nvml_name: str, model: str) -> None:
    assert CATALOG.get(nvml_name).name == model


def test_unknown_model_is_none_or_a_user_error_listing_known_models() -> None:
    assert CATALOG.find("NVIDIA GeForce GTX 1080") is None
    with pytest.raises(UserError, match="unknown GPU model") as caught:
        CATALOG.get("G3")
    assert "A100-SXM4-40GB" in str(caught.value)


@pytest.mark.parametrize("model", [m.name for m in CATALOG.models if m.mig_capable])
def test_every_mig_model_is_consistent(model: str) -> None:
    info = CATALOG.get(model)
    assert (info.compute_slices, info.memory_slices) == ((4, 4) if model == "A30" else (7, 8))
    for profile in info.profiles:
        assert profile.compute <= info.compute_slices and profile.memory_mib < info.memory_mib
        assert all(0 <= s and s + profile.memory_slices <= info.memory_slices for s in profile.starts)
        if "+me" in profile.name:
            assert profile.max_instances == 1
    full = max(info.profiles, key=lambda p: p.memory_slices)
    assert (full.memory_slices, full.compute, full.starts) == (info.memory_slices, info.compute_slices, (0,))


def test_documented_a100_40gb_profiles() -> None:
    a100 = CATALOG.get("A100-SXM4-40GB")
    table = {p.name: (p.id, p.max_instances, p.compute, p.memory_slices, p.starts) for p in a100.profiles}
    assert table["1g.5gb"] == (19, 7, 1, 1, (0, 1, 2, 3, 4, 5, 6))
    assert table["1g.10gb"] == (15, 4, 1, 2, (0, 2, 4, 6))
    assert table["2g.10gb"] == (14, 3, 2, 2, (0, 2, 4))
    assert table["3g.20gb"] == (9, 2, 3, 4, (0, 4))
    assert table["4g.20gb"] == (5, 1, 4, 4, (0,))
    assert table["7g.40gb"] == (0, 1, 7, 8, (0,))
    assert a100.profile("2g.10gb").memory_mib == 9856  # 9.62 GiB: fits a 10GB (10^10 bytes) request


def test_profiles_smallest_first_and_unknown_profile_lists_valid_ones() -> None:
    a100 = CATALOG.get("A100-SXM4-40GB")
    order = [p.name for p in a100.profiles_smallest_first()]
    assert order.index("1g.5gb") < order.index("1g.10gb") < order.index("2g.10gb") < order.index("3g.20gb")
    with pytest.raises(UserError, match="valid profiles: 1g.5gb"):
        a100.profile("3g.40gb")
    with pytest.raises(UserError, match="does not support MIG"):
        CATALOG.get("T4").profile("1g.5gb")


def test_unverified_models_are_marked() -> None:
    assert not CATALOG.get("B200-180GB").verified
    assert any(p.estimated for p in CATALOG.get("B200-180GB").profiles)
    assert CATALOG.get("A100-SXM4-40GB").verified and CATALOG.get("H100-SXM5-80GB").verified


def test_a_profile_looked_up_without_a_user_error_and_its_share_of_the_gpu() -> None:
    a100 = default_catalog().get("A100-SXM4-40GB")
    assert a100.find_profile("9g.99gb") is None  # a name from NVML or a layout, not a user's: no error
    profile = a100.find_profile("3g.20gb")
    assert profile is a100.profile("3g.20gb") and str(a100.compute_share(profile)) == "3/7"
    with pytest.raises(UserError):
        a100.profile("9g.99gb")
