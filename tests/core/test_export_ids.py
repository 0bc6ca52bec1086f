"""An export writes each example under the id its file gave it, so labels join back right.

Exports wrote the project's row numbers as "id": a file imported with ids 17, 3, rev-9 came
back as 1, 2, 3, and joining the labels back by id put them on other rows.
"""

from __future__ import annotations

import json

import pytest

from annotune.core.formats.base import ImportRecord
from annotune.core.formats.importing import export_data, import_file
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_classification_export_keeps_the_files_own_ids(tmp_path, fmt):
    source = tmp_path / "reviews.csv"
    source.write_text("id,text,label\n17,great 🍕,pos\n3,bad,neg\nrev-9,Jose\u0301,pos\n",
                      encoding="utf-8")
    with Project.create(tmp_path / "p.annotune", task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"))) as project:
        import_file(project, source)
        project.add_examples([ImportRecord({"text": "typed in later"}, {"label": "neg"})])
        out = tmp_path / f"out.{fmt}"
        export_data(project, out)
        if fmt == "jsonl":
            rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        else:
            import csv

            rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    # labels join back by the file's ids; an example without one keeps its number, and every
    # id has one type (datasets reads one type per column)
    assert {r["id"]: r["label"] for r in rows} == {"17": "pos", "3": "neg", "rev-9": "pos",
                                                    "4": "neg"}


def test_entity_and_squad_exports_keep_the_files_own_ids(tmp_path):
    spans = tmp_path / "spans.jsonl"
    spans.write_text(json.dumps({"id": "doc-7", "text": "Anna 🍕", "spans": [[0, 4, "PER"]]})
                     + "\n", encoding="utf-8")
    with Project.create(tmp_path / "ner.annotune", task="token-classification",
                        settings=TaskSettings(labels=("PER",))) as project:
        import_file(project, spans, format="spans-jsonl")
        for fmt in ("spans-jsonl", "jsonl"):
            export_data(project, tmp_path / f"{fmt}.jsonl", format=fmt)
            [line] = (tmp_path / f"{fmt}.jsonl").read_text(encoding="utf-8").splitlines()
            assert json.loads(line)["id"] == "doc-7", fmt
    answers = tmp_path / "qa.csv"
    answers.write_text('id,context,question,answers\nq-42,Anna ate 🍕,who?,'
                       '"[{""start"": 0, ""text"": ""Anna""}]"\n', encoding="utf-8")
    with Project.create(tmp_path / "qa.annotune", task="question-answering",
                        settings=TaskSettings()) as project:
        import_file(project, answers)
        export_data(project, tmp_path / "squad.json", format="squad")
        document = json.loads((tmp_path / "squad.json").read_text(encoding="utf-8"))
    [article] = document["data"]
    assert article["paragraphs"][0]["qas"][0]["id"] == "q-42"
