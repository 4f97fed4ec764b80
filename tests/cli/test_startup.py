"""CLI start-up stays light: `runai --help` and `runai list` never import kubernetes or pynvml, and
`runai list` does not load rich either (its table is plain text)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("kubernetes", "pynvml", "rich")

# Runs a CLI entry point in-process, then reports which heavy modules it loaded.
PROBE = """
import json, sys
from runai_lite.cli.{module} import main
sys.argv = [{prog!r}, *{args!r}]
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code or 0
loaded = sorted({{name.split('.')[0] for name in sys.modules}} & set({heavy!r}))
print("\\n" + json.dumps({{"code": code, "loaded": loaded}}))
"""


def probe(home: Path, module: str, prog: str, *args: str) -> dict:
    env = {**os.environ, "RUNAI_LITE_HOME": str(home), "PYTHONPATH": str(REPO)}
    script = PROBE.format(module=module, prog=prog, args=list(args), heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("module", "prog", "args"), [
    ("runai", "runai", ["--help"]),
    ("runai", "runai", ["submit", "--help"]),
    ("runai_adm", "runai-adm", ["--help"]),
    ("runai", "runai", ["config", "cluster", "local"]),
])
def test_help_and_config_load_neither_kubernetes_nor_nvml(tmp_path, module, prog, args):
    result = probe(tmp_path, module, prog, *args)
    assert result["code"] == 0
    assert not {"kubernetes", "pynvml"} & set(result["loaded"])


@pytest.mark.e2e
def test_list_on_the_embedded_default_loads_neither(tmp_path):
    home = tmp_path / "home"
    assert probe(home, "runai_adm", "runai-adm", "local", "init", "--simulate", "A100-SXM4-40GB:1")["code"] == 0
    try:
        probe(home, "runai_adm", "runai-adm", "project", "create", "team-a", "--deserved-gpus", "1")
        result = probe(home, "runai", "runai", "list", "-p", "team-a")
        assert result == {"code": 0, "loaded": []}
    finally:
        probe(home, "runai_adm", "runai-adm", "local", "stop")
