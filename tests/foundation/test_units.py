"""Sizes researchers type for --gpu-memory, read as Run:ai reads them (G = 10^9, Gi = 2^30)."""

import pytest

from runai_lite.errors import UserError
from runai_lite.units import bytes_to_mib, format_bytes, format_mib, parse_size


@pytest.mark.parametrize(("text", "expected"), [
    ("4G", 4 * 10**9),
    ("10GB", 10 * 10**9),
    ("500M", 500 * 10**6),
    ("500MB", 500 * 10**6),
    ("10Gi", 10 * 2**30),
    ("10GiB", 10 * 2**30),
    ("512Mi", 512 * 2**20),
    ("1073741824", 2**30),
    ("0.5G", 5 * 10**8),
    (" 20G ", 20 * 10**9),
    ("1T", 10**12),
])
def test_accepted_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["10XB", "-1G", "0", "1e400G", "", "   ", "G", "1.2.3G", "10b", "0G", "ten GB"])
def test_rejected_sizes_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_size(text)
    assert "4G, 10GB, 500M, 500MB, 10Gi, 10GiB, 512Mi" in str(caught.value)
    assert caught.value.exit_code == 2


def test_formatting() -> None:
    assert format_bytes(10 * 10**9) == "10GB"
    assert format_bytes(500 * 10**6) == "500MB"
    assert format_bytes(999) == "999B"
    assert format_mib(9856) == "9.62GiB"
    assert format_mib(512) == "512MiB"
    assert bytes_to_mib(10 * 10**9) == 9537  # rounded up: a limit never undercuts the request
