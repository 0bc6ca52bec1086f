"""Plugin loading: built-ins by module name, third parties by entry point, broken ones skipped."""

import sys
import textwrap

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.plugins import BUILTIN_PLUGINS, build_registry

THIRD_PARTY = '''
from annotune.core.hookspecs import hookimpl
from annotune.core.tasks import Task


class EchoTask(Task):
    name = "echo"
    title = "Echo"
    annotation_kind = "label"
    fields = ("text",)
    auto_model = "AutoModelForSequenceClassification"
    main_metric = "accuracy"


@hookimpl
def register_tasks(register):
    register(EchoTask())


@hookimpl
def register_commands(cli):
    parser = cli.add_parser("echo-hello")
    parser.set_defaults(func=lambda args: print("hello from a plugin") or 0)
'''


def _install_distribution(root, name, entry_points, modules):
    """Lay out an installed distribution (dist-info + modules) on a sys.path folder."""
    dist = root / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{key} = {value}" for key, value in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[annotune]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in ("echo_plugin", "broken_plugin", "failing_register"):
        sys.modules.pop(module, None)


def test_builtin_tasks_load_by_module_name():
    registry = build_registry()
    assert not registry.failures, registry.failures
    assert {"text-classification", "pair-classification", "token-classification",
            "question-answering"} <= set(registry.tasks)
    assert {"csv", "tsv", "jsonl", "txt"} <= set(registry.importers)
    assert all(name.startswith("annotune.") for name in BUILTIN_PLUGINS)


def test_third_party_plugin_registers_through_entry_point(site):
    _install_distribution(site, "annotune_echo", {"echo": "echo_plugin"},
                          {"echo_plugin": THIRD_PARTY})
    registry = build_registry()
    assert registry.task("echo").title == "Echo"
    assert not registry.failures


def test_broken_plugins_are_reported_and_skipped(site):
    _install_distribution(site, "annotune_broken",
                          {"broken": "broken_plugin", "failing": "failing_register",
                           "echo": "echo_plugin"},
                          {"broken_plugin": "import not_a_real_module_anywhere\n",
                           "failing_register": '''
                               from annotune.core.hookspecs import hookimpl

                               @hookimpl
                               def register_tasks(register):
                                   raise RuntimeError("cannot register")
                           ''',
                           "echo_plugin": THIRD_PARTY})
    registry = build_registry()
    failed = {failure.name: failure.error for failure in registry.failures}
    assert "ModuleNotFoundError" in failed["broken"]
    assert "cannot register" in failed["failing"]
    # start-up went on: the built-ins and the healthy third-party plugin are there
    assert "echo" in registry.tasks
    assert "text-classification" in registry.tasks


def test_unknown_task_error_lists_installed_tasks():
    with pytest.raises(AnnotuneError) as error:
        build_registry().task("sentiment")
    assert "unknown task 'sentiment'" in str(error.value)
    assert "text-classification" in str(error.value)
