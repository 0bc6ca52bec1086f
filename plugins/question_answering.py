"""Extractive question answering: find the answer to a question as a span of a context.

Encoding follows transformers' examples/pytorch/question-answering (prepare_train_features and
prepare_validation_features), with a ``tokenizers.Tokenizer`` and windows cut here: the
question first, the context second, contexts longer than the window split into windows that
share ``settings.stride`` tokens (the doc stride). A window that holds the whole answer trains
on its start/end tokens, any other window on the classifier token (0, 0). A question longer
than MAX_QUESTION_TOKENS is cut (its features say ``truncated``: stats and the export report
count them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from annotune.core.errors import AnnotuneError
from annotune.core.hookspecs import hookimpl
from annotune.core.near_duplicates import near_duplicate_groups
from annotune.core.tasks import (
    Annotation,
    ExampleFields,
    ExampleOrigin,
    Feature,
    LabelIssue,
    Prediction,
    Target,
    Task,
    TaskOption,
    TaskSettings,
    by_document,
)
from annotune.plugins.label_scores import answer_issue
from annotune.plugins.offsets import UTF16, answer_start
from annotune.plugins.qa_postprocess import CLS_INDEX, decode_answers, squad_scores, token_f1
from annotune.plugins.windows import window_starts as shared_window_starts

MAX_QUESTION_TOKENS = 64  # longer questions are cut so that most of a window is context
MIN_MAX_LENGTH = 32  # below this a window cannot hold a question and some context
ALLOW_UNANSWERABLE = TaskOption(
    "allow_unanswerable", bool, False, "some questions have no answer in their context "
    "(SQuAD 2.0 style)", title="Some questions have no answer")
MAX_ANSWER_LENGTH = TaskOption(
    "max_answer_length", int, 30, "longest answer predicted, in tokens",
    title="Longest answer (tokens)", minimum=1, advanced=True)
N_BEST = TaskOption(
    "n_best", int, 20, "answer starts and ends considered per window",
    title="Answer candidates per window", minimum=1, advanced=True)
WELL_TRAINED_QUESTIONS = 2000  # fewer labeled questions make a weak reader (SQuAD has 88,000)


@dataclass(frozen=True)
class _PairLayout:
    """Where a tokenizer puts its special tokens around a (question, context) pair."""

    prefix: list[int]  # before the question ([CLS])
    middle: list[int]  # between question and context ([SEP], or </s></s> for RoBERTa)
    suffix: list[int]  # after the context ([SEP])
    prefix_types: list[int]
    middle_types: list[int]
    suffix_types: list[int]
    question_type: int
    context_type: int

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @classmethod
    def probe(cls, tokenizer: Tokenizer) -> _PairLayout:
        """Learn the layout from one encoded pair, so any BERT- or RoBERTa-style template works."""
        encoding = tokenizer.encode("question", "context")
        seq_ids = encoding.sequence_ids
        first_q = seq_ids.index(0)
        last_q = len(seq_ids) - 1 - seq_ids[::-1].index(0)
        first_c = seq_ids.index(1)
        last_c = len(seq_ids) - 1 - seq_ids[::-1].index(1)
        if first_q == 0:
            raise AnnotuneError("the tokenizer puts no classifier token before the question, "
                                "which question answering needs for 'no answer'",
                                hint="use a BERT- or RoBERTa-style base model")
        ids, types = encoding.ids, encoding.type_ids
        return cls(prefix=ids[:first_q], middle=ids[last_q + 1:first_c], suffix=ids[last_c + 1:],
                   prefix_types=types[:first_q], middle_types=types[last_q + 1:first_c],
                   suffix_types=types[last_c + 1:], question_type=types[first_q],
                   context_type=types[first_c])


def window_starts(n_tokens: int, budget: int, stride: int) -> list[int]:
    """Return the first context token of each window as SQuAD's doc stride cuts a context.

    The shared rule (plugins.windows) with QA's choices: an overlap of at most half a window,
    and windows that step on evenly (the last may be short), as QA models are trained on.
    """
    return shared_window_starts(n_tokens, budget, stride, most_shared=budget // 2,
                                flush_end=False)


def _answer_tokens(offsets: Sequence[tuple[int, int]], start: int, end: int
                   ) -> tuple[int, int] | None:
    """Return the first and last context token overlapping chars [start, end), or None."""
    covered = [i for i, (a, b) in enumerate(offsets) if a < end and b > start and b > a]
    if not covered:
        return None
    return covered[0], covered[-1]


class QuestionAnsweringTask(Task):
    """Answer a question with a span of characters copied from its context."""

    name = "question-answering"
    title = "Extractive question answering"
    annotation_kind = "answers"
    fields = ("context", "question")
    auto_model = "AutoModelForQuestionAnswering"
    output_names = ("start_logits", "end_logits")
    sequence_outputs = True
    main_metric = "f1"
    metric_scale = 100.0  # SQuAD's EM and F1 are percentages
    needs_labels = False
    annotation_columns = ("answers",)
    options = (ALLOW_UNANSWERABLE, MAX_ANSWER_LENGTH, N_BEST)
    short_fields = ("question",)

    def default_settings(self) -> TaskSettings:
        """Return the settings a new QA project starts with (SQuAD's 384-token windows)."""
        return super().default_settings().with_(max_length=384, stride=128)

    def training_advice(self, n_labeled: int) -> str | None:
        """Warn that a reader trained on a few hundred questions answers poorly.

        The figure is docs/benchmarks.md's: the bundled model trained on 400 SQuAD questions
        reached F1 25 (of 100) on questions about unseen articles.
        """
        if n_labeled >= WELL_TRAINED_QUESTIONS:
            return None
        count = f"{n_labeled:,} labeled question{'' if n_labeled == 1 else 's'}"
        return (f"{count}: question answering models learn from thousands of questions. "
                "On SQuAD, 400 questions gave an F1 of about 25 out of 100 on new articles, "
                "so expect a weak model: use it to suggest answers you correct, and label more.")

    def check_settings(self, settings: TaskSettings) -> None:
        """Refuse windows too short for a question, a negative stride, and bad options."""
        super().check_settings(settings)
        if settings.max_length < MIN_MAX_LENGTH:
            raise AnnotuneError(f"max_length {settings.max_length} is too short for question "
                                "answering", hint=f"use at least {MIN_MAX_LENGTH} (384 is usual)")
        if settings.stride < 0:
            raise AnnotuneError(f"stride {settings.stride} is negative",
                                hint="use 0 or more tokens of overlap (128 is usual)")

    # -- annotations ---------------------------------------------------------------------------
    def validate(self, annotation: Annotation, example: ExampleFields, settings: TaskSettings
                 ) -> Annotation:
        context = example.get("context")
        if not isinstance(context, str):
            raise AnnotuneError("the example has no 'context' text", where="field 'context'")
        if not isinstance(annotation, Mapping) or "answers" not in annotation:
            raise AnnotuneError("a question-answering annotation needs an 'answers' list",
                                hint='write {"answers": [{"start": 12, "text": "..."}]}')
        answers = _answer_list(annotation["answers"])
        if not answers and not _yes_no(settings, ALLOW_UNANSWERABLE):
            raise AnnotuneError("the answer list is empty but this project does not allow "
                                "unanswerable questions", where="field 'answers'",
                                hint="mark an answer span, or enable allow_unanswerable "
                                "(SQuAD 2.0 style) in the project settings")
        return {"answers": [_check_answer(answer, i, context) for i, answer in
                            enumerate(answers)]}

    def annotation_from_value(self, value: Any, settings: TaskSettings) -> Annotation:
        """Read an answers cell: a list of {"start", "text"} or HF {"text", "answer_start"}."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as error:
                raise AnnotuneError(f"the answers cell is not JSON ({error.msg})",
                                    hint='write [{"start": 12, "text": "..."}]') from None
        if isinstance(value, Mapping) and "answers" in value:
            value = value["answers"]
        return {"answers": _answer_list(value)}

    def annotation_to_record(self, annotation: Annotation) -> dict[str, object]:
        return {"answers": [dict(a) for a in annotation.get("answers", [])]}

    def stratify_key(self, annotation: Annotation) -> str:
        return "answer" if annotation.get("answers") else "no-answer"

    def group_keys(self, examples: Sequence[ExampleFields],
                   origins: Sequence[ExampleOrigin] | None = None) -> list[str]:
        """Key questions by article when the import kept it, else by context.

        SQuAD asks several questions on one paragraph: split by question, validation grades
        paragraphs the model trained on (F1 71.6 against 50.5 on unseen articles). Contexts
        that differ only in case, spacing or punctuation count as one.
        """
        contexts = [f"context:{group}" for group in near_duplicate_groups(
            [str(example.get("context", "")) for example in examples])]
        if origins is None:
            return contexts
        return by_document([_article(origin) for origin in origins], contexts)

    # -- model -----------------------------------------------------------------------------------
    def encode(self, tokenizer: Tokenizer, examples: Sequence[ExampleFields],
               annotations: Sequence[Annotation] | None, settings: TaskSettings) -> list[Feature]:
        layout = _PairLayout.probe(tokenizer)
        max_question = min(MAX_QUESTION_TOKENS, (settings.max_length - layout.n_special) // 2)
        questions = tokenizer.encode_batch([ex["question"] for ex in examples],
                                           add_special_tokens=False)
        # SQuAD-style data asks several questions per paragraph: tokenize each context once
        unique = list(dict.fromkeys(ex["context"] for ex in examples))
        encoded = {text: (enc.ids, enc.offsets) for text, enc in zip(
            unique, tokenizer.encode_batch(unique, add_special_tokens=False), strict=True)}
        features: list[Feature] = []
        for index, (example, question) in enumerate(zip(examples, questions, strict=True)):
            ctx_ids, ctx_offsets = encoded[example["context"]]
            q_ids, q_offsets = question.ids[:max_question], question.offsets[:max_question]
            cut = len(question.ids) > max_question  # the question's end is in no window
            budget = max(settings.max_length - layout.n_special - len(q_ids), 1)
            answer_span = None
            annotation = annotations[index] if annotations is not None else None
            has_target = annotation is not None
            if annotation is not None:
                answer_span = self._target_tokens(annotation, ctx_offsets)
            head_ids = layout.prefix + q_ids + layout.middle
            head_types = (layout.prefix_types + [layout.question_type] * len(q_ids)
                          + layout.middle_types)
            head_offsets = ([(0, 0)] * len(layout.prefix) + list(q_offsets)
                            + [(0, 0)] * len(layout.middle))
            head_seq: list[int | None] = ([None] * len(layout.prefix) + [0] * len(q_ids)
                                          + [None] * len(layout.middle))
            for start in window_starts(len(ctx_ids), budget, settings.stride):
                end = min(start + budget, len(ctx_ids))
                n_ctx = end - start
                target = None
                if has_target:
                    target = (CLS_INDEX, CLS_INDEX)
                    if answer_span is not None and start <= answer_span[0] and \
                            answer_span[1] < end:
                        shift = len(head_ids) - start
                        target = (answer_span[0] + shift, answer_span[1] + shift)
                features.append(Feature(
                    example_index=index,
                    input_ids=head_ids + ctx_ids[start:end] + layout.suffix,
                    token_type_ids=(head_types + [layout.context_type] * n_ctx
                                    + layout.suffix_types),
                    offsets=(head_offsets + ctx_offsets[start:end]
                             + [(0, 0)] * len(layout.suffix)),
                    sequence_ids=head_seq + [1] * n_ctx + [None] * len(layout.suffix),
                    target=target, truncated=cut))
        return features

    @staticmethod
    def _target_tokens(annotation: Annotation, offsets: Sequence[tuple[int, int]]
                       ) -> tuple[int, int] | None:
        """Context token span of the first reference answer (None: unanswerable)."""
        answers = annotation.get("answers") or []
        if not answers:
            return None
        first = answers[0]
        return _answer_tokens(offsets, first["start"], first["start"] + len(first["text"]))

    def collate_targets(self, targets: Sequence[Target], seq_len: int) -> dict[str, np.ndarray]:
        positions = np.asarray(targets, dtype=np.int64).reshape(len(targets), 2)
        return {"start_positions": positions[:, 0].copy(), "end_positions": positions[:, 1].copy()}

    def decode(self, examples: Sequence[ExampleFields], features: Sequence[Feature],
               outputs: Sequence[Mapping[str, np.ndarray]], settings: TaskSettings
               ) -> list[Prediction]:
        return _decode(examples, features, outputs, settings)

    def metrics(self, predictions: Sequence[Prediction], annotations: Sequence[Annotation],
                settings: TaskSettings) -> dict[str, Any]:
        texts = [p.get("text", "") for p in predictions]
        references = [[a["text"] for a in ann.get("answers", [])] for ann in annotations]
        with_split = _yes_no(settings, ALLOW_UNANSWERABLE) or any(not refs for refs in references)
        return squad_scores(texts, references, with_no_answer_split=with_split)

    def prediction_score(self, prediction: Prediction) -> float:
        return float(prediction.get("score", 0.0))

    def fold_group(self, example: ExampleFields) -> str | None:
        return example.get("context")

    def label_issues(self, examples: Sequence[ExampleFields], annotations: Sequence[Annotation],
                     features: Sequence[Feature], outputs: Sequence[Mapping[str, np.ndarray]],
                     settings: TaskSettings) -> list[LabelIssue]:
        """Score each given answer by token F1 and the probability of its span (label_scores)."""
        predictions = _decode(examples, features, outputs, settings, with_candidates=True)
        return [answer_issue(annotation, prediction, token_f1)
                for annotation, prediction in zip(annotations, predictions, strict=True)]


def _decode(examples: Sequence[ExampleFields], features: Sequence[Feature],
            outputs: Sequence[Mapping[str, np.ndarray]], settings: TaskSettings,
            with_candidates: bool = False) -> list[Prediction]:
    """Pick each question's answer from the model's start/end scores under the task options."""
    return decode_answers([ex["context"] for ex in examples], features, outputs,
                          n_best=_whole_number(settings, N_BEST),
                          max_answer_length=_whole_number(settings, MAX_ANSWER_LENGTH),
                          allow_unanswerable=_yes_no(settings, ALLOW_UNANSWERABLE),
                          with_candidates=with_candidates)


def _whole_number(settings: TaskSettings, option: TaskOption) -> int:
    """Return an int option's value, or raise AnnotuneError naming it and what it takes.

    Settings read from a project or bundle file hold whatever the file says (a hand-edited
    ``"n_best": "20"``), so the value is validated where it is used.
    """
    value = option.validate(settings.option(option))
    if not isinstance(value, int):  # validate returns an int option's value as int
        raise AnnotuneError(f"the task option {option.name} is not a whole number",
                            hint=f"give {option.allowed()}")
    return value


def _yes_no(settings: TaskSettings, option: TaskOption) -> bool:
    """Return a bool option's value, or raise AnnotuneError (a stored "false" is not True)."""
    return bool(option.validate(settings.option(option)))


def _article(origin: ExampleOrigin | None) -> str | None:
    """Return the article a SQuAD question came from (its file and title), if it was kept."""
    if origin is None:
        return None
    meta = origin.meta
    article = meta.get("article", meta.get("title"))
    if article is None:
        return None
    return f"{origin.source}#{article}"


def _answer_list(value: Any) -> list[dict[str, Any]]:
    """Accept a list of answers or the HF datasets shape {"text": [...], "answer_start": [...]}."""
    if isinstance(value, Mapping) and "text" in value:
        texts, starts = value.get("text"), value.get("answer_start", value.get("start"))
        if not isinstance(texts, list) or not isinstance(starts, list) or \
                len(texts) != len(starts):
            raise AnnotuneError("'answers' must hold lists 'text' and 'answer_start' of equal "
                                "length", where="field 'answers'")
        return [{"start": s, "text": t} for s, t in zip(starts, texts, strict=True)]
    if not isinstance(value, list):
        raise AnnotuneError(f"'answers' must be a list, not {type(value).__name__}",
                            where="field 'answers'",
                            hint='write [{"start": 12, "text": "..."}], or [] for no answer')
    answers = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise AnnotuneError(f"answer {i + 1} must be an object with 'start' and 'text'",
                                where="field 'answers'")
        answer = dict(item)
        if "start" not in answer and "answer_start" in answer:
            answer["start"] = answer.pop("answer_start")
        answers.append(answer)
    return answers


def _check_answer(answer: Mapping[str, Any], index: int, context: str) -> dict[str, Any]:
    """Return {"start", "text"} after checking that the text sits in the context at start."""
    where = f"field 'answers', answer {index + 1}"
    start = answer.get("start")
    if isinstance(start, bool) or not isinstance(start, int):
        raise AnnotuneError(f"answer start must be a character offset (an integer), not "
                            f"{start!r}", where=where)
    text = answer.get("text")
    if text is None and isinstance(answer.get("end"), int):
        text = context[start:answer["end"]] if 0 <= start <= answer["end"] else ""
    if not isinstance(text, str) or not text.strip():
        raise AnnotuneError("the answer text is empty", where=where,
                            hint="select at least one character of the context")
    end = start + len(text)
    if start < 0 or end > len(context):
        raise AnnotuneError(f"the answer [{start}, {end}) lies outside the context "
                            f"({len(context)} characters)", where=where)
    if "end" in answer and answer["end"] != end:
        raise AnnotuneError(f"answer end {answer['end']} does not match start {start} plus the "
                            f"length of '{text}' ({end})", where=where)
    found = context[start:end]
    if found != text:
        hint = "fix the start offset or the answer text"
        placed = answer_start(context, text, start)
        if placed is not None and placed[1] == UTF16:
            hint = (f"the start counts UTF-16 code units, as JavaScript tools do (in "
                    f"characters it is {placed[0]}): import the file as squad or qa-jsonl, "
                    "which convert it, or convert the offsets")
        raise AnnotuneError(f"the answer text {text!r} does not match the context at {start}, "
                            f"which reads {found!r}", where=where, hint=hint)
    return {"start": start, "text": text}


@hookimpl
def register_tasks(register):
    register(QuestionAnsweringTask())
