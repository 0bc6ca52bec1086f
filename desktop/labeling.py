"""The labeling view: one editor, the example queue, saving, navigation, undo and redo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from annotune.core.errors import AnnotuneError
from annotune.desktop import style
from annotune.desktop.editors.base import Editor
from annotune.desktop.save_queue import Job, SaveQueue
from annotune.desktop.summaries import summarize

NO_EXAMPLES = ("No examples yet.<br>Import a CSV, TSV, JSONL, TXT, CoNLL or SQuAD file to label "
               "with <b>File ▸ Import…</b> (Ctrl+I).")
ALL_DONE = ("Every example is labeled or skipped.<br>Import more text (<b>File ▸ Import…</b>), or "
            "train a model (<b>Model ▸ Train…</b>).")
NO_SUGGESTIONS_NOTE = ("No model suggestions are stored yet, so the examples come in file order. "
                       "Store some with Model ▸ Pre-annotate (or Try it ▸ Pre-annotate "
                       "unlabeled) after training; then the least certain come first.")
# a label replaced without the person knowing it was there is worth more than a status-bar
# flash, which the next save's "Saved" would cover at once
CHANGED_ELSEWHERE_NOTE_S = 30.0
UNCERTAIN_NOTE = ("The model's suggestions are stored, so the examples it is least sure about "
                  "come first: labels there teach it most.")


def _payload(stored: Any) -> dict[str, Any] | None:
    """Return the JSON payload of a stored annotation or prediction record (or a plain dict)."""
    if stored is None:
        return None
    if isinstance(stored, dict):
        for key in ("payload", "prediction", "annotation"):
            if isinstance(stored.get(key), dict):
                return stored[key]
        return stored
    for key in ("payload", "prediction", "annotation"):
        value = getattr(stored, key, None)
        if isinstance(value, dict):
            return value
    return None


def _status(stored: Any) -> str | None:
    if stored is None:
        return None
    if isinstance(stored, dict):
        return stored.get("status")
    return getattr(stored, "status", None)


State = tuple[str, Any]  # (status, payload of an accepted label): what an example holds


def _state(status: str | None, payload: Any) -> State:
    """Return what matters of an example's annotation when telling whether it changed."""
    return (status or "", payload if status == "accepted" else None)


def _stored_state(stored: Any) -> State:
    return _state(_status(stored), _payload(stored))


def _describe(state: State) -> str:
    """Say in a few words what an example held (for a message)."""
    status, payload = state
    if status == "accepted":
        return f"labeled “{summarize(payload)}”"
    return "skipped" if status == "skipped" else "unlabeled"


@dataclass(frozen=True)
class ChangedElsewhere:
    """What another program had written on an example while this window showed it."""

    example_id: int
    seen: State  # what the window showed, and the person decided on
    found: State  # what the file held when the decision was written over it

    def message(self) -> str:
        return (f"Example #{self.example_id} was {_describe(self.found)} by another program "
                f"while it was shown here {_describe(self.seen)}; your decision replaced it. "
                "The other label stays in the example's history: Ctrl+Z brings it back.")


