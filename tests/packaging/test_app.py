"""The desktop app as people install it: walked through offscreen, frozen and from the venv.

The frozen build takes about a minute on two cores, so it runs where ANNOTUNE_APP_TEST=1
(`make app-test`, and .ci/run on every change).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from annotune.core import training_env

ROOT = Path(__file__).resolve().parents[2]


def _helpers():
    import importlib.util

    spec = importlib.util.spec_from_file_location("packaging_fixtures",
                                                  Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_walkthrough(steps: dict[str, dict]) -> None:
    assert steps["startup"]["ok"]
    assert steps["label"]["ok"] and steps["label"]["annotation"] == {"label": "neg"}
    prediction = steps["predict"]["prediction"]
    assert steps["predict"]["ok"] and set(prediction["probabilities"]) == {"neg", "pos"}
    assert steps["train"]["ok"], steps["train"]
    assert steps["export"]["ok"] and steps["export"]["parity_max_diff"] < 1e-4, steps["export"]
    assert steps["torch-free"]["ok"], "the app process imported torch"


def test_the_installed_app_labels_predicts_trains_and_exports_without_torch_in_process(
        walkthrough, tiny_base_model, tmp_path):
    helpers = _helpers()
    project, bundle = walkthrough
    program = [str(Path(sys.executable).with_name("annotune-desktop"))]
    steps = helpers.run_self_test(program, project, bundle, tiny_base_model,
                                  helpers.app_env(tmp_path))
    _check_walkthrough(steps)


@pytest.fixture(scope="module")
def frozen_app(tmp_path_factory) -> Path:
    if os.environ.get("ANNOTUNE_APP_TEST") != "1":
        pytest.skip("the frozen app is built only with ANNOTUNE_APP_TEST=1 (make app-test)")
    pytest.importorskip("PyInstaller", reason="needs the app extra: pip install -e '.[app]'")
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import build as app_build
    finally:
        sys.path.pop(0)
    work = tmp_path_factory.mktemp("app-build")
    return app_build.build(work / "dist", work / "work")


def test_the_frozen_app_carries_no_training_side(frozen_app):
    internal = frozen_app / "_internal"
    names = {path.name.split("-")[0].split(".")[0] for path in internal.iterdir()}
    assert not names & {"torch", "transformers", "sentence_transformers", "scipy", "sklearn"}
    assert {"PySide6", "onnxruntime", "tokenizers", "numpy"} <= names
    assert list((internal / "wheels").glob("annotune-*.whl")), "no wheel for training set-up"
    assert (frozen_app / "share" / "annotune.desktop").is_file()
    assert (frozen_app / "share" / "icons" / "annotune.svg").is_file()


def test_the_frozen_app_labels_predicts_trains_and_exports_through_a_python_with_torch(
        frozen_app, walkthrough, tiny_base_model, tmp_path):
    helpers = _helpers()
    project, bundle = walkthrough
    env = helpers.app_env(tmp_path, **{training_env.ENV_PYTHON: sys.executable})
    steps = helpers.run_self_test([str(frozen_app / "annotune")], project, bundle,
                                  tiny_base_model, env)
    _check_walkthrough(steps)
