"""Stand-ins for torch and jax, written into a temporary directory, that record what the framework
hook does to them. They mimic only what the hook and benchmarks/enforcement_gpu_check.py touch:
torch.cuda's lazy initialisation queue, device properties, set_per_process_memory_fraction, an
allocator that fails past the fraction set (or past CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, standing in
for an MPS server), and the frameworks' out-of-memory errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

_FAKE_TORCH_CUDA = '''
import json
import os

_queued_calls = []
_initialized = False
_fraction = 1.0
_reserved = 0


class OutOfMemoryError(RuntimeError):
    pass


class _Properties:
    def __init__(self, total_memory):
        self.total_memory = total_memory


def _record(**event):
    if "FAKE_TORCH_RECORD" in os.environ:
        with open(os.environ["FAKE_TORCH_RECORD"], "a") as record:
            record.write(json.dumps(event) + "\\n")


def is_initialized():
    return _initialized


def _lazy_call(callable, **kwargs):
    if _initialized:
        callable()
    else:
        _queued_calls.append(callable)


def init():
    """What torch does on first CUDA use: initialise, then run the queued calls."""
    global _initialized
    if _initialized:
        return
    _record(call="init")
    for queued in _queued_calls:
        queued()
    _initialized = True


def device_count():
    return int(os.environ.get("FAKE_TORCH_DEVICES", "1"))


def _total():
    return int(os.environ.get("FAKE_TORCH_TOTAL_MIB", "16384")) * 1024 * 1024


def get_device_properties(device):
    return _Properties(_total())


def set_per_process_memory_fraction(fraction, device=None):
    global _fraction
    if not isinstance(fraction, float):
        raise TypeError("Invalid type for fraction argument, must be `float`")
    if not 0 <= fraction <= 1:
        raise ValueError("invalid fraction")
    _record(call="set_per_process_memory_fraction", fraction=fraction, device=device)
    _fraction = fraction


def mem_get_info(device=0):
    init()
    return (_total(), _total())


def synchronize():
    pass


def memory_reserved(device=0):
    return _reserved


def allocate(size):
    global _reserved
    init()
    allowed = _fraction * _total()
    pinned = os.environ.get("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT")  # "0=<n>M"
    if pinned:
        allowed = min(allowed, int(pinned.split("=")[1].rstrip("M")) * 1024 * 1024)
    if size > allowed:
        raise OutOfMemoryError("CUDA out of memory. Tried to allocate %d MiB" % (size >> 20))
    _reserved = size
'''

_FAKE_TORCH = '''
from . import cuda
from .cuda import OutOfMemoryError

uint8 = "uint8"


class _Tensor:
    def fill_(self, value):
        pass


def empty(size, dtype=None, device=None):
    cuda.allocate(size)
    return _Tensor()
'''

_FAKE_JAX = '''
class XlaRuntimeError(RuntimeError):
    pass
'''


def write_fake_torch(root: Path, *, lazy_call: bool = True) -> Path:
    """A `torch` package under `root`; without `lazy_call`, an old-style torch.cuda lacking the queue."""
    package = root / "torch"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(_FAKE_TORCH)
    cuda = _FAKE_TORCH_CUDA if lazy_call else _FAKE_TORCH_CUDA.replace("def _lazy_call(", "def _no_lazy_call(")
    (package / "cuda.py").write_text(cuda)
    return root


def write_fake_jax(root: Path) -> Path:
    package = root / "jax"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(_FAKE_JAX))
    return root


def read_record(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
