"""The training environment: where the app looks for torch, and how it would create one."""

from __future__ import annotations

import sys

import pytest

from annotune.core import training_env
from annotune.core.extras import TORCH_CPU_INDEX


@pytest.fixture(autouse=True)
def fresh_probes():
    training_env.forget_probes()
    yield
    training_env.forget_probes()


def test_the_torch_build_fits_the_machine():
    assert training_env.torch_index({}, which=lambda name: None) == TORCH_CPU_INDEX
    assert training_env.torch_index({}, which=lambda name: "/usr/bin/nvidia-smi") is None
    chosen = {training_env.ENV_TORCH_INDEX: "https://example.invalid/whl/cu128"}
    assert training_env.torch_index(chosen, which=lambda n: None).endswith("cu128")
    assert training_env.torch_index({training_env.ENV_TORCH_INDEX: ""}, lambda n: None) is None


def test_a_python_with_torch_and_the_same_annotune_is_accepted():
    found = training_env.probe(sys.executable, "environment variable")
    assert isinstance(found, training_env.Interpreter), found
    assert found.torch and found.python == sys.executable


def test_pythons_that_cannot_train_are_skipped_with_their_reason(tmp_path):
    environ = {training_env.ENV_PYTHON: str(tmp_path / "missing" / "python")}
    found, reasons = training_env.find("/usr/bin/true", tmp_path, environ)
    # this installation has torch, so it is used after the two that cannot train
    assert found is not None and found.source == "this installation"
    assert "does not exist" in reasons[0] and "/usr/bin/true cannot train" in reasons[1]


def test_the_order_is_variable_then_choice_then_created(tmp_path):
    created = training_env.env_python(training_env.env_folder(tmp_path))
    created.parent.mkdir(parents=True)
    created.write_text("")
    order = list(training_env.candidates("/opt/chosen/python", tmp_path,
                                         {training_env.ENV_PYTHON: "/opt/var/python"}))
    assert [source for _, source in order] == ["environment variable", "chosen in the app",
                                               "created"]


def test_cached_only_answers_without_starting_a_process(tmp_path):
    environ = {training_env.ENV_PYTHON: sys.executable}
    with pytest.raises(LookupError):
        training_env.find(None, tmp_path, environ, cached_only=True)
    training_env.find(None, tmp_path, environ)
    found, _ = training_env.find(None, tmp_path, environ, cached_only=True)
    assert found is not None and found.source == "environment variable"


def test_creating_installs_the_fitting_torch_the_wheel_and_the_model(tmp_path):
    wheel = tmp_path / "annotune-0.1.0-py3-none-any.whl"
    steps = training_env.creation_steps(tmp_path, "/usr/bin/python3.11", wheel, TORCH_CPU_INDEX)
    commands = [" ".join(command) for _, command in steps]
    venv = training_env.env_folder(tmp_path)
    assert commands[0] == f"/usr/bin/python3.11 -m venv {venv}"
    assert f"--index-url {TORCH_CPU_INDEX} torch>=2.4" in commands[1]
    assert commands[2].endswith(f"{wheel}[train]")
    assert commands[3].endswith("-m annotune.core.base_model --if-missing")
    gpu = training_env.creation_steps(tmp_path, "python3", wheel, None)
    assert "--index-url" not in " ".join(gpu[1][1])


def test_without_a_wheel_to_install_the_plan_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(training_env.ENV_WHEEL, raising=False)
    from annotune.core.errors import AnnotuneError

    with pytest.raises(AnnotuneError, match=r"annotune\[train\]"):
        training_env.plan(tmp_path, {})


def test_steps_run_in_order_and_a_failure_names_the_step(tmp_path):
    from annotune.core.errors import AnnotuneError

    lines = []
    training_env.run_steps([("saying hello", [sys.executable, "-c", "print('hello')"])],
                           lines.append)
    assert lines == ["== saying hello", "hello"]
    with pytest.raises(AnnotuneError, match="failing failed"):
        training_env.run_steps([("failing", [sys.executable, "-c", "import sys; sys.exit(3)"])],
                               lines.append)
