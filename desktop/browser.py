"""The example browser: a lazily paged table over the store, with filters and search."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from annotune.core.display_names import status_title
from annotune.core.errors import AnnotuneError
from annotune.desktop import style
from annotune.desktop.labeling import _payload, _status
from annotune.desktop.summaries import disagrees, summarize

NO_PARENT = QModelIndex()
PAGE_SIZE = 200
CACHED_PAGES = 16
COLUMNS = ("#", "Text", "Annotation", "Status", "Split", "Suggestion")
STATUS_COLUMN = 3
SHOWN_ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole,
               Qt.ItemDataRole.ForegroundRole)
EMPTY_PROJECT = ("No examples yet.<br>Import a CSV, TSV, JSONL, TXT, CoNLL or SQuAD file with "
                 "<b>File ▸ Import…</b> (Ctrl+I).")
NOTHING_MATCHES = "No example matches this filter and search."
NO_SUSPECTS = ("The newest label check flags no label{checked}: the models trained on the other "
               "examples agree with every one.<br>Run <b>Model ▸ Check labels…</b> again after "
               "labeling more.")
FILTERS = (("All examples", {}), ("Unlabeled", {"status": "unlabeled"}),
           ("Labeled", {"status": "accepted"}), ("Skipped", {"status": "skipped"}),
           ("Model disagrees", {"disagrees": True}), ("Suspect labels", {"suspects": True}))
NO_CHECK = ("No label check yet.<br>Run <b>Model ▸ Check labels…</b> (or <code>annotune "
            "check-labels</code>): models trained on the other examples flag the labels they "
            "disagree with.")
SUSPECT_STATES = {"open": "To review", "kept": "Kept", "changed": "Changed"}


class ExampleTableModel(QAbstractTableModel):
    """Rows are examples matching a filter; pages of PAGE_SIZE rows are fetched on demand.

    ``rowCount`` comes from ``project.count(...)`` and a page is loaded with
    ``project.examples(offset, limit, ...)`` the first time one of its rows is painted; only
    CACHED_PAGES pages are kept, so a million examples cost a few hundred rows of memory.
    """

    def __init__(self, project: Any, task: Any, parent: Any = None):
        super().__init__(parent)
        self.project = project
        self.task = task
        self.filters: dict[str, Any] = {}
        self.search: str | None = None
        self.total = 0
        self.pages: OrderedDict[int, list[tuple[Any, Any, Any]]] = OrderedDict()
        self.fetches = 0  # pages loaded from the store (tests check that paging is lazy)
        self.disagreeing: list[int] | None = None
        # the "Suspect labels" view: the newest label check's issues, most suspect first
        self.suspects: list[dict[str, Any]] | None = None

    # -- filter ----------------------------------------------------------------------------
    def set_filter(self, filters: dict[str, Any], search: str | None = None) -> None:
        """Show the examples matching a status/label filter and a full-text search."""
        self.beginResetModel()
        self.filters = dict(filters)
        self.search = search.strip() if search and search.strip() else None
        self.pages.clear()
        self.disagreeing = None
        self.suspects = None
        if self.filters.get("suspects"):
            self.suspects = self._suspect_issues()
            self.total = len(self.suspects)
        elif self.filters.get("disagrees"):
            self.disagreeing = self._disagreeing_ids()
            self.total = len(self.disagreeing)
        else:
            self.total = self.project.count(**self._query())
        self.endResetModel()

    def _query(self) -> dict[str, Any]:
        query = {k: v for k, v in self.filters.items() if k in ("status", "label", "split")}
        if self.search:
            query["search"] = self.search
        return query

    def _disagreeing_ids(self) -> list[int]:
        """Labeled examples whose newest prediction differs from the accepted annotation."""
        return [example_id for example_id, annotation, prediction
                in self.project.labeled_with_predictions(self.search)
                if disagrees(annotation, prediction)]

    def _suspect_issues(self) -> list[dict[str, Any]]:
        """Issues of the newest check the models give less than even odds (or fix), by score."""
        from annotune.core.label_check_job import SUSPECT_SCORE

        found = [issue for issue in self.project.label_issues()
                 if issue["score"] >= SUSPECT_SCORE or issue["suggestion"] is not None]
        if self.search and found:  # the same full-text search as the other filters
            accepted = self.project.count(status="accepted")
            allowed = {e.id for e in self.project.examples(status="accepted", search=self.search,
                                                           limit=max(accepted, 1))}
            found = [issue for issue in found if issue["example_id"] in allowed]
        return found

    def issue(self, row: int) -> dict[str, Any] | None:
        """Return the label issue shown on a row of the "Suspect labels" view (else None)."""
        if self.suspects is None or not 0 <= row < len(self.suspects):
            return None
        return self.suspects[row]

    def refresh(self) -> None:
        self.set_filter(self.filters, self.search)

    # -- paging ----------------------------------------------------------------------------
    def _page(self, number: int) -> list[tuple[Any, Any, Any]]:
        page = self.pages.get(number)
        if page is not None:
            self.pages.move_to_end(number)
            return page
        offset = number * PAGE_SIZE
        if self.suspects is not None:
            examples = [self.project.example(issue["example_id"])
                        for issue in self.suspects[offset:offset + PAGE_SIZE]]
        elif self.disagreeing is not None:
            examples = [self.project.example(i)
                        for i in self.disagreeing[offset:offset + PAGE_SIZE]]
        else:
            examples = self.project.examples(offset=offset, limit=PAGE_SIZE, **self._query())
        page = [(e, self.project.annotation(e.id), self.project.prediction(e.id))
                for e in examples]
        self.fetches += 1
        self.pages[number] = page
        while len(self.pages) > CACHED_PAGES:
            self.pages.popitem(last=False)
        return page

    def row(self, row: int) -> tuple[Any, Any, Any] | None:
        """Return (example, stored annotation, stored prediction) of a row."""
        page = self._page(row // PAGE_SIZE)
        index = row % PAGE_SIZE
        return page[index] if index < len(page) else None

    def example_id(self, row: int) -> int | None:
        found = self.row(row)
        return found[0].id if found else None

    # -- Qt model --------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = NO_PARENT) -> int:
        return 0 if parent.isValid() else self.total

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = NO_PARENT) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in SHOWN_ROLES:
            return None
        if role == Qt.ItemDataRole.ForegroundRole and index.column() != STATUS_COLUMN:
            return None
        found = self.row(index.row())
        if found is None:
            return None
        example, stored, predicted = found
        text = str(example.fields.get(self.task.fields[0], ""))
        column = index.column()
        if role == Qt.ItemDataRole.ForegroundRole:  # the status word in its state's colour
            return style.state_colour(_status(stored) or "unlabeled")
        issue = self.issue(index.row())
        if issue is not None and column == 5:
            return self._suggestion_cell(issue, text, role)
        if role == Qt.ItemDataRole.ToolTipRole:
            return "\n\n".join(f"{k}: {v}" for k, v in example.fields.items())[:2000] \
                if column == 1 else None
        if column == 0:
            return example.id
        if column == 1:
            shown = " ".join(text.split())
            if len(self.task.fields) > 1:
                other = " ".join(str(example.fields.get(self.task.fields[1], "")).split())
                shown = f"{shown}  ‖  {other}"
            return shown[:300]
        if column == 2:
            return summarize(_payload(stored), text) if _status(stored) == "accepted" else ""
        if column == STATUS_COLUMN:
            if issue is not None:
                return SUSPECT_STATES.get(issue["state"], issue["state"])
            return status_title(_status(stored) or "unlabeled")
        if column == 4:
            return example.split or ""
        prediction = _payload(predicted)
        if not prediction:
            return ""
        score = prediction.get("score")
        suffix = f" ({float(score):.2f})" if score is not None else ""
        return summarize(prediction, text) + suffix

    def _suggestion_cell(self, issue: dict[str, Any], text: str, role: int) -> str | None:
        """Show the check's suggested annotation and score; the tooltip says why."""
        if role == Qt.ItemDataRole.ToolTipRole:
            return "\n".join(_reason_text(reason) for reason in issue["reasons"][:10]) or None
        suggested = (summarize(issue["suggestion"], text) if issue["suggestion"] is not None
                     else "(no change)")
        return f"{suggested} ({issue['score']:.2f})"


