"""Importers and exporters, one module per family of file formats."""
