"""The Grafana dashboard reads only metrics the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from runai_lite.metrics import FAMILIES, Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "runai-lite-dashboard.json"
SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def exported_samples() -> set[str]:
    """Every sample name a scrape can hold: each family with its type's suffixes."""
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def test_every_panel_queries_metrics_the_code_exports():
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_samples()
    assert set(FAMILIES) <= {re.sub(r"_total$", "", n) for n in exported}
    queried = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            names = set(re.findall(r"\brunai_lite_\w+", target["expr"]))
            assert names, f"panel {panel['title']!r} queries no runai-lite metric: {target['expr']}"
            assert names <= exported, f"panel {panel['title']!r} queries {names - exported}"
            queried |= names
    # and every metric has a panel
    assert {n for n in FAMILIES} <= {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in queried}
    for variable in dashboard["templating"]["list"]:
        assert set(re.findall(r"\brunai_lite_\w+", variable.get("query", ""))) <= exported
