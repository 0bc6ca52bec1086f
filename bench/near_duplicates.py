"""Count the near-duplicate groups the validation split keeps together, on SST-2.

SST-2's training rows are phrases cut from the same review sentences. The script counts the
examples that share a group with another one when groups are exact texts after folding
(case, accents, punctuation, spacing), and when near-duplicates (80 % of words and word
pairs, MinHash) join them, with the time taken, and the groups whose labels disagree (a
phrase whose sentiment flips with one word).

    python bench/near_duplicates.py                     # the first 2,000 and all of train.tsv
    python bench/near_duplicates.py --limit 2000
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from common import (
    DEFAULT_DATA_DIR,
    SST2_LABELS,
    check_data_dir,
    default_settings,
    hardware,
    load_classification,
    print_json_line,
    print_table,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--limit", type=int, action="append", default=None,
                        help="examples of SST-2 to group (repeatable; default 2000 and all)")
    return parser.parse_args(argv)


def measure(name: str, texts: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Group texts both ways; return counts and seconds."""
    from annotune.core.near_duplicates import near_duplicate_groups, normalized

    folded = [normalized(text) for text in texts]
    exact = Counter(folded)
    started = time.perf_counter()
    groups = near_duplicate_groups(texts)
    seconds = time.perf_counter() - started
    sizes = Counter(groups)
    labels_in: dict[int, set[str]] = defaultdict(set)
    for group, label in zip(groups, labels, strict=True):
        labels_in[group].add(label)
    return {"data": name, "examples": len(texts),
            "exact_groups_of_2_or_more": sum(1 for n in exact.values() if n > 1),
            "examples_in_exact_groups": sum(n for n in exact.values() if n > 1),
            "near_groups_of_2_or_more": sum(1 for n in sizes.values() if n > 1),
            "examples_in_near_groups": sum(n for n in sizes.values() if n > 1),
            "largest_group": max(sizes.values()),
            "groups_with_conflicting_labels": sum(1 for v in labels_in.values() if len(v) > 1),
            "seconds": round(seconds, 2)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from annotune.core.plugins import registry

    folder = check_data_dir(args.data_dir, "sst2")
    task = registry().task("text-classification")
    settings = default_settings(task, SST2_LABELS)
    items = load_classification(folder / "train.tsv", task, settings, ("sentence",),
                                csv.QUOTE_NONE, [])
    rows = []
    for limit in args.limit or [2000, len(items)]:
        part = items[:limit]
        rows.append(measure(f"sst2 train.tsv, first {len(part):,}",
                            [f["text"] for f, _ in part], [a["label"] for _, a in part]))
    columns = list(rows[0])
    print_table("near-duplicate groups (exact: folded text only; near: with MinHash)", columns,
                [[row[c] for c in columns] for row in rows])
    print_json_line("near_duplicates", {"rows": rows, "hardware": hardware()})


if __name__ == "__main__":
    main()
