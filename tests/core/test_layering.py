"""Layer rules, read from the source: core never imports Qt, plugins stay torch- and Qt-free."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(folder: str, forbidden: tuple[str, ...], root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted((root / folder).rglob("*.py")):
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in forbidden):
                found.append(f"{path.relative_to(root)} imports {name}")
    return found


@pytest.mark.parametrize(("folder", "forbidden"), [
    ("core", ("PySide6", "annotune.desktop")),
    ("plugins", ("PySide6", "annotune.desktop", "torch", "transformers")),
])
def test_layer_rules(folder, forbidden):
    assert _violations(folder, forbidden) == []


def test_rule_checker_sees_a_violation(tmp_path):
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "bad.py").write_text("from PySide6 import QtWidgets\n")
    assert _violations("core", ("PySide6",), root=tmp_path) == ["core/bad.py imports PySide6"]


def _imports_of_package(path: Path, package: str) -> set[str]:
    """Return the modules ``path`` imports, ``from annotune.core import export`` spelled out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            # "from annotune.core import export" names the package in the imported names
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            # a relative import from core/training/x.py: one dot is annotune.core.training
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _training_imports_of_export(root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted((root / "core" / "training").rglob("*.py")):
        for name in _imports_of_package(path, "annotune.core.training"):
            if name == "annotune.core.export" or name.startswith("annotune.core.export."):
                found.append(f"{path.relative_to(root)} imports {name}")
    return sorted(found)


def test_training_does_not_import_the_export():
    """Export reads what training writes; training never needs the export to run."""
    assert _training_imports_of_export() == []


@pytest.mark.parametrize("line", [
    "from annotune.core.export import export_run\n",
    "from annotune.core.export.validation import ValidationReport\n",
    "import annotune.core.export.parity\n",
    "from annotune.core import export\n",
    "from ..export import parity\n",
    "def later():\n    from annotune.core.export import build\n",
])
def test_the_training_rule_sees_every_way_to_import_the_export(tmp_path, line):
    (tmp_path / "core" / "training").mkdir(parents=True)
    (tmp_path / "core" / "training" / "loop.py").write_text(line)
    assert len(_training_imports_of_export(tmp_path)) >= 1


def test_importing_the_training_loads_no_export_module():
    """Also through a neutral module: training runs where no export module was ever loaded."""
    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        import annotune.core.training as training
        for module in pkgutil.iter_modules(training.__path__):
            importlib.import_module("annotune.core.training." + module.name)
        print([name for name in sys.modules if name.startswith("annotune.core.export")])
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
