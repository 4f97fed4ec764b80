"""`gpu.fit.never_fits`: a request no GPU could ever hold is named with the largest that fits."""

from __future__ import annotations

import pytest

from runai_lite.gpu.fit import never_fits
from runai_lite.gpu.requests import request_from_flags

A100 = ("A100-SXM4-40GB", 40536)
A100_80 = ("A100-SXM4-80GB", 81920)
T4 = ("T4", 15360)


@pytest.mark.parametrize(("nodes", "flags", "message", "hint"), [
    ({"vm": [A100]}, {"gpu": "2"}, "--gpu 2 asks for more GPUs than any node has: vm has 1", "--gpu 1 or fewer"),
    ({"a": [T4, T4], "b": [T4]}, {"gpu": "3"}, "the most on one node is 2 (a)", "--gpu 2 or fewer"),
    ({"vm": [A100]}, {"gpu_memory": "100G"},
     "--gpu-memory 100GB is more than any GPU here holds: the largest, A100-SXM4-40GB on vm, has 42.5GB (39.59GiB)",
     "--gpu-memory 39.59GiB or less, or --gpu 1"),
    ({"vm": [A100]}, {"mig_profile": "1g.20gb"}, "no GPU here offers MIG profile 1g.20gb (the largest here is 7g.40gb)",
     "A100-SXM4-40GB: 1g.5gb"),
    ({"vm": [T4]}, {"mig_profile": "1g.5gb"}, "--mig-profile 1g.5gb: no GPU here supports MIG (T4)", "--gpu-memory"),
    ({"vm": []}, {"gpu": "0.5"}, "no node here has a GPU", "leave out --gpu"),
])
def test_requests_no_gpu_could_hold(nodes, flags, message, hint):
    refusal = never_fits(request_from_flags(**flags), nodes)
    assert refusal is not None and message in refusal.message and hint in refusal.hint


@pytest.mark.parametrize(("nodes", "flags"), [
    ({"vm": [A100]}, {"gpu": "1"}),
    ({"vm": [A100]}, {"gpu": "0.99"}),
    ({"vm": [A100]}, {"gpu_memory": "42GB"}),  # 40536 MiB = 42.5 GB
    ({"vm": [A100, A100_80]}, {"gpu_memory": "80G"}),
    ({"vm": [T4, A100_80]}, {"mig_profile": "1g.20gb"}),
    ({"a": [T4], "b": [T4, T4]}, {"gpu": "2"}),
    ({"vm": []}, {}),  # CPU only
])
def test_requests_some_gpu_could_hold(nodes, flags):
    assert never_fits(request_from_flags(**flags), nodes) is None
