"""A fresh clone, without the public data sets beside it, passes: their tests skip."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
DATA_TESTS = [
    "core/test_importing.py::test_sst2_train_head_imports",
    "core/test_importing.py::test_sst2_dev_imports_whole",
    "core/test_importing.py::test_rte_train_head_imports_as_pairs",
    "plugins/test_text_classification.py::test_sst2_dev_encodes_quickly_with_glue_indices",
    "plugins/test_pair_classification.py::test_rte_pairs_encode_within_max_length",
    "plugins/test_squad.py::test_real_squad_subset_imports_completely",
    "plugins/test_conll.py::test_conll2003_opening_round_trips",
]


def test_tests_of_the_public_data_sets_skip_without_them(tmp_path):
    env = {**os.environ, "ANNOTUNE_DATASETS_DIR": str(tmp_path / "absent")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rs", *(str(TESTS / t) for t in DATA_TESTS)],
                          capture_output=True, text=True, env=env, cwd=TESTS.parent,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"{len(DATA_TESTS)} skipped" in done.stdout, done.stdout[-3000:]
    assert "public data sets not found" in done.stdout


def test_no_test_builds_its_own_path_to_the_data_sets():
    # one place knows where the data sets are (tests/conftest.py's datasets_dir fixture)
    pattern = re.compile(r"""["']shared["']|shared/datasets["']""")
    offenders = [str(path.relative_to(TESTS)) for path in TESTS.rglob("test_*.py")
                 if path != Path(__file__) and pattern.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
