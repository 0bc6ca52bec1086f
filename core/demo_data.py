"""A small labeled sample for the demo project, written by annotune itself.

Short product reviews, built from hand-written opinion phrases and product names, so the demo
needs no downloaded data set. Seeded: every demo run trains on the same texts.
"""

from __future__ import annotations

import random

PRODUCTS = (
    "headphones", "coffee maker", "backpack", "phone case", "desk lamp", "keyboard",
    "running shoes", "blender", "tent", "water bottle", "office chair", "e-reader",
)

POSITIVE = (
    "The {p} works perfectly and feels solid.",
    "I love this {p}, it exceeded my expectations.",
    "Great value: the {p} does exactly what it promises.",
    "This {p} is a joy to use every single day.",
    "Excellent build quality, my {p} still looks new.",
    "Fast delivery and the {p} is even better in person.",
    "Highly recommend this {p} to anyone.",
    "The {p} is comfortable, well made and reliable.",
    "Five stars, the {p} made my mornings easier.",
    "Impressed by how well the {p} holds up.",
    "Best {p} I have owned, worth every penny.",
    "The {p} arrived quickly and works like a charm.",
)

NEGATIVE = (
    "The {p} broke after two days.",
    "I regret buying this {p}, it feels cheap.",
    "Terrible value: the {p} does not do what it promises.",
    "This {p} is frustrating to use and keeps failing.",
    "Poor build quality, my {p} fell apart quickly.",
    "Slow delivery and the {p} was damaged on arrival.",
    "Do not buy this {p}, it is a waste of money.",
    "The {p} is uncomfortable, flimsy and unreliable.",
    "One star, the {p} stopped working within a week.",
    "Disappointed by how badly the {p} holds up.",
    "Worst {p} I have owned, I want a refund.",
    "The {p} arrived late and never worked properly.",
)

LABELS = ("negative", "positive")

# Fresh sentences for the demo's predictions: none of them is in the training sample.
NEW_TEXTS = (
    "Absolutely wonderful, I would buy it again tomorrow.",
    "It stopped charging after a week and support never answered.",
    "Sturdy, quiet and beautifully designed.",
    "Cheap plastic that cracked the first time I used it.",
)


def demo_rows(seed: int = 0) -> list[dict[str, str]]:
    """Return the demo's labeled rows ({"text", "label"}), shuffled with a fixed seed."""
    rows = [{"text": template.format(p=product), "label": label}
            for label, templates in (("positive", POSITIVE), ("negative", NEGATIVE))
            for template in templates for product in PRODUCTS]
    random.Random(seed).shuffle(rows)
    return rows
