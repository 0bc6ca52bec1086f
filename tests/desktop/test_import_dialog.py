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
    assert "1 duplicate not added (line 4)" in dialog.summary.text()
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


def test_enter_in_the_path_field_previews_and_imports_nothing(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "p.annotune", "text-classification", ("neg", "pos"))
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\nloved the 🍕,pos\nJose\u0301 was rude,neg\n", encoding="utf-8")
    dialog = _dialog(qtbot, project, None)
    dialog.path.setFocus()
    qtbot.keyClicks(dialog.path, str(data))
    assert not dialog.import_button.isEnabled()  # typed, not yet previewed
    qtbot.keyClick(dialog.path, Qt.Key.Key_Return)
    assert dialog.table.rowCount() == 2  # Enter showed the preview …
    assert dialog.report is None and project.count() == 0  # … and imported nothing
    assert dialog.import_button.isEnabled()
    qtbot.keyClick(dialog.path, Qt.Key.Key_Return)  # a second Enter still imports nothing
    assert dialog.report is None and project.count() == 0
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert project.count() == 2 and dialog.report.added == 2
    project.close()


def test_a_path_changed_after_the_preview_is_previewed_before_it_can_import(
        qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "p.annotune", "text-classification", ("neg", "pos"))
    first = tmp_path / "first.csv"
    first.write_text("text,label\nfine,pos\n", encoding="utf-8")
    second = tmp_path / "second.csv"
    second.write_text("text,label\nשלום עולם,pos\nمرحبا,neg\n👨‍👩‍👧 trip,pos\n", encoding="utf-8")
    dialog = _dialog(qtbot, project, first)
    assert dialog.import_button.isEnabled()
    dialog.path.setFocus()
    dialog.path.selectAll()
    qtbot.keyClicks(dialog.path, str(second))
    assert not dialog.import_button.isEnabled()
    dialog._import_clicked()  # even a click that slips through only previews the new file
    assert project.count() == 0 and dialog.table.rowCount() == 3
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert project.count() == 3
    project.close()


def test_problems_speak_the_dialogs_words_not_command_line_options(qtbot, tmp_path,
                                                                   make_project):
    project = make_project(tmp_path / "p.annotune", "text-classification", ("neg", "pos"))
    data = tmp_path / "bad.csv"
    data.write_text("text,label\nfine,pos\n,neg\n", encoding="utf-8")
    dialog = _dialog(qtbot, project, data)
    shown = [dialog.problems.item(i).text() for i in range(dialog.problems.count())]
    assert shown and f"{data}:3" in shown[0]
    assert not any("--" in line for line in shown), shown
    assert "Skip bad rows" in shown[0]
    project.close()


def test_a_delimiter_chosen_in_the_dialog_overrides_the_guess(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "p.annotune", "text-classification", ("neg", "pos"))
    data = tmp_path / "reviews.csv"
    # Commas inside the texts make the comma look like the delimiter; the file uses ";"
    data.write_text("text;label\nJose\u0301, 🍕, 👨‍👩‍👧;pos\nشكرا, תודה, 東京;neg\n",
                    encoding="utf-8")
    dialog = _dialog(qtbot, project, data)
    dialog.delimiter.setCurrentIndex(dialog.delimiter.findData("semicolon"))
    assert dialog.options().mapping["delimiter"] == "semicolon"
    assert dialog.preview.columns == ["text", "label"]
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert [(e.fields["text"], a["label"]) for e, a in project.labeled()] == [
        ("Jose\u0301, 🍕, 👨‍👩‍👧", "pos"), ("شكرا, תודה, 東京", "neg")]
    project.close()
