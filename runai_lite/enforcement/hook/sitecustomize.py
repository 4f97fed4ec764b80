"""runai-lite framework enforcement: the start-up hook a job's Python picks up through PYTHONPATH.

It reads the job's GPU memory limit from RUNAI_LITE_GPU_MEMORY_LIMIT_MIB (or its share from
RUNAI_LITE_GPU_MEMORY_FRACTION) and:

- when the program imports torch, queues a call to run when CUDA is initialised (not before, so
  importing torch stays cheap and forked workers are unaffected) that sets
  torch.cuda.set_per_process_memory_fraction(limit / the device's total memory) on each visible
  device;
- when the program imports torch or jax, adds to an uncaught out-of-memory error a line that
  names the job's limit;
- then runs whatever sitecustomize module it shadows, as if it were not here.

It imports nothing beyond what Python has loaded at start-up, and without the variables (or in a
program that never imports torch or jax) it changes nothing. JAX needs no call:
XLA_PYTHON_CLIENT_MEM_FRACTION in the job's environment already holds its share.

This file runs inside the job's Python, which may be any Python (3.6 to 3.13 are tested; on
Python 2 it only hands over to the sitecustomize it shadows) and need not have runai-lite installed:
it must stand alone and must not fail the program.
"""

import os
import sys

_LIMIT_VAR = "RUNAI_LITE_GPU_MEMORY_LIMIT_MIB"
_FRACTION_VAR = "RUNAI_LITE_GPU_MEMORY_FRACTION"
_ENFORCEMENT_VAR = "RUNAI_LITE_ENFORCEMENT"
_MIB = 1024 * 1024
_OOM_MARKERS = ("out of memory", "resource_exhausted", "cudaerrormemoryallocation", "cuda_error_out_of_memory")


def _warn(message):
    try:
        sys.stderr.write("runai-lite: " + message + "\n")
    except Exception:
        pass


class _Limit(object):
    """The job's limit as the environment gives it: MiB, or a share of the device's memory."""

    def __init__(self, mib, fraction, enforcement):
        self.mib = mib
        self.fraction = fraction
        self.enforcement = enforcement

    @classmethod
    def from_environment(cls, environ):
        mib = _positive(environ.get(_LIMIT_VAR), int)
        fraction = _positive(environ.get(_FRACTION_VAR), float)
        if fraction is not None and fraction > 1:
            fraction = None
        if mib is None and fraction is None:
            return None
        return cls(mib, fraction, environ.get(_ENFORCEMENT_VAR) or "framework")

    def fraction_of(self, total_bytes):
        if self.mib is not None and total_bytes > 0:
            return min(1.0, self.mib * _MIB / float(total_bytes))
        return self.fraction

    def describe(self):
        if self.mib is not None:
            amount = "%d MiB of GPU memory" % self.mib
        else:
            amount = "%g%% of its GPU's memory" % (self.fraction * 100)
        return "runai-lite: this job is limited to %s (%s enforcement)" % (amount, self.enforcement)


def _positive(text, kind):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def _apply_torch_limit(limit):
    """Runs inside torch's CUDA initialisation: an exception here would fail it, so none escapes."""
    try:
        cuda = sys.modules["torch"].cuda
        for device in range(cuda.device_count()):
            total = cuda.get_device_properties(device).total_memory
            cuda.set_per_process_memory_fraction(limit.fraction_of(total), device)
    except Exception as error:
        _warn("could not apply the GPU memory limit to PyTorch: %r" % (error,))


def _on_torch(limit, torch):
    _install_excepthook(limit)
    lazy_call = getattr(getattr(torch, "cuda", None), "_lazy_call", None)
    if lazy_call is None:
        _warn("this PyTorch has no torch.cuda._lazy_call; the GPU memory limit is not applied to PyTorch")
        return
    # Queued calls run when CUDA is initialised (at once if it already is).
    lazy_call(lambda: _apply_torch_limit(limit))


