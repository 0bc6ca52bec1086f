"""The start screen and the new-project dialog: the common task first, nothing clipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QCheckBox,
    QLabel,
    QLineEdit,
    QStyle,
    QStyleOptionFrame,
)

from annotune.core.plugins import registry
from annotune.desktop.start_screen import NewProjectDialog, StartScreen


@pytest.fixture(params=[1.0, 2.0], ids=["100%", "200%"])
def text_scale(request, qapp):
    """Run a test with the system font at 100 % and at 200 % (large-text and high-DPI set-ups)."""
    original = QFont(qapp.font())
    scaled = QFont(original)
    scaled.setPointSizeF(original.pointSizeF() * request.param)
    qapp.setFont(scaled)
    yield request.param
    qapp.setFont(original)


def _shown_text_width(edit: QLineEdit) -> int:
    """Return the pixels a line edit has for its text (inside its frame and margins)."""
    option = QStyleOptionFrame()
    edit.initStyleOption(option)
    rect = edit.style().subElementRect(QStyle.SubElement.SE_LineEditContents, option, edit)
    margins = edit.textMargins()
    return rect.width() - margins.left() - margins.right()


def _clipped(dialog) -> list[str]:
    """Return every visible field, label or button whose text does not fit in it."""
    found = []
    for edit in dialog.findChildren(QLineEdit):
        text = edit.text() or edit.placeholderText()
        if edit.isVisible() and edit.fontMetrics().horizontalAdvance(text) > \
                _shown_text_width(edit):
            found.append(f"field '{text}'")
    for widget in [*dialog.findChildren(QLabel), *dialog.findChildren(QAbstractButton)]:
        if widget.isVisible() and widget.width() < widget.sizeHint().width() and \
                not (isinstance(widget, QLabel) and widget.wordWrap()):
            found.append(f"{type(widget).__name__} '{widget.text()}'")
    return found


def test_new_project_defaults_to_text_classification(qtbot):
    dialog = NewProjectDialog(registry(), folder=Path("/home/ada"))
    qtbot.addWidget(dialog)
    assert dialog.task.currentData() == "text-classification"
    assert dialog.labels.isVisible() or not dialog.isVisible()
    path, task, _settings, base = dialog.values()
    assert task == "text-classification" and base is None


def test_no_field_of_the_new_project_dialog_clips_its_text(qtbot, text_scale):
    dialog = NewProjectDialog(registry(), folder=Path("/home/ada/projects"))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    for index in range(dialog.task.count()):  # every task shows other fields
        dialog.task.setCurrentIndex(index)
        QApplication.processEvents()
        assert _clipped(dialog) == [], dialog.task.currentText()


def test_entity_projects_ask_for_entity_types(qtbot):
    dialog = NewProjectDialog(registry(), folder=Path("/home/ada"))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.task.setCurrentIndex(dialog.task.findData("token-classification"))
    assert "Entity" in dialog.labels_title.text() and "PER" in dialog.labels.placeholderText()
    dialog.task.setCurrentIndex(dialog.task.findData("question-answering"))
    unanswerable = dialog.option_field("allow_unanswerable")
    assert not dialog.labels.isVisible() and unanswerable and unanswerable.widget.isVisible()


def test_start_screen_says_what_to_do_without_recent_projects(qtbot):
    screen = StartScreen()
    qtbot.addWidget(screen)
    screen.show()
    assert not screen.recent.isVisible()
    assert screen.empty.isVisible() and "New project" in screen.empty.text()


def test_start_screen_lists_recent_projects(qtbot, tmp_path, make_project):
    from annotune.desktop.recent import remember_project

    project = make_project(tmp_path / "reviews 🍕.annotune", "text-classification", ("a", "b"))
    project.close()
    remember_project(tmp_path / "reviews 🍕.annotune")
    screen = StartScreen()
    qtbot.addWidget(screen)
    screen.show()
    assert screen.recent.isVisible() and not screen.empty.isVisible()
    assert screen.recent.item(0).text().startswith("reviews 🍕.annotune")


def test_checkboxes_keep_their_words(qtbot, text_scale):
    dialog = NewProjectDialog(registry(), folder=Path("/home/ada"))
    qtbot.addWidget(dialog)
    dialog.show()
    for box in dialog.findChildren(QCheckBox):
        if box.isVisible():
            assert box.width() >= box.sizeHint().width(), box.text()


def test_a_third_party_task_names_its_labels_and_offers_no_answer_itself(qtbot):
    """The dialog read label words and the no-answer box from built-in annotation kinds."""
    from annotune.core.hookspecs import hookimpl
    from annotune.core.plugins import build_registry
    from annotune.plugins.text_classification import TextClassificationTask

    class IntentTask(TextClassificationTask):
        name = "intent-detection"
        title = "Intent detection"
        labels_title = "Intents"
        labels_example = "book_flight, cancel"

    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(IntentTask())

    dialog = NewProjectDialog(build_registry(extra_plugins=(Plugin(),)), folder=Path("/home/ada"))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.task.setCurrentIndex(dialog.task.findData("intent-detection"))
    assert dialog.labels_title.text() == "&Intents"
    assert "book_flight" in dialog.labels.placeholderText()
    assert dialog.option_field("allow_unanswerable") is None
    assert not any(field.widget.isVisible() for field in dialog.option_fields["question-answering"])


def test_a_third_party_task_option_is_a_field_of_the_new_project_form(qtbot, tmp_path):
    """Options are drawn from Task.options, whatever the task: a choice becomes a combo box."""
    from PySide6.QtWidgets import QComboBox

    from annotune.core.hookspecs import hookimpl
    from annotune.core.plugins import build_registry
    from annotune.core.tasks import TaskOption
    from annotune.plugins.text_classification import TextClassificationTask

    casing = TaskOption("casing", str, "keep", "how texts are cased before tokenizing",
                        title="Casing", choices=("keep", "lower"))
    margin = TaskOption("margin", float, 0.25, "score gap", title="Margin", maximum=1.0,
                        minimum=0.0, advanced=True)

    class CasedTask(TextClassificationTask):
        name = "cased-classification"
        title = "Cased classification"
        options = (*TextClassificationTask.options, casing, margin)

    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(CasedTask())

    dialog = NewProjectDialog(build_registry(extra_plugins=(Plugin(),)), folder=tmp_path)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.task.setCurrentIndex(dialog.task.findData("cased-classification"))
    field = dialog.option_field("casing")
    assert field is not None and isinstance(field.widget, QComboBox)
    assert field.widget.isVisible() and "(default: keep)" in field.widget.toolTip()
    assert dialog.option_field("margin") is None  # advanced: the command line's only
    assert dialog.option_field("multi_label").widget.isVisible()
    dialog.labels.setText("😀 good, مطعم bad")
    field.widget.setCurrentText("lower")
    _path, task, settings, _base = dialog.values()
    assert task == "cased-classification" and settings.option("casing") == "lower"
    assert settings.options == {"casing": "lower"}  # defaults stay the task's, unstored
    dialog.task.setCurrentIndex(dialog.task.findData("text-classification"))
    assert not field.widget.isVisible() and dialog.option_field("casing") is None
