"""Model ▸ Check labels from the desktop: the check runs in a child process, off the GUI thread."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings
from annotune.desktop.label_check import LabelCheckRunner

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
