"""`make demo` and `make test` take the torch build that fits the machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def torch_index(path: str, *overrides: str) -> str:
    done = subprocess.run(["make", "-s", "-C", str(ROOT), "print-torch-index", *overrides],
                          capture_output=True, text=True, env={**os.environ, "PATH": path},
                          check=True)
    return done.stdout.strip()


def test_without_an_nvidia_gpu_the_cpu_build_is_chosen(tmp_path):
    assert torch_index(f"{tmp_path}:/usr/bin:/bin") == "https://download.pytorch.org/whl/cpu"


def test_with_nvidia_smi_the_default_index_cuda_build_is_chosen(tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\nexit 0\n")
    smi.chmod(0o755)
    assert torch_index(f"{tmp_path}:/usr/bin:/bin") == ""


def test_the_index_can_be_chosen(tmp_path):
    chosen = "https://download.pytorch.org/whl/cu128"
    assert torch_index(f"{tmp_path}:/usr/bin:/bin", f"TORCH_INDEX={chosen}") == chosen


def test_the_readme_keeps_two_set_up_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
