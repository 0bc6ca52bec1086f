"""Mark (and optionally stretch) the phases of a training child, for stop and kill tests.

Put this folder on PYTHONPATH and set ANNOTUNE_TEST_PHASES to a JSON object
``{"marks": DIR, "slow": PHASE or null, "seconds": S}``. Each phase, on entry, writes
``DIR/PHASE`` holding the process id (once); the phase named ``slow`` then sleeps ``S``
seconds, standing for work that takes long and never asks whether to stop. Phases: startup
(the first heavy import), model, encode, probe, step, eval, save. Without the variable,
nothing is changed. Used by tests/reliability and bench/stop_latency.py.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
import time

_CONFIG = json.loads(os.environ.get("ANNOTUNE_TEST_PHASES") or "null")


def _enter(phase: str) -> None:
    mark = os.path.join(_CONFIG["marks"], phase)
    if not os.path.exists(mark):
        with open(mark + ".tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.replace(mark + ".tmp", mark)
    if _CONFIG.get("slow") == phase:
        time.sleep(float(_CONFIG.get("seconds", 60)))


def _wrap(phase: str, function):
    def wrapper(*args, **kwargs):
        _enter(phase)
        return function(*args, **kwargs)

    return wrapper


def _patch_loop(loop) -> None:
    loop.load_model = _wrap("model", loop.load_model)
    loop._save = _wrap("save", loop._save)
    retry = loop.retry_on_oom

    def retry_on_oom(attempt, sizes, phase, *args, **kwargs):
        _enter("step" if phase == "train" else phase)
        return retry(attempt, sizes, phase, *args, **kwargs)

    loop.retry_on_oom = retry_on_oom
    choose = loop.choose_precision
    if _CONFIG.get("slow") == "probe":  # make a run that would not probe (tiny model) probe
        loop.measures_precision = lambda *args, **kwargs: True

        def choose(*args, **kwargs):  # noqa: F811
            return "fp32", {"fp32_ms": 1.0, "bf16_ms": 1.0, "length": 8, "batch": 8,
                            "chosen": "fp32", "device": "cpu"}

    loop.choose_precision = _wrap("probe", choose)


def _patch_classification(module) -> None:
    task = module.ClassificationTask
    encode = task.encode

    def encode_in_the_loop(*args, **kwargs):
        # the job also encodes before the run exists, to count long texts: the phase stretched
        # here is the loop's own encoding of the training data
        if _called_from("annotune.core.training.loop"):
            _enter("encode")
        return encode(*args, **kwargs)

    task.encode = encode_in_the_loop


def _called_from(module_name: str) -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__") == module_name:
            return True
        frame = frame.f_back
    return False


_PATCHES = {"annotune.core.training.loop": _patch_loop,
            "annotune.plugins.classification": _patch_classification}
_STARTUP = "annotune.core.training.data"  # the child's first import of torch


class _PhaseFinder(importlib.abc.MetaPathFinder):
    """Run the patch of a module right after the module itself has run."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _PATCHES and fullname != _STARTUP:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        run_module = spec.loader.exec_module

        def exec_module(module):
            if fullname == _STARTUP:
                _enter("startup")
            run_module(module)
            if fullname in _PATCHES:
                _PATCHES[fullname](module)

        spec.loader.exec_module = exec_module
        return spec


if _CONFIG:
    sys.meta_path.insert(0, _PhaseFinder())
