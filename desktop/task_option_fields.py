"""Form fields for the options a task declares (Task.options), whatever their type."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from annotune.core.tasks import OptionValue, TaskOption

# Spin boxes need bounds; an option without its own takes these (far past any sensible value).
WIDEST_INT = 2**31 - 1
WIDEST_FLOAT = 1e9


class OptionField:
    """One option's widget in a form: built from its type, read back as a checked value."""

    def __init__(self, option: TaskOption):
        self.option = option
        self.widget: QWidget = self._build()
        self.widget.setToolTip(option.help_text)

    @property
    def title(self) -> str:
        """Return the form label ('' for a check box, which says its own words)."""
        return "" if self.option.type is bool else self.option.shown_title

    def _build(self) -> QWidget:
        option = self.option
        if option.type is bool:
            box = QCheckBox(option.shown_title)
            box.setChecked(bool(option.default))
            return box
        if option.choices:
            combo = QComboBox()
            combo.addItems(list(option.choices))
            combo.setCurrentText(str(option.default))
            return combo
        if option.type is int:
            spin = QSpinBox()
            spin.setRange(int(option.minimum if option.minimum is not None else -WIDEST_INT),
                          int(option.maximum if option.maximum is not None else WIDEST_INT))
            spin.setValue(int(option.default))  # type: ignore[arg-type]
            return spin
        if option.type is float:
            double = QDoubleSpinBox()
            double.setDecimals(3)
            double.setRange(option.minimum if option.minimum is not None else -WIDEST_FLOAT,
                            option.maximum if option.maximum is not None else WIDEST_FLOAT)
            double.setValue(float(option.default))  # type: ignore[arg-type]
            return double
        edit = QLineEdit()  # text, or numbers separated by commas
        edit.setPlaceholderText(f"{option.allowed()} (default: {option.shown_default})")
        return edit

    def value(self) -> OptionValue:
        """Return the value shown, checked by the option (AnnotuneError says what fits)."""
        widget = self.widget
        if isinstance(widget, QCheckBox):
            return self.option.validate(widget.isChecked())
        if isinstance(widget, QComboBox):
            return self.option.validate(widget.currentText())
        if isinstance(widget, QSpinBox | QDoubleSpinBox):
            return self.option.validate(widget.value())
        assert isinstance(widget, QLineEdit)
        text = widget.text()
        return self.option.default if not text.strip() else self.option.parse(text)
