"""In an install without an extra, a command that needs it says which extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from annotune.core.extras import missing_extra


def _run_without(module: str, argv: list[str], tmp_path) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a child where ``module`` cannot be imported (as if not installed)."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules[{module!r}] = None  # import raises ModuleNotFoundError, as when absent
        from annotune.core.cli import main
        sys.exit(main({argv!r}))
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)


@pytest.mark.parametrize(("module", "argv", "extra"), [
    ("sqlite_utils", ["stats", "reviews.annotune"], "project"),
    ("sqlite_utils", ["init", "r.annotune", "--task", "text-classification",
                      "--labels", "a,b"], "project"),
    ("torch", ["train", "reviews.annotune"], "train"),
    ("torch", ["export", "run", "bundle"], "train"),
    ("PySide6", ["gui"], "desktop"),
])
def test_a_command_names_the_extra_it_needs(module, argv, extra, tmp_path):
    if module == "torch":  # train and export open the project first
        from annotune.core.store import Project
        from annotune.core.tasks import TaskSettings

        Project.create(tmp_path / "reviews.annotune", task="text-classification",
                       settings=TaskSettings(labels=("a", "b"))).close()
        (tmp_path / "run").mkdir()
    done = _run_without(module, argv, tmp_path)
    assert done.returncode == 1, done.stderr
    assert f"pip install 'annotune[{extra}]'" in done.stderr, done.stderr
    assert "unexpected" not in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_desktop_command_names_its_extra_without_qt(tmp_path):
    code = ("import sys; sys.modules['PySide6'] = None\n"
            "from annotune.desktop.launcher import main\nsys.exit(main([]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "pip install 'annotune[desktop]'" in done.stderr


def test_other_import_errors_are_left_alone():
    assert missing_extra(ModuleNotFoundError("No module named 'zzz'", name="zzz")) is None
    assert missing_extra(ImportError("cannot import name 'x'")) is None
    assert missing_extra(ValueError("x")) is None
    error = missing_extra(ModuleNotFoundError("No module named 'torch.cuda'", name="torch.cuda"))
    assert error is not None and "download.pytorch.org/whl/cpu" in str(error)
