"""Named-entity recognition: character spans in, BIO tags on word pieces for the model, spans out.

Project labels are entity types (PER, ORG, ...); the model's tag set is ``O`` followed by
``B-<type>``, ``I-<type>`` for each type in the project's label order.

Words and word pieces: the tokenizer's pre-tokenizer decides what a word is (whitespace and
punctuation boundaries for BERT vocabularies; ``Encoding.word_ids``), unless the example
carries its own ``tokens`` (pre-tokenized input such as a CoNLL sentence): then each given
token is one word, however the tokenizer splits it, and predictions are whole tokens. Each
word takes the tag of the span it overlaps, and only the word's first word piece is trained
on; its other pieces get -100 (ignored by the loss), as transformers' run_ner does by default
(label_all_tokens=False). Training every piece would weigh long, rare words (split into many
pieces) more than short ones and ask the model to write ``I-`` inside a single word; with the
first piece only, each word counts once and prediction reads the same piece. A span boundary
inside a word therefore widens the predicted entity to the whole word, and without given
tokens to whole grapheme clusters (a normaliser that strips accents leaves them out of the
pieces' offsets).

Long texts become overlapping windows of ``max_length`` tokens; every token is in at least one
window, and for a token in several the prediction comes from the window where it has the most
context on both sides.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from annotune.core.errors import AnnotuneError
from annotune.core.features import softmax
from annotune.core.hookspecs import hookimpl
from annotune.core.tasks import (
    Annotation,
    ExampleFields,
    ExampleOrigin,
    Feature,
    LabelIssue,
    Prediction,
    Target,
    Task,
    TaskSettings,
    by_document,
)
from annotune.plugins.conll import DOCSTART
from annotune.plugins.graphemes import widen_to_graphemes
from annotune.plugins.label_scores import span_issues
from annotune.plugins.spans import entity_scores, locate_tokens, tags_to_chunks, validate_spans
from annotune.plugins.windows import window_starts

IGNORE_INDEX = -100  # torch.nn.CrossEntropyLoss's default ignore_index


@dataclass
class TokenFeature(Feature):
    """A window of an NER example, placed in the example's whole token sequence.

    ``token_start`` is the example-level index of the window's first text token and
    ``word_ids[i]`` the example-level word of token i (None for special tokens): decode needs
    both to merge windows and to group word pieces into words.
    """

    token_start: int = 0
    word_ids: list[int | None] = field(default_factory=list)


def tag_names(labels: Sequence[str]) -> list[str]:
    """Return the model's tags: ``O``, then ``B-``/``I-`` for each entity type in order."""
    tags = ["O"]
    for label in labels:
        tags += [f"B-{label}", f"I-{label}"]
    return tags


def _special_frame(encoding: Any) -> tuple[int, int]:
    """Count the special tokens the post-processor puts before and after the text."""
    seq = encoding.sequence_ids
    text_positions = [i for i, s in enumerate(seq) if s is not None]
    if not text_positions:  # an empty text: everything is special; keep the first as prefix
        return min(1, len(seq)), len(seq) - min(1, len(seq))
    return text_positions[0], len(seq) - text_positions[-1] - 1


def given_tokens(example: ExampleFields, index: int) -> list[tuple[int, int]] | None:
    """Return the character offsets of an example's own ``tokens``, when it carries them.

    Pre-tokenized input (a CoNLL sentence, the Predictor's ``{"text", "tokens"}``) is
    labeled per given token: a predicted entity starts at a token's start and ends at a
    token's end, however the model's tokenizer splits ``Mr.`` or ``U.S.``.
    """
    tokens = example.get("tokens")
    if tokens is None:
        return None
    try:
        return locate_tokens(example.get("text", ""), tokens)
    except AnnotuneError as error:
        raise AnnotuneError(f"example {index + 1}: {error.what}", where=error.where,
                            hint=error.hint) from None


def _word_tags(spans: Sequence[Mapping[str, Any]], word_ranges: Sequence[tuple[int, int]],
               tag_index: Mapping[str, int]) -> list[int]:
    """Tag each word with the span it overlaps: B- for the span's first word, I- after."""
    tags = [0] * len(word_ranges)
    taken = [False] * len(word_ranges)
    for span in spans:
        first = True
        for word, (start, end) in enumerate(word_ranges):
            if taken[word] or not (start < span["end"] and end > span["start"]):
                continue
            tag = f"{'B' if first else 'I'}-{span['label']}"
            if tag not in tag_index:
                raise AnnotuneError(f"the entity type '{span['label']}' is not a project label",
                                    hint="add it to the labels or fix the annotation")
            tags[word] = tag_index[tag]
            taken[word] = True
            first = False
    return tags


