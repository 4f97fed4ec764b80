"""The framework hook, run the way a job runs it: a fresh Python whose environment comes from
`job_environment(...).apply(...)`. torch and jax are stand-ins that record what the hook does.

The job's Python is this one, or the one `RUNAI_LITE_HOOK_PYTHON` names: the hook must work on any
Python 3 a job may use."""

import os
import subprocess
import sys
import textwrap

import pytest

from runai_lite.enforcement import job_environment

from .fake_frameworks import read_record, write_fake_jax, write_fake_torch

pytestmark = pytest.mark.e2e

JOB_PYTHON = os.environ.get("RUNAI_LITE_HOOK_PYTHON", sys.executable)


def clean_environment():
    return {k: v for k, v in os.environ.items() if not k.startswith(("RUNAI_", "PYTHON", "CUDA_", "XLA_"))}


def job_env(mechanism="framework", extra_path=(), limit_mib=4096, share_milli=250, **variables):
    base = clean_environment()
    if extra_path:
        base["PYTHONPATH"] = os.pathsep.join(str(p) for p in extra_path)
    env = job_environment(mechanism, memory_limit_mib=limit_mib, share_milli=share_milli).apply(base)
    env.update(variables)
    return env


def run(program, env, python=JOB_PYTHON):
    return subprocess.run([python, "-c", textwrap.dedent(program)], env=env, capture_output=True, text=True,
                          timeout=60)


def plain_env(extra_path=()):
    env = clean_environment()
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in extra_path)
    return env


PROGRAM_WITHOUT_FRAMEWORKS = """
    import json, sys
    print(json.dumps({"argv": sys.argv[1:], "excepthook": sys.excepthook is sys.__excepthook__}))
"""


def test_inert_in_a_program_without_torch_or_jax():
    with_hook = run(PROGRAM_WITHOUT_FRAMEWORKS, job_env())
    without = run(PROGRAM_WITHOUT_FRAMEWORKS, plain_env())
    assert with_hook.returncode == 0, with_hook.stderr
    assert (with_hook.stdout, with_hook.stderr) == (without.stdout, without.stderr)
    assert '"excepthook": true' in with_hook.stdout


def test_errors_of_a_program_without_frameworks_are_unchanged():
    program = "raise ValueError('out of memory in my own cache')"
    with_hook, without = run(program, job_env()), run(program, plain_env())
    assert with_hook.returncode == without.returncode == 1
    assert with_hook.stderr == without.stderr


def test_hook_is_loaded_but_installs_nothing_without_its_variables():
    env = plain_env()
    env["PYTHONPATH"] = job_env()["PYTHONPATH"]
    result = run("import sys; print(sys.modules['sitecustomize'].__file__); "
                 "print([type(f).__name__ for f in sys.meta_path])", env)
    assert result.returncode == 0, result.stderr
    assert "enforcement" in result.stdout and "_PostImportFinder" not in result.stdout


