"""Name the extra to install when a command needs a module that this install lacks.

annotune's base install only predicts (onnxruntime, tokenizers, numpy, pluggy). Project
files, the desktop app and training each come with an extra; a command that reaches for a
module of one of them says which ``pip install 'annotune[...]'`` brings it, instead of a bare
"No module named ...". The CLI calls ``missing_extra`` in one place, for every command.
"""

from __future__ import annotations

from annotune.core.errors import AnnotuneError

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# top-level module -> (what it is for, the extra that installs it)
EXTRAS = {
    "sqlite_utils": ("project files", "project"),
    "PySide6": ("the desktop app", "desktop"),
    "shiboken6": ("the desktop app", "desktop"),
    "torch": ("training and export", "train"),
    "transformers": ("training and export", "train"),
    "huggingface_hub": ("training and export", "train"),
    "safetensors": ("training and export", "train"),
    "onnx": ("training and export", "train"),
    "starlette": ("serving bundles over HTTP", "serve"),
    "uvicorn": ("serving bundles over HTTP", "serve"),
}
# modules of the base install: missing, the install itself is broken
BASE = ("onnxruntime", "tokenizers", "numpy", "pluggy")


def missing_module(error: BaseException) -> str | None:
    """Return the top-level name of the module an ImportError could not find (None: other)."""
    if not isinstance(error, ModuleNotFoundError) or not error.name:
        return None
    return error.name.split(".")[0]


def missing_extra(error: BaseException) -> AnnotuneError | None:
    """Turn "No module named X" into an error that names the extra to install (None: other)."""
    module = missing_module(error)
    if module is None:
        return None
    if module in EXTRAS:
        purpose, extra = EXTRAS[module]
        hint = f"install it with: pip install 'annotune[{extra}]'"
        if extra == "train":
            hint += (f" (without an NVIDIA GPU, first pip install torch --index-url "
                     f"{TORCH_CPU_INDEX}: the CPU build is a fraction of the size)")
        return AnnotuneError(f"the module '{module}' is not installed: it is needed for "
                             f"{purpose}", hint=hint)
    if module in BASE:
        return AnnotuneError(f"the module '{module}' that annotune always needs is missing",
                             hint="reinstall annotune: pip install --force-reinstall annotune "
                                  "(or the wheel it came from)")
    return None


# Commands whose modules are checked before they start: train and demo work in a child
# process, where a missing module would surface as a failed child; export would fail only
# after reading the whole run.
COMMAND_MODULES = {"train": ("torch", "transformers", "sqlite_utils"),
                   "demo": ("torch", "transformers", "sqlite_utils"),
                   "export": ("torch", "transformers", "onnx"),
                   "serve": ("starlette", "uvicorn")}


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_for_command(command: str | None) -> None:
    """Raise the extra's error when ``command`` needs a module this install lacks."""
    for module in COMMAND_MODULES.get(command or "", ()):
        if not _installed(module):
            error = missing_extra(ModuleNotFoundError(f"No module named '{module}'",
                                                      name=module))
            if error is not None:
                raise error
