"""The desktop import dialog says what the command line says: the format chosen, missing labels."""

from __future__ import annotations

from PySide6.QtCore import Qt

from annotune.core.plugins import registry
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings
from annotune.desktop.import_dialog import ImportDialog

CONLL = ("-DOCSTART- -X- -X- O\n\nJosé NNP B-NP B-PER\nvisited VBD B-VP O\n"
         "北京 NNP B-NP B-LOC\n🍕 NN I-NP O\n\n")


def dialog_for(qtbot, project, path):
    dialog = ImportDialog(project, registry().task(project.task_name), path=path)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_conll_named_txt_previews_and_imports_as_conll(qtbot, tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(CONLL, encoding="utf-8")
    with Project.create(tmp_path / "n.annotune", task="token-classification",
                        settings=TaskSettings(labels=("PER", "LOC"))) as project:
        dialog = dialog_for(qtbot, project, path)
        summary = dialog.summary.text()
        assert "1 row read as conll" in summary
        assert "note: reading train.txt as CoNLL (its lines are token columns with BIO tags)" \
            in summary
        assert dialog.table.item(0, 0).text() == "José visited 北京 🍕"
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
        assert dialog.wait_for_import()  # the import runs on a worker thread
        assert project.count(status="accepted") == 1
        assert "note: reading train.txt as CoNLL" in dialog.summary.text()


def test_a_file_without_a_label_column_is_warned_about_before_import(qtbot, tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("review,sentiment\nloved it 👨‍👩‍👧,pos\nJose\u0301 was bored,neg\n",
                    encoding="utf-8")
    with Project.create(tmp_path / "s.annotune", task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"))) as project:
        dialog = dialog_for(qtbot, project, path)
        assert ("warning: no label column found (columns: review, sentiment); 2 rows come "
                "without labels; map one with the 'label' choice under Columns"
                ) in dialog.summary.text()
        combo = dialog.mapping["label"]
        combo.setCurrentIndex(combo.findData("sentiment"))
        dialog.refresh()
        assert "warning" not in dialog.summary.text()
        assert project.count() == 0  # the preview writes nothing
