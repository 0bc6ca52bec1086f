"""The distribution maps every package under one `annotune` namespace and nothing else."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAPPED = {"core": "annotune.core", "plugins": "annotune.plugins", "desktop": "annotune.desktop"}


def _declared_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(config["tool"]["setuptools"]["packages"])


def _package_folders() -> set[str]:
    found = set()
    for folder, namespace in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([namespace, *relative.parts]))
    return found


def test_every_package_folder_is_listed_in_pyproject():
    assert _package_folders() == _declared_packages()


def test_every_python_folder_is_a_package():
    for folder in MAPPED:
        for module in (ROOT / folder).rglob("*.py"):
            assert (module.parent / "__init__.py").exists(), f"{module.parent} lacks __init__.py"


def test_wheel_has_only_annotune_at_the_top(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "--quiet", "-w", str(tmp_path)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("annotune-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"annotune"}
    names = zipfile.ZipFile(wheel).namelist()
    assert "annotune/core/cli.py" in names
    assert "annotune/plugins/text_classification.py" in names
    assert not any(n.startswith("annotune/__init__") for n in names), "annotune is a namespace"
    assert "annotune/desktop/icons/annotune-256.png" in names, "the window icon is missing"


def test_repository_root_modules_are_not_importable_bare():
    result = subprocess.run([sys.executable, "-c", "import core"], cwd=ROOT.parent,
                            capture_output=True)
    assert result.returncode != 0