def word_table(examples: Sequence[ExampleFields], features: Sequence[Feature],
               outputs: Sequence[Mapping[str, np.ndarray]]) -> list[list[dict[str, Any]]]:
    """Return, per example, its words in text order: ``{"probs", "start", "end"}`` each.

    A word's tag probabilities are those of its first piece, taken from the window where that
    piece has the most context; its extent covers all its pieces (a given token is whole; else
    widened to grapheme clusters).
    """
    # per example: token index -> (context, probabilities, offsets, word)
    best: list[dict[int, tuple[int, np.ndarray, tuple[int, int], int]]] = [
        {} for _ in examples]
    for feature, output in zip(features, outputs, strict=True):
        probs = softmax(np.asarray(output["logits"], dtype=np.float64), axis=-1)
        positions = [i for i, s in enumerate(feature.sequence_ids) if s == 0]
        if not positions:
            continue
        first, last = positions[0], positions[-1]
        token_start = getattr(feature, "token_start", 0)
        word_ids = getattr(feature, "word_ids", None) or [None] * len(feature)
        slot = best[feature.example_index]
        for position in positions:
            token = token_start + position - first
            context = min(position - first, last - position)
            if token in slot and slot[token][0] >= context:
                continue
            word = word_ids[position]
            start, end = feature.offsets[position]
            slot[token] = (context, probs[position], (start, end),
                           token if word is None else word)
    return [_words(example.get("text", ""), slot, given_tokens(example, index))
            for index, (example, slot) in enumerate(zip(examples, best, strict=True))]


def _words(text: str, tokens: Mapping[int, tuple[Any, ...]],
           given: list[tuple[int, int]] | None) -> list[dict[str, Any]]:
    words: dict[int, dict[str, Any]] = {}
    for token in sorted(tokens):
        _, probs, (start, end), word = tokens[token]
        if word not in words:
            words[word] = {"probs": probs, "start": start, "end": end}
        else:
            words[word]["start"] = min(words[word]["start"], start)
            words[word]["end"] = max(words[word]["end"], end)
    for word, extent in words.items():
        if given is not None:  # a given token is whole, whatever its pieces cover
            extent["start"], extent["end"] = given[word]
        else:  # a normaliser may leave an accent or an emoji modifier out of a piece
            extent["start"], extent["end"] = widen_to_graphemes(
                text, extent["start"], extent["end"])
    return list(words.values())


def _documents(origins: Sequence[ExampleOrigin | None]) -> list[str | None]:
    """Number the documents of CoNLL imports; None for sentences of files without documents.

    ``origins`` follow the store's id order, which is the order of the file's sentences.
    """
    numbers: dict[str | None, int] = {}
    marked = {origin.source for origin in origins if origin is not None and _starts(origin)}
    documents: list[str | None] = []
    for origin in origins:
        if origin is None or origin.source not in marked:
            documents.append(None)
            continue
        if _starts(origin):
            numbers[origin.source] = numbers.get(origin.source, 0) + 1
        documents.append(f"{origin.source}#{numbers.get(origin.source, 0)}")
    return documents


def _starts(origin: ExampleOrigin) -> bool:
    """Tell whether a sentence opens a CoNLL document (a -DOCSTART- line comes before it)."""
    before = origin.meta.get("before")
    if not isinstance(before, list | tuple):  # no lines kept before the sentence
        return False
    return any(str(line).split()[:1] == [DOCSTART] for line in before)


