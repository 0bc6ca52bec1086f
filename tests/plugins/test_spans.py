"""Span utilities: tag schemes read the way conlleval reads them, span validation, entity scores."""

import pytest

from annotune.core.errors import AnnotuneError
from annotune.plugins.spans import (
    TagError,
    chunks_to_spans,
    chunks_to_tags,
    convert_tags,
    detect_scheme,
    entity_scores,
    imported_tokens,
    locate_tokens,
    spans_to_chunks,
    split_at_span_edges,
    split_tag,
    tags_to_chunks,
    trim_span,
    validate_spans,
    whitespace_tokens,
)

# one chunk sequence written in each scheme: two adjacent PER entities, then a LOC
CHUNKS = [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5)]
WRITTEN = {
    "BIO": ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "O"],
    "IOB1": ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "O"],
    "BIOES": ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "O"],
}


@pytest.mark.parametrize("scheme", sorted(WRITTEN))
def test_each_scheme_writes_and_reads_the_same_chunks(scheme):
    assert chunks_to_tags(CHUNKS, 6, scheme) == WRITTEN[scheme]
    assert tags_to_chunks(WRITTEN[scheme]) == CHUNKS


@pytest.mark.parametrize("source", sorted(WRITTEN))
@pytest.mark.parametrize("target", sorted(WRITTEN))
def test_convert_between_schemes(source, target):
    assert convert_tags(WRITTEN[source], target) == WRITTEN[target]


def test_bio_reading_repairs_like_conlleval():
    # I- after O opens an entity; a type change inside a run opens another
    assert tags_to_chunks(["O", "I-PER", "I-PER", "I-LOC", "B-ORG"]) == [
        ("PER", 1, 3), ("LOC", 3, 4), ("ORG", 4, 5)]
    assert tags_to_chunks(["B-PER", "B-PER", "I-PER"]) == [("PER", 0, 1), ("PER", 1, 3)]
    assert tags_to_chunks([]) == []
    assert tags_to_chunks(["O", "O"]) == []


def test_bioes_reading():
    tags = ["S-PER", "B-ORG", "I-ORG", "E-ORG", "S-ORG", "O", "B-LOC", "E-LOC"]
    assert tags_to_chunks(tags) == [("PER", 0, 1), ("ORG", 1, 4), ("ORG", 4, 5), ("LOC", 6, 8)]


def test_long_entities_in_bioes():
    assert chunks_to_tags([("ORG", 1, 5)], 6, "BIOES") == [
        "O", "B-ORG", "I-ORG", "I-ORG", "E-ORG", "O"]


def test_split_tag_refuses_unknown_prefixes():
    assert split_tag("O") == ("O", None)
    assert split_tag("I-MISC") == ("I", "MISC")
    assert split_tag("B-my-type") == ("B", "my-type")
    for bad in ("X-PER", "B-", "PER", "B_PER", ""):
        with pytest.raises(TagError, match="not a valid tag"):
            split_tag(bad)


def test_detect_scheme():
    assert detect_scheme([WRITTEN["BIO"]]) == "BIO"
    assert detect_scheme([WRITTEN["IOB1"]]) == "IOB1"
    assert detect_scheme([WRITTEN["BIOES"]]) == "BIOES"
    assert detect_scheme([["O", "O"]]) == "BIO"  # nothing tells them apart
    # a BIO corpus with one slip (I- after O) is still BIO
    assert detect_scheme([["B-PER", "O", "B-LOC"], ["O", "I-ORG"], ["B-ORG", "I-ORG"]]) == "BIO"


def test_spans_and_chunks_map_through_token_offsets():
    offsets = [(0, 3), (4, 9), (10, 12), (13, 14)]  # "The Acme Co. ." style
    assert chunks_to_spans([("ORG", 1, 3)], offsets) == [{"start": 4, "end": 12, "label": "ORG"}]
    assert spans_to_chunks([{"start": 4, "end": 12, "label": "ORG"}], offsets) == [("ORG", 1, 3)]
    # a boundary inside a token widens the entity to the whole token
    assert spans_to_chunks([{"start": 5, "end": 7, "label": "ORG"}], offsets) == [("ORG", 1, 2)]
    # adjacent spans of the same type stay two chunks
    spans = [{"start": 4, "end": 9, "label": "PER"}, {"start": 10, "end": 12, "label": "PER"}]
    assert spans_to_chunks(spans, offsets) == [("PER", 1, 2), ("PER", 2, 3)]


def test_whitespace_tokens_and_trim():
    assert whitespace_tokens("  ab c\t d ") == [(2, 4), (5, 6), (8, 9)]
    assert whitespace_tokens("") == []
    assert trim_span(" New York ", 0, 10) == (1, 9)
    assert trim_span("  ", 0, 2) == (2, 2)  # empty: validation refuses it
    assert trim_span("Ada", 0, 9) == (0, 9)  # out of range: validation reports it


TEXT = "Ada Lovelace met Charles Babbage in London."


