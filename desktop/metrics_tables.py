"""Tables that show run metrics: scalars, per-class figures, a confusion matrix, a comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

PER_CLASS_KEYS = ("per_label", "per_type")


def format_value(value: Any) -> str:
    """Format a metric or setting for a table cell."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def scalar_metrics(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the top-level numeric metrics (per-class tables and matrices left out)."""
    return {k: v for k, v in (metrics or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


def per_class(metrics: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Return per-label (classification) or per-type (NER) figures, or {}."""
    for key in PER_CLASS_KEYS:
        table = (metrics or {}).get(key)
        if isinstance(table, Mapping) and table:
            return dict(table)
    return {}


def _table(rows: int, columns: int, parent: QWidget | None = None) -> QTableWidget:
    table = QTableWidget(rows, columns, parent)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return table


def _item(text: str, align_right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def fill_key_values(table: QTableWidget, rows: Sequence[tuple[str, Sequence[Any]]],
                    headers: Sequence[str]) -> None:
    """Fill a table with one row per key and one column per value."""
    table.clear()
    table.setRowCount(len(rows))
    table.setColumnCount(len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.setVerticalHeaderLabels([key for key, _ in rows])
    for row, (_key, values) in enumerate(rows):
        for column, value in enumerate(values):
            table.setItem(row, column, _item(format_value(value), isinstance(value, int | float)))
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)


def per_class_table(metrics: Mapping[str, Any] | None, parent: QWidget | None = None
                    ) -> QTableWidget:
    """Return a table of precision/recall/F1/support per class."""
    figures = per_class(metrics)
    columns = ("precision", "recall", "f1", "support")
    table = _table(0, 0, parent)
    fill_key_values(table, [(name, [row.get(c) for c in columns])
                            for name, row in figures.items()], columns)
    return table


def confusion_table(metrics: Mapping[str, Any] | None, parent: QWidget | None = None
                    ) -> QTableWidget | None:
    """Return the confusion matrix (rows gold, columns predicted), shaded by count."""
    confusion = (metrics or {}).get("confusion_matrix")
    if not isinstance(confusion, Mapping) or not confusion.get("labels"):
        return None
    labels = list(confusion["labels"])
    matrix = confusion["matrix"]
    table = _table(len(labels), len(labels), parent)
    table.setHorizontalHeaderLabels([f"→ {label}" for label in labels])
    table.setVerticalHeaderLabels(labels)
    table.setToolTip("Rows: true label · columns: predicted label")
    largest = max((max(row) for row in matrix if row), default=0) or 1
    highlight = table.palette().color(QPalette.ColorRole.Highlight)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            item = _item(str(count), True)
            shade = QColor(highlight)
            # translucent highlight keeps the palette's text colour readable in light and dark
            shade.setAlpha(int(30 + 170 * count / largest) if count else 0)
            item.setBackground(shade)
            if i == j:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            table.setItem(i, j, item)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return table
