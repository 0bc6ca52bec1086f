"""annotune core: everything usable without a screen (store, formats, training, export, ...)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("annotune")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
