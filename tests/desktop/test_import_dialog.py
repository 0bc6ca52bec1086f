"""The import dialog on a good and a bad file: preview first, nothing written before Import."""

from __future__ import annotations

from PySide6.QtCore import Qt

from annotune.core.plugins import registry
from annotune.desktop.import_dialog import ImportDialog


def _dialog(qtbot, project, path):
    dialog = ImportDialog(project, registry().task(project.task_name), path=path)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_good_file_previews_then_imports(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "p.annotune", "text-classification", ("neg", "pos"))
    data = tmp_path / "reviews.csv"
    data.write_text("review,sentiment\nloved it,pos\nboring,neg\nloved it,pos\nok then,\n",
                    encoding="utf-8")
    dialog = _dialog(qtbot, project, data)
    assert dialog.preview.columns == ["review", "sentiment"]
    assert dialog.table.rowCount() == 4
    assert project.count() == 0  # the preview writes nothing
    # map the label column by hand: "sentiment" is not a name the importer guesses
    combo = dialog.mapping["label"]
    combo.setCurrentIndex(combo.findData("sentiment"))
    dialog.refresh()
    assert dialog.import_button.isEnabled()
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert dialog.report.added == 3 and dialog.report.duplicates == 1
    assert project.count() == 3 and project.count(status="accepted") == 2
    assert "1 duplicates not added (lines 4)" in dialog.summary.text()
    project.close()


def test_bad_file_shows_lines_and_writes_nothing(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "p.annotune", "text-classification", ("neg", "pos"))
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "fine", "label": "pos"}\n{"text": "odd", "label": "meh"}\n'
                    'not json\n', encoding="utf-8")
    dialog = _dialog(qtbot, project, data)
    problems = [dialog.problems.item(i).text() for i in range(dialog.problems.count())]
    assert len(problems) == 2
    assert problems[0].startswith(f"{data}:2") and problems[1].startswith(f"{data}:3")
    assert not dialog.import_button.isEnabled()
    dialog.run_import()  # even forced, the importer refuses: nothing is written
    assert project.count() == 0
    assert dialog.summary.text().startswith("⚠ Nothing was imported")
    dialog.skip_bad.setChecked(True)
    assert dialog.import_button.isEnabled()
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert project.count() == 1
    assert dialog.problems.count() == 2
    project.close()


def test_the_summary_says_what_the_importer_converted(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "p.annotune", "token-classification", ("PER",))
    data = tmp_path / "studio.jsonl"
    # Label Studio counts UTF-16 code units: 🍕 is two of them, so Ada starts at 3
    data.write_text('{"text": "🍕 Ada", "label": [{"start": 3, "end": 6, "text": "Ada", '
                    '"labels": ["PER"]}]}\n', encoding="utf-8")
    dialog = _dialog(qtbot, project, data)
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert "converted to characters on 1 row (line 1)" in dialog.summary.text()
    [(example, annotation)] = project.labeled()
    assert annotation == {"spans": [{"start": 2, "end": 5, "label": "PER"}]}
    project.close()
