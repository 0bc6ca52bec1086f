"""Entity spans shared by the NER task and its file formats: tag schemes, validation, metrics.

Pure Python (numpy-free even): importers, the task and the torch-free Predictor all use it.

Three tag schemes are understood, all with the conlleval reading of a tag sequence:

* ``BIO`` (IOB2): every entity starts with ``B-X``, continues with ``I-X``.
* ``IOB1``: entities are ``I-X`` runs; ``B-X`` only starts an entity that directly follows
  another entity of the same type.
* ``BIOES``: ``S-X`` single-token entities, ``B-X`` ... ``I-X`` ... ``E-X`` longer ones.

Chunks are ``(label, first, stop)`` token ranges (``stop`` exclusive); character spans are
dicts ``{"start", "end", "label"}`` (``end`` exclusive).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

from annotune.core.errors import AnnotuneError
from annotune.plugins.offsets import utf16_reading

SCHEMES = ("BIO", "IOB1", "BIOES")
_PREFIXES = {"B", "I", "E", "S"}
Chunk = tuple[str, int, int]


class TagError(ValueError):
    """A tag that is not ``O`` nor ``<prefix>-<type>`` with a known prefix."""


def split_tag(tag: str) -> tuple[str, str | None]:
    """Split ``B-PER`` into ``("B", "PER")`` and ``O`` into ``("O", None)``; raise TagError."""
    if tag == "O":
        return "O", None
    prefix, dash, label = tag.partition("-")
    if not dash or prefix not in _PREFIXES or not label:
        raise TagError(f"'{tag}' is not a valid tag (expected O, or B-, I-, E-, S- and a type)")
    return prefix, label


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str | None, type_: str | None) -> bool:
    # conlleval.pl endOfChunk, without the bracket tags
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag != "O" and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str | None, type_: str | None) -> bool:
    # conlleval.pl startOfChunk, without the bracket tags
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag != "O" and prev_type != type_


def tags_to_chunks(tags: Sequence[str]) -> list[Chunk]:
    """Read entities from a tag sequence in any of the schemes, the way conlleval does.

    Invalid transitions are repaired rather than refused: ``I-X`` after ``O`` (or after
    another type) starts a new entity, as conlleval counts it.
    """
    chunks: list[Chunk] = []
    prev_tag, prev_type = "O", None
    start: int | None = None
    for index, tag in enumerate([*tags, "O"]):
        prefix, type_ = split_tag(tag)
        if start is not None and _end_of_chunk(prev_tag, prefix, prev_type, type_):
            chunks.append((str(prev_type), start, index))
            start = None
        if _start_of_chunk(prev_tag, prefix, prev_type, type_):
            start = index
        prev_tag, prev_type = prefix, type_
    return chunks


def chunks_to_tags(chunks: Iterable[Chunk], length: int, scheme: str = "BIO") -> list[str]:
    """Write non-overlapping chunks as a tag sequence of ``length`` tokens in ``scheme``."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme '{scheme}' (choose one of {', '.join(SCHEMES)})")
    tags = ["O"] * length
    previous: Chunk | None = None
    for label, first, stop in sorted(chunks, key=lambda c: c[1]):
        if scheme == "BIOES":
            if stop - first == 1:
                tags[first] = f"S-{label}"
            else:
                tags[first] = f"B-{label}"
                tags[first + 1:stop - 1] = [f"I-{label}"] * (stop - first - 2)
                tags[stop - 1] = f"E-{label}"
        else:
            tags[first:stop] = [f"I-{label}"] * (stop - first)
            adjacent = previous is not None and previous[0] == label and previous[2] == first
            if scheme == "BIO" or adjacent:
                tags[first] = f"B-{label}"
        previous = (label, first, stop)
    return tags


def convert_tags(tags: Sequence[str], target: str) -> list[str]:
    """Rewrite a tag sequence (any scheme, read as conlleval does) in the ``target`` scheme."""
    return chunks_to_tags(tags_to_chunks(tags), len(tags), target)


def detect_scheme(sentences: Iterable[Sequence[str]]) -> str:
    """Guess the tag scheme of a corpus from the tags that only one scheme writes.

    ``E-``/``S-`` mean BIOES. A ``B-X`` that opens an entity after ``O`` or another type is
    BIO; an ``I-X`` that does so is IOB1. A corpus with neither (only ``O``, say) reads the
    same in both, and BIO is assumed; with both, the more frequent evidence wins.
    """
    bio = iob1 = 0
    for tags in sentences:
        prev_type: str | None = None
        for tag in tags:
            prefix, type_ = split_tag(tag)
            if prefix in ("E", "S"):
                return "BIOES"
            if prefix in ("B", "I") and type_ != prev_type:
                if prefix == "B":
                    bio += 1
                else:
                    iob1 += 1
            prev_type = type_
    return "IOB1" if iob1 > bio else "BIO"


