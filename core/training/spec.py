"""A run spec: one training run frozen into a folder, so any launcher on any machine can train it.

``annotune train PROJECT --prepare-only RUN_DIR`` reads the project once and writes::

    RUN_DIR/spec.json              task, settings, training config, the project it came from,
                                   and the size and sha256 of each data file
    RUN_DIR/data/train.jsonl       one {"fields", "annotation"} per line: the examples trained on
    RUN_DIR/data/validation.jsonl  the same for the validation split (already split)

The processes that train it (``torchrun ... -m annotune.core.training.job RUN_DIR``) read these
files and never the project's SQLite file, which may be on another machine or on a network
file system where SQLite's locks cannot be trusted. Each process checks the data files against
their recorded size and sha256 before training, so a copy cut short on one machine fails the
run instead of training that machine's share on less data.

Torch-free: the CLI writes specs and records their runs without importing torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError, where
from annotune.core.tasks import TaskSettings
from annotune.core.training.config import TrainConfig

SPEC_FILE = "spec.json"
DATA_DIR = "data"
PARTS = ("train", "validation")
SPEC_FORMAT = 1  # bumped when a reader of the old layout would misread the new one

Item = tuple[dict[str, str], Any]  # (fields, annotation), as the training loop takes them

_PREPARE_HINT = "prepare it again with `annotune train PROJECT --prepare-only RUN_DIR`"


@dataclass(frozen=True)
class RunSpec:
    """A prepared run: what to train, on which data, and the project to record it in."""

    folder: Path
    id: str  # unique per prepared run: recording the same run twice finds the first record
    task: str
    settings: TaskSettings
    config: TrainConfig
    prepared_at: str
    project_path: str | None  # where the project was when the run was prepared
    project_created: str | None  # with the task, tells the project apart from any other
    data: Mapping[str, Mapping[str, Any]]  # part -> {"file", "examples", "bytes", "sha256"}

    def examples(self, part: str) -> int:
        """Return how many examples the snapshot holds for ``part`` ("train" or "validation")."""
        return int(self.data[part]["examples"])

    def items(self, part: str) -> list[Item]:
        """Read the examples of ``part``, after checking the file's size and sha256."""
        entry = self.data[part]
        path = self.folder / entry["file"]
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise AnnotuneError(f"the run's {part} data cannot be read ({error.strerror})",
                                where=str(path), hint=f"copy the whole run folder again, or "
                                                      f"{_PREPARE_HINT}") from None
        if len(raw) != entry["bytes"] or hashlib.sha256(raw).hexdigest() != entry["sha256"]:
            raise AnnotuneError(
                f"the run's {part} data is not the snapshot that was prepared ({len(raw):,} "
                f"bytes, expected {entry['bytes']:,}, or different content): the copy is "
                "incomplete or the file was changed", where=str(path),
                hint=f"copy the whole run folder again, or {_PREPARE_HINT}")
        items = _parse_items(raw.decode("utf-8"), path)
        if len(items) != entry["examples"]:
            raise AnnotuneError(f"the run's {part} data holds {len(items)} examples, "
                                f"spec.json says {entry['examples']}", where=str(path),
                                hint=_PREPARE_HINT)
        return items


def write_spec(run_dir: str | os.PathLike[str], task: str, settings: TaskSettings,
               config: TrainConfig, train: Sequence[Item], validation: Sequence[Item],
               project_path: str | os.PathLike[str] | None = None,
               project_created: str | None = None) -> RunSpec:
    """Freeze a run into ``run_dir`` (new, or an empty folder); return its spec.

    The folder appears complete or not at all: everything is written into a hidden sibling
    folder that is renamed into place at the end.
    """
    target = Path(run_dir).expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AnnotuneError("the run folder already exists and is not empty", where=str(target),
                            hint="choose a new folder for the prepared run")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".preparing",
                                    dir=target.parent))
    try:
        # mkdtemp's folder is private (0700); the processes of another user account or
        # machine that read the run need the permissions any new folder gets
        staging.chmod(0o777 & ~_umask())
        (staging / DATA_DIR).mkdir()
        data = {part: _write_items(staging, part, items)
                for part, items in (("train", train), ("validation", validation))}
        record = {
            "format": SPEC_FORMAT, "id": uuid.uuid4().hex,
            "prepared_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "task": task, "settings": settings.to_dict(),
            "config": _portable(config).to_dict(),
            "project": {"path": str(Path(project_path).resolve()) if project_path else None,
                        "created": project_created},
            "data": data,
        }
        (staging / SPEC_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False)
                                         + "\n", encoding="utf-8")
        if target.exists():  # an empty folder the user made for it
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return load_spec(target)


