"""The node setting and the mechanism it resolves to, from made-up probe results."""

import pytest

from runai_lite.enforcement import (
    EnforcementSetting,
    EnforcementUnavailableError,
    Mechanism,
    NodeProbe,
    choose_mechanism,
    display_enforcement,
    parse_setting,
)
from runai_lite.errors import UserError

BARE = NodeProbe()
HAMI = NodeProbe(hami_core_installed=True, hami_core_path="/opt/hami/libvgpu.so")
MPS = NodeProbe(mps_control_pipe=True, mps_control_pid=4242)
BOTH = NodeProbe(hami_core_installed=True, mps_control_pipe=True, mps_control_pid=4242)
MPS_PIPE_ONLY = NodeProbe(mps_control_pipe=True)  # a stale pipe left by a daemon that has gone
MPS_PROCESS_ONLY = NodeProbe(mps_control_pid=4242)  # a daemon with another pipe directory


@pytest.mark.parametrize(
    ("setting", "probe", "expected"),
    [
        ("auto", BARE, Mechanism.FRAMEWORK),
        ("auto", HAMI, Mechanism.HAMI_CORE),
        ("auto", MPS, Mechanism.MPS),
        ("auto", BOTH, Mechanism.HAMI_CORE),
        ("auto", MPS_PIPE_ONLY, Mechanism.FRAMEWORK),
        ("auto", MPS_PROCESS_ONLY, Mechanism.FRAMEWORK),
        ("hami-core", HAMI, Mechanism.HAMI_CORE),
        ("hami-core", BOTH, Mechanism.HAMI_CORE),
        ("mps", MPS, Mechanism.MPS),
        ("mps", BOTH, Mechanism.MPS),
        ("framework", BOTH, Mechanism.FRAMEWORK),
        ("framework", BARE, Mechanism.FRAMEWORK),
        ("none", BOTH, Mechanism.NONE),
        ("none", BARE, Mechanism.NONE),
        (EnforcementSetting.AUTO, MPS, Mechanism.MPS),
    ],
)
def test_setting_resolves_to_mechanism(setting, probe, expected):
    assert choose_mechanism(setting, probe) is expected


def test_only_none_is_advisory():
    assert [m for m in Mechanism if m.advisory] == [Mechanism.NONE]


def test_explicit_hami_core_without_library_says_what_to_install():
    probe = NodeProbe(hami_core_path="/opt/hami/libvgpu.so")
    with pytest.raises(EnforcementUnavailableError) as raised:
        choose_mechanism("hami-core", probe)
    error = raised.value
    assert isinstance(error, UserError) and error.exit_code == 2
    assert "/opt/hami/libvgpu.so" in error.message
    assert "HAMi-core" in error.hint and "framework" in error.hint


@pytest.mark.parametrize(
    ("probe", "missing"),
    [
        (BARE, ["no nvidia-cuda-mps-control process", "no control pipe in /tmp/nvidia-mps"]),
        (MPS_PIPE_ONLY, ["no nvidia-cuda-mps-control process"]),
        (MPS_PROCESS_ONLY, ["no control pipe"]),
    ],
)
def test_explicit_mps_without_daemon_says_what_is_missing(probe, missing):
    with pytest.raises(EnforcementUnavailableError) as raised:
        choose_mechanism("mps", probe)
    for words in missing:
        assert words in raised.value.message
    assert "nvidia-cuda-mps-control -d" in raised.value.hint


@pytest.mark.parametrize(("typed", "expected"), [(" Auto ", "auto"), ("HAMI-CORE", "hami-core"), ("none", "none")])
def test_parse_setting_accepts_any_case(typed, expected):
    assert parse_setting(typed) is EnforcementSetting(expected)


@pytest.mark.parametrize("typed", ["mig", "", "hami", "framework,mps"])
def test_parse_setting_rejects_unknown_values_listing_the_right_ones(typed):
    with pytest.raises(UserError) as raised:
        parse_setting(typed)
    assert "auto, hami-core, mps, framework, none" in raised.value.hint


def test_choose_rejects_unknown_setting_text():
    with pytest.raises(UserError):
        choose_mechanism("mig", BOTH)


@pytest.mark.parametrize(
    ("stored", "shown"),
    [("none", "none (advisory: not enforced)"), ("hami-core", "hami-core"), ("mps", "mps"),
     ("framework", "framework (PyTorch/JAX only)"), ("mig", "mig (hardware partition)"), (None, "-"), ("", "-"),
     ("something-newer", "something-newer")],
)
def test_display_says_when_a_limit_is_advisory(stored, shown):
    assert display_enforcement(stored) == shown
