"""import_file, preview_file and export_data against real projects, plus real GLUE files."""

from __future__ import annotations

import csv
import gc
import json
from collections import Counter
from pathlib import Path

import pytest

from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportOptions, ImportRecord
from annotune.core.formats.importing import export_data, import_file, preview_file
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

SENTIMENT = TaskSettings(labels=("negative", "positive"))
NLI = TaskSettings(labels=("entailment", "not_entailment"))


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "reviews.annotune", task="text-classification",
                        settings=SENTIMENT) as opened:
        yield opened


@pytest.fixture
def pair_project(tmp_path):
    with Project.create(tmp_path / "nli.annotune", task="pair-classification",
                        settings=NLI) as opened:
        yield opened


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def dataset(datasets_dir):
    """Return a finder of files in the public data sets (the tests skip without them)."""
    def find(relative: str) -> Path:
        path = datasets_dir / relative
        if not path.is_file():
            pytest.fail(f"real data set file {path} is missing from the shared datasets folder "
                        f"(see its README.md)")
        return path

    return find


def head(source: Path, target: Path, lines: int) -> Path:
    with source.open(encoding="utf-8") as handle:
        target.write_text("".join(next(handle) for _ in range(lines)), encoding="utf-8")
    return target


# -- import ----------------------------------------------------------------------------------
def test_import_guesses_the_format_and_reports(project, tmp_path):
    path = write(tmp_path, "reviews.csv", "text,label\ngreat,positive\nawful,0\nunsure,\n")
    report = import_file(project, path)
    assert (report.format, report.rows, report.added, report.annotated) == ("csv", 3, 3, 2)
    assert str(report) == f"imported 3 examples (2 labeled) from {path} [csv]"
    assert project.count(status="unlabeled") == 1
    assert project.example(1).source == str(path)
    assert project.example(3).line == 4


def test_a_bad_row_aborts_the_whole_import(project, tmp_path):
    path = write(tmp_path, "reviews.csv", "text,label\ngreat,positive\nawful,terrible\n"
                 ",positive\n")
    with pytest.raises(AnnotuneError) as caught:
        import_file(project, path)
    message = str(caught.value)
    assert f"{path}:3 (field 'label')" in message
    assert "unknown label 'terrible'" in message and "(1 more bad rows)" in message
    assert "allowed labels: negative, positive" in message and "--skip-bad-rows" in message
    assert project.count() == 0


def test_skip_bad_rows_lists_every_skipped_row(project, tmp_path):
    path = write(tmp_path, "reviews.tsv", "text\tlabel\ngreat\tpositive\nawful\tterrible\n"
                 "\tpositive\nfine\t1\n")
    report = import_file(project, path, options=ImportOptions(skip_bad_rows=True))
    assert (report.added, report.rows) == (2, 4)
    assert [(p.line, p.field) for p in report.problems] == [(3, "label"), (4, "text")]
    assert report.skipped[0].startswith(f"{path}:3 (field 'label'): unknown label 'terrible'")
    assert "2 bad rows skipped" in str(report)


def test_duplicates_are_counted_and_reported(project, tmp_path):
    import_file(project, write(tmp_path, "a.csv", "text,label\nsame,positive\nother,0\n"))
    report = import_file(project, write(tmp_path, "b.csv",
                                        "text,label\nnew,1\nsame,negative\nnew,1\n"))
    assert (report.added, report.duplicates, report.duplicate_lines) == (1, 2, [3, 4])
    assert "2 duplicates of existing examples not added (lines 3, 4)" in str(report)
    assert project.annotation(1).payload == {"label": "positive"}  # the first one stays


def test_options_force_a_split_and_map_columns(project, tmp_path):
    path = write(tmp_path, "r.jsonl", '{"body": "nice", "stars": "positive"}\n')
    import_file(project, path, options=ImportOptions(mapping={"text": "body", "label": "stars"},
                                                     split="test"))
    [(example, annotation)] = project.labeled()
    assert (example.fields, example.split, annotation) == (
        {"text": "nice"}, "test", {"label": "positive"})
    other = write(tmp_path, "s.txt", "plain\n")
    import_file(project, other, options=ImportOptions(split="Dev"))
    assert project.example(2).split == "validation"
    with pytest.raises(AnnotuneError, match="unknown split 'holdout'"):
        import_file(project, other, options=ImportOptions(split="holdout"))


