"""Read and write a bundle's manifest and check its files against their sha256 checksums.

Standard library only (no numpy, no torch): the Predictor, the CLI and the desktop all call it.

A bundle is one flat folder::

    model.onnx       the network's graph (dynamic batch and sequence axes)
    model.onnx.data  its weights, as ONNX external data: onnxruntime maps them instead of
                     copying them out of the graph file, which halves load time
    tokenizer.json   the tokenizer, padding and truncation off
    manifest.json    what the bundle is (see ``write_manifest``) and the sha256 of every other file

Everything a Predictor opens is checked first (``verify_bundle``): names stay inside the
folder (no absolute paths, "..", subfolders or links that lead out), every file matches the
size and sha256 the manifest lists, and the graph's external data names only listed files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from annotune.core import graph_files
from annotune.core.errors import AnnotuneError

FORMAT_NAME = "annotune-bundle"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MODEL_NAME = "model.onnx"
MODEL_DATA_NAME = "model.onnx.data"  # external weights of model.onnx (ONNX's own mechanism)
TOKENIZER_NAME = "tokenizer.json"
REQUIRED_KEYS = ("task", "settings", "model", "tokenizer", "files")



class FileEntry(TypedDict):
    """One bundle file's size and checksum, as the manifest lists it."""

    bytes: int
    sha256: str


class Manifest(TypedDict):
    """manifest.json: what the bundle is, how to run it, and every file's checksum.

    The required keys are those every version wrote and ``read_manifest`` checks; the others
    came later or describe the export (an older bundle lacks them), so readers use ``.get``.
    Nested objects (settings, metrics, the export's reports) belong to their own owners.
    """

    format: str
    format_version: int
    task: str
    settings: dict[str, Any]  # TaskSettings.to_dict()
    model: str
    tokenizer: str
    files: dict[str, FileEntry]
    model_data: NotRequired[str]
    labels: NotRequired[list[str]]
    max_length: NotRequired[int]
    windowing: NotRequired[dict[str, Any]]
    metrics: NotRequired[dict[str, Any]]
    main_metric: NotRequired[str | None]
    base_model: NotRequired[str | None]
    training: NotRequired[dict[str, Any]]
    annotune_version: NotRequired[str]
    created: NotRequired[str]
    onnx: NotRequired[dict[str, Any]]
    quantization: NotRequired[dict[str, Any] | None]
    parity: NotRequired[dict[str, Any]]
    validation: NotRequired[dict[str, Any] | None]


# The kind of value each required key must hold (files is checked entry by entry).
_REQUIRED_KINDS: dict[str, type] = {"task": str, "settings": dict, "model": str,
                                    "tokenizer": str, "files": dict}
_KIND_WORDS: dict[type, str] = {str: "a text", dict: "an object"}

_CHUNK = 1 << 20
_REEXPORT = "export the run again (annotune export) to get an intact bundle"


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of bytes already in memory."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex sha256 of a file, read in chunks so large models stay out of memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(folder: str | os.PathLike[str]) -> dict[str, FileEntry]:
    """Describe every regular file of a bundle folder except the manifest: size and sha256."""
    folder = Path(folder)
    entries: dict[str, FileEntry] = {}
    for path in sorted(folder.iterdir()):
        if path.name == MANIFEST_NAME or not path.is_file():
            continue
        entries[path.name] = FileEntry(bytes=path.stat().st_size, sha256=sha256_file(path))
    return entries


