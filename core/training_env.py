"""Find, check or create the Python environment that trains and exports (torch lives there).

The desktop app itself never imports torch: the frozen app carries Qt, onnxruntime and
tokenizers only. Training (``python -m annotune.core.training.job``) and export
(``python -m annotune.core.export.job``) run as child processes of an interpreter that has the
``train`` extra. It is, in this order:

1. ANNOTUNE_TRAINING_PYTHON, when set;
2. the interpreter chosen in the app (passed in as ``configured``);
3. the interpreter annotune runs in, when it has torch (a pip or pipx install with the
   ``train`` extra; never the frozen app);
4. the environment created earlier under the user's data folder (``training-env/``).

When there is none, ``creation_steps`` builds that environment: a venv from a system Python
3.11+, torch from the PyTorch CPU wheel index unless ``nvidia-smi`` finds a GPU (the default
index's CUDA build then; ANNOTUNE_TORCH_INDEX overrides both), annotune's wheel with its
``train`` extra (the frozen app carries the wheel), and the default base model.

No Qt here: the desktop wraps it in a dialog, and a script can call it as well.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from annotune.core import __version__
from annotune.core.errors import AnnotuneError
from annotune.core.extras import TORCH_CPU_INDEX

ENV_PYTHON = "ANNOTUNE_TRAINING_PYTHON"
ENV_TORCH_INDEX = "ANNOTUNE_TORCH_INDEX"
ENV_WHEEL = "ANNOTUNE_WHEEL"
FOLDER_NAME = "training-env"
TRAIN_MODULES = ("torch", "transformers", "onnx", "sqlite_utils")
MIN_PYTHON = (3, 11)

# Run inside a candidate interpreter: it must import what training and export import, and be
# the same annotune (the job's events and the run folder are a contract between versions).
_PROBE = """
import json, sys
import importlib.metadata as metadata
import torch, transformers, onnx, sqlite_utils
import annotune.core.training.job, annotune.core.export.job
print(json.dumps({"annotune": metadata.version("annotune"), "torch": torch.__version__,
                  "cuda": torch.version.cuda, "python": sys.version.split()[0]}))