def load_spec(run_dir: str | os.PathLike[str]) -> RunSpec:
    """Read ``run_dir/spec.json``; AnnotuneError naming the problem when it is not a run spec.

    The data files are checked when they are read (``RunSpec.items``).
    """
    folder = Path(run_dir).expanduser().resolve()
    path = folder / SPEC_FILE
    if not path.is_file():
        what = "does not exist" if not folder.exists() else "holds no prepared run (no spec.json)"
        raise AnnotuneError(f"the run folder {what}", where=str(folder),
                            hint="prepare one with `annotune train PROJECT --prepare-only "
                                 "RUN_DIR`")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise AnnotuneError(f"spec.json cannot be read ({error})", where=str(path),
                            hint=_PREPARE_HINT) from None
    except json.JSONDecodeError as error:
        raise AnnotuneError(f"spec.json is not valid JSON ({error.msg})",
                            where=where(path, error.lineno), hint=_PREPARE_HINT) from None
    if not isinstance(record, dict) or not isinstance(record.get("format"), int):
        raise AnnotuneError("spec.json is not a run spec", where=str(path), hint=_PREPARE_HINT)
    if record["format"] > SPEC_FORMAT:
        raise AnnotuneError(f"spec.json was written by a newer annotune (format "
                            f"{record['format']}, this one reads {SPEC_FORMAT})",
                            where=str(path), hint="train it with the annotune that prepared it")
    try:
        data = {part: _entry(record["data"][part], folder, path) for part in PARTS}
        project = record.get("project") or {}
        config = TrainConfig.from_dict(record["config"])
        return RunSpec(folder=folder, id=str(record["id"]), task=str(record["task"]),
                       settings=TaskSettings.from_dict(record["settings"]), config=config,
                       prepared_at=str(record.get("prepared_at")),
                       project_path=project.get("path"), project_created=project.get("created"),
                       data=data)
    except AnnotuneError as error:  # an impossible training option: say which file holds it
        raise AnnotuneError(error.what, where=str(path),
                            hint="fix it in the spec's \"config\", or " + _PREPARE_HINT) from None
    except (KeyError, TypeError, ValueError) as error:
        raise AnnotuneError(f"spec.json lacks a valid {error}", where=str(path),
                            hint=_PREPARE_HINT) from None


def _write_items(folder: Path, part: str, items: Sequence[Item]) -> dict[str, Any]:
    """Write one part of the snapshot; return its entry in spec.json."""
    name = f"{DATA_DIR}/{part}.jsonl"
    # json.dumps escapes CR, LF and every other control character inside strings, so "\n"
    # ends a record and nothing else does (U+2028 and U+0085 stay as they are: text)
    raw = "".join(json.dumps({"fields": dict(fields), "annotation": annotation},
                             ensure_ascii=False) + "\n" for fields, annotation in items)
    data = raw.encode("utf-8")
    (folder / name).write_bytes(data)  # (the whole folder is renamed into place at the end)
    return {"file": name, "examples": len(items), "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def _parse_items(text: str, path: Path) -> list[Item]:
    items: list[Item] = []
    lines = text.split("\n")  # never splitlines(): it also cuts at U+2028 and U+0085
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise AnnotuneError(f"a line of the run's data is not valid JSON ({error.msg})",
                                where=where(path, number), hint=_PREPARE_HINT) from None
        if not isinstance(record, dict) or not isinstance(record.get("fields"), dict) \
                or "annotation" not in record:
            raise AnnotuneError('a line of the run\'s data is not {"fields": {...}, '
                                '"annotation": ...}', where=where(path, number),
                                hint=_PREPARE_HINT)
        items.append((record["fields"], record["annotation"]))
    return items


def _entry(entry: Mapping[str, Any], folder: Path, spec_path: Path) -> dict[str, Any]:
    """Check one data entry of spec.json; a file name may not leave the run folder."""
    name = str(entry["file"])
    if Path(name).is_absolute() or folder not in (folder / name).resolve().parents:
        raise AnnotuneError(f"spec.json names a data file outside the run folder: {name!r}",
                            where=str(spec_path), hint=_PREPARE_HINT)
    return {"file": name, "examples": int(entry["examples"]), "bytes": int(entry["bytes"]),
            "sha256": str(entry["sha256"])}


def write_replacing(path: Path, text: str) -> None:
    """Replace a file in one step (readers see the old or the new one), with usual permissions."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the mask means setting it: put it straight back
    os.umask(mask)
    return mask


def _portable(config: TrainConfig) -> TrainConfig:
    """Make a base model given as a relative folder absolute: the launcher may run elsewhere."""
    name = config.base_model
    if name and Path(name).expanduser().is_dir():
        return config.with_(base_model=str(Path(name).expanduser().resolve()))
    return config