def chunks_to_spans(chunks: Iterable[Chunk], offsets: Sequence[tuple[int, int]]
                    ) -> list[dict[str, Any]]:
    """Turn token-range chunks into character spans, given each token's character offsets."""
    return [{"start": offsets[first][0], "end": offsets[stop - 1][1], "label": label}
            for label, first, stop in chunks]


def spans_to_chunks(spans: Iterable[Mapping[str, Any]], offsets: Sequence[tuple[int, int]]
                    ) -> list[Chunk]:
    """Map character spans onto tokens: a token belongs to the first span it overlaps.

    A span boundary inside a token widens the entity to the whole token; a span that covers
    no token (only characters the tokens leave out) disappears.
    """
    owner: list[int | None] = [None] * len(offsets)
    ordered = sorted(spans, key=lambda s: (s["start"], s["end"]))
    for span_index, span in enumerate(ordered):
        for token, (start, end) in enumerate(offsets):
            if owner[token] is None and start < span["end"] and end > span["start"]:
                owner[token] = span_index
    chunks: list[Chunk] = []
    token = 0
    while token < len(offsets):
        owning = owner[token]
        if owning is None:
            token += 1
            continue
        stop = token
        while stop < len(offsets) and owner[stop] == owning:
            stop += 1
        chunks.append((ordered[owning]["label"], token, stop))
        token = stop
    return chunks


def whitespace_tokens(text: str) -> list[tuple[int, int]]:
    """Character offsets of the whitespace-separated tokens of a text."""
    offsets = []
    start: int | None = None
    for index, char in enumerate(text):
        if char.isspace():
            if start is not None:
                offsets.append((start, index))
                start = None
        elif start is None:
            start = index
    if start is not None:
        offsets.append((start, len(text)))
    return offsets


def imported_tokens(text: str) -> list[tuple[int, int]] | None:
    """Return the tokens of a text made by joining tokens with single spaces (CoNLL import).

    None when the text does not have that shape (edited since, or never a CoNLL sentence).
    """
    pieces = text.split(" ")
    if not all(pieces) or any(c.isspace() for p in pieces for c in p):
        return None
    offsets, position = [], 0
    for piece in pieces:
        offsets.append((position, position + len(piece)))
        position += len(piece) + 1
    return offsets


def split_at_span_edges(offsets: Sequence[tuple[int, int]],
                        columns: Sequence[Sequence[str]] | None,
                        spans: Iterable[Mapping[str, Any]]
                        ) -> tuple[list[tuple[int, int]], list[list[str]] | None]:
    """Cut tokens where a span starts or ends inside them, so every span is whole tokens.

    Texts without spaces (Japanese, Chinese, Thai) are one whitespace token per sentence, and
    an entity can end inside any token; the pieces of a cut token get ``_`` columns, as
    nothing is known of them. Returns the new offsets and columns (None stays None).
    """
    edges = sorted({edge for span in spans for edge in (span["start"], span["end"])})
    new_offsets: list[tuple[int, int]] = []
    new_columns: list[list[str]] | None = None if columns is None else []
    for index, (start, end) in enumerate(offsets):
        cuts = [edge for edge in edges if start < edge < end]
        pieces = list(zip([start, *cuts], [*cuts, end], strict=True))
        new_offsets += pieces
        if new_columns is not None and columns is not None:
            if len(pieces) == 1:
                new_columns.append(list(columns[index]))
            else:
                new_columns += [["_"] * len(columns[index]) for _ in pieces]
    return new_offsets, new_columns


def locate_tokens(text: str, tokens: Any) -> list[tuple[int, int]]:
    """Return the character offsets of given tokens in their text, or raise AnnotuneError.

    Tokens come in text order; between them (and around them) only whitespace may lie, or
    nothing (tokens of a text without spaces). Their join with single spaces is the usual case.
    """
    if not isinstance(tokens, list | tuple) or not all(isinstance(t, str) and t
                                                      for t in tokens):
        raise AnnotuneError("'tokens' must be a list of non-empty strings",
                            where="field 'tokens'",
                            hint='pass {"text": "EU rejects it", "tokens": ["EU", "rejects", '
                                 '"it"]} or leave tokens out')
    offsets, position = [], 0
    for number, token in enumerate(tokens, start=1):
        while position < len(text) and text[position].isspace():
            position += 1
        if not text.startswith(token, position):
            found = text[position:position + len(token)]
            raise AnnotuneError(f"token {number} {token!r} does not continue the text at "
                                f"character {position}, which reads {found!r}",
                                where="field 'tokens'",
                                hint="pass the text's own tokens in order, covering every "
                                     "character but whitespace, or leave tokens out")
        offsets.append((position, position + len(token)))
        position += len(token)
    if text[position:].strip():
        raise AnnotuneError(f"the tokens end at character {position}, before "
                            f"{text[position:position + 20]!r}", where="field 'tokens'",
                            hint="pass tokens for the whole text, or leave tokens out")
    return offsets