"""


@dataclass(frozen=True)
class Interpreter:
    """A Python that can train: its path, where it was found, what it runs."""

    python: str
    source: str  # "environment variable", "chosen in the app", "this installation", "created"
    torch: str = ""
    cuda: str | None = None
    in_process: bool = False  # the interpreter annotune runs in (no probe was needed)

    def describe(self) -> str:
        build = f"CUDA {self.cuda}" if self.cuda else "CPU"
        version = f"torch {self.torch} ({build})" if self.torch else "torch"
        return f"{version} in {self.python} ({self.source})"


def frozen() -> bool:
    """Whether this is the frozen desktop app (no torch, no pip of its own)."""
    return bool(getattr(sys, "frozen", False))


def env_folder(data_dir: Path) -> Path:
    """Return where the created training environment lives."""
    return Path(data_dir) / FOLDER_NAME


def env_python(folder: Path) -> Path:
    """Return the interpreter of a venv folder."""
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _this_installation() -> Interpreter | None:
    if frozen() or any(importlib.util.find_spec(name) is None for name in TRAIN_MODULES):
        return None
    return Interpreter(sys.executable, "this installation", in_process=True)


_probed: dict[str, Interpreter | str] = {}


def probe(python: str, source: str, timeout: float = 120.0) -> Interpreter | str:
    """Check that ``python`` can train and export; return it, or the reason it cannot."""
    key = f"{python}\0{source}"
    if key in _probed:
        return _probed[key]
    path = shutil.which(python) or python
    if not Path(path).is_file():
        result: Interpreter | str = f"{python} does not exist"
    else:
        try:
            done = subprocess.run([path, "-c", _PROBE], capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL,
                                  env=_child_env())
        except (OSError, subprocess.TimeoutExpired) as error:
            result = f"{python} could not be run: {error}"
        else:
            result = _probe_result(python, source, done)
    _probed[key] = result
    return result


def _probe_result(python: str, source: str, done: subprocess.CompletedProcess[str]
                  ) -> Interpreter | str:
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        return f"{python} cannot train: {errors[-1] if errors else 'no output'}"
    found = json.loads(lines[-1])
    if found.get("annotune") != __version__:
        return (f"{python} has annotune {found.get('annotune')}, this app is {__version__}: "
                "install the same version there")
    return Interpreter(python, source, torch=str(found.get("torch", "")), cuda=found.get("cuda"))


def forget_probes() -> None:
    """Probe again next time (after an environment was created or changed)."""
    _probed.clear()


def candidates(configured: str | None, data_dir: Path | None,
               environ: Mapping[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """Yield (python, source) in the order they are tried (this installation aside)."""
    environ = os.environ if environ is None else environ
    if environ.get(ENV_PYTHON):
        yield environ[ENV_PYTHON], "environment variable"
    if configured:
        yield configured, "chosen in the app"
    if data_dir is not None:
        created = env_python(env_folder(data_dir))
        if created.is_file():
            yield str(created), "created"


def find(configured: str | None = None, data_dir: Path | None = None,
         environ: Mapping[str, str] | None = None, cached_only: bool = False
         ) -> tuple[Interpreter | None, list[str]]:
    """Return the first interpreter that can train, and why the ones before it could not.

    ``cached_only`` answers without starting a process (probes already made, this
    installation); it raises LookupError when the answer needs a new probe.
    """
    environ = os.environ if environ is None else environ

    def check(python: str, source: str) -> Interpreter | str:
        if cached_only:
            key = f"{python}\0{source}"
            if key not in _probed:
                raise LookupError(python)
            return _probed[key]
        return probe(python, source)

    reasons: list[str] = []
    ordered = list(candidates(configured, data_dir, environ))
    explicit = [c for c in ordered if c[1] != "created"]
    for python, source in explicit:
        found = check(python, source)
        if isinstance(found, Interpreter):
            return found, reasons
        reasons.append(found)
    here = _this_installation()
    if here is not None:
        return here, reasons
    for python, source in ordered[len(explicit):]:
        found = check(python, source)
        if isinstance(found, Interpreter):
            return found, reasons
        reasons.append(found)
    return None, reasons


# -- creating the environment ---------------------------------------------------------------

def torch_index(environ: Mapping[str, str] | None = None,
                which: Callable[[str], str | None] = shutil.which) -> str | None:
    """Return the index to take torch from (None: the default index, whose Linux build is CUDA).

    ANNOTUNE_TORCH_INDEX decides when set; otherwise a machine with ``nvidia-smi`` gets the
    CUDA build and any other the CPU build, a fraction of the size.
    """
    environ = os.environ if environ is None else environ
    override = environ.get(ENV_TORCH_INDEX)
    if override is not None:
        return override.strip() or None
    return None if which("nvidia-smi") else TORCH_CPU_INDEX


def base_python(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """Return a system Python 3.11+ to build the venv from (the frozen app has none to lend)."""
    if not frozen() and sys.version_info >= MIN_PYTHON:
        return sys.executable
    for name in ("python3.13", "python3.12", "python3.11", "python3", "python"):
        path = which(name)
        if path is None:
            continue
        try:
            done = subprocess.run([path, "-c", "import sys, venv; print(sys.version_info >= "
                                   f"{MIN_PYTHON})"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.stdout.strip() == "True":
            return path
    return None


def carried_wheel(environ: Mapping[str, str] | None = None) -> Path | None:
    """Return annotune's wheel to install (ANNOTUNE_WHEEL, or the one the frozen app carries)."""
    environ = os.environ if environ is None else environ
    if environ.get(ENV_WHEEL):
        return Path(environ[ENV_WHEEL])
    folder = Path(getattr(sys, "_MEIPASS", "")) / "wheels" if frozen() else None
    if folder is not None:
        wheels = sorted(folder.glob(f"annotune-{__version__}-*.whl"))
        if wheels:
            return wheels[-1]
    return None


def creation_steps(data_dir: Path, python: str, wheel: Path, index: str | None
                   ) -> list[tuple[str, list[str]]]:
    """Return the (title, command) steps that create the training environment."""
    folder = env_folder(data_dir)
    venv_python = str(env_python(folder))
    pip = [venv_python, "-m", "pip", "install", "--disable-pip-version-check"]
    # PyTorch's own index alone (it serves torch's dependencies too): with the default index
    # beside it, a newer CUDA release there would win over the CPU build
    torch_source = ["--index-url", index] if index else []
    torch_spec = "torch>=2.4"
    return [
        ("creating a virtual environment", [python, "-m", "venv", str(folder)]),
        ("installing PyTorch" + (" (CPU build)" if index == TORCH_CPU_INDEX else ""),
         [*pip, *torch_source, torch_spec]),
        ("installing annotune's training dependencies", [*pip, f"{wheel}[train]"]),
        ("installing the default base model",
         [venv_python, "-m", "annotune.core.base_model", "--if-missing"]),
    ]


