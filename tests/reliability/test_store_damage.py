"""A damaged project file is refused before anything reads wrong counts from it or writes into it,
and a stored value that is not JSON names its table, row and what to do."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from annotune.core import cli
from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project, bulk, integrity
from annotune.core.store.failures import DamagedProjectError, StoredValueError
from annotune.core.tasks import TaskSettings

LABELS = ("neg", "pos")
TEXTS = ["Jose\u0301 liked it 🍕", "👨‍👩‍👧 a family film", "東京の映画", "فيلم رائع",
         "שלום\r\nעולם"]


@pytest.fixture
def path(tmp_path) -> Path:
    """A closed project (its log folded in) of 3,000 examples, some labeled."""
    path = tmp_path / "p.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=LABELS)) as project:
        project.add_examples(ImportRecord(fields={"text": f"{TEXTS[i % 5]} number {i}"},
                                          line=i + 1, annotation={"label": LABELS[i % 2]})
                             for i in range(3000))
        project.save_annotation(3, {"label": "pos"})
        project.create_run({"epochs": 1}, "cpu")
    assert not Path(f"{path}-wal").exists()
    return path


def page_of(path: Path, sql: str) -> tuple[int, int]:
    """Return (page number, page size) of the page an SQL query names (a root or a leaf)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        size = db.execute("PRAGMA page_size").fetchone()[0]
        return db.execute(sql).fetchone()[0], size