def _span_problem(span: Any, problem: str, hint: str | None = None) -> AnnotuneError:
    return AnnotuneError(f"span {span!r} {problem}", where="annotation 'spans'", hint=hint)


def validate_spans(spans: Any, text: str, labels: Sequence[str] | None = None
                   ) -> list[dict[str, Any]]:
    """Return spans as sorted ``{"start", "end", "label"}`` dicts, or raise AnnotuneError.

    Refused: a span that is not a mapping with integer start/end and a string label, empty,
    out of the text, starting or ending on whitespace, of a type missing from ``labels``
    (when given), or overlapping another span. A ``text`` key, when present, must equal the
    characters the offsets cut out (it catches offsets counted in bytes or tokens).
    """
    if not isinstance(spans, list | tuple):
        raise AnnotuneError(f"'spans' must be a list, not {type(spans).__name__}",
                            where="annotation 'spans'",
                            hint='write {"spans": [{"start": 0, "end": 5, "label": "PER"}]}')
    clean: list[dict[str, Any]] = []
    for span in spans:
        if not isinstance(span, Mapping):
            raise _span_problem(span, "is not an object with start, end and label")
        start, end, label = span.get("start"), span.get("end"), span.get("label")
        if not (_is_offset(start) and _is_offset(end)):
            raise _span_problem(span, "needs integer 'start' and 'end' character offsets")
        if not isinstance(label, str) or not label:
            raise _span_problem(span, "needs a 'label' string")
        if labels is not None and label not in labels:
            raise _span_problem(span, f"has the unknown type '{label}'",
                                hint=f"use one of the project labels: {', '.join(labels)}")
        if start >= end:
            raise _span_problem(span, "is empty (start must be less than end)")
        if start < 0 or end > len(text):
            raise _span_problem(span, f"lies outside the text ({len(text)} characters)",
                                hint=_offsets_hint(text, span))
        if text[start].isspace() or text[end - 1].isspace():
            raise _span_problem(span, "starts or ends on whitespace",
                                hint="trim the span to the entity's first and last characters")
        if "text" in span and span["text"] != text[start:end]:
            raise _span_problem(span, f"says text {span['text']!r} but its offsets cut out "
                                      f"{text[start:end]!r}", hint=_offsets_hint(text, span))
        clean.append({"start": start, "end": end, "label": label})
    clean.sort(key=lambda s: (s["start"], s["end"]))
    for before, after in zip(clean, clean[1:], strict=False):
        if after["start"] < before["end"]:
            raise _span_problem(after, f"overlaps the span {before!r}",
                                hint="entities may not overlap or nest: keep one of them")
    return clean


def _is_offset(value: object) -> TypeGuard[int]:
    """Tell whether a value is an integer offset (True and False are not: JSON booleans)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _offsets_hint(text: str, span: Mapping[str, Any]) -> str:
    """Say when a span fits the text as UTF-16 code units (and its ``text``, if it has one)."""
    utf16 = utf16_reading(text, span["start"], span["end"])
    if utf16 is not None and span.get("text", text[utf16[0]:utf16[1]]) == \
            text[utf16[0]:utf16[1]]:
        return ("the offsets may count UTF-16 code units, as JavaScript tools do: import the "
                "file as spans-jsonl with span texts, which converts them, or convert them to "
                "characters")
    return "offsets count Unicode characters (code points) of the original text"


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Move span edges inwards past whitespace (a common slip of annotation tools).

    Offsets outside the text are returned as they are, for validation to report.
    """
    if start < 0 or end > len(text):
        return start, end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def entity_scores(gold: Sequence[Iterable[Mapping[str, Any]]],
                  predicted: Sequence[Iterable[Mapping[str, Any]]]) -> dict[str, Any]:
    """Score predicted spans against gold spans per example, with conlleval semantics.

    An entity counts as found only when start, end and type all match. Returns micro
    ``precision``/``recall``/``f1`` (fractions, not percentages), the counts, and
    ``per_type``: ``{type: {"precision", "recall", "f1", "support"}}`` (support = gold count).
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold examples but {len(predicted)} predictions")
    tp: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    for gold_spans, pred_spans in zip(gold, predicted, strict=True):
        gold_set = {(s["start"], s["end"], s["label"]) for s in gold_spans}
        pred_set = {(s["start"], s["end"], s["label"]) for s in pred_spans}
        n_gold.update(label for _, _, label in gold_set)
        n_pred.update(label for _, _, label in pred_set)
        tp.update(label for _, _, label in gold_set & pred_set)
    precision, recall, f1 = _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    per_type = {}
    for label in sorted(set(n_gold) | set(n_pred)):
        p, r, f = _prf(tp[label], n_pred[label], n_gold[label])
        per_type[label] = {"precision": p, "recall": r, "f1": f, "support": n_gold[label]}
    return {"precision": precision, "recall": recall, "f1": f1,
            "true_positives": sum(tp.values()), "predicted": sum(n_pred.values()),
            "gold": sum(n_gold.values()), "per_type": per_type}
