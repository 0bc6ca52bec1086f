"""Near-duplicate texts: the folding that makes twins equal, and the groups MinHash finds."""

from __future__ import annotations

import csv

import pytest

from annotune.core.near_duplicates import near_duplicate_groups, normalized, shingles


def test_folding_ignores_case_accents_punctuation_spacing_and_joiners():
    assert normalized("José, the  GREAT!\r\n") == normalized("jose\u0301 the great")
    assert normalized("José") == "jose"
    assert normalized("👨\u200d👩\u200d👧 family") == normalized("👨👩👧 family")
    assert normalized("Ｆｕｌｌ width") == "full width"  # compatibility forms fold too


def test_folding_keeps_what_changes_the_meaning():
    assert normalized("great 🍕") != normalized("great 😡")
    assert normalized("not good") != normalized("good")
    assert normalized("مرحبا بالعالم") == "مرحبا بالعالم"
    assert normalized("שָׁלוֹם") == normalized("שלום")  # niqqud marks fold like accents


def test_unspaced_scripts_are_compared_character_by_character():
    assert set("我喜欢这部电影") < shingles(normalized("我喜欢这部电影"))
    assert shingles(normalized("東京 tower")) == {"東", "京", "tower", "東 京", "京 tower"}


def test_the_same_words_in_another_order_are_another_text():
    texts = ["the river runs past the castle to the harbour at dawn",
             "at dawn the harbour runs past the river to the castle"]
    assert len(set(near_duplicate_groups(texts))) == 2


def test_phrases_of_one_sentence_group_together_and_strangers_do_not():
    texts = [
        "one of the year 's best films",
        "is one of the year 's best films",
        "One of the year's best films!",
        "a genuine and singular artist",
        "of a genuine and singular artist",
        "the worst film of the year",
        "great 🍕",
        "great 😡",
        "Jose\u0301 sings beautifully in this film",
        "José sings beautifully in this film .",
        "我非常喜欢这部电影的音乐",
        "我非常喜欢这部电影的音乐。",
        "هذا الفيلم رائع جدا ومؤثر",
        "هذا الفيلم رائع جدا ومؤثر!",
    ]
    groups = near_duplicate_groups(texts)
    assert groups[0] == groups[1] == groups[2]
    assert groups[3] == groups[4]
    assert len({groups[0], groups[3], groups[5], groups[6], groups[7]}) == 5
    assert groups[8] == groups[9] and groups[10] == groups[11] and groups[12] == groups[13]
    assert groups == near_duplicate_groups(texts)  # the same texts group the same way


def test_empty_and_blank_texts_group_only_with_each_other():
    groups = near_duplicate_groups(["", "  ", "...", "a text", ""])
    assert groups[0] == groups[1] == groups[2] == groups[4] != groups[3]


def test_sst2_phrases_that_exact_folding_misses_are_grouped(datasets_dir):
    path = datasets_dir / "sst2" / "train.tsv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[:2000]
    texts = [row["sentence"] for row in rows]
    groups = near_duplicate_groups(texts)
    exact = len(texts) - len({normalized(text) for text in texts})
    merged = len(texts) - len(set(groups))
    assert exact == 5 and merged > 4 * exact  # measured: 5 by folding alone, 31 in all


@pytest.mark.parametrize("similar", [0.5, 0.8, 1.0])
def test_a_higher_threshold_never_merges_more(similar):
    texts = ["a b c d e", "a b c d f", "a b c g h", "x y z", "a b c d e"]
    fewer = len(set(near_duplicate_groups(texts, similar)))
    assert fewer <= len(set(near_duplicate_groups(texts, min(1.0, similar + 0.2))))