def _on_jax(limit, jax):
    _install_excepthook(limit)


def _is_out_of_memory(error):
    seen = 0
    while error is not None and seen < 8:  # the exception, then what it was raised from
        names = [cls.__name__ for cls in type(error).__mro__]
        if "OutOfMemoryError" in names:
            return True
        text = str(error).lower()
        if any(marker in text for marker in _OOM_MARKERS):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def _install_excepthook(limit):
    if getattr(sys.excepthook, "_runai_lite", False):
        return
    previous = sys.excepthook

    def excepthook(kind, error, traceback):
        note = None
        try:
            if _is_out_of_memory(error):
                note = limit.describe()
                if hasattr(error, "add_note"):  # Python 3.11+: printed with the traceback
                    error.add_note(note)
                    note = None
        except Exception:
            note = None
        previous(kind, error, traceback)
        if note:
            _warn(note[len("runai-lite: "):])

    excepthook._runai_lite = True
    sys.excepthook = excepthook


class _HookedLoader(object):
    """Runs the real loader, then a callback with the loaded module. Everything else is the real
    loader's, and the module keeps the real loader as its __loader__."""

    def __init__(self, loader, on_loaded):
        self._loader = loader
        self._on_loaded = on_loaded

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        try:
            self._on_loaded(module)
        except Exception as error:
            _warn("GPU memory limit hook failed: %r" % (error,))


class _PostImportFinder(object):
    """A meta-path finder that finds nothing itself: for the watched top-level modules it asks the
    other finders and wraps the loader they return, then steps aside once all have loaded."""

    def __init__(self, callbacks):
        self._callbacks = dict(callbacks)
        self._busy = set()

    def find_spec(self, name, path=None, target=None):
        callback = self._callbacks.get(name)
        if callback is None or name in self._busy:
            return None
        self._busy.add(name)
        try:
            spec = self._find_elsewhere(name, path, target)
        finally:
            self._busy.discard(name)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        del self._callbacks[name]
        if not self._callbacks and self in sys.meta_path:
            sys.meta_path.remove(self)
        spec.loader = _HookedLoader(spec.loader, callback)
        return spec

    def _find_elsewhere(self, name, path, target):
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is not None:
                return spec
        return None


def _install():
    limit = _Limit.from_environment(os.environ)
    if limit is None or sys.version_info < (3, 4):  # before 3.4 the import system has no find_spec
        return
    callbacks = {}
    for name, on_loaded in (("torch", _on_torch), ("jax", _on_jax)):
        module = sys.modules.get(name)
        hook = (lambda on_loaded: lambda module: on_loaded(limit, module))(on_loaded)
        if module is not None:
            hook(module)
        else:
            callbacks[name] = hook
    if callbacks:
        sys.meta_path.insert(0, _PostImportFinder(callbacks))


def _is_directory(entry, directory):
    try:
        return os.path.realpath(entry or os.curdir) == directory
    except (TypeError, ValueError):  # sys.path may hold odd entries; they are not this directory
        return False


def _run_shadowed_sitecustomize():
    """Import the sitecustomize this one hides (a distribution's, a virtualenv's), as site.py would
    have, so that putting the hook on PYTHONPATH changes nothing else."""
    here = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
    own = sys.modules.pop("sitecustomize", None)
    saved_path = list(sys.path)
    sys.path[:] = [entry for entry in sys.path if not _is_directory(entry, here)]
    try:
        import sitecustomize  # noqa: F401  (the next one on the path)
    except ImportError as error:
        # Python 2's ImportError has no name, only a message.
        missing = getattr(error, "name", None) or str(error).rpartition(" ")[2]
        if missing != "sitecustomize":
            raise
        if own is not None:
            sys.modules["sitecustomize"] = own
    finally:
        sys.path[:] = saved_path


try:
    _install()
except Exception as _error:
    _warn("GPU memory limit hook not installed: %r" % (_error,))
_run_shadowed_sitecustomize()
