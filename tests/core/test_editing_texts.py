"""Editing an example's text never leaves its saved spans or answers marking other characters.

A context edited before its answer left {"start": 14, "text": "Paris"} pointing at " ate ";
an entity text edited before its span left "Anna" reading "Yes ". Both were saved silently.
"""

from __future__ import annotations

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

CONTEXT = "Anna ate 🍕 with Jose\u0301 in Paris"


@pytest.fixture
def qa(tmp_path):
    with Project.create(tmp_path / "qa.annotune", task="question-answering",
                        settings=TaskSettings()) as project:
        project.add_examples([
            ImportRecord({"context": CONTEXT, "question": "where?"},
                         {"answers": [{"start": CONTEXT.index("Paris"), "text": "Paris"}]}),
            ImportRecord({"context": "نص بلا جواب", "question": "who?"})])
        yield project


def test_a_context_with_a_saved_answer_cannot_be_edited(qa):
    with pytest.raises(AnnotuneError) as caught:
        qa.update_fields(1, {"context": "Yesterday " + CONTEXT})
    assert "field 'context'" in str(caught.value) and "annotate it again" in caught.value.hint
    assert qa.example(1).fields["context"] == CONTEXT
    answer = qa.annotation(1).payload["answers"][0]
    assert CONTEXT[answer["start"]:answer["start"] + 5] == "Paris"


def test_a_question_and_an_unannotated_context_can_be_edited(qa):
    assert qa.update_fields(1, {"question": "which city? 🏙"}).fields["question"] == \
        "which city? 🏙"
    assert qa.update_fields(2, {"context": "نص آخر"}).fields["context"] == "نص آخر"
    qa.skip(1)  # no saved answer any more: the context may change
    assert qa.update_fields(1, {"context": "Yesterday " + CONTEXT}).fields["context"] \
        .startswith("Yesterday")


def test_an_entity_text_with_saved_spans_cannot_be_edited_but_labels_can(tmp_path):
    with Project.create(tmp_path / "ner.annotune", task="token-classification",
                        settings=TaskSettings(labels=("PER",))) as ner:
        ner.add_examples([ImportRecord({"text": "Anna ate"},
                                       {"spans": [{"start": 0, "end": 4, "label": "PER"}]})])
        with pytest.raises(AnnotuneError, match="field 'text'"):
            ner.update_fields(1, {"text": "Yes Anna ate"})
        assert ner.example(1).fields["text"] == "Anna ate"
    with Project.create(tmp_path / "tc.annotune", task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"))) as tc:
        tc.add_examples([ImportRecord({"text": "good"}, {"label": "pos"})])
        assert tc.update_fields(1, {"text": "very good 🍕"}).fields["text"] == "very good 🍕"
        assert tc.annotation(1).payload == {"label": "pos"}
