"""Open or create a project file and read and write its examples, annotations and runs.

One SQLite file per project, opened through sqlite-utils in WAL mode with foreign keys on.
Widgets, plugins and the CLI never write SQL: they call the methods of ``Project``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlite_utils

from annotune.core import plugins
from annotune.core.errors import AnnotuneError
from annotune.core.formats.base import ImportRecord
from annotune.core.formats.files import text_problem
from annotune.core.run_record import JsonObject
from annotune.core.store import annotations as _annotations
from annotune.core.store import backup as _backup
from annotune.core.store import batches, bulk, integrity, migrations
from annotune.core.store import label_issues as _label_issues
from annotune.core.store import queries as q
from annotune.core.store import runs as _runs
from annotune.core.store.failures import StoredValueError, guard, translated
from annotune.core.store.records import (
    SPLITS,
    STATUSES,
    Example,
    ImportSummary,
    StoredAnnotation,
    annotation_from_row,
    content_hash,
    dumps,
    example_from_row,
    loads,
    now,
    payload_from,
    search_text,
    write_transaction,
)
from annotune.core.store.runs import RunRow, StoredPrediction
from annotune.core.store.training_lock import TrainingLock
from annotune.core.tasks import Annotation, Prediction, Task, TaskSettings

SQLITE_MAGIC = b"SQLite format 3\x00"
PAGE_SIZE = 16384


def _connect(path: Path) -> sqlite_utils.Database:
    # timeout: the training job and the desktop write the same file; wait for a lock
    # instead of failing at once.
    # check_same_thread off: a bulk import hands the connection to its worker thread and
    # back (never used by two threads at once).
    db = sqlite_utils.Database(sqlite3.connect(str(path), timeout=30, check_same_thread=False))
    db.execute("PRAGMA foreign_keys = ON")
    return db


def _move_new_file(temp: Path, path: Path) -> None:
    """Give a finished file its name, never overwriting a file another program put there.

    A hard link fails when the name is taken. Where links do not exist (FAT and exFAT drives,
    some network shares) an empty file claims the name exclusively and the finished one
    replaces it.
    """
    try:
        os.link(temp, path)
        return
    except FileExistsError:
        raise AnnotuneError("a file already exists here", where=str(path),
                            hint="choose another name") from None
    except OSError:
        pass  # no hard links on this file system
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except FileExistsError:
        raise AnnotuneError("a file already exists here", where=str(path),
                            hint="choose another name") from None
    os.replace(temp, path)


SQLITE_CANTOPEN = 14


def _is_sqlite(path: Path) -> bool:
    """Tell whether a file is an SQLite database, asking SQLite itself.

    Reading the header with open() and close() would drop the locks that this process's
    connections hold on the file (POSIX locks belong to the process, not the descriptor):
    a training process closing its connection would then think itself the last one and
    delete the WAL under them, and the project reads as malformed.
    """
    if path.stat().st_size < len(SQLITE_MAGIC):  # SQLite takes an empty file as a new database
        return False
    try:
        probe = sqlite3.connect(str(path))
        try:
            probe.execute("PRAGMA schema_version").fetchone()
        finally:
            probe.close()
    except sqlite3.OperationalError as error:
        if getattr(error, "sqlite_errorcode", 0) & 0xFF != SQLITE_CANTOPEN:
            return False
        # SQLite could not open it at all, which says nothing of its content: a project in
        # WAL mode needs its folder writable for the -shm file beside it
        if not os.access(path.parent, os.W_OK):
            raise AnnotuneError(
                "cannot open the project: its folder is read-only (a read-only share, disc "
                "or folder), and a project needs to write small files beside it", where=str(path),
                hint="copy the .annotune file into a folder you can write to and open the "
                     "copy; the file itself is unchanged") from None
        raise AnnotuneError(f"cannot open the project file ({error})", where=str(path),
                            hint="check the permissions of the file and its folder") from None
    except sqlite3.DatabaseError:
        return False
    return True


def _check_split(split: str | None, where: str | None = None) -> None:
    if split is not None and split not in SPLITS:
        raise AnnotuneError(f"unknown split '{split}'", where=where,
                            hint=f"use one of: {', '.join(SPLITS)}")


@guard
class Project:
    """An open project file: ``Project.create`` makes one, ``Project.open`` opens one.

    Every public method turns SQLite's failures into AnnotuneErrors that name the file
    (failures.guard): the project is busy, damaged, read-only, or the disk is full.
    """

    def __init__(self, path: Path, db: sqlite_utils.Database):
        self.path = Path(path)
        self.db = db
        self._check_lock: TrainingLock | None = None  # held while this program runs a label check
        values = {row["key"]: row["value"] for row in db.query("SELECT * FROM project")}
        if "task" not in values or "settings" not in values:
            raise AnnotuneError("the project file has no task settings", where=str(path),
                                hint="the file may be damaged; restore it from a backup")
        self.task_name: str = values["task"]
        place = "the task settings (table project, key 'settings')"
        stored = loads(values["settings"], place)
        if not isinstance(stored, dict):
            raise StoredValueError(place, values["settings"], ValueError("not a JSON object"))
        try:
            # bound to the task's declared options when its plugin is installed (defaults,
            # and old files' top-level options read as the task's)
            known = plugins.registry().tasks.get(self.task_name)
            self.settings: TaskSettings = (
                known.settings_from_dict(stored, where=f"{self.path}, {place}")
                if known is not None else TaskSettings.from_dict(stored))
        except (TypeError, ValueError) as error:
            raise StoredValueError(place, values["settings"], error) from None
        self.base_model: str | None = loads(values.get("base_model", "null"),
                                            "the base model (table project, key 'base_model')")
        self.created: str | None = values.get("created")

    # -- open, create, close -----------------------------------------------------------------
    @classmethod
    def create(cls, path: Path | str, task: str, settings: TaskSettings | None = None,
               base_model: str | None = None) -> Project:
        """Create a new project file (never overwriting one) and open it."""
        path = Path(path)
        if path.exists():
            raise AnnotuneError("a file already exists here", where=str(path),
                                hint="choose another name, or open it instead of creating it")
        if not path.parent.is_dir():
            raise AnnotuneError(f"the folder {path.parent} does not exist", where=str(path),
                                hint="create the folder first")
        plugins.registry().task(task)  # unknown task: fail before writing anything
        for stale in (Path(f"{path}{suffix}") for suffix in ("-wal", "-journal")):
            # SQLite would replay the log of a deleted project into the new one (an empty
            # log, which a clean close can leave, replays nothing)
            if stale.exists() and stale.stat().st_size > 0:
                raise AnnotuneError(
                    f"{stale.name} lies beside this name: the log of an earlier project "
                    "with this name, which would be read into the new one", where=str(path),
                    hint=f"choose another name, or delete {stale.name} if that project is "
                         "gone for good")
        settings = settings or TaskSettings()
        # Build the file under a temporary name and move it into place when complete, so a
        # crash during creation never leaves a half-made project under the real name.
        temp = path.with_name(f".{path.name}.{os.getpid()}.creating")
        db = None
        try:
            with translated(str(path)):  # a full disk or a read-only folder: a clear error
                db = _connect(temp)
                # 16 KiB pages: a million-row import spends ~7% less time than with 4 KiB
                # ones (fewer pages to split, link and checkpoint). Only a new file can choose.
                db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                db.enable_wal()
                migrations.migrate(db, temp)
                with write_transaction(db):
                    for key, value in (("task", task), ("settings", dumps(settings.to_dict())),
                                       ("base_model", dumps(base_model)), ("created", now())):
                        db.execute("INSERT INTO project (key, value) VALUES (?, ?)",
                                   [key, value])
                db.close()
                db = None
            _move_new_file(temp, path)
        except OSError as error:
            raise AnnotuneError(f"cannot create the project file: {error.strerror}",
                                where=str(path), hint="choose a folder you can write to, with "
                                "free space; nothing was created") from None
        finally:
            if db is not None:
                db.close()
            for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm")):
                leftover.unlink(missing_ok=True)
        return cls.open(path)

    @classmethod
    def open(cls, path: Path | str) -> Project:
        """Open an existing project, upgrading its schema if it was written by an older annotune.

        A damaged file is refused before anything reads or writes it (core/store/integrity.py);
        what a killed import left behind is removed (core/store/batches.py).
        """
        path = Path(path)
        if not path.is_file():
            raise AnnotuneError("no project file here", where=str(path),
                                hint="check the path, or create one with `annotune init`")
        if not _is_sqlite(path):
            raise AnnotuneError("this file is not an annotune project (not an SQLite database)",
                                where=str(path), hint="open the .annotune file of a project")
        db = _connect(path)
        try:
            with translated(str(path)):
                tables = set(db.table_names())
                if not {"migrations", "project"} <= tables:
                    raise AnnotuneError("this SQLite file is not an annotune project",
                                        where=str(path),
                                        hint="open the .annotune file of a project")
                integrity.check_pages(db, path)
                db.enable_wal()
                migrations.migrate(db, path)
                batches.clean_up(db)
                integrity.check_counters(db, path)
                return cls(path, db)
        except BaseException:
            db.close()
            raise

    def close(self) -> None:
        """Fold the write-ahead log into the file and close it (a copy of the file is whole)."""
        with contextlib.suppress(sqlite3.Error):
            _backup.checkpoint(self.db)
        self.db.close()
        self._release_check_lock()  # a check not finished by now never will be

    @contextlib.contextmanager
    def transaction(self, wait_s: float | None = None) -> Iterator[Project]:
        """Hold the write lock across several changes, committed together at the end.

        Each change inside stays all or nothing on its own (a savepoint): one refused does
        not undo the others. The desktop writes the decisions queued meanwhile this way, so a
        project busy with an import makes them wait for one gap between its steps, not one
        each. Waits up to ``wait_s`` (default records.WRITE_WAIT_S) for the lock, then raises
        ProjectBusyError.
        """
        with translated(str(self.path)), write_transaction(self.db, wait_s):
            yield self

    def checkpoint(self) -> bool:
        """Fold the write-ahead log into the project file now; True when all of it went in.

        Until then recent saves live in the ``-wal`` file beside it, and a copy of the project
        file alone lacks them. Never waits for other programs: what they still read stays.
        """
        return _backup.checkpoint(self.db)

    def backup(self, destination: Path | str, force: bool = False) -> _backup.BackupReport:
        """Copy the project, consistent and whole, to a new file (see core/store/backup.py)."""
        return _backup.copy_project(self.db, self.path, Path(destination), force=force)

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def runs_dir(self) -> Path:
        """The folder beside the project file that holds its training runs (not created here)."""
        return self.path.with_name(f"{self.path.stem}-runs")

    @property
    def task(self) -> Task:
        """The project's Task object from the plugin registry."""
        return plugins.registry().task(self.task_name)

    def stored_settings(self) -> TaskSettings:
        """Read the task settings in the file now (another program may have added labels).

        ``settings`` are those read when this connection opened or last changed them.
        """
        stored = self.db.execute("SELECT value FROM project WHERE key = 'settings'").fetchone()[0]
        return self.task.settings_from_dict(loads(stored, "the task settings"),
                                            where=str(self.path))

    def set_settings(self, settings: TaskSettings) -> None:
        """Replace the stored task settings (e.g. tuned multi-label thresholds).

        Labels are only ever appended (``add_labels``), so every program that read the labels
        earlier still holds a valid prefix of them, and number keys keep their label. Settings
        the task refuses, or whose labels do not start with the stored ones in order (a label
        removed, renamed or moved, or one another program added since these settings were
        read), are refused and nothing changes.
        """
        self.task.check_settings(settings)
        with write_transaction(self.db):
            current = self.stored_settings()
            kept = settings.labels[:len(current.labels)]
            if kept != current.labels:
                lost = next((label for label in current.labels if label not in kept), None)
                what = (f"the settings lack the label '{lost}'" if lost is not None else
                        "the settings put the labels in another order")
                used = dict(self.db.execute(q.LABEL_COUNTS).fetchall())
                n = used.get(lost, 0)
                in_use = f" ({n:,} accepted annotation{'' if n == 1 else 's'} use it)" if n else ""
                raise AnnotuneError(
                    f"{what}{in_use}: labels are only added, after the others",
                    where=str(self.path),
                    hint=f"the project's labels: {', '.join(current.labels)} (another program "
                         "may have added some: open the project again to read them)")
            self.db.execute("UPDATE project SET value = ? WHERE key = 'settings'",
                            [dumps(settings.to_dict())])
        self.settings = settings

    def add_labels(self, names: Iterable[str]) -> tuple[str, ...]:
        """Add labels after the project's own, keeping every stored annotation and its number key.

        Read and written in one transaction, so a label another program added meanwhile is
        kept; a name already there, empty or not valid for the task is refused and nothing
        changes. Runs trained before keep their own label set; the next run learns the new ones.
        Returns the project's labels after the change.
        """
        wanted = [str(name).strip() for name in names]
        if not wanted or not all(wanted):
            raise AnnotuneError("a new label needs a name", where=str(self.path),
                                hint="type the label's name")
        if not self.task.needs_labels:
            raise AnnotuneError(f"a {self.task.title} project has no labels to add to",
                                where=str(self.path))
        with write_transaction(self.db):
            current = self.stored_settings()
            already = [name for name in wanted if name in current.labels]
            if already:
                raise AnnotuneError(f"the project already has the label '{already[0]}'",
                                    where=str(self.path),
                                    hint=f"its labels: {', '.join(current.labels)}")
            # the task extends what it keeps per label (tuned multi-label thresholds)
            changed = self.task.with_labels(current, wanted)
            self.task.check_settings(changed)
            self.db.execute("UPDATE project SET value = ? WHERE key = 'settings'",
                            [dumps(changed.to_dict())])
        self.settings = changed
        return changed.labels

    # -- examples ----------------------------------------------------------------------------
    def add_examples(self, records: Iterable[ImportRecord], source: str | None = None,
                     keep_repeated_texts: bool = False) -> ImportSummary:
        """Add ImportRecords (with their annotations) in one transaction: all or nothing.

        Examples whose task fields equal an existing one (content hash) are not added; they
        are counted in ``duplicates`` with their line in ``duplicate_lines``. With
        ``keep_repeated_texts`` (document formats such as CoNLL, where a repeated sentence is
        a sentence of its own) the identity is the text plus its source and line instead, so
        only a second import of the same file is a duplicate.
        """
        return bulk.insert_examples(self.db, records, source, keep_repeated_texts,
                                    where=str(self.path))

    def example(self, example_id: int) -> Example:
        """Return one example; AnnotuneError when the id does not exist."""
        rows = list(self.db.query(f"SELECT * FROM examples e WHERE id = ? AND {q.VISIBLE}",
                                  [example_id]))
        if not rows:
            raise AnnotuneError(f"no example {example_id} in this project", where=str(self.path))
        return example_from_row(rows[0])

    def count(self, status: str | None = None, label: str | None = None,
              split: str | None = None, search: str | None = None) -> int:
        """Count examples matching the filters (status: unlabeled, accepted or skipped)."""
        q.check_status(status)
        if label is None and split is None and not (search and search.strip()):
            # The common counts come from the counters kept by triggers (migration 2).
            counts = self.counters()
            if status is None:
                return counts["examples"]
            if status == "unlabeled":
                return counts["examples"] - counts["accepted"] - counts["skipped"]
            return counts[status]
        clauses, params = q.where(status, label, split, search, self.db.quote_fts)
        return self.db.execute(f"SELECT COUNT(*) FROM examples e{q.sql_where(clauses)}",
                               params).fetchone()[0]

    def counters(self) -> dict[str, int]:
        """Return the kept counts of examples, accepted and skipped annotations (no scan)."""
        return dict(self.db.execute("SELECT name, n FROM counters").fetchall())

    def _common(self, status: str | None) -> bool:
        """Tell whether an accepted/skipped filter matches a large share of the examples."""
        if status not in STATUSES:
            return False
        counts = self.counters()
        return counts[status] >= q.COMMON_SHARE * counts["examples"]

    def examples(self, status: str | None = None, label: str | None = None,
                 split: str | None = None, search: str | None = None, offset: int = 0,
                 limit: int = 100) -> list[Example]:
        """Return one page of matching examples in id order."""
        clauses, params = q.where(status, label, split, search, self.db.quote_fts,
                                  common=self._common(status))
        params.update(limit=int(limit), offset=int(offset))
        sql = (f"SELECT e.* FROM examples e{q.sql_where(clauses)} "
               "ORDER BY e.id LIMIT :limit OFFSET :offset")
        return [example_from_row(row) for row in self.db.query(sql, params)]

    def next_example(self, after_id: int | None = None, status: str | None = "unlabeled",
                     order: str = "id") -> Example | None:
        """Return the example that follows ``after_id`` in the given order, wrapping around.

        ``order="uncertainty"`` visits examples by ascending score of their latest prediction
        (least confident first), then the examples without a prediction by id.
        """
        if order not in ("id", "uncertainty"):
            raise AnnotuneError(f"unknown order '{order}'", hint="use 'id' or 'uncertainty'")
        if status is not None and self.count(status=status) == 0:
            return None  # from the counters: no need to walk a million examples to find none
        if order == "id" and status in STATUSES:
            return self._next_with_status(status, after_id)
        clauses, params = q.where(status, common=self._common(status))
        attempts: list[tuple[str, dict[str, Any]]] = []
        scored = "e.latest_score IS NOT NULL ORDER BY e.latest_score, e.id"
        unscored = "e.latest_score IS NULL ORDER BY e.id"
        if order == "id":
            if after_id is not None:
                attempts.append(("e.id > :after ORDER BY e.id", {"after": after_id}))
            attempts.append(("1 ORDER BY e.id", {}))
        else:
            score = None
            if after_id is not None:
                row = self.db.execute("SELECT latest_score FROM examples WHERE id = ?",
                                      [after_id]).fetchone()
                score = row[0] if row else None
            if after_id is not None and score is not None:
                attempts.append(("e.latest_score IS NOT NULL AND (e.latest_score > :score OR "
                                 "(e.latest_score = :score AND e.id > :after)) "
                                 "ORDER BY e.latest_score, e.id",
                                 {"score": score, "after": after_id}))
                attempts += [(unscored, {}), (scored, {})]
            elif after_id is not None:
                attempts.append(("e.latest_score IS NULL AND e.id > :after ORDER BY e.id",
                                 {"after": after_id}))
                attempts += [(scored, {}), (unscored, {})]
            else:
                attempts += [(scored, {}), (unscored, {})]
        for tail, extra in attempts:
            # scored examples in score order: walk the score index, or SQLite sorts the whole
            # table (a third of a second per example on a million rows)
            table = ("examples e INDEXED BY examples_latest_score"
                     if tail.startswith("e.latest_score IS NOT NULL") else "examples e")
            sql = f"SELECT e.* FROM {table} WHERE {' AND '.join([*clauses, tail])} LIMIT 1"
            rows = list(self.db.query(sql, {**params, **extra}))
            if rows:
                return example_from_row(rows[0])
        return None

    def _next_with_status(self, status: str, after_id: int | None) -> Example | None:
        """Walk the (status, example_id) index: the next annotated example in O(log n)."""
        sql = ("SELECT e.* FROM annotations a JOIN examples e ON e.id = a.example_id "
               f"WHERE a.status = :status AND a.example_id > :after AND {q.VISIBLE} "
               "ORDER BY a.example_id LIMIT 1")
        for after in ([after_id, -2**63] if after_id is not None else [-2**63]):
            rows = list(self.db.query(sql, {"status": status, "after": after}))
            if rows:
                return example_from_row(rows[0])
        return None

    def update_fields(self, example_id: int, fields: Mapping[str, str]) -> Example:
        """Change some text fields of an example (e.g. a corrected QA question).

        The content hash follows the new texts; an edit that would make the example equal to
        another one is refused. Field edits are not part of the annotation undo history. The
        check and the change are one transaction, so no other program slips the same text in
        between.
        """
        with write_transaction(self.db):
            example = self.example(example_id)
            unknown = sorted(set(fields) - set(example.fields))
            if unknown:
                raise AnnotuneError(f"example {example_id} has no field {', '.join(unknown)}",
                                    hint=f"its fields: {', '.join(example.fields)}")
            merged = {**example.fields, **{k: str(v) for k, v in fields.items()}}
            empty = [k for k, v in merged.items() if not v.strip()]
            if empty:
                raise AnnotuneError(f"the field '{empty[0]}' of example {example_id} would be "
                                    "empty", hint="give it some text")
            for name, value in merged.items():
                if (problem := text_problem(value)) is not None:
                    raise AnnotuneError(problem[0], where=f"example {example_id}, field "
                                        f"'{name}'", hint=problem[1])
            self._check_annotation_survives(example, merged)
            digest = content_hash(merged)
            # Visible texts are in example_hashes; an import still being written adds its
            # own there only at its end, so its rows (ids above the visible ones) are read.
            clash = self.db.execute(
                f"SELECT example_id, example_id <= {q.VISIBLE_LIMIT} FROM example_hashes "
                "WHERE hash = ? AND example_id != ? UNION ALL "
                f"SELECT id, 0 FROM examples WHERE id > {q.VISIBLE_LIMIT} AND hash = ?",
                [digest, example_id, digest]).fetchone()
            if clash and not clash[1]:
                raise AnnotuneError("an import in progress adds exactly these texts",
                                    where=f"example {example_id}",
                                    hint="wait for the import, then edit the imported example")
            if clash:
                raise AnnotuneError(f"example {clash[0]} already has exactly these texts",
                                    where=f"example {example_id}",
                                    hint="edit the other one instead")
            self.db.execute("UPDATE examples SET fields = ?, text = ?, hash = ? WHERE id = ?",
                            [dumps(merged), search_text(merged), digest, example_id])
        return self.example(example_id)

    def _check_annotation_survives(self, example: Example, merged: Mapping[str, str]) -> None:
        """Refuse a text edit that would leave the saved annotation marking other characters.

        Spans and answers are character offsets into the texts: after an edit before them
        they would mark other words, silently. Labels do not depend on the texts, and the
        short fields a person types (a QA question) carry no offsets; the annotation must
        still be valid for the new texts either way.
        """
        stored = self.annotation(example.id)
        if stored is None or stored.status != "accepted" or not stored.payload:
            return
        changed = [name for name in merged if merged[name] != example.fields[name]]
        moved = [name for name in changed if name not in self.task.short_fields]
        if moved and self.task.annotation_kind != "label":
            raise AnnotuneError(
                f"example {example.id} has a saved annotation that marks characters of the "
                f"field '{moved[0]}': editing it would make the annotation mark others",
                where=f"example {example.id}, field '{moved[0]}'",
                hint="skip the example (or undo its annotation), edit the text, then "
                     "annotate it again")
        try:
            self.task.validate(stored.payload, dict(merged), self.settings)
        except AnnotuneError as error:
            raise AnnotuneError(f"after this edit the example's saved annotation would be "
                                f"wrong: {error.what}", where=f"example {example.id}",
                                hint="annotate the example again after editing it") from None

    def set_splits(self, splits: Mapping[int, str | None]) -> None:
        """Assign splits to examples in one transaction (None clears the split)."""
        with write_transaction(self.db):
            for example_id, split in splits.items():
                _check_split(split, f"example {example_id}")
                cursor = self.db.execute(f"UPDATE examples AS e SET split = ? "
                                         f"WHERE id = ? AND {q.VISIBLE}", [split, example_id])
                if cursor.rowcount == 0:
                    raise AnnotuneError(f"no example {example_id} in this project",
                                        where=str(self.path))

    # -- annotations -------------------------------------------------------------------------
    def save_annotation(self, example_id: int, annotation: Mapping[str, object],
                        status: str = "accepted", annotator: str = "user") -> StoredAnnotation:
        """Validate an annotation with the project's task and store it (committed at once)."""
        if status not in STATUSES:
            raise AnnotuneError(f"unknown annotation status '{status}'",
                                hint=f"use one of: {', '.join(STATUSES)}")
        example = self.example(example_id)
        payload = dict(annotation or {})
        if status == "accepted":
            payload = self.task.validate(payload, example.fields, self.settings)
        _annotations.change(self.db, example_id, payload, status, annotator)
        stored = self.annotation(example_id)
        assert stored is not None
        return stored

    def skip(self, example_id: int, annotator: str = "user") -> None:
        """Mark an example as skipped (kept out of training, not offered as unlabeled)."""
        self.example(example_id)
        _annotations.change(self.db, example_id, {}, "skipped", annotator)

    def annotation(self, example_id: int) -> StoredAnnotation | None:
        return _annotations.current(self.db, example_id)

    def undo(self) -> int | None:
        """Undo the newest annotation change anywhere in the project; return its example id."""
        return _annotations.undo(self.db)

    def redo(self) -> int | None:
        """Re-apply the change undone last; return its example id."""
        return _annotations.redo(self.db)

    def next_step(self, action: str = "undo") -> JsonObject | None:
        """Say which change ``undo()`` (or ``redo()``) would replay next, without replaying it."""
        return _annotations.next_step(self.db, action)

    def can_undo(self) -> bool:
        return _annotations.can_undo(self.db)

    def can_redo(self) -> bool:
        return _annotations.can_redo(self.db)

    def history(self, example_id: int | None = None, limit: int = 100) -> list[JsonObject]:
        """Return annotation history entries, newest first (audit: who changed what, when)."""
        return _annotations.history(self.db, example_id, limit)

    def labeled(self, split: str | None = None) -> list[tuple[Example, Annotation]]:
        """Return accepted annotations with their examples, in id order."""
        sql = ("SELECT e.*, a.payload AS payload FROM examples e "
               f"JOIN annotations a ON a.example_id = e.id WHERE a.status = 'accepted' "
               f"AND {q.VISIBLE}")
        params: list[Any] = []
        if split is not None:
            sql, params = sql + " AND e.split = ?", [split]
        return [(example_from_row(row), payload_from(row["payload"], row["id"]))
                for row in self.db.query(sql + " ORDER BY e.id", params)]

    def labeled_with_predictions(self, search: str | None = None
                                 ) -> Iterator[tuple[int, Annotation, Prediction]]:
        """Yield (example id, accepted annotation, newest prediction) in id order.

        Only examples that have both; ``search`` filters like the other queries (full text).
        One query for all of them, instead of one per example.
        """
        clauses, params = q.where(search=search, quote_fts=self.db.quote_fts)
        sql = ("SELECT e.id, a.payload, p.payload FROM examples e "
               "JOIN annotations a ON a.example_id = e.id AND a.status = 'accepted' "
               "JOIN predictions p ON p.rowid = (SELECT p2.rowid FROM predictions p2 "
               "WHERE p2.example_id = e.id ORDER BY p2.created_at DESC, p2.rowid DESC LIMIT 1)"
               f"{q.sql_where(clauses)} ORDER BY e.id")
        for example_id, annotation, prediction in self.db.execute(sql, params):
            yield (example_id, payload_from(annotation, example_id),
                   payload_from(prediction, example_id, "predictions"))

    def annotated(self, include_skipped: bool = False
                  ) -> Iterator[tuple[Example, StoredAnnotation]]:
        """Yield annotated examples (accepted, and skipped when asked) in id order."""
        statuses = "('accepted', 'skipped')" if include_skipped else "('accepted')"
        sql = ("SELECT e.*, a.payload, a.status, a.annotator, a.updated_at, "
               "a.example_id FROM examples e JOIN annotations a ON a.example_id = e.id "
               f"WHERE a.status IN {statuses} AND {q.VISIBLE} ORDER BY e.id")
        for row in self.db.query(sql):
            yield example_from_row(row), annotation_from_row(row)

    def stats(self, long_texts: bool = False) -> JsonObject:
        """Count examples, accepted, skipped, unlabeled, per label and per split.

        ``long_texts`` adds how many texts are longer than one model window (read in
        windows, or cut): that tokenizes every example (core/long_texts.py), so only
        ``annotune stats`` asks for it, not views that refresh often.
        """
        counts = self.counters()
        labels = {label: 0 for label in self.settings.labels}
        for label, n in self.db.execute(q.LABEL_COUNTS).fetchall():
            labels[str(label)] = n
        splits = {(split or "unassigned"): n for split, n in self.db.execute(
            f"SELECT split, COUNT(*) FROM examples e WHERE {q.VISIBLE} GROUP BY split "
            "ORDER BY split").fetchall()}
        total, accepted, skipped = counts["examples"], counts["accepted"], counts["skipped"]
        result = {"examples": total, "accepted": accepted, "labeled": accepted,
                  "skipped": skipped, "unlabeled": total - accepted - skipped,
                  "labels": labels, "splits": splits}
        if long_texts:
            from annotune.core.long_texts import project_long_texts

            result["long_texts"] = project_long_texts(self)
        return result

    def fields_in_pages(self, size: int = 2000) -> Iterator[list[dict[str, str]]]:
        """Yield the fields of every example, ``size`` examples at a time, in id order."""
        last = 0
        while rows := self.db.execute("SELECT id, fields FROM examples WHERE id > ? "
                                      "ORDER BY id LIMIT ?", [last, size]).fetchall():
            yield [loads(fields) for _, fields in rows]
            last = rows[-1][0]

    # -- runs and predictions ----------------------------------------------------------------
    def create_run(self, config: JsonObject, device: str) -> int:
        return _runs.create_run(self.db, config, device)

    def record_epoch(self, run_id: int, epoch: int, metrics: JsonObject) -> None:
        _runs.record_epoch(self.db, run_id, epoch, metrics)

    def finish_run(self, run_id: int, status: str, metrics: JsonObject | None = None,
                   artifact_dir: str | Path | None = None, error: str | None = None,
                   only_running: bool = False) -> bool:
        return _runs.finish_run(self.db, run_id, status, metrics,
                                None if artifact_dir is None else str(artifact_dir), error,
                                only_running)

    def lock_training(self) -> TrainingLock:
        """Take the project's training lock for this process, or raise TrainingBusyError.

        Hold it for the whole training (``with project.lock_training() as lock:``). Runs that
        a training process left running when it died are closed as failed here.
        """
        lock = TrainingLock(_runs.lock_path(self.runs_dir))
        if not lock.acquire():
            raise _runs.busy_error(self.db, self.runs_dir, where=str(self.path))
        try:
            _runs.end_abandoned_runs(self.db)
        except BaseException:
            lock.release()
            raise
        return lock

    def runs(self) -> list[RunRow]:
        """Return every run as a dict (id, created, status, config, metrics, epochs...).

        A run whose training process is gone (killed, crashed) is closed as failed first.
        """
        with _naming("tables runs and run_epochs"):
            return _runs.runs(self.db, self.runs_dir)

    def run(self, run_id: int) -> RunRow:
        with _naming(f"run {run_id} (tables runs and run_epochs)"):
            return _runs.run(self.db, run_id, self.runs_dir)

    def save_predictions(self, source: str | int,
                         items: Iterable[tuple[int, Annotation, float | None]]) -> int:
        """Store (example_id, prediction, score) triples from one bundle or run."""
        return _runs.save_predictions(self.db, source, items)

    def prediction(self, example_id: int, source: str | int | None = None
                   ) -> StoredPrediction | None:
        with _naming(f"the prediction of example {example_id} (table predictions)"):
            return _runs.prediction(self.db, example_id, source)

    # -- label checks (core/label_check.py) --------------------------------------------------
    def start_label_check(self, config: JsonObject) -> int:
        """Record a label check as running; return its id.

        Holds the project's label-check lock until ``finish_label_check`` (or ``close``): a
        check whose process dies without finishing reads as failed, and a second check of
        the project is refused while one runs.
        """
        if self._check_lock is None:
            self._check_lock = _label_issues.lock_check(self.runs_dir, str(self.path))
        return _label_issues.start_check(self.db, config)

    def finish_label_check(self, check_id: int, status: str,
                           issues: Iterable[_label_issues.IssueRow] = (),
                           error: str | None = None) -> int:
        """Store a check's issues with its end, in one transaction; return how many."""
        written = _label_issues.finish_check(self.db, check_id, status, issues, error)
        self._release_check_lock()
        return written

    def _release_check_lock(self) -> None:
        lock, self._check_lock = self._check_lock, None
        if lock is not None:
            lock.release()

    def label_checks(self) -> list[JsonObject]:
        """Return every label check, newest first (one whose process is gone: failed)."""
        return _label_issues.checks(self.db, self.runs_dir)

    def label_issues(self, check_id: int | None = None, limit: int | None = None
                     ) -> list[JsonObject]:
        """Return a check's issues by score (default: the newest finished check's)."""
        if check_id is None:
            check_id = _label_issues.latest_finished(self.db)
            if check_id is None:
                return []
        with _naming(f"label check {check_id} (table label_issues)"):
            return _label_issues.issues(self.db, check_id, limit)

    def keep_label(self, check_id: int, example_id: int, kept: bool = True) -> None:
        """Mark an issue reviewed: the given annotation stays (``kept=False`` opens it again)."""
        _label_issues.keep(self.db, check_id, example_id, kept)


@contextlib.contextmanager
def _naming(place: str) -> Iterator[None]:
    """Say which stored value is not JSON when a record module could only say 'a value'."""
    try:
        yield
    except StoredValueError as error:
        error.what = error.what.replace("a value stored in the project", place, 1)
        error.args = (str(error),)
        raise