def damage(path: Path, page: int, size: int, offset: int = 0, data: bytes = b"") -> bytes:
    """Overwrite bytes of one page (garbage by default); return the file as it is now."""
    with path.open("r+b") as handle:
        handle.seek((page - 1) * size + offset)
        handle.write(data or bytes(range(256)) * (size // 256))
    return path.read_bytes()


def leaf_of_examples(path: Path) -> tuple[int, int]:
    """A leaf page in the middle of the examples table (its root is an interior page)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = [row[0] for row in db.execute(
            "SELECT pageno FROM dbstat WHERE name = 'examples' AND pagetype = 'leaf' "
            "ORDER BY pageno")] if _has_dbstat(db) else []
    if pages:
        return pages[len(pages) // 2], size
    root, size = page_of(path, "SELECT rootpage FROM sqlite_master WHERE name = 'examples'")
    return root + 1, size


def _has_dbstat(db: sqlite3.Connection) -> bool:
    try:
        db.execute("SELECT 1 FROM dbstat LIMIT 1")
        return True
    except sqlite3.OperationalError:
        return False


def test_damaged_pages_are_refused_on_open(path):
    page, size = leaf_of_examples(path)
    damaged = damage(path, page, size)
    with pytest.raises(DamagedProjectError) as caught:
        Project.open(path)
    error = caught.value
    assert error.where == str(path)
    assert "the project file is damaged" in error.what
    assert "annotune backup" in error.hint and ".recover" in error.hint
    assert "nothing was written" in error.hint
    assert path.read_bytes() == damaged  # not one byte written


def test_the_cli_refuses_stats_and_imports_on_a_damaged_file(path, tmp_path, capsys):
    page, size = leaf_of_examples(path)
    damaged = damage(path, page, size)
    more = tmp_path / "more.csv"
    more.write_text("text,label\nnew one,pos\n", encoding="utf-8")
    assert cli.main(["stats", str(path)]) == cli.EXIT_ERROR
    assert cli.main(["import", str(path), str(more)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("the project file is damaged") == 2
    assert "unexpected" not in err and "Error" not in err  # no raw sqlite3 error
    assert path.read_bytes() == damaged


def test_a_damaged_counters_page_is_refused(path):
    """The counters page lost its cells but still looks like a table: stats would say 0."""
    page, size = page_of(path, "SELECT rootpage FROM sqlite_master WHERE name = 'counters'")
    damage(path, page, size, offset=3, data=b"\x00\x00")  # the page's cell count
    with pytest.raises(DamagedProjectError, match="on page"):
        Project.open(path)


@pytest.mark.parametrize("change", ["DELETE FROM counters",
                                    "UPDATE counters SET n = 0 WHERE name = 'examples'"])
def test_counters_that_disagree_with_the_examples_are_refused(path, change):
    set_value(path, change)
    with pytest.raises(DamagedProjectError, match="counters"):
        Project.open(path)


def test_large_files_get_the_cheap_check_on_open_and_the_whole_one_before_an_import(
        path, monkeypatch):
    monkeypatch.setattr(integrity, "WHOLE_CHECK_UP_TO", 0)  # as for a million examples
    page, size = leaf_of_examples(path)
    damage(path, page, size)
    with Project.open(path) as project:  # the edges and small tables are whole
        assert project.count() == 3000
        with pytest.raises(DamagedProjectError) as caught:
            project.add_examples(ImportRecord(fields={"text": f"new {i}"}, line=i)
                                 for i in range(bulk.BULK_FROM))
        assert caught.value.where == str(path)
        with pytest.raises(DamagedProjectError):  # reading the page itself: no raw error
            project.examples(limit=3000)
        assert project.count() == 3000  # nothing was added


def test_small_damage_on_a_large_file_is_still_caught_where_it_matters(path, monkeypatch):
    monkeypatch.setattr(integrity, "WHOLE_CHECK_UP_TO", 0)
    page, size = page_of(path, "SELECT rootpage FROM sqlite_master WHERE name = 'project'")
    damage(path, page, size)
    with pytest.raises(DamagedProjectError):
        Project.open(path)


def set_value(path: Path, sql: str, *params: object) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(sql, params)


def test_settings_that_are_not_json_are_named(path, capsys):
    set_value(path, "UPDATE project SET value = ? WHERE key = 'settings'", "{labels: [neg")
    with pytest.raises(StoredValueError) as caught:
        Project.open(path)
    error = caught.value
    assert "the task settings (table project, key 'settings') is not valid JSON" in error.what
    assert "{labels: [neg" in error.what
    assert error.where == str(path)
    assert "restore a copy" in error.hint and "sqlite3" in error.hint
    assert cli.main(["stats", str(path)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "not valid JSON" in err and "unexpected" not in err


def test_settings_of_the_wrong_shape_are_named(path):
    set_value(path, "UPDATE project SET value = ? WHERE key = 'settings'", '["neg", "pos"]')
    with pytest.raises(StoredValueError, match="table project, key 'settings'"):
        Project.open(path)


@pytest.mark.parametrize("column", ["fields", "meta"])
def test_fields_that_are_not_json_name_the_example(path, tmp_path, column, capsys):
    set_value(path, f"UPDATE examples SET {column} = ? WHERE id = 2", "Jose\u0301 🍕 {")
    with Project.open(path) as project:
        for read in (lambda: project.example(2), lambda: project.examples(limit=10),
                     lambda: project.labeled(), lambda: list(project.annotated())):
            with pytest.raises(StoredValueError) as caught:
                read()
            assert f"the {column} of example 2 (table examples)" in caught.value.what
            assert caught.value.where == str(path)
        if column == "fields":  # pre-annotation's pages read the fields only
            with pytest.raises(StoredValueError, match="the fields of example 2"):
                bulk.fields_page(project.db, None, 10, unlabeled=False)
        assert project.example(1).fields["text"].startswith("Jose\u0301")  # the others read
    assert cli.main(["export-data", str(path), str(tmp_path / "out.jsonl")]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert f"the {column} of example 2 (table examples)" in err and "unexpected" not in err


def test_annotations_history_and_runs_that_are_not_json_are_named(path):
    set_value(path, "UPDATE annotations SET payload = 'pos' WHERE example_id = 4")
    set_value(path, "UPDATE annotation_history SET new_payload = '{' WHERE example_id = 6")
    set_value(path, "UPDATE runs SET config = 'epochs=1' WHERE id = 1")
    with Project.open(path) as project:
        with pytest.raises(StoredValueError, match=r"payload of example 4 \(table annotations\)"):
            project.annotation(4)
        with pytest.raises(StoredValueError, match="example 4"):
            project.labeled()
        with pytest.raises(StoredValueError,
                           match=r"payload of example 6 \(table annotation_history\)"):
            project.history(example_id=6)
        with pytest.raises(StoredValueError, match="tables runs and run_epochs"):
            project.runs()
        with pytest.raises(StoredValueError, match=r"run 1 \(tables runs"):
            project.run(1)
        assert project.annotation(6).payload == {"label": "pos"}  # the others read