class LabelingView(QWidget):
    """Show examples one after another in the task's editor and save each decision at once.

    Each decision is validated at once (an invalid one is refused while its example is still
    shown), then written by a ``SaveQueue`` on its own thread, in order, as its own committed
    transaction, while the view moves on: a project busy with another program's import never
    freezes the window. Until a write is confirmed its decision is kept here (``unsaved``) and
    shown as made; a write refused for good is reported and its example becomes unlabeled
    again; closing waits for the queue (``close_saves``). The queue of examples is the store's
    ``next_example`` (unlabeled examples, by id or most uncertain first); Left/PgUp goes back
    through the examples shown in this session, Right/PgDn forward again and then on to the
    next unlabeled one.
    """

    countsChanged = Signal()  # counts may have changed in ways only a recount tells
    statusChanged = Signal(str, str)  # one example went from status A to B ("" = unlabeled)
    message = Signal(str)
    exampleShown = Signal(int)
    saveFailed = Signal(str, object, str)  # kind, example id (or None), what went wrong

    def __init__(self, project: Any, task: Any, editor: Editor, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.task = task
        self.editor = editor
        self.current: Any = None
        self.history: list[int] = []  # example ids shown, in order
        self.position = -1  # index of the current example in history
        self.order = "id"
        # decisions handed to the save thread and not yet confirmed: id -> (status, payload)
        self.unsaved: dict[int, tuple[str, dict[str, Any]]] = {}
        self._newest_jobs: dict[int, Job] = {}  # the newest queued write of each such example
        self.seen: State = _state(None, None)  # what the current example held when shown
        self.changed_elsewhere: list[ChangedElsewhere] = []  # decisions that replaced another's
        # History entries this window wrote (added on the save thread, in write order): undo
        # here takes back only those, or ones older than the window (see ``undo``).
        # (id, time): an id alone could be another program's after a rolled-back commit
        self._own_entries: set[tuple[int, str]] = set()
        newest = project.history(limit=1)
        self._history_floor = newest[0]["id"] if newest else 0
        self.saves = SaveQueue(project.path, parent=self)
        self.saves.finished.connect(self._written)
        self.saves.failed.connect(self._not_written)
        self.saves.waiting.connect(self._write_waiting)

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.header = QLabel()
        self.header.setObjectName("example_header")
        top.addWidget(self.header, 1)
        self.save_state = QLabel()
        self.save_state.setObjectName("save_state")
        top.addWidget(self.save_state)
        self.uncertain = QCheckBox("Most uncertain first")
        self.uncertain.setToolTip("Show the examples the model is least sure about first "
                                  "(needs pre-annotation)")
        self.uncertain.toggled.connect(self._order_toggled)
        top.addWidget(self.uncertain)
        layout.addLayout(top)
        self.order_note = style.muted(QLabel(UNCERTAIN_NOTE))
        self.order_note.setObjectName("order_note")
        self.order_note.setWordWrap(True)
        self.order_note.setVisible(False)
        layout.addWidget(self.order_note)
        self.elsewhere_note = style.error_text(QLabel())
        self.elsewhere_note.setObjectName("changed_elsewhere")
        self.elsewhere_note.setWordWrap(True)
        self.elsewhere_note.setVisible(False)
        layout.addWidget(self.elsewhere_note)
        self._elsewhere_timer = QTimer(self)
        self._elsewhere_timer.setSingleShot(True)
        self._elsewhere_timer.timeout.connect(lambda: self.elsewhere_note.setVisible(False))

        self.stack = QStackedLayout()
        self.stack.addWidget(editor)
        self.done_label = style.empty_state(QLabel(ALL_DONE))
        self.done_label.setObjectName("done")
        self.stack.addWidget(self.done_label)
        layout.addLayout(self.stack, 1)

        bottom = QHBoxLayout()
        self.prev_button = self._button("← Previous", "Previous example (Left / PgUp)",
                                        self.previous)
        self.skip_button = self._button("Skip (S)", "Skip this example (S)", self.skip)
        self.next_button = self._button("Next →", "Next example (Right / PgDn)", self.next)
        bottom.addWidget(self.prev_button)
        self.keys_label = QLabel()
        self.keys_label.setObjectName("keys_help")
        self.keys_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        bottom.addWidget(self.keys_label, 1)
        bottom.addWidget(self.skip_button)
        bottom.addWidget(self.next_button)
        layout.addLayout(bottom)

        question = getattr(editor, "question", None)
        if question is not None and not hasattr(project, "update_fields"):
            # the store has no way to change an example's text yet: don't offer an edit
            # that would be lost
            question.setReadOnly(True)
            question.setToolTip("The question as imported")
        editor.decided.connect(self.save)
        editor.message.connect(self.message)
        self._shortcut("S", self.skip)
        self._shortcut(Qt.Key.Key_PageUp, self.previous)
        self._shortcut(Qt.Key.Key_PageDown, self.next)
        if editor.__class__.__name__ == "LabelEditor":
            # arrows move the text cursor in span editors, so only here do they navigate
            self._shortcut(Qt.Key.Key_Left, self.previous)
            self._shortcut(Qt.Key.Key_Right, self.next)
        keys = editor.key_help() + [("S", "skip"), ("PgUp/PgDn", "prev/next"),
                                    ("Ctrl+Z", "undo")]
        self.keys_label.setText("  ·  ".join(f"<b>{k}</b> {what}" for k, what in keys))

    def _button(self, text: str, tip: str, slot: Any) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.clicked.connect(slot)
        return button

    def _shortcut(self, key: Any, slot: Any) -> None:
        shortcut = QShortcut(QKeySequence(key), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(slot)

    # -- showing ---------------------------------------------------------------------------
    def start(self) -> None:
        """Show the first unlabeled example (in the chosen order).

        When the project holds predictions for unlabeled examples (pre-annotated, as the
        demo is), the order starts as most uncertain first, and the view says so.
        """
        if self.order == "id" and self._unlabeled_have_predictions():
            with QSignalBlocker(self.uncertain):
                self.uncertain.setChecked(True)
            self.order = "uncertainty"
        self._show_order_note()
        self._advance()

    def _show_order_note(self) -> None:
        """Say why the order is what it is, only while "most uncertain first" is on."""
        uncertain = self.order == "uncertainty"
        if uncertain:
            self.order_note.setText(UNCERTAIN_NOTE if self._unlabeled_have_predictions()
                                    else NO_SUGGESTIONS_NOTE)
        self.order_note.setVisible(uncertain)

    def _unlabeled_have_predictions(self) -> bool:
        """Tell whether the least certain unlabeled example has a prediction (one lookup)."""
        try:
            first = self.project.next_example(status="unlabeled", order="uncertainty")
            return first is not None and self.project.prediction(first.id) is not None
        except AnnotuneError:  # the order is a convenience: never refuse to open for it
            return False

    def _project_is_empty(self) -> bool:
        """Tell whether the project holds no example at all (nothing to label, nothing done)."""
        try:
            return self.project.count() == 0
        except AnnotuneError:  # the wording is a convenience: never fail to show the view
            return False

    def show_example_id(self, example_id: int, remember: bool = True) -> None:
        """Show one example (from the browser, undo or history) with its saved annotation."""
        example = self.project.example(example_id)
        if remember:
            del self.history[self.position + 1:]
            self.history.append(example_id)
            self.position = len(self.history) - 1
        self._display(example)

    def _display(self, example: Any) -> None:
        self.current = example
        if example is None:
            self.done_label.setText(NO_EXAMPLES if self._project_is_empty() else ALL_DONE)
            self.stack.setCurrentIndex(1)
            self.header.setText("")
            return
        if example.id in self.unsaved:  # decided, still on its way to the file
            status, annotation = self.unsaved[example.id]
        else:
            stored = self.project.annotation(example.id)
            annotation, status = _payload(stored), _status(stored)
        # the decision made on this screen is written over what it showed: if another program
        # changed the example meanwhile, the write says so (``ChangedElsewhere``)
        self.seen = _state(status, annotation)
        suggestion = None
        if status != "accepted":
            suggestion = _payload(self.project.prediction(example.id))
        self.stack.setCurrentIndex(0)
        self.editor.show_example(example, annotation if status == "accepted" else None,
                                 suggestion)
        state = {"accepted": "labeled", "skipped": "skipped"}.get(status or "", "unlabeled")
        where = f" · {example.source}" if getattr(example, "source", None) else ""
        line = f":{example.line}" if getattr(example, "line", None) else ""
        self.header.setText(f"Example #{example.id} · {state}{where}{line}")
        self.editor.focus_editor()
        self.exampleShown.emit(example.id)

    def refresh_current(self) -> None:
        """Show the current example again (e.g. after new suggestions were stored).

        Entities being marked stay on screen: new suggestions must not wipe them.
        """
        self._show_order_note()  # suggestions may be there now, or gone
        if self.current is None:
            self._advance()
        elif self.editor.pending_annotation() is None:
            self._display(self.project.example(self.current.id))

    def catch_up(self) -> None:
        """Show the current example as it is in the file now, if another program changed it.

        With no example left to show, look again: another program may have imported some.
        A decision still on its way, or entities marked and not accepted, stay as they are.
        """
        self._show_order_note()  # another program may have stored suggestions
        if self.current is None:
            self._advance()
            return
        example_id = self.current.id
        if example_id in self.unsaved or self.editor.pending_annotation() is not None:
            return
        found = _stored_state(self.project.annotation(example_id))
        if found != self.seen:
            self._display(self.project.example(example_id))
            self.message.emit(f"Example #{example_id} was {_describe(found)} by another "
                              "program: it shows as it is now")

    def open_example(self, example_id: int) -> None:
        """Show an example picked elsewhere (the browser); marks on the current one are kept."""
        if self.current is None or self.current.id != example_id:
            self._keep_pending()
        self.show_example_id(example_id)

    def keep_pending(self) -> None:
        """Save entities marked but not yet accepted before their example leaves the screen.

        Every decision is saved the moment it is made; an entity marked is one, even when
        the person moves on with PgUp/PgDn instead of accepting with Enter.
        """
        if self.current is None:
            return
        pending = self.editor.pending_annotation()
        if pending is not None:
            self._store(pending, kind="keep")

    _keep_pending = keep_pending

    def _next_unlabeled(self, after: int | None) -> Any:
        """Return the store's next unlabeled example, passing over decisions still unsaved."""
        for _ in range(len(self.unsaved) + 1):
            example = self.project.next_example(after_id=after, status="unlabeled",
                                                order=self.order)
            if example is None or example.id not in self.unsaved:
                return example
            after = example.id
        return None

    def _advance(self) -> None:
        after = self.current.id if self.current is not None else None
        example = self._next_unlabeled(after)
        if example is None and after is not None:
            example = self._next_unlabeled(None)
        if example is None:
            self._display(None)
            return
        del self.history[self.position + 1:]
        self.history.append(example.id)
        self.position = len(self.history) - 1
        self._display(example)

    def _order_toggled(self, checked: bool) -> None:
        self._keep_pending()
        self.order = "uncertainty" if checked else "id"
        self._show_order_note()
        self.current = None
        self._advance()

    # -- decisions -------------------------------------------------------------------------
    def save(self, annotation: dict[str, Any]) -> None:
        """Queue the editor's decision for writing (its own committed transaction) and show
        the next example at once."""
        if self.current is None:
            return
        edited = getattr(self.editor, "edited_fields", lambda: None)()
        if edited and not hasattr(self.project, "update_fields"):
            edited = None
        if self._store(annotation, edited):
            self._forward()

    def _store(self, annotation: dict[str, Any], edited: dict[str, str] | None = None,
               kind: str = "save") -> bool:
        """Validate a decision on the current example and queue it; False when refused.

        Validation needs no file, so a wrong decision is refused while its example is still
        on screen; the write itself (texts edited first, then the annotation) is queued.
        """
        example = self.current
        fields = {**example.fields, **(edited or {})}
        try:
            annotation = self.task.validate(dict(annotation or {}), fields,
                                            self.project.settings)
        except AnnotuneError as error:
            self.message.emit(f"Not saved: {error}")
            return False

        def write(project: Any) -> ChangedElsewhere | None:
            if edited:
                project.update_fields(example.id, edited)
            return self._written_over(project, example.id, seen,
                                      lambda: project.save_annotation(example.id, annotation))

        seen = self.seen
        self._queue(kind, example.id, ("accepted", annotation), write)
        return True

    def _written_over(self, project: Any, example_id: int, seen: State,
                      write: Any) -> ChangedElsewhere | None:
        """Write a decision (on the save thread); tell what it replaced if not what was seen.

        Last writer wins, as in the store, but never silently: the write and the look at what
        it replaces are one transaction, and the replaced label stays in the history.
        """
        found = _stored_state(project.annotation(example_id))
        write()
        entry = project.history(example_id, limit=1)[0]
        self._own_entries.add((entry["id"], entry["at"]))
        return ChangedElsewhere(example_id, seen, found) if found != seen else None

    def skip(self) -> None:
        """Mark the current example as skipped and show the next one."""
        if self.current is None:
            return
        example_id, seen = self.current.id, self.seen
        self._queue("skip", example_id, ("skipped", {}),
                    lambda project: self._written_over(project, example_id, seen,
                                                       lambda: project.skip(example_id)))
        self._forward()

    def _status_of(self, example_id: int) -> str:
        if example_id in self.unsaved:
            return self.unsaved[example_id][0]
        return _status(self.project.annotation(example_id)) or ""

    def _queue(self, kind: str, example_id: int, decision: tuple[str, dict[str, Any]],
               write: Any) -> None:
        before = self._status_of(example_id)
        self.unsaved[example_id] = decision
        job = self.saves.submit(Job(kind=kind, run=write, example_id=example_id))
        self._newest_jobs[example_id] = job
        # counting a million rows after every key press would cost more than the save itself
        self.statusChanged.emit(before, decision[0])
        self._show_save_state()

    def _settled(self, job: Job) -> bool:
        """Forget a finished job's decision unless a newer one of its example is queued."""
        if job.example_id is None or self._newest_jobs.get(job.example_id) is not job:
            return False
        del self._newest_jobs[job.example_id]
        self.unsaved.pop(job.example_id, None)
        return True

    def _written(self, job: Job, result: Any) -> None:
        if job.kind in ("save", "keep", "skip"):
            self._settled(job)
            if isinstance(result, ChangedElsewhere):
                self.changed_elsewhere.append(result)
                self.countsChanged.emit()  # the other program's change was not counted here
                self.message.emit(result.message())
                self.elsewhere_note.setText("⚠ " + result.message())
                self.elsewhere_note.setVisible(True)
                self._elsewhere_timer.start(int(CHANGED_ELSEWHERE_NOTE_S * 1000))
            else:
                self.message.emit({"save": "Saved example #{}", "skip": "Skipped example #{}",
                                   "keep": "Saved the entities marked on example #{}"}[job.kind]
                                  .format(job.example_id))
        self._show_save_state()

    def _not_written(self, job: Job, error: BaseException) -> None:
        """Report a write refused for good; its example shows as it is in the file again."""
        if self._settled(job):
            self.countsChanged.emit()
            if self.current is not None and self.current.id == job.example_id:
                self._display(self.project.example(job.example_id))
        what = f"example #{job.example_id}" if job.example_id is not None else "the project"
        self.message.emit(f"Not saved ({job.kind} of {what}): {error}")
        self.saveFailed.emit(job.kind, job.example_id, str(error))
        self._show_save_state()

    def _write_waiting(self, job: Job, error: BaseException) -> None:
        waiting = self.saves.outstanding()
        self.save_state.setText(f"⏳ {waiting} unsaved")
        self.save_state.setToolTip(f"{error}. Your decisions are kept and saved, in order, "
                                   "as soon as it lets go.")
        self.message.emit(f"Waiting to save {waiting} decision(s): {getattr(error, 'what', error)}")

    def _show_save_state(self) -> None:
        if not self.saves.outstanding():
            self.save_state.setText("")
            self.save_state.setToolTip("")

    def wait_for_saves(self, timeout_s: float = 30.0) -> bool:
        """Serve the event loop until every queued write is done; False after the timeout."""
        return self.saves.wait(timeout_s)

    def close_saves(self, timeout_s: float = 30.0) -> bool:
        """Finish the queued writes and close the save thread's connection (False: still busy)."""
        return self.saves.close(timeout_s)

    def _forward(self) -> None:
        if self.position + 1 < len(self.history):
            self.position += 1
            self._display(self.project.example(self.history[self.position]))
        else:
            self._advance()

    def previous(self) -> None:
        self._keep_pending()
        if self.position > 0:
            self.position -= 1
            self._display(self.project.example(self.history[self.position]))
        else:
            self.message.emit("This is the first example of this session")

    def next(self) -> None:
        self._keep_pending()
        self._forward()

    def undo(self) -> None:
        """Undo this window's last saved decision (after the queued ones) and show its example.

        The history is one stack for every program on the project: when another program
        changed an example after this window's last decision, undo here would take back that
        program's change (or bring back a label it replaced), so it is refused and says why.
        """
        self.saves.submit(Job(kind="undo", run=lambda project: self._replay(project, "undo"),
                              on_done=lambda outcome: self._replayed(outcome, "undo")))

    def redo(self) -> None:
        """Redo the last undone decision (after the queued ones) and show its example."""
        self.saves.submit(Job(kind="redo", run=lambda project: self._replay(project, "redo"),
                              on_done=lambda outcome: self._replayed(outcome, "redo")))

    def adopt_change(self, example_id: int) -> None:
        """Count the newest change of an example as this window's own (another view saved it)."""
        newest = self.project.history(example_id, limit=1)
        if newest:
            self._own_entries.add((newest[0]["id"], newest[0]["at"]))

    def _replay(self, project: Any, action: str) -> int | str | None:
        """Undo or redo on the save thread: an example id, None, or why it was refused."""
        entry = project.next_step(action)
        if entry is None:
            return None
        own = (entry["id"], entry["at"]) in self._own_entries
        if entry["id"] > self._history_floor and not own:
            verb = "changed" if action == "undo" else "undid"
            return (f"Nothing {action}ne: another program {verb} example #{entry['example_id']} "
                    f"after this window's last decision ({entry['at']}), and {action} here "
                    "would take that change back. Label the example again to correct it.")
        return project.undo() if action == "undo" else project.redo()

    def _replayed(self, outcome: int | str | None, action: str) -> None:
        if outcome is None:
            self.message.emit(f"Nothing to {action}")
            return
        if isinstance(outcome, str):
            self.message.emit(outcome)
            return
        self.countsChanged.emit()
        self.message.emit(f"Undid the last change to example #{outcome}" if action == "undo"
                          else f"Redid the change to example #{outcome}")
        self.show_example_id(outcome)
