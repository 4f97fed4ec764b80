"""mig-parted's config format (`agent.mig_parted`): a layout written out and read back, and the
configs that cannot be a layout of these GPUs refused with what was wrong."""

from __future__ import annotations

import pytest
import yaml

from runai_lite.agent.mig_parted import MigPartedError, export_config, read_config
from runai_lite.gpu.catalog import default_catalog
from runai_lite.gpu.mig_layout import is_valid

A100 = default_catalog().find("A100-SXM4-40GB")
MODELS = {0: A100, 1: A100, 2: A100}


def test_a_layout_is_written_as_mig_parted_writes_it():
    config = export_config("runai-lite", {0: ["1g.10gb", "2g.10gb", "1g.10gb"], 1: ["2g.10gb", "1g.10gb", "1g.10gb"],
                                          2: None})
    assert config == {"version": "v1", "mig-configs": {"runai-lite": [
        {"devices": [0, 1], "mig-enabled": True, "mig-devices": {"1g.10gb": 2, "2g.10gb": 1}},
        {"devices": [2], "mig-enabled": False}]}}


def test_what_is_written_reads_back_as_placements_that_fit():
    layout = {0: ["3g.20gb", "2g.10gb", "1g.10gb"], 1: ["7g.40gb"], 2: []}
    document = yaml.safe_load(yaml.safe_dump(export_config("mine", layout)))
    placed = read_config(document, "mine", MODELS)
    assert {i: sorted(p.profile for p in items) for i, items in placed.items()} == {
        i: sorted(profiles) for i, profiles in layout.items()}
    assert all(is_valid(A100, items) for items in placed.values())


def test_all_devices_and_mig_off():
    document = {"version": "v1", "mig-configs": {"all-1g": [{"devices": "all", "mig-enabled": True,
                                                              "mig-devices": {"1g.5gb": 7}}],
                                                 "off": [{"devices": "all", "mig-enabled": False}]}}
    placed = read_config(document, "all-1g", MODELS)
    assert sorted(placed) == [0, 1, 2] and [p.start for p in placed[0]] == list(range(7))
    assert read_config(document, "off", MODELS) == {0: None, 1: None, 2: None}


@pytest.mark.parametrize(("document", "name", "says"), [
    ({"version": "v2", "mig-configs": {}}, "x", "version 'v2' is not supported"),
    ({"version": "v1", "mig-configs": {"a": []}}, "b", "no mig-parted config named 'b'"),
    ({"version": "v1", "mig-configs": {"a": [{"devices": [5], "mig-enabled": True}]}}, "a", "no GPU 5 here"),
    ({"version": "v1", "mig-configs": {"a": [{"devices": [0], "mig-enabled": True,
                                               "mig-devices": {"4g.20gb": 2}}]}}, "a", "do not fit GPU 0"),
    ({"version": "v1", "mig-configs": {"a": [{"devices": [0], "mig-enabled": True,
                                               "mig-devices": {"9g.99gb": 1}}]}}, "a", "unknown MIG profile '9g.99gb'"),
    ({"version": "v1", "mig-configs": {"a": [{"device-filter": "0x20B010DE", "devices": "all", "mig-enabled": False}]}},
     "a", "device-filter is not supported"),
    ({"version": "v1", "mig-configs": {"a": [{"devices": [0], "mig-enabled": False},
                                              {"devices": [0], "mig-enabled": False}]}}, "a", "named by two entries"),
])
def test_a_config_that_is_no_layout_of_these_gpus_is_refused(document, name, says):
    with pytest.raises(Exception) as caught:
        read_config(document, name, MODELS)
    assert caught.value.exit_code == 2 and says in str(caught.value)
    assert isinstance(caught.value, MigPartedError) or "MIG profile" in says
