"""Naming the limit in a failed job's event when its output shows a GPU out-of-memory error."""

import ast

import pytest

from runai_lite.enforcement import HOOK_DIR, out_of_memory_note, shows_out_of_memory
from runai_lite.enforcement.failures import OOM_MARKERS

OUTPUTS = [
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 4.00 GiB total capacity)",
    "jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate 8589934592",
    "cudaMalloc failed: cudaErrorMemoryAllocation",
    "cuMemAlloc returned CUDA_ERROR_OUT_OF_MEMORY",
]


@pytest.mark.parametrize("output", OUTPUTS)
def test_recognises_gpu_out_of_memory_errors(output):
    assert shows_out_of_memory("step 10\n" + output + "\n")


@pytest.mark.parametrize("output", ["", "Traceback ...\nKeyError: 'weights'", "Segmentation fault (core dumped)"])
def test_other_failures_are_not_out_of_memory(output):
    assert not shows_out_of_memory(output)
    assert out_of_memory_note(output, "hami-core", 4096) is None


@pytest.mark.parametrize("mechanism", ["hami-core", "mps", "framework"])
def test_note_names_the_limit_and_mechanism(mechanism):
    note = out_of_memory_note(OUTPUTS[3], mechanism, 4096)
    assert note == f"out of GPU memory: the job is limited to 4096 MiB ({mechanism} enforcement)"


def test_an_advisory_limit_says_the_gpu_itself_ran_out():
    note = out_of_memory_note(OUTPUTS[0], "none", 4096)
    assert "4096 MiB limit is advisory" in note and "GPU itself ran out" in note


@pytest.mark.parametrize(("mechanism", "limit"), [(None, 4096), ("hami-core", None), ("", 0)])
def test_no_note_without_a_recorded_limit(mechanism, limit):
    assert out_of_memory_note(OUTPUTS[0], mechanism, limit) is None


def test_an_unknown_mechanism_name_is_shown_as_recorded():
    assert out_of_memory_note(OUTPUTS[0], "newer-thing", 100) == \
        "out of GPU memory: the job is limited to 100 MiB (newer-thing)"


def test_the_hook_recognises_the_same_errors():
    tree = ast.parse((HOOK_DIR / "sitecustomize.py").read_text())
    hook_markers = next(
        ast.literal_eval(node.value) for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "_OOM_MARKERS"
    )
    assert tuple(hook_markers) == OOM_MARKERS