def write_manifest(folder: str | os.PathLike[str], manifest: Mapping[str, object]) -> Manifest:
    """Write manifest.json into a finished bundle folder, adding format and file checksums.

    Call it last: it hashes the files present in the folder now. Returns the written manifest.
    """
    folder = Path(folder)
    data: dict[str, Any] = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                            **dict(manifest)}
    data["files"] = file_entries(folder)
    for key in ("model", "tokenizer"):
        name = data.get(key)
        if name not in data["files"]:
            raise AnnotuneError(f"the bundle's {key} file '{name}' is missing",
                                where=str(folder))
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False)
    (folder / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")
    return _checked(data, folder / MANIFEST_NAME)


def _inside(folder: Path, name: str, what: str) -> Path:
    """Return ``folder / name`` once sure it is a plain file name that stays in the folder.

    Refused before anything is opened: a name that is absolute, climbs with "..", names a
    subfolder, or is a link that resolves outside the folder (a manifest naming /etc/passwd
    must never get it read).
    """
    if not isinstance(name, str) or not name:
        raise AnnotuneError(f"{what} names a bundle file {name!r} that is not a file name",
                            where=str(folder), hint=_REEXPORT)
    if (name in (".", "..") or "/" in name or "\\" in name or Path(name).is_absolute()
            or Path(name).name != name or ":" in name):
        raise AnnotuneError(f"{what} names a file outside the bundle: '{name}' (bundle files "
                            "are plain names inside the bundle folder)", where=str(folder),
                            hint=_REEXPORT)
    path = folder / name
    if os.path.lexists(path):
        resolved, root = path.resolve(), folder.resolve()
        if resolved.parent != root:
            raise AnnotuneError(f"bundle file '{name}' is a link to {resolved}, outside the "
                                "bundle", where=str(folder), hint=_REEXPORT)
    return path


def read_manifest(folder: str | os.PathLike[str]) -> Manifest:
    """Load manifest.json, refusing a folder that is not a bundle or comes from a newer annotune."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AnnotuneError("no such bundle folder", where=str(folder),
                            hint="pass the folder written by annotune export")
    path = _inside(folder, MANIFEST_NAME, "the bundle")
    if not path.is_file():
        raise AnnotuneError("this folder is not an annotune bundle (manifest.json is missing)",
                            where=str(folder), hint="pass the folder written by annotune export")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnnotuneError(f"manifest.json is not valid JSON ({error})", where=str(path),
                            hint=_REEXPORT) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise AnnotuneError("manifest.json does not describe an annotune bundle",
                            where=str(path), hint="pass the folder written by annotune export")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise AnnotuneError(f"unsupported bundle format version {version!r} "
                            f"(this annotune reads version {FORMAT_VERSION})", where=str(path),
                            hint="upgrade annotune, or export the run again with this version")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise AnnotuneError(f"manifest.json lacks {', '.join(missing)}", where=str(path),
                            hint=_REEXPORT)
    return _checked(data, path)


def _checked(data: dict[str, Any], path: Path) -> Manifest:
    """Return ``data`` as a Manifest once its required keys hold the kind of value they must.

    A bundle edited by hand (a task given as a number, settings as a list) is refused here
    with the key named, instead of failing later inside the Predictor.
    """
    for key, kind in _REQUIRED_KINDS.items():
        if not isinstance(data.get(key), kind):
            raise AnnotuneError(f"manifest.json's '{key}' is {type(data.get(key)).__name__} "
                                f"{data.get(key)!r:.60}, expected {_KIND_WORDS[kind]}",
                                where=str(path), hint=_REEXPORT)
    manifest: Manifest = data  # type: ignore[assignment]  # its required keys checked above
    return manifest


def is_bundle(folder: str | os.PathLike[str]) -> bool:
    """Say whether a folder holds a readable bundle manifest (its files are not checked)."""
    try:
        read_manifest(folder)
    except AnnotuneError:
        return False
    return True


def check_names(folder: str | os.PathLike[str], manifest: Manifest) -> dict[str, FileEntry]:
    """Check every file name the manifest gives, without opening any file; return ``files``.

    The model and tokenizer must be listed with a checksum, and every name must be a plain
    file name inside the folder.
    """
    folder = Path(folder)
    files = manifest["files"]
    if not isinstance(files, dict):
        raise AnnotuneError("manifest.json 'files' is not a mapping", where=str(folder),
                            hint=_REEXPORT)
    for name, entry in files.items():
        _inside(folder, name, "manifest.json")
        if not isinstance(entry, dict):
            raise AnnotuneError(f"manifest.json describes '{name}' with {entry!r}, not its size "
                                "and sha256", where=str(folder), hint=_REEXPORT)
    for key in ("model", "tokenizer"):
        _inside(folder, manifest[key], f"manifest.json's '{key}'")
        if manifest[key] not in files:
            raise AnnotuneError(f"manifest.json lists no checksum for its {key} file "
                                f"'{manifest[key]}'", where=str(folder), hint=_REEXPORT)
    return files


def check_file(folder: Path, name: str, entry: FileEntry, data: bytes | None = None
               ) -> None:
    """Raise AnnotuneError unless one bundle file exists with the manifest's size and sha256."""
    path = _inside(folder, name, "manifest.json")
    if not path.is_file():
        raise AnnotuneError(f"bundle file '{name}' is missing", where=str(folder), hint=_REEXPORT)
    size = len(data) if data is not None else path.stat().st_size
    # A size mismatch is caught without hashing; the hash catches same-size edits.
    if entry.get("bytes") != size:
        raise AnnotuneError(f"bundle file '{name}' has {size} bytes, the manifest says "
                            f"{entry.get('bytes')}: it was changed or damaged after export",
                            where=str(path), hint=_REEXPORT)
    actual = sha256_bytes(data) if data is not None else sha256_file(path)
    if actual != entry.get("sha256"):
        raise AnnotuneError(f"bundle file '{name}' does not match its sha256 checksum: it was "
                            "changed or damaged after export", where=str(path), hint=_REEXPORT)


def check_graph_files(folder: Path, model: str, graph: bytes, files: Mapping[str, FileEntry]
                      ) -> None:
    """Refuse a graph that makes onnxruntime open a file the manifest does not list.

    ONNX external data names files relative to the graph; each one must be a listed bundle
    file (so its checksum was verified) and hold the bytes the graph reads from it.
    """
    try:
        references = graph_files.external_data(graph)
    except graph_files.GraphFormatError as error:
        raise AnnotuneError(f"bundle file '{model}' is not a readable ONNX graph ({error})",
                            where=str(folder / model), hint=_REEXPORT) from None
    for reference in references:
        what = f"the graph's tensor '{reference.tensor}'"
        _inside(folder, reference.location, what)
        entry = files.get(reference.location)
        if entry is None:
            raise AnnotuneError(
                f"{what} reads its weights from '{reference.location}', which manifest.json "
                "does not list: its checksum was never checked", where=str(folder),
                hint=_REEXPORT)
        end = reference.offset + (reference.length or 0)
        if end > entry.get("bytes", 0):
            raise AnnotuneError(
                f"{what} reads bytes {reference.offset}-{end} of '{reference.location}', "
                f"which has {entry.get('bytes')}", where=str(folder), hint=_REEXPORT)


def verify_bundle(folder: str | os.PathLike[str], preloaded: Mapping[str, bytes] | None = None,
                  checked: Callable[[str], None] | None = None) -> Manifest:
    """Check everything a Predictor will open against the manifest; return the manifest.

    Every listed file must match its size and sha256, every name must stay inside the folder,
    and the graph must read external data only from listed files. ``preloaded`` maps file
    names to bytes the caller already read (checked instead of the files). ``checked`` is
    called with each file name once that file passed (smallest files first, the graph file
    once its external data is known to be listed), so a caller may open the tokenizer while
    the weights are still being hashed.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    files = check_names(folder, manifest)
    preloaded = dict(preloaded or {})
    model = manifest["model"]
    # The graph first (small): a bundle whose graph reads unlisted files is refused before
    # any other file is hashed or handed to ``checked``.
    graph = preloaded.get(model)
    if graph is None:
        try:
            graph = (folder / model).read_bytes()
        except OSError:
            check_file(folder, model, files[model])  # names what is wrong (missing...)
            raise
    check_file(folder, model, files[model], graph)  # the bytes parsed are the bytes checked
    check_graph_files(folder, model, graph, files)
    for name in sorted(files, key=lambda n: (files[n].get("bytes") or 0, n)):
        if name != model:
            check_file(folder, name, files[name], preloaded.get(name))
            if checked is not None:
                checked(name)
    if checked is not None:
        checked(model)
    return manifest


# -- the model files ------------------------------------------------------------------------

def model_size(path: str | os.PathLike[str]) -> int:
    """Return the bytes of an ONNX graph file plus its external weights file, if any."""
    path = Path(path)
    data = path.with_name(MODEL_DATA_NAME)
    return path.stat().st_size + (data.stat().st_size if data.is_file() else 0)


def save_with_external_weights(source: Path, target: Path) -> None:
    """Rewrite an ONNX model as a small graph file plus one weights file beside it.

    onnxruntime memory-maps external weights, so a session opens about twice as fast as from
    a graph that holds them inline (measured on the MiniLM bundle).
    Writing needs the onnx package, imported here: reading bundles never does.
    """
    import onnx

    model = onnx.load(str(source))
    data = target.with_name(MODEL_DATA_NAME)
    data.unlink(missing_ok=True)  # onnx appends to an existing weights file
    if target != source:
        target.unlink(missing_ok=True)
    onnx.save_model(model, str(target), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=data.name, size_threshold=1024)
