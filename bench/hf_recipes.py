"""Run the plain Hugging Face example recipes (run_glue, run_ner, run_qa) with the Trainer.

Each recipe follows its example script's preprocessing and defaults and never touches annotune's
training code; only its predictions are handed back in annotune's prediction form, so that both
sides are scored by the same metric function. QA windows are decoded with annotune's numpy port
of the examples' ``postprocess_qa_predictions`` (utils_qa.py), the same decoder for both sides.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import transformers
from common import SEED, Item, Timer
from transformers import Trainer, TrainingArguments


@dataclass(frozen=True)
class Recipe:
    """The hyper-parameters of one example script's documented run."""

    name: str
    learning_rate: float
    batch_size: int
    epochs: int
    max_length: int | None  # None: the tokenizer's model_max_length
    pad_to_max_length: bool
    doc_stride: int = 128


# run_glue README: --max_seq_length 128 --per_device_train_batch_size 32 --learning_rate 2e-5
# --num_train_epochs 3; pad_to_max_length defaults to True; no warmup, no weight decay.
RUN_GLUE = Recipe("run_glue", 2e-5, 32, 3, 128, True)
# run_ner README passes no learning rate or batch size: the Trainer's 5e-5 and 8 apply;
# 3 epochs (the Trainer default); dynamic padding; label only the first word piece.
RUN_NER = Recipe("run_ner", 5e-5, 8, 3, None, False)
# run_qa README (SQuAD v1.1): --learning_rate 3e-5 --num_train_epochs 2 --max_seq_length 384
# --doc_stride 128 --per_device_train_batch_size 12; pad_to_max_length defaults to True.
RUN_QA = Recipe("run_qa", 3e-5, 12, 2, 384, True)

RECIPES = {"sst2": RUN_GLUE, "rte": RUN_GLUE, "conll2003": RUN_NER, "squad": RUN_QA}


def training_arguments(output_dir: str, *, learning_rate: float, batch_size: int, epochs: int,
                       bf16: bool = False, group_by_length: bool = False, use_cpu: bool = False,
                       eval_batch_size: int | None = None) -> TrainingArguments:
    """Build TrainingArguments with names that work across transformers 4.4x and 5.x.

    Only what the example scripts set is changed; checkpointing, logging and reporting are
    switched off so that they cost no time.
    """
    params = inspect.signature(TrainingArguments.__init__).parameters
    kwargs: dict[str, Any] = dict(
        output_dir=output_dir, learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=eval_batch_size or max(batch_size, 64),
        num_train_epochs=epochs, seed=SEED, save_strategy="no", report_to="none",
        logging_strategy="no", disable_tqdm=True, bf16=bf16,
    )
    kwargs["eval_strategy" if "eval_strategy" in params else "evaluation_strategy"] = "no"
    if use_cpu:
        kwargs["use_cpu" if "use_cpu" in params else "no_cuda"] = True
    if group_by_length:
        if "train_sampling_strategy" in params:  # transformers >= 5.2x
            kwargs["train_sampling_strategy"] = "group_by_length"
        else:
            kwargs["group_by_length"] = True
    return TrainingArguments(**kwargs)


def make_trainer(model: Any, args: TrainingArguments, train: Sequence[dict[str, Any]],
                 tokenizer: Any, collator: Any) -> Trainer:
    """Build a Trainer, passing the tokenizer under the name this transformers version uses."""
    params = inspect.signature(Trainer.__init__).parameters
    name = "processing_class" if "processing_class" in params else "tokenizer"
    return Trainer(model=model, args=args, train_dataset=list(train), data_collator=collator,
                   **{name: tokenizer})


@dataclass
class HFResult:
    predictions: list[dict[str, Any]]
    train_seconds: float
    recipe: Recipe
    epochs: int
    train_features: int


def _train_and_predict(model: Any, recipe: Recipe, epochs: int, train: list[dict[str, Any]],
                       test: list[dict[str, Any]], tokenizer: Any, collator: Any,
                       use_cpu: bool) -> tuple[Any, float]:
    with tempfile.TemporaryDirectory(prefix="hf-recipe-") as out:
        args = training_arguments(out, learning_rate=recipe.learning_rate,
                                  batch_size=recipe.batch_size, epochs=epochs, use_cpu=use_cpu)
        trainer = make_trainer(model, args, train, tokenizer, collator)
        with Timer() as timer:
            trainer.train()
        output = trainer.predict(test)
    return output.predictions, timer.seconds