def test_format_choice(project, tmp_path):
    odd = write(tmp_path, "reviews.data", "a review;one\ngood\n")
    with pytest.raises(AnnotuneError, match="cannot tell the import format .* '.data'") as caught:
        import_file(project, odd)
    assert "--format" in str(caught.value) and "csv" in str(caught.value)
    assert import_file(project, odd, format="txt").added == 2
    table = write(tmp_path, "reviews.dat", "text,label\nfine,1\n")  # the content tells
    report = import_file(project, table)
    assert (report.format, report.annotated) == ("csv", 1)
    assert [str(n) for n in report.notes] == [
        "note: reading reviews.dat as CSV (its first line is a header (text, label) with "
        "commas between columns); use --format to choose another format"]
    with pytest.raises(AnnotuneError, match="unknown import format 'xlsx'"):
        import_file(project, odd, format="xlsx")
    with pytest.raises(AnnotuneError, match="does not serve Text classification projects"):
        import_file(project, odd, format="conll")
    with pytest.raises(AnnotuneError, match="no such file"):
        import_file(project, tmp_path / "missing.csv")


def test_files_without_examples_or_columns(project, tmp_path):
    with pytest.raises(AnnotuneError, match="holds no examples"):
        import_file(project, write(tmp_path, "h.csv", "text,label\n"))
    with pytest.raises(AnnotuneError, match="column 'text' not found") as caught:
        import_file(project, write(tmp_path, "c.csv", "title,body,label\na,b,1\n"))
    assert "'title', 'body', 'label'" in str(caught.value)
    assert "--map text=COLUMN" in str(caught.value)
    assert project.count() == 0


def store_rows(project):
    """Everything an import writes, minus the per-file source and the import time."""
    examples = project.db.execute("SELECT id, fields, text, split, line, hash, meta, source_id "
                                  "FROM examples ORDER BY id").fetchall()
    annotations = project.db.execute("SELECT example_id, payload, status, annotator "
                                     "FROM annotations ORDER BY example_id").fetchall()
    history = project.db.execute("SELECT example_id, action, new_payload, new_status "
                                 "FROM annotation_history ORDER BY id").fetchall()
    return examples, annotations, history, project.counters(), project.count(search="good")


