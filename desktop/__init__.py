"""The desktop app (PySide6): the only part of annotune that imports Qt."""
