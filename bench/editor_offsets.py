"""Time the span editors' offset conversion and word snapping on long texts (a benchmark).

For texts of growing size, mixed the way real ones are (emoji, a ZWJ family, CRLF line
breaks, combining accents, CJK), offscreen:

* building the OffsetMap of a text (once per example shown);
* one store -> widget -> store round trip (every selection read and every span painted);
* snapping a selection to words, the first time on its text and again (the label key);
* showing the text in the span view (setPlainText and the map), for scale.

Texts with line breaks are segmented per line; ``--one-line`` times texts without any, the
worst case for snapping.

Usage: python bench/editor_offsets.py [--sizes 1000 100000 1000000] [--one-line]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

UNIT = ("I 🍕🍕 love Paris now. Our \U0001f468\u200d\U0001f469\u200d\U0001f467 met "
        "Jose\u0301 in 東京.\r\n")


def best(action: Callable[[], object], repeat: int = 5) -> float:
    """Return the fastest of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--one-line", action="store_true", help="texts without line breaks")
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication([])  # noqa: F841  (widgets need it alive)
    from annotune.desktop.editors.offsets import OffsetMap, _boundaries, word_boundaries
    from annotune.desktop.editors.textspans import SpanText, snap_to_words

    unit = UNIT.replace("\r\n", " ") if args.one_line else UNIT
    view = SpanText()
    print(f"{'characters':>10} {'OffsetMap':>10} {'round trip':>11} {'snap first':>11} "
          f"{'snap again':>11} {'set_text':>9}")
    for size in args.sizes:
        text = (unit * (size // len(unit) + 1))[:size]
        offsets = OffsetMap(text)
        probes = range(0, len(text), max(1, len(text) // 10_000))
        middle = len(text) // 2

        def round_trips(offsets: OffsetMap = offsets, probes: range = probes) -> None:
            for offset in probes:
                offsets.to_store(offsets.to_widget(offset), end=True)

        def snap_first(text: str = text, middle: int = middle) -> None:
            _boundaries.cache_clear()
            word_boundaries.cache_clear()
            snap_to_words(text, middle, middle + 3)

        build = best(lambda text=text: OffsetMap(text))
        trip = best(round_trips) / len(probes)
        first = best(snap_first, repeat=3)
        again = best(lambda text=text, middle=middle: snap_to_words(text, middle, middle + 3))
        show = best(lambda text=text: view.set_text(text), repeat=3)
        print(f"{size:>10,} {build * 1e3:>8.2f}ms {trip * 1e6:>9.2f}µs {first * 1e3:>9.2f}ms "
              f"{again * 1e3:>9.3f}ms {show * 1e3:>7.1f}ms")


if __name__ == "__main__":
    main()
