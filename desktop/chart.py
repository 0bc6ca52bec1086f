"""A small line chart painted with QPainter (loss and validation metrics while training)."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from annotune.core.display_names import metric_title

SERIES_HUES = (210, 25, 130, 285, 0, 175)
EMPTY_TEXT = "Curves appear here while a model trains."


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Return round tick values covering [low, high]: the first at or below low, the last at
    or above high.

    The axis runs from the first tick to the last, so a last tick below ``high`` (a loss of
    0.12 on an axis ending at 0.1) would draw the curve off the top of the chart.
    """
    if not math.isfinite(low) or not math.isfinite(high):
        return []
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = [round(start, 10)]
    # a hair of tolerance: 0.1 + 0.05 + 0.05 must count as reaching 0.2
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(start + len(ticks) * step, 10))
    return ticks


class LineChart(QWidget):
    """Plot named series of (x, y) points; colours and text follow the system palette."""

    def __init__(self, title: str = "", x_label: str = "", parent: QWidget | None = None,
                 unit_range: bool = False, empty_text: str = EMPTY_TEXT):
        super().__init__(parent)
        self.title = title
        self.empty_text = empty_text
        # scores in [0, 1] are drawn on the whole [0, 1] axis, so 0.91 does not look like 0
        self.unit_range = unit_range
        self.x_label = x_label
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.setMinimumSize(240, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(420, 240)

    def clear(self) -> None:
        self.series.clear()
        self.update()

    def add_point(self, name: str, x: float, y: float) -> None:
        """Append a point to a series (created on first use) and repaint."""
        if y is None or not math.isfinite(float(y)):
            return
        self.series.setdefault(name, []).append((float(x), float(y)))
        self.update()

    def legend_label(self, name: str) -> str:
        """Return a series' legend: its title in words and its latest value."""
        series = self.series.get(name) or [(0.0, float("nan"))]
        return f"{metric_title(name)} {series[-1][1]:.4g}"

    def colour(self, index: int) -> QColor:
        dark = self.palette().color(QPalette.ColorRole.Window).lightness() < 128
        return QColor.fromHsv(SERIES_HUES[index % len(SERIES_HUES)], 190, 250 if dark else 200)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text_colour = palette.color(QPalette.ColorRole.WindowText)
        grid_colour = QColor(text_colour)
        grid_colour.setAlpha(40)
        metrics = painter.fontMetrics()
        line_h = metrics.height()
        plot = QRectF(self.rect()).adjusted(metrics.horizontalAdvance("0.0000") + 12,
                                            line_h + 8, -12, -(line_h * 2 + 8))
        painter.setPen(text_colour)
        painter.drawText(QRectF(0, 2, self.width(), line_h), Qt.AlignmentFlag.AlignHCenter,
                         self.title)
        points = [p for series in self.series.values() for p in series]
        if not points or plot.width() < 20 or plot.height() < 20:
            muted = QColor(text_colour)
            muted.setAlpha(150)
            painter.setPen(muted)
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self.empty_text)
            return
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        x_low, x_high = min(xs), max(xs)
        if x_high == x_low:
            x_high = x_low + 1
        low, high = min(ys), max(ys)
        if self.unit_range and low >= 0 and high <= 1:
            low, high = 0.0, 1.0
        elif high == low:
            low, high = low - max(abs(low), 1.0) * 0.5, high + max(abs(high), 1.0) * 0.5
        y_ticks = nice_ticks(low, high)
        y_low, y_high = y_ticks[0], y_ticks[-1]
        if y_high == y_low:
            y_high = y_low + 1

        def to_screen(x: float, y: float) -> QPointF:
            return QPointF(plot.left() + (x - x_low) / (x_high - x_low) * plot.width(),
                           plot.bottom() - (y - y_low) / (y_high - y_low) * plot.height())

        for tick in y_ticks:
            y = to_screen(x_low, tick).y()
            painter.setPen(QPen(grid_colour, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(text_colour)
            painter.drawText(QRectF(0, y - line_h / 2, plot.left() - 6, line_h),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             f"{tick:g}")
        painter.setPen(text_colour)
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), line_h),
                         Qt.AlignmentFlag.AlignLeft, f"{x_low:g}")
        painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), line_h),
                         Qt.AlignmentFlag.AlignRight, f"{x_high:g}")
        painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), line_h),
                         Qt.AlignmentFlag.AlignHCenter, self.x_label)

        legend_x = plot.left()
        legend_y = plot.bottom() + line_h + 6
        for index, (name, series) in enumerate(self.series.items()):
            colour = self.colour(index)
            pen = QPen(colour, 2)
            painter.setPen(pen)
            if len(series) == 1:
                painter.setBrush(colour)
                painter.drawEllipse(to_screen(*series[0]), 3, 3)
            else:
                path = QPainterPath(to_screen(*series[0]))
                for x, y in series[1:]:
                    path.lineTo(to_screen(x, y))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawPath(path)
            painter.drawLine(QPointF(legend_x, legend_y + line_h / 2),
                             QPointF(legend_x + 18, legend_y + line_h / 2))
            painter.setPen(text_colour)
            label = self.legend_label(name)
            painter.drawText(QPointF(legend_x + 22, legend_y + metrics.ascent()), label)
            legend_x += 22 + metrics.horizontalAdvance(label) + 16
