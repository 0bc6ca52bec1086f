"""People's words for metric keys, option names, precision figures and command-line hints."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from annotune.core.display_names import (
    for_people,
    metric_title,
    option_title,
    option_tooltip,
    precision_sentence,
    status_title,
)

ROOT = Path(__file__).resolve().parents[2]
# Modules whose messages only the command line shows (the desktop never runs them).
# install and set-up commands are typed in a terminal whichever program shows them
# modules only the command line reaches (distributed runs and serving have no window)
CLI_ONLY = {"core/cli.py", "core/demo.py", "core/training/job.py", "core/base_model.py",
            "core/extras.py", "core/training/distributed.py", "core/training/spec.py",
            "core/training/spec_job.py", "core/training/spec_record.py",
            "core/label_check_heads.py"}
CLI_ONLY_FOLDERS = ("core/serve/",)
CLI_WORDS = re.compile(r"(?<![\w-])--[a-z][\w-]*|`annotune\b")


def test_metric_and_option_keys_read_as_words():
    assert metric_title("macro_f1") == "Macro F1"
    assert metric_title("validation_loss") == "Validation loss"
    assert metric_title("per_type") == "Per entity type"
    assert metric_title("HasAns_f1") == "F1 (answerable)"
    assert metric_title("some_new_score") == "Some new score"  # unknown keys still read
    assert option_title("warmup_ratio") == "Warm-up share"
    assert "warmup_ratio" in option_tooltip("warmup_ratio")
    assert status_title("cancelled") == "Stopped" and status_title(None) == "Unlabeled"


def test_a_task_names_its_own_metrics():
    class Task:
        metric_titles = {"f1": "Entity F1"}

    assert metric_title("f1", Task()) == "Entity F1"
    assert metric_title("recall", Task()) == "Recall"


@pytest.mark.parametrize(("probe", "sentence"), [
    ({"fp32_ms": 14.8, "bf16_ms": 10.0, "chosen": "bf16", "batch": 8, "length": 15},
     "Half precision (bf16) was 1.48× faster on this machine, so training used it"),
    ({"fp32_ms": 6.6, "bf16_ms": 10.0, "chosen": "fp32"},
     "Half precision (bf16) was 0.66× as fast on this machine, so training used full "
     "precision (fp32)"),
    ({"fp32_ms": 10.3, "fp16_ms": 10.0, "chosen": "fp32"},
     "Half precision (fp16) was only 1.03× as fast on this machine, so training used full "
     "precision (fp32)"),
    (None, None),
])
def test_the_precision_probe_is_said_in_a_sentence(probe, sentence):
    assert precision_sentence(probe) == sentence


def _hint_texts(path: Path) -> list[str]:
    """Return the literal text of every hint in a module (f-string parts joined by 'X')."""
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def text(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(part.value if isinstance(part, ast.Constant) else "X"
                           for part in node.values)
        if isinstance(node, ast.BinOp):
            left, right = text(node.left), text(node.right)
            return (left or "X") + (right or "X")
        if isinstance(node, ast.IfExp):
            return text(node.body)
        return None

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "hint":
            found.append(text(node.value))
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and "HINT" in t.id for t in node.targets):
            found.append(text(node.value))
        elif isinstance(node, ast.FunctionDef) and node.name == "cost_note":
            found += [text(d) for d in node.args.defaults]
    return [t for t in found if t]


def test_every_hint_core_and_plugins_give_reads_without_command_line_options():
    phrases = []
    for folder in ("core", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            if name not in CLI_ONLY and not name.startswith(CLI_ONLY_FOLDERS):
                phrases += [(path.name, hint) for hint in _hint_texts(path)
                            if CLI_WORDS.search(hint)]
    assert phrases, "the scan finds the hints that name options"
    left = [(name, for_people(hint)) for name, hint in phrases
            if CLI_WORDS.search(for_people(hint))]
    assert left == [], "add these phrases to display_names.CLI_TERMS"


def test_hints_are_rewritten_into_the_windows_words():
    assert for_people("fix the file, or pass --skip-bad-rows to import the other rows") == \
        "fix the file, or tick 'Skip bad rows' to import the other rows"
    assert for_people("x.annotune: no such project — check the path, or create one with "
                      "`annotune init`").endswith("create one with File ▸ New project…")
    assert for_people("the file has columns a, b; choose one with --map text=COLUMN") == \
        "the file has columns a, b; choose one for 'text' under Columns"