def test_importing_torch_does_not_initialise_cuda(tmp_path):
    record = tmp_path / "record.jsonl"
    env = job_env(extra_path=[write_fake_torch(tmp_path / "site")], FAKE_TORCH_RECORD=str(record))
    result = run("import torch; print(len(torch.cuda._queued_calls))", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"  # queued for CUDA initialisation, not run
    assert read_record(record) == []


def test_sets_the_memory_fraction_when_cuda_is_initialised(tmp_path):
    record = tmp_path / "record.jsonl"
    env = job_env(extra_path=[write_fake_torch(tmp_path / "site")], FAKE_TORCH_RECORD=str(record),
                  FAKE_TORCH_TOTAL_MIB="16384")
    result = run("import torch; torch.cuda.init(); print('trained')", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "trained" and result.stderr == ""
    assert read_record(record) == [
        {"call": "init"},
        {"call": "set_per_process_memory_fraction", "fraction": 0.25, "device": 0},
    ]


def test_fraction_is_the_limit_over_each_devices_memory(tmp_path):
    record = tmp_path / "record.jsonl"
    env = job_env(extra_path=[write_fake_torch(tmp_path / "site")], limit_mib=10_000,
                  FAKE_TORCH_RECORD=str(record), FAKE_TORCH_TOTAL_MIB="40000", FAKE_TORCH_DEVICES="2")
    assert run("import torch; torch.cuda.init()", env).returncode == 0
    calls = [e for e in read_record(record) if e["call"] == "set_per_process_memory_fraction"]
    assert calls == [{"call": "set_per_process_memory_fraction", "fraction": 0.25, "device": d} for d in (0, 1)]


def test_a_limit_above_the_reported_memory_is_capped_at_the_whole_device(tmp_path):
    # HAMi-core reports the limit as the device's memory: the hook must then ask for 1.0, not more.
    record = tmp_path / "record.jsonl"
    env = job_env("hami-core", extra_path=[write_fake_torch(tmp_path / "site")], FAKE_TORCH_RECORD=str(record),
                  FAKE_TORCH_TOTAL_MIB="4000")
    env.pop("LD_PRELOAD")  # no libvgpu.so here
    assert run("import torch; torch.cuda.init()", env).returncode == 0
    assert read_record(record)[-1]["fraction"] == 1.0


def test_share_alone_is_used_when_no_limit_in_mib_is_given(tmp_path):
    record = tmp_path / "record.jsonl"
    env = job_env(extra_path=[write_fake_torch(tmp_path / "site")], FAKE_TORCH_RECORD=str(record))
    del env["RUNAI_LITE_GPU_MEMORY_LIMIT_MIB"]
    env["RUNAI_LITE_GPU_MEMORY_FRACTION"] = "0.5"
    assert run("import torch; torch.cuda.init()", env).returncode == 0
    assert read_record(record)[-1]["fraction"] == 0.5


def test_reloading_torch_does_not_apply_the_limit_twice(tmp_path):
    record = tmp_path / "record.jsonl"
    env = job_env(extra_path=[write_fake_torch(tmp_path / "site")], FAKE_TORCH_RECORD=str(record))
    result = run("import importlib, torch; torch.cuda.init(); importlib.reload(torch)", env)
    assert result.returncode == 0, result.stderr
    assert [e["call"] for e in read_record(record)] == ["init", "set_per_process_memory_fraction"]


def test_out_of_memory_error_names_the_limit(tmp_path):
    env = job_env("mps", extra_path=[write_fake_torch(tmp_path / "site")], FAKE_TORCH_RECORD=str(tmp_path / "r"))
    result = run("""
        import torch
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    """, env)
    assert result.returncode == 1
    assert "CUDA out of memory. Tried to allocate 2.00 GiB" in result.stderr
    assert "runai-lite: this job is limited to 4096 MiB of GPU memory (mps enforcement)" in result.stderr


def test_out_of_memory_raised_from_another_error_names_the_limit(tmp_path):
    env = job_env(extra_path=[write_fake_torch(tmp_path / "site")], FAKE_TORCH_RECORD=str(tmp_path / "r"))
    result = run("""
        import torch
        try:
            raise RuntimeError("CUDA error: out of memory")
        except RuntimeError as error:
            raise SystemError("training step failed") from error
    """, env)
    assert "limited to 4096 MiB of GPU memory (framework enforcement)" in result.stderr


def test_other_errors_of_a_torch_program_are_unchanged(tmp_path):
    site = write_fake_torch(tmp_path / "site")
    program = "import torch\nraise KeyError('weights')"
    with_hook = run(program, job_env(extra_path=[site], FAKE_TORCH_RECORD=str(tmp_path / "r")))
    without = run(program, plain_env([site]))
    assert with_hook.returncode == without.returncode == 1
    assert with_hook.stderr == without.stderr


def test_jax_gets_its_fraction_from_the_environment_and_a_named_limit_on_oom(tmp_path):
    env = job_env(extra_path=[write_fake_jax(tmp_path / "site")])
    result = run("""
        import os, jax
        print(os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"])
        raise jax.XlaRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 8589934592 bytes.")
    """, env)
    assert result.stdout.strip() == "0.250"
    assert "limited to 4096 MiB of GPU memory (framework enforcement)" in result.stderr


def test_old_torch_without_the_lazy_queue_runs_with_a_warning(tmp_path):
    env = job_env(extra_path=[write_fake_torch(tmp_path / "site", lazy_call=False)],
                  FAKE_TORCH_RECORD=str(tmp_path / "r"))
    result = run("import torch; torch.cuda.init(); print('ran')", env)
    assert result.returncode == 0 and result.stdout.strip() == "ran"
    assert "the GPU memory limit is not applied to PyTorch" in result.stderr


def test_a_failing_limit_call_does_not_fail_cuda_initialisation(tmp_path):
    record = tmp_path / "record.jsonl"
    env = job_env(extra_path=[write_fake_torch(tmp_path / "site")], FAKE_TORCH_RECORD=str(record))
    env["FAKE_TORCH_TOTAL_MIB"] = "not-a-number"  # get_device_properties raises
    result = run("import torch; torch.cuda.init(); print('ran')", env)
    assert result.returncode == 0 and result.stdout.strip() == "ran"
    assert "could not apply the GPU memory limit to PyTorch" in result.stderr


def test_the_sitecustomize_it_shadows_still_runs(tmp_path):
    other = tmp_path / "distro"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import sys\nsys.stdout.write('distro sitecustomize ran\\n')\n")
    env = job_env(extra_path=[other])
    result = run("import sys; print(sys.modules['sitecustomize'].__file__)", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["distro sitecustomize ran", str(other / "sitecustomize.py")]


def test_an_error_in_the_shadowed_sitecustomize_is_reported_as_python_would(tmp_path):
    other = tmp_path / "distro"
    other.mkdir()
    (other / "sitecustomize.py").write_text("raise RuntimeError('broken distro hook')\n")
    program = "print('ran')"
    with_hook, without = run(program, job_env(extra_path=[other])), run(program, plain_env([other]))
    assert with_hook.returncode == without.returncode == 0
    assert with_hook.stdout == without.stdout == "ran\n"
    assert "Error in sitecustomize" in with_hook.stderr and "broken distro hook" in with_hook.stderr


def test_child_pythons_inherit_the_hook(tmp_path):
    record = tmp_path / "record.jsonl"
    env = job_env(extra_path=[write_fake_torch(tmp_path / "site")], FAKE_TORCH_RECORD=str(record))
    result = run("""
        import subprocess, sys
        subprocess.run([sys.executable, "-c", "import torch; torch.cuda.init()"], check=True)
    """, env)
    assert result.returncode == 0, result.stderr
    assert read_record(record)[-1]["call"] == "set_per_process_memory_fraction"


def _python_with_torch():
    candidate = os.environ.get("RUNAI_LITE_TORCH_PYTHON", sys.executable)
    probe = subprocess.run([candidate, "-c", "import torch"], capture_output=True, env=plain_env())
    return candidate if probe.returncode == 0 else None


def test_with_real_torch_the_limit_is_queued_for_cuda_and_oom_names_it():
    python = _python_with_torch()
    if python is None:
        pytest.skip("no Python with torch (set RUNAI_LITE_TORCH_PYTHON to one)")
    result = run("""
        import torch
        queued = [c for c, *_ in torch.cuda._queued_calls if "_on_torch" in getattr(c, "__qualname__", "")]
        print(len(queued), torch.cuda.is_initialized())
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    """, job_env(), python=python)
    assert result.stdout.split() == ["1", "False"], result.stderr
    assert "limited to 4096 MiB of GPU memory (framework enforcement)" in result.stderr