# -- run_glue ------------------------------------------------------------------------------------

def run_glue(task: Any, settings: Any, train: Sequence[Item], test: Sequence[Item],
             base_model: str, epochs: int | None, use_cpu: bool) -> HFResult:
    """Fine-tune as run_glue does and return label predictions for ``test``."""
    recipe = RUN_GLUE
    epochs = epochs or recipe.epochs
    labels = list(settings.labels)
    label_index = {name: i for i, name in enumerate(labels)}
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_model)
    keys = task.fields

    def encode(items: Sequence[Item]) -> list[dict[str, Any]]:
        texts = [fields[keys[0]] for fields, _ in items]
        pairs = [fields[keys[1]] for fields, _ in items] if len(keys) > 1 else None
        enc = tokenizer(texts, pairs, padding="max_length", max_length=recipe.max_length,
                        truncation=True)
        return [{**{k: enc[k][i] for k in enc.keys()},
                 "label": label_index[annotation["label"]]}
                for i, (_, annotation) in enumerate(items)]

    train_rows, test_rows = encode(train), encode(test)
    torch.manual_seed(SEED)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        base_model, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id=label_index, ignore_mismatched_sizes=True, dtype=torch.float32)
    logits, seconds = _train_and_predict(model, recipe, epochs, train_rows, test_rows,
                                         tokenizer, transformers.default_data_collator, use_cpu)
    chosen = np.asarray(logits).argmax(-1)
    predictions = [{"label": labels[int(c)], "score": 1.0} for c in chosen]
    return HFResult(predictions, seconds, recipe, epochs, len(train_rows))


# -- run_ner -------------------------------------------------------------------------------------

def _words(text: str) -> list[tuple[str, int, int]]:
    """Split a CoNLL sentence (tokens joined by spaces) back into (word, start, end)."""
    words, position = [], 0
    for word in text.split(" "):
        if word:
            words.append((word, position, position + len(word)))
        position += len(word) + 1
    return words


def _word_tags(words: list[tuple[str, int, int]], spans: Sequence[dict[str, Any]]) -> list[str]:
    tags = ["O"] * len(words)
    for span in spans:
        inside = [i for i, (_, a, b) in enumerate(words) if a < span["end"] and b > span["start"]]
        for n, i in enumerate(inside):
            tags[i] = f"{'B' if n == 0 else 'I'}-{span['label']}"
    return tags


def run_ner(task: Any, settings: Any, train: Sequence[Item], test: Sequence[Item],
            base_model: str, epochs: int | None, use_cpu: bool) -> HFResult:
    """Fine-tune as run_ner does (first word piece labelled) and return entity spans."""
    from annotune.plugins.spans import tags_to_chunks
    recipe = RUN_NER
    epochs = epochs or recipe.epochs
    tag_list = ["O"] + [f"{p}-{t}" for t in settings.labels for p in ("B", "I")]
    tag_index = {t: i for i, t in enumerate(tag_list)}
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_model)

    def encode(items: Sequence[Item]) -> tuple[list[dict[str, Any]], list[Any], list[Any]]:
        words = [_words(fields["text"]) for fields, _ in items]
        enc = tokenizer([[w for w, _, _ in ws] for ws in words], is_split_into_words=True,
                        truncation=True, max_length=recipe.max_length)
        rows, word_ids_all = [], []
        for i, (ws, (_, annotation)) in enumerate(zip(words, items, strict=True)):
            tags = _word_tags(ws, annotation["spans"])
            word_ids = enc.word_ids(i)
            labels, previous = [], None
            for word in word_ids:
                labels.append(-100 if word is None or word == previous else tag_index[tags[word]])
                previous = word
            rows.append({"input_ids": enc["input_ids"][i],
                         "attention_mask": enc["attention_mask"][i],
                         "token_type_ids": enc["token_type_ids"][i], "labels": labels})
            word_ids_all.append(word_ids)
        return rows, words, word_ids_all

    train_rows, _, _ = encode(train)
    test_rows, test_words, test_word_ids = encode(test)
    torch.manual_seed(SEED)
    model = transformers.AutoModelForTokenClassification.from_pretrained(
        base_model, num_labels=len(tag_list), id2label=dict(enumerate(tag_list)),
        label2id=tag_index, ignore_mismatched_sizes=True, dtype=torch.float32)
    collator = transformers.DataCollatorForTokenClassification(tokenizer)
    logits, seconds = _train_and_predict(model, recipe, epochs, train_rows, test_rows,
                                         tokenizer, collator, use_cpu)
    chosen = np.asarray(logits).argmax(-1)
    predictions = []
    for row, (fields, _), words, word_ids in zip(chosen, test, test_words, test_word_ids,
                                                 strict=True):
        tags, previous = ["O"] * len(words), None
        for position, word in enumerate(word_ids):
            if word is not None and word != previous:
                tags[word] = tag_list[int(row[position])]
            previous = word
        spans = [{"start": words[a][1], "end": words[b - 1][2], "label": label,
                  "text": fields["text"][words[a][1]:words[b - 1][2]], "score": 1.0}
                 for label, a, b in tags_to_chunks(tags)]
        predictions.append({"spans": spans, "score": 1.0})
    return HFResult(predictions, seconds, recipe, epochs, len(train_rows))


