"""A small labeled sample for the demo project, written by annotune itself.

Short product reviews, built from hand-written opinion phrases and product names, so the demo
needs no downloaded data set. Seeded: every demo run trains on the same texts.
"""

from __future__ import annotations

import random

PRODUCTS = (
    "headphones", "coffee maker", "backpack", "desk lamp", "keyboard", "running shoes",
    "blender", "tent", "office chair", "e-reader",
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
    "Wonderful {p}, elegant and surprisingly light.",
    "My whole family enjoys the new {p}.",
    "Quiet, sturdy and easy to clean: a fantastic {p}.",
    "Customer service was friendly and the {p} is superb.",
    "I would happily buy this {p} again.",
    "The {p} is beautifully designed and thoughtful in every detail.",
    "Brilliant {p}, setup took two minutes.",
    "Still going strong after a year, great {p}.",
    "Pleasantly surprised, the {p} feels premium.",
    "A delightful {p} that does its job without fuss.",
    "Perfect gift, my friend adores the {p}.",
    "Solid, dependable {p} at a fair price.",
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
    "Awful {p}, clumsy and surprisingly heavy.",
    "Nobody in my family can stand the new {p}.",
    "Noisy, wobbly and hard to clean: a dreadful {p}.",
    "Customer service ignored me and the {p} is defective.",
    "I would never buy this {p} again.",
    "The {p} is badly designed and careless in every detail.",
    "Useless {p}, setup failed three times.",
    "Dead after a month, lousy {p}.",
    "Unpleasantly surprised, the {p} feels like cheap plastic.",
    "An annoying {p} that constantly causes trouble.",
    "Returned it at once, the {p} smelled of burnt plastic.",
    "Overpriced, fragile {p} that cracked immediately.",
)

# Unlabeled reviews the demo leaves for the person to label: mixed opinions, on which the
# demo's model is unsure (so "most uncertain first" has something to show), and a few plain
# ones it gets right. None of them is in the labeled sample.
MIXED = (
    "The {p} looks great, but it stopped working after a month.",
    "Good {p} for the price, though the instructions were useless.",
    "The {p} is comfortable, but it is louder than I expected.",
    "Not bad: the {p} does the job, nothing more.",
    "I wanted to love this {p}, and parts of it are lovely, but it keeps letting me down.",
    "The {p} arrived late, yet it works fine now.",
    "Decent {p}, although customer service took a week to answer.",
    "The {p} is fine, I guess.",
    "Some days the {p} works perfectly, other days not at all.",
    "The {p} is sturdy but much heavier than the pictures suggest.",
    "Returned the first {p}; the replacement works well.",
    "Okay {p}. My sister likes hers more.",
)
PLAIN = (
    ("positive", "This {p} made every morning a little better."),
    ("positive", "Exactly the {p} I hoped for, and it feels built to last."),
    ("negative", "The {p} rattled from day one and then died."),
    ("negative", "Save your money, this {p} is junk."),
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
    rng = random.Random(seed)
    rows = []
    for label, templates in (("positive", POSITIVE), ("negative", NEGATIVE)):
        for template in templates:
            # four products per phrase: enough variety without hundreds of near-copies
            for product in rng.sample(PRODUCTS, 4):
                rows.append({"text": template.format(p=product), "label": label})
    rng.shuffle(rows)
    return rows


def unlabeled_texts(seed: int = 1) -> list[str]:
    """Return the demo's unlabeled reviews (mixed opinions and a few plain ones), shuffled."""
    rng = random.Random(seed)
    texts = [template.format(p=product) for template in MIXED
             for product in rng.sample(PRODUCTS, 2)]
    texts += [template.format(p=rng.choice(PRODUCTS)) for _label, template in PLAIN]
    rng.shuffle(texts)
    return texts
