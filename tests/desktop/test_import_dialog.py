"""The import dialog on a good and a bad file: preview first, nothing written before Import."""

from __future__ import annotations

import sqlite3
import threading

from PySide6.QtCore import Qt

from annotune.core.plugins import registry
from annotune.desktop import import_dialog
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
    assert dialog.wait_for_import()
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
    assert dialog.wait_for_import()
    assert project.count() == 0
    assert dialog.summary.text().startswith("⚠ Nothing was imported")
    dialog.skip_bad.setChecked(True)
    assert dialog.import_button.isEnabled()
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert dialog.wait_for_import()
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
    assert dialog.wait_for_import()
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
    assert dialog.wait_for_import()
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
    assert dialog.wait_for_import()
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
    assert dialog.wait_for_import()
    assert [(e.fields["text"], a["label"]) for e, a in project.labeled()] == [
        ("Jose\u0301, 🍕, 👨‍👩‍👧", "pos"), ("شكرا, תודה, 東京", "neg")]
    project.close()


def big_csv(path, rows):
    texts = ["avis 🍕 n°{} de José", "👨‍👩‍👧 sortie n°{}", "東京の映画 {}", "فيلم سيء {}"]
    path.write_text("text,label\r\n" + "".join(
        f"{texts[i % 4].format(i)},{'pos' if i % 2 else 'neg'}\r\n" for i in range(rows)),
        encoding="utf-8")
    return path


def test_an_import_runs_off_the_gui_thread_and_cancel_leaves_nothing(qtbot, tmp_path,
                                                                      make_project,
                                                                      monkeypatch):
    project = make_project(tmp_path / "p.annotune", "text-classification", ("neg", "pos"),
                           [{"text": "déjà là"}])
    data = big_csv(tmp_path / "big.csv", 6_000)
    reached, resume = threading.Event(), threading.Event()
    original = import_dialog._WatchedProject.__init__

    def paused_at_4000(self, project, progress, cancelled):
        def report(rows):
            progress(rows)
            if rows >= 4_000 and not reached.is_set():  # steps are written by now
                reached.set()
                resume.wait(30)
        original(self, project, report, cancelled)

    monkeypatch.setattr(import_dialog._WatchedProject, "__init__", paused_at_4000)
    dialog = _dialog(qtbot, project, data)
    assert dialog.preview.total == 6_000
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert dialog.importing is not None  # the click returned while the worker imports
    qtbot.waitUntil(reached.is_set, timeout=60_000)
    # the window still answers: progress arrives and the buttons respond
    qtbot.waitUntil(lambda: dialog.progress.value() >= 4_000, timeout=10_000)
    assert dialog.progress.isVisible() and not dialog.import_button.isEnabled()
    assert dialog.close_button.text() == "Cancel import"
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()  # cancelling does not close the dialog before the clean-up
    resume.set()
    assert dialog.wait_for_import()
    assert dialog.summary.text() == "Import cancelled: nothing was added to the project."
    assert dialog.report is None and project.count() == 1
    raw = sqlite3.connect(project.path)  # below the store's views: no row was left behind
    assert raw.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 1
    assert raw.execute("SELECT COUNT(*) FROM imports").fetchone()[0] == 0
    raw.close()

    resume.set()
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)  # again, to the end
    assert dialog.wait_for_import()
    assert dialog.report.added == 6_000 and project.count() == 6_001
    assert project.count(status="accepted") == 6_000
    project.close()


def test_escape_during_an_import_cancels_it(qtbot, tmp_path, make_project, monkeypatch):
    project = make_project(tmp_path / "p.annotune", "text-classification", ("neg", "pos"))
    data = big_csv(tmp_path / "big.csv", 1_500)
    reached, resume = threading.Event(), threading.Event()
    original = import_dialog._WatchedProject.__init__

    def paused(self, project, progress, cancelled):
        def report(rows):
            progress(rows)
            reached.set()
            resume.wait(30)
        original(self, project, report, cancelled)

    monkeypatch.setattr(import_dialog._WatchedProject, "__init__", paused)
    dialog = _dialog(qtbot, project, data)
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(reached.is_set, timeout=60_000)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.isVisible() and dialog.importing.is_set()
    resume.set()
    assert dialog.wait_for_import()
    assert project.count() == 0 and "cancelled" in dialog.summary.text()
    project.close()


def test_columns_are_offered_when_the_format_says_it_maps_them(qtbot, tmp_path, make_project):
    """The dialog kept its own list of formats with columns; each importer now says so."""
    project = make_project(tmp_path / "ner.annotune", "token-classification", ("PER", "LOC"))
    table = tmp_path / "sentences.jsonl"
    table.write_text('{"sentence": "Ada 🍕 met José in 東京"}\n', encoding="utf-8")
    conll = tmp_path / "sentences.conll"
    conll.write_text("Ada B-PER\nmet O\nParis B-LOC\n\n", encoding="utf-8")
    assert getattr(registry().importer("spans-jsonl"), "maps_columns", False)
    assert not getattr(registry().importer("conll"), "maps_columns", False)
    dialog = _dialog(qtbot, project, table)
    assert dialog.mapping_box.isVisible()  # the hint says "choose it under Columns": it is there
    combo = dialog.mapping["text"]
    combo.setCurrentIndex(combo.findData("sentence"))
    dialog.refresh()
    assert dialog.preview.problems == [] and dialog.import_button.isEnabled()
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert dialog.wait_for_import()
    assert project.example(1).fields["text"] == "Ada 🍕 met José in 東京"
    dialog.close()
    dialog = _dialog(qtbot, project, conll)
    assert dialog.preview.format == "conll" and not dialog.mapping_box.isVisible()
    project.close()
