"""A read-only text view that selects character ranges and paints highlighted spans."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QMouseEvent, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextEdit, QWidget

# Mid-saturation hues at partial opacity: they tint the background under dark text on a light
# palette and light text on a dark one, so both stay readable.
ENTITY_HUES = (210, 30, 120, 280, 0, 180, 60, 330, 90, 240)


def entity_colour(index: int, alpha: int = 110) -> QColor:
    """Return the highlight colour of the index-th entity type."""
    colour = QColor.fromHsv(ENTITY_HUES[index % len(ENTITY_HUES)], 170, 230)
    colour.setAlpha(alpha)
    return colour


def is_word_char(char: str) -> bool:
    return char.isalnum() or char in "_'-"


def snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow a character range to whole words and trim surrounding whitespace."""
    start, end = max(0, min(start, end)), min(len(text), max(start, end))
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start == end:
        return start, end
    while start > 0 and is_word_char(text[start - 1]) and is_word_char(text[start]):
        start -= 1
    while end < len(text) and is_word_char(text[end]) and is_word_char(text[end - 1]):
        end += 1
    return start, end


class SpanText(QTextEdit):
    """Plain text, selectable by mouse or Shift+arrows, with coloured spans painted over it."""

    def __init__(self, parent: QWidget | None = None, size_factor: float = 1.35):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.setAcceptRichText(False)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * size_factor)
        self.setFont(font)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        # show the word-snapped range at once, so what is marked is what is seen
        super().mouseReleaseEvent(event)
        start, end = self.selection()
        if start != end:
            snapped = snap_to_words(self.text(), start, end)
            if snapped != (start, end) and snapped[0] < snapped[1]:
                self.select(*snapped)

    def text(self) -> str:
        return self.toPlainText()

    def set_text(self, text: str) -> None:
        self.setPlainText(text)
        self.moveCursor(QTextCursor.MoveOperation.Start)

    def selection(self) -> tuple[int, int]:
        cursor = self.textCursor()
        return cursor.selectionStart(), cursor.selectionEnd()

    def select(self, start: int, end: int) -> None:
        cursor = self.textCursor()
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)

    def clear_selection(self) -> None:
        cursor = self.textCursor()
        cursor.clearSelection()
        self.setTextCursor(cursor)

    def cursor_position(self) -> int:
        return self.textCursor().position()

    def paint_spans(self, spans: Iterable[tuple[int, int, QColor, bool]]) -> None:
        """Highlight (start, end, colour, outlined) ranges; outlined ones are underlined too."""
        selections = []
        for start, end, colour, outlined in spans:
            selection = QTextEdit.ExtraSelection()
            fmt = QTextCharFormat()
            fmt.setBackground(colour)
            if outlined:
                fmt.setFontUnderline(True)
                fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.SingleUnderline)
                fmt.setFontWeight(700)
            selection.format = fmt
            cursor = QTextCursor(self.document())
            cursor.setPosition(start)
            cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
            selection.cursor = cursor
            selections.append(selection)
        self.setExtraSelections(selections)
