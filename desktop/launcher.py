"""Start the desktop app from the ``annotune-desktop`` command, even in an install without Qt.

No Qt import here: where PySide6 is missing (the inference-only install), the command says
which extra brings it instead of failing on an import.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the desktop app; return its exit code (1 with a one-line reason when it cannot)."""
    try:
        from annotune.desktop.app import main as run_app
    except ModuleNotFoundError as error:
        from annotune.core.extras import missing_extra

        known = missing_extra(error)
        if known is None:
            raise
        print(f"error: {known}", file=sys.stderr)
        return 1
    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
