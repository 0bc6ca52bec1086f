"""The frozen desktop app's entry point (PyInstaller runs this file as ``__main__``)."""

import sys

from annotune.desktop.launcher import main

if __name__ == "__main__":
    sys.exit(main())
