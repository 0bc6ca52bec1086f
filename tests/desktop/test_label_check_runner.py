"""Model ▸ Check labels from the desktop: the check runs in a child process, off the GUI thread."""

from __future__ import annotations

from types import SimpleNamespace

from PySide6.QtWidgets import QDialog, QWidget

from annotune.core.formats.base import ImportRecord
from annotune.core.plugins import registry
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings
from annotune.desktop import training_env
from annotune.desktop.label_check import CheckLabelsDialog, LabelCheckRunner

TEXTS = ["🍕 was great", "👨\u200d👩\u200d👧 hated it", "東京は素晴らしい", "رائع جدا",
         "Jose\u0301 liked it", "awful\r\nreally"]


def test_a_desktop_check_runs_in_a_child_and_reports_its_suspects(qtbot, tmp_path,
                                                                  tiny_base_model):
    path = tmp_path / "reviews.annotune"
    with Project.create(path, "text-classification", TaskSettings(labels=("pos", "neg")),
                        base_model=str(tiny_base_model)) as project:
        project.add_examples([ImportRecord({"text": f"{text} #{i}"},
                                           {"label": ("pos", "neg")[i % 2]}, line=i + 1)
                              for i, text in enumerate(TEXTS * 2)])
    window = QWidget()
    qtbot.addWidget(window)
    runner = LabelCheckRunner(window)
    messages, running = [], []
    runner.message.connect(messages.append)
    runner.running.connect(running.append)
    with Project.open(path) as project, qtbot.waitSignal(runner.finished, timeout=300_000) as done:
        runner.start(project, folds=2)
    assert running == [True, False]
    assert any(m.startswith("Checking 12 labels with 2 models") for m in messages)
    assert messages[-1].startswith("Label check done:")
    with Project.open(path) as project:
        assert len(project.label_issues(done.args[0])) == 12  # every label checked once
        assert project.label_checks()[0]["status"] == "finished"


def _reviews(path, base_model):
    with Project.create(path, "text-classification", TaskSettings(labels=("pos", "neg")),
                        base_model=str(base_model)) as project:
        project.add_examples([ImportRecord({"text": f"{text} #{i}"},
                                           {"label": ("pos", "neg")[i % 2]}, line=i + 1)
                              for i, text in enumerate(TEXTS * 2)])


def test_the_dialog_offers_the_fast_check_only_where_it_runs(qtbot):
    classification = CheckLabelsDialog(registry().task("text-classification"))
    qtbot.addWidget(classification)
    assert classification.choice() == (5, False)  # fine-tuned folds unless asked
    classification.folds.setValue(3)
    classification.fast.setChecked(True)
    assert classification.choice() == (3, True)
    qa = CheckLabelsDialog(registry().task("question-answering"))
    qtbot.addWidget(qa)
    qa.fast.setChecked(True)
    assert not qa.fast.isEnabled() and qa.choice() == (5, False)
    assert "cannot score" in qa.fast.toolTip()


def test_the_menu_action_starts_the_fast_check_the_dialog_asked_for(qtbot, tmp_path,
                                                                  monkeypatch, tiny_base_model):
    path = tmp_path / "reviews.annotune"
    _reviews(path, tiny_base_model)

    def answer(dialog):
        dialog.folds.setValue(2)
        dialog.fast.setChecked(True)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(CheckLabelsDialog, "exec", answer)
    monkeypatch.setattr(training_env, "with_interpreter",
                        lambda window, then: then(SimpleNamespace(python=None)))
    window = QWidget()
    qtbot.addWidget(window)
    runner = LabelCheckRunner(window)
    with Project.open(path) as project, qtbot.waitSignal(runner.finished, timeout=300_000) as done:
        runner.toggle(project)
    with Project.open(path) as project:
        (check,) = project.label_checks()
        assert check["id"] == done.args[0] and check["status"] == "finished"
        assert check["config"]["folds"] == 2 and check["config"]["train"]["freeze_encoder"]
        assert len(project.label_issues(check["id"])) == 12