def plan(data_dir: Path, environ: Mapping[str, str] | None = None
         ) -> list[tuple[str, list[str]]]:
    """Return the steps that would create the environment here, or explain why none can."""
    python = base_python()
    if python is None:
        raise AnnotuneError("no Python 3.11 or newer was found to create the training "
                            "environment from", hint="install Python 3.11+ (with venv), or "
                            f"point annotune at a Python that has torch ({ENV_PYTHON})")
    wheel = carried_wheel(environ)
    if wheel is None:
        raise AnnotuneError("this installation carries no annotune wheel to install into a "
                            "training environment",
                            hint="install the training extra where annotune runs "
                                 "(pip install 'annotune[train]'; with pipx: pipx inject "
                                 "annotune torch transformers onnx), or set "
                                 f"{ENV_WHEEL} to a wheel built with `pip wheel . -w dist`")
    return creation_steps(data_dir, python, wheel, torch_index(environ))


def run_steps(steps: Sequence[tuple[str, list[str]]], emit: Callable[[str], object],
              should_stop: Callable[[], bool] = lambda: False) -> None:
    """Run the steps one after the other, passing each output line to ``emit``.

    A failed step raises AnnotuneError with its last lines; the half-made environment stays
    for the next try (pip resumes where it stopped).
    """
    for title, command in steps:
        emit(f"== {title}")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, env=_child_env())
        tail: list[str] = []
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            if line:
                tail = (tail + [line])[-5:]
                emit(line)
            if should_stop():
                process.terminate()
        if process.wait() != 0:
            raise AnnotuneError(f"{title} failed (exit code {process.returncode})",
                                where=" ".join(command),
                                hint=" | ".join(tail) or "no output")
    forget_probes()


def child_overrides() -> dict[str, str]:
    """Return the variables to set for a child Python started from this app.

    PyInstaller points the loader at the frozen app's own folder (the original value is kept
    under *_ORIG); a system Python must not load the app's copies of libraries.
    """
    if not frozen():
        return {}
    return {name: os.environ.get(f"{name}_ORIG", "")
            for name in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH")}


def _child_env() -> dict[str, str]:
    """The environment of a child Python: none of the frozen app's library paths."""
    return {**os.environ, **child_overrides()}


_DESCRIBE = """
import json, sys
from annotune.core.training.config import TrainConfig
from annotune.core.training.device import describe_device, device_label
print(device_label(describe_device(TrainConfig.from_dict(json.loads(sys.argv[1])))))
"""


def describe_device(interpreter: Interpreter, config: object) -> str:
    """Return where ``interpreter`` would train with ``config`` (e.g. ``CPU (fp32)``)."""
    # in a child even for this installation's own Python: the app process stays torch-free
    data = json.dumps(config.to_dict())  # type: ignore[attr-defined]
    done = subprocess.run([interpreter.python, "-c", _DESCRIBE, data], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, env=_child_env())
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        raise AnnotuneError(f"could not describe the device: "
                            f"{errors[-1] if errors else 'no output'}",
                            where=interpreter.python)
    return lines[-1]


def export_in_child(python: str, run_dir: Path, out_dir: Path, quantize: bool,
                    stage: Callable[[str], object] = lambda _text: None) -> dict:
    """Export a run with ``python -m annotune.core.export.job``; return the report as a dict.

    The export traces with torch, so it runs in the training environment, never in the app.
    """
    command = [python, "-m", "annotune.core.export.job", str(run_dir), str(out_dir)]
    if quantize:
        command.append("--int8")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
                               env=_child_env())
    final: dict | None = None
    assert process.stdout is not None and process.stderr is not None
    for line in process.stdout:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a library's own print: not an event
        if event.get("event") == "stage":
            stage(str(event.get("stage", "")))
        elif event.get("event") in ("finished", "failed"):
            final = event
    errors = process.stderr.read()
    process.wait()
    if final is None:
        tail = [line for line in errors.splitlines() if line.strip()][-3:]
        raise AnnotuneError(f"the export process ended unexpectedly (exit code "
                            f"{process.returncode})", where=python,
                            hint=" | ".join(tail) or "no output")
    if final["event"] == "failed":
        raise AnnotuneError(str(final.get("error")))
    return dict(final["report"])
