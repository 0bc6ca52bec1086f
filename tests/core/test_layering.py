"""Layer rules, read from the source: core never imports Qt, plugins stay torch- and Qt-free."""

import ast
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
