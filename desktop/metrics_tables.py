"""Tables that show run metrics: scalars, per-class figures, a confusion matrix, a comparison.

Rows and columns carry people's words (``Macro F1``, ``Warm-up share``) from
core/display_names.py; the key each one stands for is in its tooltip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from annotune.core.display_names import LOWER_IS_BETTER, metric_title, metric_tooltip
from annotune.desktop import style

PER_CLASS_KEYS = ("per_label", "per_type")
PER_CLASS_COLUMNS = ("precision", "recall", "f1", "support")


@dataclass(frozen=True)
class Row:
    """One row of a key/value table: its title, its tooltip and its values."""

    title: str
    values: Sequence[Any]
    tooltip: str = ""
    # colour of the last value: True better, False worse, None neither (a plain figure)
    better: bool | None = None
    signed: bool = False  # the last value is a change: always shown with its sign
    figures: bool = False  # text values that read as figures (a range): aligned like numbers


def format_value(value: Any, signed: bool = False) -> str:
    """Format a metric or setting for a table cell (small rates keep their digits)."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, float):
        sign = "+" if signed and value > 0 else ""
        if value != 0 and abs(value) < 0.001:
            # 5e-05 must not read as 0.0001 (or 0.0000)
            return sign + f"{value:.10f}".rstrip("0")
        return sign + (f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}")
    if isinstance(value, int):
        return ("+" if signed and value > 0 else "") + f"{value:,}"
    return str(value)


def format_duration(seconds: float | None) -> str:
    """Return e.g. ``42 s``, ``3 min 10 s`` or ``1 h 02 min``."""
    if not isinstance(seconds, int | float) or seconds < 0:
        return ""
    whole = int(round(seconds))
    if whole >= 3600:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
    if whole >= 60:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole} s"


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


def change(key: str, before: Any, after: Any) -> tuple[float | None, bool | None]:
    """Return ``after − before`` and whether it is an improvement (None: no change or no sign)."""
    if not isinstance(before, int | float) or not isinstance(after, int | float) \
            or isinstance(before, bool) or isinstance(after, bool):
        return None, None
    delta = after - before
    if delta == 0:
        return delta, None
    return delta, (delta < 0) if key in LOWER_IS_BETTER else (delta > 0)


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


def fill_rows(table: QTableWidget, rows: Sequence[Row], headers: Sequence[str]) -> None:
    """Fill a table with one titled row per entry and one column per value."""
    table.clear()
    table.setRowCount(len(rows))
    table.setColumnCount(len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    for number, row in enumerate(rows):
        header = QTableWidgetItem(row.title)
        if row.tooltip:
            header.setToolTip(row.tooltip)
        table.setVerticalHeaderItem(number, header)
        last = len(row.values) - 1
        for column, value in enumerate(row.values):
            numeric = row.figures or (isinstance(value, int | float)
                                      and not isinstance(value, bool))
            item = _item(format_value(value, signed=row.signed and column == last), numeric)
            if row.tooltip:
                item.setToolTip(row.tooltip)
            if column == last and row.signed and value is not None:
                item.setForeground(style.change_colour(row.better))
            table.setItem(number, column, item)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)


def fill_key_values(table: QTableWidget, rows: Sequence[tuple[str, Sequence[Any]]],
                    headers: Sequence[str]) -> None:
    """Fill a table with one row per (title, values) pair."""
    fill_rows(table, [Row(title, values) for title, values in rows], headers)


def metric_rows(metrics: Mapping[str, Any] | None, task: Any = None) -> list[Row]:
    """Return one row per scalar metric, titled for people, the main one with its interval."""
    rows = []
    for key, value in scalar_metrics(metrics).items():
        rows.append(Row(metric_title(key, task), [value], metric_tooltip(key, task)))
        interval = interval_row(metrics, key, task)
        if interval is not None:
            rows.append(interval)
    return rows


def interval_row(metrics: Mapping[str, Any] | None, key: str, task: Any = None) -> Row | None:
    """Return the 95 % interval of ``key`` as a row, when the run measured it for that metric.

    A validation score is an estimate from a few examples: the interval says how far the
    model's real score may lie from it (a perfect score on 20 examples: anywhere above 0.83).
    """
    spread = (metrics or {}).get("uncertainty")
    if not isinstance(spread, Mapping) or spread.get("metric") != key:
        return None
    low, high = spread.get("low"), spread.get("high")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
        return None
    examples = spread.get("examples")
    on = f" on {examples:,} validation examples" if isinstance(examples, int) else ""
    return Row(f"{metric_title(key, task)}, 95 % interval",
               [f"{format_value(float(low))} – {format_value(float(high))}"],
               f"Where the model's real {metric_title(key, task)} lies, 95 times in 100, "
               f"judging from its score{on}. A small validation set gives a wide interval.",
               figures=True)


def per_class_table(metrics: Mapping[str, Any] | None, parent: QWidget | None = None,
                    task: Any = None) -> QTableWidget:
    """Return a table of precision/recall/F1/count per class."""
    figures = per_class(metrics)
    table = _table(0, 0, parent)
    fill_rows(table, [Row(str(name), [row.get(c) for c in PER_CLASS_COLUMNS])
                      for name, row in figures.items()],
              [metric_title(c, task) for c in PER_CLASS_COLUMNS])
    for column, key in enumerate(PER_CLASS_COLUMNS):
        header = table.horizontalHeaderItem(column)
        header.setToolTip("How many validation examples truly have it (support)"
                          if key == "support" else metric_tooltip(key, task))
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
            shade.setAlpha(int(30 + 140 * count / largest) if count else 0)
            item.setBackground(shade)
            if i == j:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            table.setItem(i, j, item)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return table