def _reason_text(reason: dict[str, Any]) -> str:
    """Say one disagreement in words: "type PER → LOC at 0–5 (0.91)"."""
    kind = reason.get("kind", "")
    where = f" at {reason['start']}–{reason['end']}" if "start" in reason else ""
    given, suggested = reason.get("given"), reason.get("suggested")
    change = f" {given} → {suggested}" if given is not None and suggested is not None else (
        f" {suggested}" if suggested is not None else f" {given}" if given is not None else "")
    return f"{kind}{change}{where} ({float(reason.get('score', 0.0)):.2f})"


class BrowserView(QWidget):
    """Filter, search and browse every example; double-click opens one in the editor."""

    openExample = Signal(int)
    reviewed = Signal()  # a suspect label was accepted or kept (counts may have changed)
    annotationSaved = Signal(int)  # this view saved an example's annotation (undo may take it)

    def __init__(self, project: Any, task: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.task = task
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.filter = QComboBox()
        self.filter.setToolTip("Which examples to list")
        for title, filters in FILTERS:
            self.filter.addItem(title, filters)
        for label in project.settings.labels:
            self.filter.addItem(f"Label: {label}", {"label": label})
        self.filter.currentIndexChanged.connect(self.apply)
        bar.addWidget(self.filter)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search text… (Ctrl+F)")
        self.search.setToolTip("Full-text search over every field (words, \"phrases\")")
        self.search.setClearButtonEnabled(True)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.apply)
        self.search.textChanged.connect(lambda _text: self._debounce.start())
        self.search.returnPressed.connect(self.apply)
        bar.addWidget(self.search, 1)
        self.shown = QLabel()
        self.shown.setObjectName("shown_count")
        bar.addWidget(self.shown)
        layout.addLayout(bar)

        self.model = ExampleTableModel(project, task, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        # fixed row heights: the view never asks for every row's size hint
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for column, width in ((0, 70), (2, 180), (3, 90), (4, 80), (5, 180)):
            self.table.setColumnWidth(column, width)
        self.table.activated.connect(self._open)
        self.table.setToolTip("Double-click or Enter opens the example in the editor")
        self.pages = QStackedWidget()
        self.pages.addWidget(self.table)
        self.empty = style.empty_state(QLabel(EMPTY_PROJECT))
        self.empty.setObjectName("examples_empty")
        self.pages.addWidget(self.empty)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self._review_bar())
        self.counts = style.muted(QLabel())
        self.counts.setObjectName("label_counts")
        self.counts.setWordWrap(True)
        layout.addWidget(self.counts)
        # the first query waits until the tab is shown: counting a large project's labels
        # should not slow down opening it
        self.loaded = False

    def _review_bar(self) -> QWidget:
        """Build the "Suspect labels" actions: accept the suggestion, keep the label, edit."""
        self.review = QWidget()
        self.review.setObjectName("suspect_review")
        row = QHBoxLayout(self.review)
        row.setContentsMargins(0, 0, 0, 0)
        self.accept_button = QPushButton("&Accept suggestion (A)")
        self.accept_button.setToolTip("Save the suggested annotation (Edit ▸ Undo takes it back)")
        self.accept_button.clicked.connect(self.accept_suggestion)
        self.keep_button = QPushButton("&Keep label (K)")
        self.keep_button.setToolTip("The given annotation is right: mark this suspect reviewed")
        self.keep_button.clicked.connect(self.keep_label)
        self.edit_button = QPushButton("E&dit (Enter)")
        self.edit_button.setToolTip("Open the example in the editor")
        self.edit_button.clicked.connect(lambda: self._open(self.table.currentIndex()))
        for button in (self.accept_button, self.keep_button, self.edit_button):
            row.addWidget(button)
        row.addStretch(1)
        # single keys on the table only (the search field keeps its letters)
        self.table.installEventFilter(self)
        self.review.setVisible(False)
        return self.review

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Review keys on the suspects' table: A accepts the suggestion, K keeps the label."""
        if (watched is self.table and event.type() == QEvent.Type.KeyPress
                and self.model.suspects is not None
                and event.modifiers() == Qt.KeyboardModifier.NoModifier):
            action = self._review_actions().get(event.key())
            if action is not None:
                action[2]()
                return True
        return super().eventFilter(watched, event)

    def _review_actions(self) -> dict[Qt.Key, tuple[str, str, Any]]:
        """Return the review keys of the suspects' table: key → (its name, what it does, slot)."""
        return {Qt.Key.Key_A: ("A", "Accept the suggested annotation", self.accept_suggestion),
                Qt.Key.Key_K: ("K", "Keep the given annotation (mark it reviewed)",
                               self.keep_label)}

    def focus_search(self) -> None:
        """Put the cursor in the search field, its text selected so typing replaces it."""
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def key_help(self) -> list[tuple[str, str]]:
        """Return (keys, what they do) for the "Suspect labels" view, as the keys are bound.

        These keys are an event filter on the table (QShortcuts would take A and K from the
        search field too), so the keyboard shortcuts sheet reads them from here.
        """
        keys = [(name, text) for name, text, _slot in self._review_actions().values()]
        return keys + [("Enter", "Open the example in the editor")]

    def _current_issue(self) -> dict[str, Any] | None:
        index = self.table.currentIndex()
        return self.model.issue(index.row()) if index.isValid() else None

    def accept_suggestion(self) -> None:
        """Save the current suspect's suggested annotation through the store's save path."""
        issue = self._current_issue()
        if issue is None or issue["suggestion"] is None:
            return
        self._review(lambda: self._save_over(issue),
                     f"Saved the suggestion for example #{issue['example_id']}")

    def _save_over(self, issue: dict[str, Any]) -> None:
        """Save a suggestion only over the label the row showed (one transaction).

        Another program (or the Label tab) may have changed the example since this list was
        read; replacing that label unseen would lose it, so the write is refused and the
        list shown again with the label as it is now.
        """
        example_id = issue["example_id"]
        with self.project.transaction():
            stored = self.project.annotation(example_id)
            now = _payload(stored) if _status(stored) == "accepted" else None
            if now != issue["current"]:
                shown = summarize(now) if now else "no label"
                raise AnnotuneError(
                    f"not saved: example #{example_id} was changed to {shown} after this list "
                    "was shown", hint="the list shows it as it is now: press A again to "
                    "replace it, or Enter to open it")
            self.project.save_annotation(example_id, issue["suggestion"])
        self.annotationSaved.emit(example_id)

    def keep_label(self) -> None:
        """Mark the current suspect reviewed, its given annotation kept."""
        issue = self._current_issue()
        if issue is None:
            return
        checks = [c for c in self.project.label_checks() if c["status"] == "finished"]
        if not checks:
            return
        self._review(lambda: self.project.keep_label(checks[0]["id"], issue["example_id"]),
                     f"Kept the label of example #{issue['example_id']}")

    def _review(self, write: Any, done: str) -> None:
        """Write one review decision, then show the list again one row further on."""
        row = self.table.currentIndex().row()
        try:
            write()
        except AnnotuneError as error:
            self.apply()  # the list as the file is now (another program may have changed it)
            self.shown.setText(str(error))
            if self.model.total:
                self.table.selectRow(min(row, self.model.total - 1))
            return
        self.reviewed.emit()
        self.apply()
        self.shown.setText(f"{done} · {self.model.total:,} shown")
        if self.model.total:
            self.table.setFocus()
            self.table.selectRow(min(row + 1, self.model.total - 1))

    def apply(self) -> None:
        """Re-run the query with the current filter and search text."""
        self._debounce.stop()
        self.loaded = True
        try:
            self.model.set_filter(self.filter.currentData() or {}, self.search.text())
        except AnnotuneError as error:
            self.shown.setText(str(error))
            return
        self.shown.setText(f"{self.model.total:,} shown")
        self._update_counts()
        self.review.setVisible(self.model.suspects is not None)
        if self.model.total:
            self.pages.setCurrentWidget(self.table)
        else:
            searched = bool(self.search.text().strip())
            filtered = bool(self.filter.currentData()) or searched
            finished = ([c for c in self.project.label_checks() if c["status"] == "finished"]
                        if self.model.suspects is not None else [])
            if self.model.suspects is not None and not finished:
                self.empty.setText(NO_CHECK)
            elif finished and not searched:
                # a clean check is news, not a filter that went wrong
                examples = finished[0].get("examples")
                self.empty.setText(NO_SUSPECTS.format(
                    checked=f" among the {examples:,} it checked" if examples else ""))
            else:
                self.empty.setText(NOTHING_MATCHES if filtered and self.project.count()
                                   else EMPTY_PROJECT)
            self.pages.setCurrentWidget(self.empty)

    def refresh(self) -> None:
        self.apply()

    def show_suspects(self) -> None:
        """Switch to the "Suspect labels" view with its first row selected."""
        index = self.filter.findText("Suspect labels")
        if self.filter.currentIndex() != index:
            self.filter.setCurrentIndex(index)  # applies the filter
        else:
            self.apply()
        if self.model.total:
            self.table.setFocus()
            self.table.selectRow(0)

    def _update_counts(self) -> None:
        stats = self.project.stats()
        labeled = stats.get("labeled", 0)
        total = stats.get("examples", 0)
        per_label = stats.get("labels") or stats.get("per_label") or {}
        parts = [f"<b>Labeled {labeled:,} of {total:,}</b>"]
        if stats.get("skipped"):
            parts.append(f"skipped {stats['skipped']:,}")
        if per_label:
            parts.append(" · ".join(f"{label}: {count:,}" for label, count in per_label.items()))
        self.counts.setText("   ".join(parts))

    def _open(self, index: QModelIndex) -> None:
        example_id = self.model.example_id(index.row())
        if example_id is not None:
            self.openExample.emit(example_id)