def test_validate_spans_sorts_and_drops_extra_keys():
    spans = [{"start": 36, "end": 42, "label": "LOC", "score": 0.9},
             {"start": 0, "end": 12, "label": "PER", "text": "Ada Lovelace"}]
    assert validate_spans(spans, TEXT, ("PER", "LOC")) == [
        {"start": 0, "end": 12, "label": "PER"}, {"start": 36, "end": 42, "label": "LOC"}]


@pytest.mark.parametrize("spans, problem", [
    ([{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 20, "label": "PER"}],
     "overlaps"),
    ([{"start": 36, "end": 50, "label": "LOC"}], "outside the text"),
    ([{"start": -1, "end": 3, "label": "PER"}], "outside the text"),
    ([{"start": 5, "end": 5, "label": "PER"}], "is empty"),
    ([{"start": 0, "end": 12, "label": "ORG"}], "unknown type 'ORG'"),
    ([{"start": 3, "end": 12, "label": "PER"}], "whitespace"),
    ([{"start": 0, "end": 4, "label": "PER"}], "whitespace"),
    ([{"start": "0", "end": 4, "label": "PER"}], "integer"),
    ([{"start": 0, "end": 3, "label": "PER", "text": "Adam"}], "cut out 'Ada'"),
    ([[0, 3, "PER"]], "not an object"),
])
def test_validate_spans_names_the_span_and_the_problem(spans, problem):
    with pytest.raises(AnnotuneError) as error:
        validate_spans(spans, TEXT, ("PER", "LOC"))
    message = str(error.value)
    assert problem in message
    assert f"span {spans[-1]!r}" in message


def test_entity_scores_against_hand_computed_values():
    gold = [[{"start": 0, "end": 5, "label": "PER"}, {"start": 10, "end": 15, "label": "ORG"}],
            [{"start": 0, "end": 3, "label": "LOC"}]]
    predicted = [[{"start": 0, "end": 5, "label": "PER"}, {"start": 10, "end": 14, "label": "ORG"}],
                 [{"start": 0, "end": 3, "label": "PER"}, {"start": 5, "end": 8, "label": "LOC"}]]
    scores = entity_scores(gold, predicted)
    # 1 exact match out of 4 predicted and 3 gold entities
    assert scores["precision"] == pytest.approx(1 / 4)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(2 / 7)
    assert (scores["true_positives"], scores["predicted"], scores["gold"]) == (1, 4, 3)
    per = scores["per_type"]
    assert per["PER"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3),
                          "support": 1}
    assert per["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per["LOC"]["support"] == 1 and per["LOC"]["f1"] == 0.0


def test_entity_scores_edge_cases():
    assert entity_scores([[]], [[]])["f1"] == 0.0
    perfect = [[{"start": 0, "end": 2, "label": "X"}]]
    assert entity_scores(perfect, perfect)["f1"] == 1.0
    with pytest.raises(ValueError):
        entity_scores(perfect, [])


def test_a_span_that_fits_utf16_offsets_says_so_in_the_hint():
    # a CSV or JSONL cell of spans written by a JavaScript tool: 🍕 counts twice there
    text = "🍕 Ada met 👨\u200d👩\u200d👧 Bob and Ann"
    with pytest.raises(AnnotuneError) as error:
        validate_spans([{"start": 20, "end": 23, "label": "PER", "text": "Bob"}], text)
    assert "cut out 'and'" in error.value.what and "UTF-16 code units" in error.value.hint
    with pytest.raises(AnnotuneError) as error:  # the last entity runs past the end
        validate_spans([{"start": 28, "end": 31, "label": "PER"}], text)
    assert "outside the text" in error.value.what and "UTF-16 code units" in error.value.hint
    with pytest.raises(AnnotuneError) as error:
        validate_spans([{"start": 1, "end": 3, "label": "PER", "text": "Ann"}], text)
    assert "UTF-16" not in error.value.hint


def test_locate_tokens_accepts_any_spacing_and_text_without_spaces():
    text = "東京に  行った\r\nJose\u0301 🍕"
    tokens = ["東京", "に", "行った", "Jose\u0301", "🍕"]
    offsets = locate_tokens(text, tokens)
    assert [text[a:b] for a, b in offsets] == tokens


def test_split_at_span_edges_cuts_only_tokens_an_edge_falls_in():
    text = "東京と大阪 New-York-based"
    offsets = [(0, 5), (6, 20)]
    spans = [{"start": 0, "end": 2, "label": "LOC"}, {"start": 3, "end": 5, "label": "LOC"},
             {"start": 6, "end": 14, "label": "LOC"}]
    cut, columns = split_at_span_edges(offsets, [["NN"], ["JJ"]], spans)
    assert [text[a:b] for a, b in cut] == ["東京", "と", "大阪", "New-York", "-based"]
    assert columns == [["_"], ["_"], ["_"], ["_"], ["_"]]
    assert split_at_span_edges(offsets, [["NN"], ["JJ"]], []) == (offsets, [["NN"], ["JJ"]])
    assert imported_tokens("Ada  Lovelace") is None
    assert imported_tokens("東京 に") == [(0, 2), (3, 4)]
