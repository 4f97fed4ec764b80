"""On a machine with neither NVIDIA GPUs nor a declared simulated inventory, the first command that
needs the daemon says how to proceed — once."""

from __future__ import annotations

import pytest

from runai_lite.backends.local import LocalBackend
from runai_lite.errors import OperationalError


def _nvml_available() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


@pytest.mark.e2e
@pytest.mark.skipif(_nvml_available(), reason="this machine has an NVIDIA driver")
def test_no_gpu_and_no_simulation_says_how_to_proceed_once(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNAI_LITE_HOME", str(tmp_path / "home"))
    backend = LocalBackend(tmp_path / "home")
    try:
        with pytest.raises(OperationalError) as caught:
            backend.list_jobs(None)
    finally:
        close = getattr(backend, "close", None)
        if close:
            close()
    text = str(caught.value)
    assert "could not start" in text
    assert text.count("runai-adm local init --simulate") == 1