def test_jsonl_and_csv_imports_write_the_same_store(tmp_path):
    """A large file (the bulk path) in either format: the same examples, labels and index."""
    rows = [{"text": f"review {n}: {'good' if n % 3 else 'poor'} value", "stars": str(n % 5),
             "label": ("positive", "negative", "0", "")[n % 4],
             "split": ("train", "", "dev")[n % 3]} for n in range(1500)]
    rows[40]["text"] = rows[39]["text"]  # a duplicate
    rows[700]["label"] = "superb"  # a bad row, skipped
    header = list(rows[0])
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows),
                                      encoding="utf-8")
    with (tmp_path / "r.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([row[key] for key in header] for row in rows)
    results = {}
    for fmt in ("jsonl", "csv"):
        with Project.create(tmp_path / f"{fmt}.annotune", task="text-classification",
                            settings=SENTIMENT) as project:
            report = import_file(project, tmp_path / f"r.{fmt}",
                                 options=ImportOptions(skip_bad_rows=True))
            examples, *rest = store_rows(project)
            # the CSV header is line 1; meta names the format
            examples = [(*row[:4], row[4] - (fmt == "csv"), row[5],
                         row[6].replace('"csv"', '"jsonl"'), row[7]) for row in examples]
            results[fmt] = (report.added, report.annotated, report.duplicates,
                            [line - (fmt == "csv") for line in report.duplicate_lines],
                            [p.line - (fmt == "csv") for p in report.problems],
                            examples, *rest)
    assert results["jsonl"] == results["csv"]
    added, annotated, duplicates, duplicate_lines, problems, examples, *_ = results["jsonl"]
    assert (added, annotated, duplicates, duplicate_lines, problems) == (1498, 1123, 1, [41],
                                                                         [701])
    assert examples[1][1:5] == ('{"text":"review 1: good value"}', "review 1: good value",
                                None, 2)
    assert '"extra":{"stars":"1"}' in examples[1][6]


def test_an_import_pauses_the_garbage_collector_and_restores_it(project):
    seen = []

    def records(count, fail=False):
        for n in range(count):
            seen.append(gc.isenabled())
            yield ImportRecord(fields={"text": f"text {n}"}, line=n + 1)
        if fail:
            raise AnnotuneError("bad row at the end")

    assert gc.isenabled()
    project.add_examples(records(1200))
    assert gc.isenabled() and not any(seen)
    with pytest.raises(AnnotuneError, match="bad row"):
        project.add_examples(records(5, fail=True))
    assert gc.isenabled() and project.count() == 1200
    gc.disable()
    try:
        project.add_examples(iter([ImportRecord(fields={"text": "late"}, line=1)]))
        assert not gc.isenabled()  # paused by someone else: left as it was
    finally:
        gc.enable()


# -- preview ---------------------------------------------------------------------------------
def test_preview_reads_without_writing(project, tmp_path):
    lines = "".join(f"review {i},{'positive' if i % 2 else 'negative'}\n" for i in range(30))
    path = write(tmp_path, "p.csv", "sentence,label\n" + lines + "bad one,maybe\n")
    preview = preview_file(project, path, limit=5)
    assert preview.error is None and preview.format == "csv"
    assert preview.columns == ["sentence", "label"]
    assert preview.rows[0] == {"sentence": "review 0", "label": "negative"}
    assert len(preview.rows) == len(preview.records) == 5
    assert preview.mapping == {"text": "sentence", "label": "label"}
    assert preview.total == 31
    assert [(p.line, p.field) for p in preview.problems] == [(32, "label")]
    assert project.count() == 0


def test_preview_reports_file_errors_instead_of_raising(tmp_path):
    path = write(tmp_path, "p.csv", "title,label\na,1\n")
    preview = preview_file(("text-classification", SENTIMENT), path)
    assert preview.columns == ["title", "label"] and preview.rows == [{"title": "a", "label": "1"}]
    assert preview.error is None  # the one ordinary column is the text
    assert preview.records[0].fields == {"text": "a"}
    two = write(tmp_path, "q.csv", "title,body,label\na,b,1\n")
    preview = preview_file(("text-classification", SENTIMENT), two)
    assert preview.columns == ["title", "body", "label"]
    assert "column 'text' not found" in preview.error and preview.total == 0
    mapped = preview_file(("text-classification", SENTIMENT), two,
                          options=ImportOptions(mapping={"text": "body"}))
    assert mapped.error is None and mapped.records[0].fields == {"text": "b"}
    latin = tmp_path / "x.csv"
    latin.write_bytes("text\ncafé\n".encode("latin-1"))
    assert f"{latin}:2: the file is not UTF-8" in preview_file(("text-classification",
                                                               SENTIMENT), latin).error


# -- export ----------------------------------------------------------------------------------
def test_export_data_round_trips(project, tmp_path):
    import_file(project, write(tmp_path, "in.csv",
                               "text,label,split\ngood,positive,train\nbad,negative,test\n"
                               "skip me,,\nnot yet,,\n"))
    project.skip(3)
    out = tmp_path / "out.jsonl"
    assert export_data(project, out) == 2
    assert export_data(project, tmp_path / "all.jsonl", include_skipped=True) == 3
    assert export_data(project, tmp_path / "out.csv") == 2
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines[1] == {"id": 2, "text": "bad", "label": "negative", "split": "test",
                        "status": "accepted"}
    with Project.create(tmp_path / "copy.annotune", task="text-classification",
                        settings=SENTIMENT) as copy:
        import_file(copy, out)
        assert [(e.fields, e.split, a) for e, a in copy.labeled()] == [
            (e.fields, e.split, a) for e, a in project.labeled()]
    with pytest.raises(AnnotuneError, match="cannot tell the export format"):
        export_data(project, tmp_path / "out.xlsx")
    with pytest.raises(AnnotuneError, match="does not exist"):
        export_data(project, tmp_path / "nowhere" / "out.csv")


# -- real GLUE files -------------------------------------------------------------------------
def glue_labels(path: Path, quoting: int, text_columns: tuple[str, ...]) -> Counter:
    """Count the labels of the first occurrence of each text, as the import dedupes."""
    seen: dict[tuple[str, ...], str] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=quoting):
            seen.setdefault(tuple(row[c] for c in text_columns), row["label"])
    return Counter(seen.values())


def test_sst2_train_head_imports(project, tmp_path, dataset):
    path = head(dataset("sst2/train.tsv"), tmp_path / "train.tsv", 401)
    expected = glue_labels(path, csv.QUOTE_NONE, ("sentence",))
    report = import_file(project, path)
    assert report.rows == 400 and not report.problems
    assert report.added == sum(expected.values()) == 400 - report.duplicates
    counts = Counter(a["label"] for _, a in project.labeled())
    assert counts == {"negative": expected["0"], "positive": expected["1"]}
    assert project.example(1).fields["text"] == path.read_text().splitlines()[1].split("\t")[0]


