"""The automatic validation split keeps related examples on one side, still stratified."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import ExampleOrigin, Task, TaskSettings
from annotune.core.training.data import split_validation
from annotune.core.training.validation_split import (
    choose_validation,
    labeled_items,
    project_split,
)
from annotune.plugins.question_answering import QuestionAnsweringTask
from annotune.plugins.text_classification import TextClassificationTask
from annotune.plugins.token_classification import TokenClassificationTask

TEXT = TextClassificationTask()
QA = QuestionAnsweringTask()
NER = TokenClassificationTask()
WORDS = ("river", "castle", "engine", "violin", "harbour", "glacier", "orchard", "comet",
         "lantern", "meadow", "falcon", "canyon", "anchor", "pepper", "silver", "thunder")


def paragraph(n: int) -> str:
    rng = random.Random(n)
    return " ".join(rng.choice(WORDS) for _ in range(40)) + f" (paragraph {n}) 🍕 漢字 مرحبا"


def squad_items(paragraphs: int, questions: int) -> list[tuple[dict, dict]]:
    items = []
    for p in range(paragraphs):
        context = paragraph(p)
        for q in range(questions):
            answer = context.split()[q]
            items.append(({"context": context, "question": f"question {q} on {p}?"},
                          {"answers": [{"start": context.index(answer), "text": answer}]}))
    return items


def contexts(items):
    return {fields["context"] for fields, _ in items}


def test_questions_on_one_paragraph_never_straddle_the_split():
    items = squad_items(30, 6)
    train, validation = split_validation(items, QA, 0.1, seed=0)
    assert contexts(train).isdisjoint(contexts(validation))
    assert 12 <= len(validation) <= 24  # about 10 % of 180 questions, in whole paragraphs


def test_contexts_that_differ_only_in_spacing_or_case_count_as_one():
    items = squad_items(20, 4)
    twins = [({"context": f["context"].upper().replace(" ", "  "), "question": "again?"},
              {"answers": [{"start": 0, "text": f["context"].upper()[:5]}]})
             for f, _ in items[::4]]
    train, validation = split_validation(items + twins, QA, 0.1, seed=3)
    folded = {" ".join(c.casefold().split()) for c in contexts(validation)}
    assert folded.isdisjoint(" ".join(c.casefold().split()) for c in contexts(train))


def test_questions_are_grouped_by_article_when_the_import_kept_it():
    items, origins = [], []
    for article in range(12):
        for p in range(3):  # three different paragraphs per article
            context = paragraph(article * 10 + p)
            items.append(({"context": context, "question": "what?"},
                          {"answers": [{"start": 0, "text": context.split()[0]}]}))
            origins.append(ExampleOrigin(source="dev.json",
                                         meta={"title": f"Article {article}",
                                               "article": article, "paragraph": p}))
    split = choose_validation(items, QA, 0.1, seed=1, origins=origins)
    article_of = {fields["context"]: origin.meta["article"]
                  for (fields, _), origin in zip(items, origins, strict=True)}
    held = {article_of[c] for c in contexts(split.validation)}
    assert held and held.isdisjoint(article_of[c] for c in contexts(split.train))
    assert split.record["grouped_by"] == "document" and split.record["fallback"] is None


def test_near_duplicate_texts_stay_on_one_side_and_labels_stay_stratified():
    items = []
    for i in range(60):
        label = "pos" if i % 3 else "neg"
        base = f"{paragraph(i)[:60]} number {i}"
        items.append(({"text": base}, {"label": label}))
        items.append(({"text": f"is {base} !"}, {"label": label}))  # a phrase of the same text
    train, validation = split_validation(items, TEXT, 0.2, seed=0)
    folded = {f["text"].removeprefix("is ").removesuffix(" !") for f, _ in validation}
    assert folded.isdisjoint(f["text"].removeprefix("is ").removesuffix(" !") for f, _ in train)
    assert Counter(a["label"] for _, a in validation) == {"pos": 16, "neg": 8}


def test_conll_documents_stay_together_when_their_origins_are_known():
    items, origins = [], []
    for document in range(15):
        for sentence in range(8):
            text = f"Sentence {sentence} of story {document} about Berlin 🍕"
            items.append(({"text": text}, {"spans": [{"start": text.index("Berlin"),
                                                      "end": text.index("Berlin") + 6,
                                                      "label": "LOC"}]}))
            before = ["-DOCSTART- -X- -X- O"] if sentence == 0 else []
            origins.append(ExampleOrigin(source="train.txt", line=len(items),
                                         meta={"format": "conll", "before": before}))
    split = choose_validation(items, NER, 0.1, seed=2, origins=origins)
    story = {f["text"]: f["text"].split()[4] for f, _ in items}
    held = {story[f["text"]] for f, _ in split.validation}
    assert held.isdisjoint(story[f["text"]] for f, _ in split.train)
    assert split.record["grouped_by"] == "document"
    assert split.record["validation_examples_sharing_a_group_with_training"] == 0


def test_sentences_of_a_file_without_documents_are_grouped_by_their_text():
    items = [({"text": f"sentence {i} {paragraph(i)[:30]}"}, {"spans": []}) for i in range(40)]
    origins = [ExampleOrigin(source="plain.conll", line=i, meta={"format": "conll"})
               for i in range(40)]
    assert set(NER.group_keys([f for f, _ in items], origins)) == set(
        Task.group_keys(NER, [f for f, _ in items]))


def test_groups_too_coarse_for_the_fraction_fall_back_and_say_so():
    items = squad_items(2, 20)  # two paragraphs: no whole paragraph is about 10 %
    split = choose_validation(items, QA, 0.1, seed=0)
    assert split.validation and split.train
    assert "too large" in split.record["fallback"]
    assert split.record["validation_examples_sharing_a_group_with_training"] > 0


def test_a_given_validation_split_reports_what_it_shares_with_training(tmp_path):
    project = Project.create(tmp_path / "p.annotune", task="text-classification",
                             settings=TaskSettings(labels=("neg", "pos")))
    texts = ["a fine film", "A fine film!", "a dull film", "an odd film", "a film 🍕"]
    records = [ImportRecord(fields={"text": t}, annotation={"label": "pos"}, line=n + 1,
                            split="validation" if n in (1, 3) else None)
               for n, t in enumerate(texts)]
    project.add_examples(records, source="films.csv")
    labeled = labeled_items(project)
    assert [o.line for o in labeled.validation_origins] == [2, 4]
    split = project_split(labeled, TEXT, 0.1, seed=0)
    assert split.record["method"] == "the project's validation split"
    assert split.record["validation_examples_sharing_a_group_with_training"] == 1


def test_a_task_that_keys_too_few_examples_is_named():
    class Broken(TextClassificationTask):
        name = "broken"

        def group_keys(self, examples, origins=None):
            return ["x"]

    with pytest.raises(Exception, match="task 'broken' returned 1 group keys for 4"):
        split_validation([({"text": str(i)}, {"label": "pos"}) for i in range(4)], Broken(),
                         0.5, 0)