# -- run_qa --------------------------------------------------------------------------------------

def run_qa(task: Any, settings: Any, train: Sequence[Item], test: Sequence[Item],
           base_model: str, epochs: int | None, use_cpu: bool) -> HFResult:
    """Fine-tune as run_qa does (prepare_train_features) and return answer texts."""
    from annotune.core.tasks import Feature
    from annotune.plugins.qa_postprocess import decode_answers
    recipe = RUN_QA
    epochs = epochs or recipe.epochs
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_model)

    def tokenize(items: Sequence[Item]) -> Any:
        return tokenizer([fields["question"].lstrip() for fields, _ in items],
                         [fields["context"] for fields, _ in items],
                         truncation="only_second", max_length=recipe.max_length,
                         stride=recipe.doc_stride, return_overflowing_tokens=True,
                         return_offsets_mapping=True, padding="max_length")

    # prepare_train_features: answer token span, or the CLS token when outside the window
    enc = tokenize(train)
    train_rows = []
    for i, offsets in enumerate(enc["offset_mapping"]):
        input_ids = enc["input_ids"][i]
        cls_index = input_ids.index(tokenizer.cls_token_id)
        sequence_ids = enc.sequence_ids(i)
        answer = train[enc["overflow_to_sample_mapping"][i]][1]["answers"][0]
        start_char, end_char = answer["start"], answer["start"] + len(answer["text"])
        first = sequence_ids.index(1)
        last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
        if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
            start, end = cls_index, cls_index
        else:
            while first < len(offsets) and offsets[first][0] <= start_char:
                first += 1
            start = first - 1
            while offsets[last][1] >= end_char:
                last -= 1
            end = last + 1
        train_rows.append({"input_ids": input_ids, "attention_mask": enc["attention_mask"][i],
                           "token_type_ids": enc["token_type_ids"][i],
                           "start_positions": start, "end_positions": end})
    # prepare_validation_features: keep offsets of context tokens only
    enc = tokenize(test)
    test_rows, features = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        sequence_ids = enc.sequence_ids(i)
        test_rows.append({k: enc[k][i] for k in ("input_ids", "attention_mask",
                                                 "token_type_ids")})
        features.append(Feature(
            example_index=enc["overflow_to_sample_mapping"][i],
            input_ids=enc["input_ids"][i], token_type_ids=enc["token_type_ids"][i],
            offsets=[tuple(o) if s == 1 else (0, 0) for o, s in
                     zip(offsets, sequence_ids, strict=True)],
            sequence_ids=[1 if s == 1 else (0 if s == 0 else None) for s in sequence_ids]))
    torch.manual_seed(SEED)
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(
        base_model, ignore_mismatched_sizes=True, dtype=torch.float32)
    (start_logits, end_logits), seconds = _train_and_predict(
        model, recipe, epochs, train_rows, test_rows, tokenizer,
        transformers.default_data_collator, use_cpu)
    outputs = [{"start_logits": np.asarray(s), "end_logits": np.asarray(e)}
               for s, e in zip(start_logits, end_logits, strict=True)]
    predictions = decode_answers([fields["context"] for fields, _ in test], features, outputs,
                                 n_best=20, max_answer_length=30)
    return HFResult(predictions, seconds, recipe, epochs, len(train_rows))


RUNNERS = {"sst2": run_glue, "rte": run_glue, "conll2003": run_ner, "squad": run_qa}
