"""Labeling editors, one per annotation kind, registered through the desktop hook."""