class TokenClassificationTask(Task):
    """Tag entities (character spans of given types) in a text."""

    name = "token-classification"
    title = "Named-entity recognition"
    annotation_kind = "spans"
    annotation_columns = ("spans", "entities", "label", "labels")
    fields = ("text",)
    auto_model = "AutoModelForTokenClassification"
    output_names = ("logits",)
    sequence_outputs = True
    main_metric = "f1"
    # the Predictor passes these on when an input carries them (see given_tokens)
    optional_fields = ("tokens",)
    labels_title = "Entity types"
    labels_example = "PER, ORG, LOC"

    # -- annotations -------------------------------------------------------------------------
    def validate(self, annotation: Annotation, example: ExampleFields, settings: TaskSettings
                 ) -> Annotation:
        if not isinstance(annotation, Mapping) or "spans" not in annotation:
            raise AnnotuneError("an entity annotation needs a 'spans' list",
                                hint='write {"spans": [{"start": 0, "end": 5, "label": "PER"}]}')
        text = example.get("text", "")
        return {"spans": validate_spans(annotation["spans"], text, settings.labels or None)}

    def annotation_from_value(self, value: Any, settings: TaskSettings) -> Annotation:
        """Read a cell holding a list of spans (dicts, or [start, end, type]), JSON or parsed."""
        data = value
        if isinstance(value, str):
            try:
                data = json.loads(value) if value.strip() else []
            except json.JSONDecodeError:
                raise AnnotuneError(f"the entity cell {value[:60]!r} is not JSON",
                                    hint='write a JSON list like [{"start": 0, "end": 5, '
                                         '"label": "PER"}] or [[0, 5, "PER"]]') from None
        if isinstance(data, Mapping):
            data = data.get("spans", data.get("entities", data.get("label")))
        if not isinstance(data, list):
            raise AnnotuneError(f"the entity cell {str(value)[:60]!r} is not a list of spans")
        spans = [{"start": s[0], "end": s[1], "label": s[2]}
                 if isinstance(s, list | tuple) and len(s) == 3 else s for s in data]
        return {"spans": spans}

    def annotation_to_record(self, annotation: Annotation) -> dict[str, object]:
        return {"spans": [dict(s) for s in annotation.get("spans", [])]}

    def stratify_key(self, annotation: Annotation) -> str:
        # the example's most frequent entity type: texts without entities form their own group
        counts = Counter(s["label"] for s in annotation.get("spans", []))
        if not counts:
            return ""
        return min(counts, key=lambda label: (-counts[label], label))

    def group_keys(self, examples: Sequence[ExampleFields],
                   origins: Sequence[ExampleOrigin] | None = None) -> list[str]:
        """Key sentences by the document they belong to when known, else by their text.

        A CoNLL file marks documents with ``-DOCSTART-`` lines (kept in the meta of the
        sentence that follows); the sentences after it, in import order, belong to that
        document. Split by sentence, validation would grade the same news story's names.
        """
        texts = Task.group_keys(self, examples)
        if origins is None:
            return texts
        return by_document(_documents(origins), texts)

    def check_settings(self, settings: TaskSettings) -> None:
        super().check_settings(settings)
        for label in settings.labels:
            if label == "O" or not label or any(c.isspace() for c in label):
                raise AnnotuneError(f"'{label}' cannot be an entity type",
                                    hint="use names like PER or ORG: not 'O', no spaces")
            if label[:2] in ("B-", "I-", "E-", "S-"):
                raise AnnotuneError(f"'{label}' looks like a tag, not an entity type",
                                    hint=f"use '{label[2:]}': B-/I- tags are added for you")
        if settings.max_length < 3:
            raise AnnotuneError(f"max_length {settings.max_length} leaves no room for text",
                                hint="use at least 16 tokens (128 is the default)")

    # -- model -------------------------------------------------------------------------------
    def model_kwargs(self, settings: TaskSettings) -> dict[str, object]:
        tags = tag_names(settings.labels)
        return {"num_labels": len(tags), "id2label": dict(enumerate(tags)),
                "label2id": {tag: i for i, tag in enumerate(tags)}}

    def encode(self, tokenizer: Tokenizer, examples: Sequence[ExampleFields],
               annotations: Sequence[Annotation] | None, settings: TaskSettings
               ) -> list[Feature]:
        tag_index = {tag: i for i, tag in enumerate(tag_names(settings.labels))}
        features: list[Feature] = []
        # encode_batch tokenizes in parallel threads: most of the time for a large corpus
        encodings = tokenizer.encode_batch([example.get("text", "") for example in examples])
        for example_index, encoding in enumerate(encodings):
            before, after = _special_frame(encoding)
            n_text = len(encoding.ids) - before - after
            window = settings.max_length - before - after
            if window < 1:
                raise AnnotuneError(f"max_length {settings.max_length} leaves no room for text",
                                    where="settings", hint="raise max_length (128 is usual)")
            text_slice = slice(before, before + n_text)
            all_ids, all_types = encoding.ids, encoding.type_ids
            ids, types = all_ids[text_slice], all_types[text_slice]
            head_ids, tail_ids = all_ids[:before], all_ids[before + n_text:]
            head_types, tail_types = all_types[:before], all_types[before + n_text:]
            offsets = [(start, end) for start, end in encoding.offsets[text_slice]]
            given = given_tokens(examples[example_index], example_index)
            if given is not None:  # the example's own tokens are its words
                starts = [start for start, _ in given]
                words = [max(bisect_right(starts, start) - 1, 0) for start, _ in offsets]
            else:  # a text token without a word (an added token) is a word of its own
                words = [w if w is not None else -1 - i for i, w in
                         enumerate(encoding.word_ids[text_slice])]
            first_piece = [i == 0 or words[i] != words[i - 1] for i in range(n_text)]
            word_tag: list[int] = []
            if annotations is not None:
                word_ranges: dict[int, tuple[int, int]] = {}
                for word, (start, end) in zip(words, offsets, strict=True):
                    low, high = word_ranges.get(word, (start, end))
                    word_ranges[word] = (min(low, start), max(high, end))
                if given is not None:
                    word_ranges = {word: given[word] for word in word_ranges}
                order = list(word_ranges)  # first appearance = text order
                tags = _word_tags(annotations[example_index].get("spans", []),
                                  [word_ranges[w] for w in order], tag_index)
                by_word = dict(zip(order, tags, strict=True))
                word_tag = [by_word[w] for w in words]
            for start in window_starts(n_text, window, settings.stride):
                part = slice(start, min(start + window, n_text))
                feature = TokenFeature(
                    example_index=example_index,
                    input_ids=head_ids + ids[part] + tail_ids,
                    token_type_ids=head_types + types[part] + tail_types,
                    offsets=[(0, 0)] * before + offsets[part] + [(0, 0)] * after,
                    sequence_ids=[None] * before + [0] * len(ids[part]) + [None] * after,
                    token_start=start,
                    word_ids=[None] * before + words[part] + [None] * after,
                )
                if annotations is not None:
                    # a word whose first piece lies in an earlier window is trained there
                    labels = [word_tag[i] if first_piece[i] else IGNORE_INDEX
                              for i in range(part.start, part.stop)]
                    feature.target = [IGNORE_INDEX] * before + labels + [IGNORE_INDEX] * after
                features.append(feature)
        return features

    def collate_targets(self, targets: Sequence[Target], seq_len: int) -> dict[str, np.ndarray]:
        labels = np.full((len(targets), seq_len), IGNORE_INDEX, dtype=np.int64)
        for row, target in enumerate(targets):
            if isinstance(target, int):  # encode gives one tag id per token, never one number
                raise TypeError(f"a token-classification target is a list of tag ids, not "
                                f"{target!r}")
            labels[row, :len(target)] = target
        return {"labels": labels}

    # -- predictions -------------------------------------------------------------------------
    def decode(self, examples: Sequence[ExampleFields], features: Sequence[Feature],
               outputs: Sequence[Mapping[str, np.ndarray]], settings: TaskSettings
               ) -> list[Prediction]:
        tags = tag_names(settings.labels)
        return [self._decode_example(example.get("text", ""), ordered, tags)
                for example, ordered in zip(examples, word_table(examples, features, outputs),
                                            strict=True)]

    def _decode_example(self, text: str, ordered: Sequence[Mapping[str, Any]],
                        tags: Sequence[str]) -> Prediction:
        chosen = [int(np.argmax(w["probs"])) for w in ordered]
        # conlleval repair: an I- tag after O or after another type opens a new entity
        chunks = tags_to_chunks([tags[c] for c in chosen])
        spans: list[dict[str, Any]] = []
        for label, first, stop in chunks:
            start, end = ordered[first]["start"], ordered[stop - 1]["end"]
            if spans and start < spans[-1]["end"]:  # two words widened into one character
                start = spans[-1]["end"]
                if start >= end:
                    continue
            score = float(np.mean([ordered[w]["probs"][chosen[w]] for w in range(first, stop)]))
            spans.append({"start": start, "end": end, "label": label,
                          "text": text[start:end], "score": score})
        if spans:
            score = min(s["score"] for s in spans)
        elif ordered:
            score = float(np.mean([w["probs"][0] for w in ordered]))
        else:
            score = 1.0
        return {"spans": spans, "score": score}

    def label_issues(self, examples: Sequence[ExampleFields], annotations: Sequence[Annotation],
                     features: Sequence[Feature], outputs: Sequence[Mapping[str, np.ndarray]],
                     settings: TaskSettings) -> list[LabelIssue]:
        """Score every gold span and every predicted span the gold lacks (label_scores.py)."""
        tags = tag_names(settings.labels)
        issues = []
        for example, annotation, ordered in zip(
                examples, annotations, word_table(examples, features, outputs), strict=True):
            predicted = self._decode_example(example.get("text", ""), ordered, tags)["spans"]
            issues.append(span_issues(annotation.get("spans", []), predicted, ordered, tags))
        return issues

    def prediction_score(self, prediction: Prediction) -> float:
        if "score" in prediction:
            return float(prediction["score"])
        spans = prediction.get("spans", [])
        return min((float(s.get("score", 0.0)) for s in spans), default=1.0)

    def metrics(self, predictions: Sequence[Prediction], annotations: Sequence[Annotation],
                settings: TaskSettings) -> dict[str, Any]:
        return entity_scores([a.get("spans", []) for a in annotations],
                             [p.get("spans", []) for p in predictions])


@hookimpl
def register_tasks(register: Callable[[Task], None]) -> None:
    register(TokenClassificationTask())