def test_sst2_dev_imports_whole(project, dataset):
    path = dataset("sst2/dev.tsv")
    report = import_file(project, path, options=ImportOptions(split="validation"))
    assert report.rows == 6735 and report.added + report.duplicates == 6735
    assert not report.problems
    stats = project.stats()
    assert stats["splits"] == {"validation": report.added}
    assert sum(stats["labels"].values()) == report.added


def test_rte_train_head_imports_as_pairs(pair_project, tmp_path, dataset):
    path = head(dataset("rte/train.tsv"), tmp_path / "train.tsv", 301)
    expected = glue_labels(path, csv.QUOTE_MINIMAL, ("sentence1", "sentence2"))
    report = import_file(pair_project, path)
    assert (report.rows, report.added, report.duplicates) == (300, 300, 0)
    counts = Counter(a["label"] for _, a in pair_project.labeled())
    assert counts == {"entailment": expected["0"], "not_entailment": expected["1"]}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    quoted = [i for i, row in enumerate(rows) if '"' in row["sentence1"]]
    assert quoted, "the sample should hold a CSV-quoted sentence"
    example = pair_project.example(quoted[0] + 1)
    assert example.fields == {"text": rows[quoted[0]]["sentence1"],
                              "text_pair": rows[quoted[0]]["sentence2"]}
    assert example.source_id == rows[quoted[0]]["idx"]


# -- label caches ------------------------------------------------------------------------------
def test_repeated_label_cells_are_checked_each_time_they_appear(project, tmp_path):
    """Label cells are converted once per distinct value, yet every row gets its verdict."""
    rows = ["text,label"] + [f"row {i},{['positive', '0', 'Positive', 'meh'][i % 4]}"
                             for i in range(40)]
    path = write(tmp_path, "many.csv", "\n".join(rows) + "\n")
    report = import_file(project, path, options=ImportOptions(skip_bad_rows=True))
    assert report.added == 30
    assert [p.line for p in report.problems] == [i + 2 for i in range(3, 40, 4)]
    assert {p.message for p in report.problems} == {"unknown label 'meh'"}
    labels = Counter(a.payload["label"] for _, a in project.annotated())
    assert labels == {"positive": 20, "negative": 10}
    first, second = project.annotation(1), project.annotation(4)  # rows 0 and 4
    assert first.payload == second.payload and first.payload is not second.payload


def test_other_importers_are_validated_again_with_a_cache(project, tmp_path):
    from annotune.core.formats import importing
    from annotune.core.formats.base import ImportRecord

    class Loose:
        """An importer of another plugin: yields labels without validating them."""

        def read(self, path, task, settings, options):
            for i in range(6):
                label = ["positive", "x"][i % 2]
                yield ImportRecord({"text": f"t{i}"}, annotation={"label": label}, line=i + 1)

    items = list(importing._checked(Loose(), tmp_path, project.task, project.settings,
                                    ImportOptions()))
    problems = [i for i in items if not isinstance(i, ImportRecord)]
    assert [p.line for p in problems] == [2, 4, 6]
    assert all(p.field == "label" and "unknown label 'x'" in p.message for p in problems)
    good = [i for i in items if isinstance(i, ImportRecord)]
    assert [g.annotation for g in good] == [{"label": "positive"}] * 3
    good[0].annotation["label"] = "changed"  # each record owns its annotation
    assert good[1].annotation == {"label": "positive"}


def test_a_bad_row_at_the_end_of_a_large_file_rolls_everything_back(project, tmp_path):
    """The store writes while the file is read; a late bad row still leaves nothing behind."""
    rows = ["text,label"] + [f"review {i},{'positive' if i % 2 else 'negative'}"
                             for i in range(120_000)] + ["the last one,meh"]
    path = write(tmp_path, "big.csv", "\n".join(rows) + "\n")
    with pytest.raises(AnnotuneError, match="unknown label 'meh'.*nothing was imported") as info:
        import_file(project, path)
    assert info.value.where == f"{path}:120002 (field 'label')"
    assert project.count() == 0 and project.history() == []
    assert project.examples(search="review") == []
    good = write(tmp_path, "good.csv", "\n".join(rows[:-1]) + "\n")
    report = import_file(project, good)
    assert (report.added, report.annotated, report.rows) == (120_000, 120_000, 120_000)
    assert project.count(status="accepted") == 120_000
    assert [e.id for e in project.examples(search="119999")] == [120_000]
