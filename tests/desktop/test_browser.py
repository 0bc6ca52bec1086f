"""The example browser: lazy paging over a few thousand examples, filters, search, open."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from annotune.core.plugins import registry
from annotune.desktop import style
from annotune.desktop.browser import PAGE_SIZE, BrowserView


@pytest.fixture
def big_project(tmp_path, make_project):
    rows = [{"text": f"example {i} about {'cats' if i % 3 == 0 else 'dogs'}"}
            for i in range(3000)]
    project = make_project(tmp_path / "big.annotune", "text-classification", ("cat", "dog"),
                           rows)
    for example_id in range(1, 31):
        project.save_annotation(example_id, {"label": "cat" if example_id % 3 == 1 else "dog"})
    project.skip(31)
    project.skip(32)
    # the model disagrees on examples 1 and 2 (gold cat / dog), agrees on 3
    project.save_predictions("bundle", [(1, {"label": "dog", "score": 0.8}, 0.8),
                                        (2, {"label": "cat", "score": 0.6}, 0.6),
                                        (3, {"label": "dog", "score": 0.9}, 0.9)])
    yield project
    project.close()


def _browser(qtbot, project):
    view = BrowserView(project, registry().task(project.task_name))
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    qtbot.waitExposed(view)
    assert not view.loaded and view.model.fetches == 0  # nothing is read until shown
    view.refresh()
    return view


def _choose(view, title):
    view.filter.setCurrentIndex(view.filter.findText(title))


def test_rows_are_fetched_lazily_in_pages(qtbot, big_project):
    view = _browser(qtbot, big_project)
    model = view.model
    assert model.rowCount() == 3000
    assert model.fetches <= 2  # only the visible page(s)
    last = model.index(2999, 1)
    assert model.data(last) == "example 2999 about dogs"
    assert model.fetches <= 3
    assert model.data(model.index(0, 3)) == "Labeled"
    assert model.data(model.index(0, 3), Qt.ItemDataRole.ForegroundRole) == \
        style.state_colour("accepted")
    assert model.data(model.index(40, 3)) == "Unlabeled"
    assert model.data(model.index(0, 2)) == "cat"
    assert model.data(model.index(0, 5)) == "dog (0.80)"
    view.table.scrollToBottom()
    assert len(model.pages) <= 16 and all(len(p) <= PAGE_SIZE for p in model.pages.values())


def test_filters_search_and_counts(qtbot, big_project):
    view = _browser(qtbot, big_project)
    _choose(view, "Unlabeled")
    assert view.model.rowCount() == 3000 - 32
    _choose(view, "Labeled")
    assert view.model.rowCount() == 30
    _choose(view, "Skipped")
    assert view.model.rowCount() == 2
    assert view.model.example_id(0) == 31
    _choose(view, "Label: cat")
    assert view.model.rowCount() == 10
    _choose(view, "Model disagrees")
    assert [view.model.example_id(r) for r in range(view.model.rowCount())] == [1, 2]
    _choose(view, "All examples")
    view.search.setText("cats")
    view.apply()
    assert view.model.rowCount() == 1000
    assert "Labeled 30 of 3,000" in view.counts.text()
    assert "cat: 10" in view.counts.text() and "dog: 20" in view.counts.text()


def test_double_click_opens_the_example(qtbot, big_project):
    view = _browser(qtbot, big_project)
    opened = []
    view.openExample.connect(opened.append)
    rect = view.table.visualRect(view.model.index(4, 1))
    # a real double-click starts with a press: QTest's DClick alone lacks it
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened == [5]


def test_an_empty_project_says_how_to_import(qtbot, tmp_path, make_project):
    project = make_project(tmp_path / "empty.annotune", "text-classification", ("a", "b"))
    view = _browser(qtbot, project)
    assert view.pages.currentWidget() is view.empty
    assert "Import" in view.empty.text()
    project.close()


def test_a_search_without_matches_says_so(qtbot, big_project):
    view = _browser(qtbot, big_project)
    assert view.pages.currentWidget() is view.table
    view.search.setText("🍕")
    view.apply()
    assert view.model.rowCount() == 0
    assert view.pages.currentWidget() is view.empty
    assert view.empty.text() == "No example matches this filter and search."
    view.search.setText("")
    view.apply()
    assert view.pages.currentWidget() is view.table
