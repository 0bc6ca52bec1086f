"""The picture of the house in docs/architecture.md, held against the code's imports.

The doc's "The house" table lists the layers from the top (the programs people run) to the
bottom (the contract every part speaks). A module may import its own layer and the layers
below it, never one above: the arrows of the picture run one way. Every module of core/,
plugins/ and desktop/ must be placed in the table, so the picture cannot quietly go stale.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
SOURCE_FOLDERS = ("core", "plugins", "desktop")


def read_layers(doc_text: str) -> list[tuple[str, list[str]]]:
    """Return (layer, [path prefixes]) from the house table, top layer first."""
    section = doc_text.split("## The house", 1)[1].split("\n## ", 1)[0]
    layers = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not line.lstrip().startswith("|"):
            continue
        name, _job, modules = cells
        paths = re.findall(r"`([^`]+)`", modules)
        if paths and name.lower() != "layer":
            layers.append((name, paths))
    return layers


def layer_of(relative: str, layers: list[tuple[str, list[str]]]) -> int | None:
    """Return the index of the layer whose most specific path holds ``relative``."""
    best, best_length = None, -1
    for index, (_name, paths) in enumerate(layers):
        for path in paths:
            holds = relative == path or (path.endswith("/") and relative.startswith(path))
            if holds and len(path) > best_length:
                best, best_length = index, len(path)
    return best


def module_file(module: str, root: Path) -> str | None:
    """Return the source path (relative to ``root``) of an ``annotune.*`` module, if it is ours."""
    parts = module.split(".")
    if parts[0] != "annotune" or len(parts) < 2 or parts[1] not in SOURCE_FOLDERS:
        return None
    base = root.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(root).as_posix()
    return None


def imported_files(path: Path, root: Path) -> set[str]:
    """Return our source files that ``path`` imports, lazily imported ones included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from annotune.core import errors` names a module; `from x import Thing` does not.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            target = module_file(name, root)
            if target is not None:
                found.add(target)
    return found


def house_problems(root: Path, doc_text: str) -> list[str]:
    """Return every module the table does not place and every import that runs upwards."""
    layers = read_layers(doc_text)
    if not layers:
        return ["docs/architecture.md has no house table"]
    problems = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            mine = layer_of(relative, layers)
            if mine is None:
                problems.append(f"{relative} is in no layer of the house table")
                continue
            for target in sorted(imported_files(path, root)):
                theirs = layer_of(target, layers)
                if theirs is not None and theirs < mine:
                    problems.append(f"{relative} ({layers[mine][0]}) imports {target} "
                                    f"({layers[theirs][0]}), a layer above it")
    return problems


def test_the_code_matches_the_picture_of_the_house():
    assert house_problems(ROOT, DOC.read_text(encoding="utf-8")) == []


def test_the_house_check_sees_an_upward_import_and_an_unplaced_module(tmp_path):
    doc = ("## The house\n\n| layer | job | modules |\n|---|---|---|\n"
           "| apps | programs | `core/cli.py` |\n| contract | types | `core/tasks.py` |\n")
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "cli.py").write_text("from annotune.core import tasks\n")
    (tmp_path / "core" / "tasks.py").write_text("import annotune.core.cli\n")
    (tmp_path / "core" / "stray.py").write_text("")
    assert house_problems(tmp_path, doc) == [
        "core/stray.py is in no layer of the house table",
        "core/tasks.py (contract) imports core/cli.py (apps), a layer above it",
    ]
