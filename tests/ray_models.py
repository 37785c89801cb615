"""Throwaway models and a worker hook for ``test_ray.py``; importable by Ray workers.

The models are not registered on import: ``test_ray.py`` registers them for its own module
only, so no other test (``--models all``, say) ever meets a model that kills its process.  The
Ray workers learn them from the specs the executor ships with their jobs.
"""

from __future__ import annotations

import os

from idsbench.models.base import BaseModel

#: set (by the tests' Ray runtime environment) in Ray workers only
IN_WORKER = "IDSBENCH_TEST_RAY_WORKER"
#: file to which the worker hook appends one line per data-loading call
DATA_LOG = "IDSBENCH_TEST_DATA_LOG"


class CrashInFit(BaseModel):
    """Ends its own process in ``fit``, as a segfault or the OOM killer would."""

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
        if os.environ.get(IN_WORKER):
            os._exit(1)
        raise RuntimeError("CrashInFit only ends Ray worker processes, never the test runner")


class RaiseInFit(BaseModel):
    """Raises an ordinary exception in ``fit``."""

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
        raise RuntimeError("deliberate failure in fit")


def watch_data_loading() -> None:
    """Ray worker setup hook: note ``ready`` once, then every call that loads or prepares data.

    A worker that reads or preprocesses the dataset itself, instead of using the driver's
    shared copy, leaves ``prepare`` or ``load_table`` lines in ``$IDSBENCH_TEST_DATA_LOG``.
    """
    path = os.environ.get(DATA_LOG)
    if not path:
        return
    import importlib

    # by module path: idsbench.data re-exports a function named `prepare`
    dio = importlib.import_module("idsbench.data.io")
    dprep = importlib.import_module("idsbench.data.prepare")
    runner = importlib.import_module("idsbench.runner")

    def note(what: str) -> None:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{what} {os.getpid()}\n")

    def watch(module, name: str) -> None:
        original = getattr(module, name)

        def watched(*args, **kwargs):
            note(name)
            return original(*args, **kwargs)

        setattr(module, name, watched)

    watch(dprep, "prepare")
    watch(runner, "prepare")
    watch(dio, "load_table")
    note("ready")
