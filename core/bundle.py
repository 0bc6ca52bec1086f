"""Read and write a bundle's manifest and check its files against their sha256 checksums.

Standard library only (no numpy, no torch): the Predictor, the CLI and the desktop all call it.

A bundle is one flat folder::

    model.onnx       the network's graph (dynamic batch and sequence axes)
    model.onnx.data  its weights, as ONNX external data: onnxruntime maps them instead of
                     copying them out of the graph file, which halves load time
    tokenizer.json   the tokenizer, padding and truncation off
    manifest.json    what the bundle is (see ``write_manifest``) and the sha256 of every other file
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError

FORMAT_NAME = "annotune-bundle"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MODEL_NAME = "model.onnx"
MODEL_DATA_NAME = "model.onnx.data"  # external weights of model.onnx (ONNX's own mechanism)
TOKENIZER_NAME = "tokenizer.json"
REQUIRED_KEYS = ("task", "settings", "model", "tokenizer", "files")

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


def file_entries(folder: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Describe every regular file of a bundle folder except the manifest: size and sha256."""
    folder = Path(folder)
    entries = {}
    for path in sorted(folder.iterdir()):
        if path.name == MANIFEST_NAME or not path.is_file():
            continue
        entries[path.name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return entries


def write_manifest(folder: str | os.PathLike[str], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Write manifest.json into a finished bundle folder, adding format and file checksums.

    Call it last: it hashes the files present in the folder now. Returns the written manifest.
    """
    folder = Path(folder)
    data = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **dict(manifest)}
    data["files"] = file_entries(folder)
    for key in ("model", "tokenizer"):
        name = data.get(key)
        if name not in data["files"]:
            raise AnnotuneError(f"the bundle's {key} file '{name}' is missing",
                                where=str(folder))
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False)
    (folder / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")
    return data


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Load manifest.json, refusing a folder that is not a bundle or comes from a newer annotune."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise AnnotuneError("no such bundle folder", where=str(folder),
                            hint="pass the folder written by annotune export")
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
    return data


def is_bundle(folder: str | os.PathLike[str]) -> bool:
    """Say whether a folder holds a readable bundle manifest (its files are not checked)."""
    try:
        read_manifest(folder)
    except AnnotuneError:
        return False
    return True


def check_file(folder: Path, name: str, entry: Mapping[str, Any], data: bytes | None = None
               ) -> None:
    """Raise AnnotuneError unless one bundle file exists with the manifest's size and sha256."""
    path = folder / name
    if not path.is_file():
        raise AnnotuneError(f"bundle file '{name}' is missing", where=str(folder), hint=_REEXPORT)
    size = len(data) if data is not None else path.stat().st_size
    # A size mismatch is caught without hashing; the hash catches same-size edits.
    if "bytes" in entry and size != entry["bytes"]:
        raise AnnotuneError(f"bundle file '{name}' has {size} bytes, the manifest says "
                            f"{entry['bytes']}: it was changed or damaged after export",
                            where=str(path), hint=_REEXPORT)
    actual = sha256_bytes(data) if data is not None else sha256_file(path)
    if actual != entry.get("sha256"):
        raise AnnotuneError(f"bundle file '{name}' does not match its sha256 checksum: it was "
                            "changed or damaged after export", where=str(path), hint=_REEXPORT)


def verify_bundle(folder: str | os.PathLike[str], preloaded: Mapping[str, bytes] | None = None
                  ) -> dict[str, Any]:
    """Check every file the manifest lists against its checksum; return the manifest.

    ``preloaded`` maps file names to bytes the caller already read (the Predictor reads the
    model once, checks those bytes and hands the same bytes to onnxruntime).
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    files = manifest["files"]
    if not isinstance(files, dict):
        raise AnnotuneError("manifest.json 'files' is not a mapping", where=str(folder),
                            hint=_REEXPORT)
    for key in ("model", "tokenizer"):
        if manifest[key] not in files:
            raise AnnotuneError(f"manifest.json lists no checksum for its {key} file "
                                f"'{manifest[key]}'", where=str(folder), hint=_REEXPORT)
    for name in files:
        if Path(name).name != name:  # a manifest must never point outside its folder
            raise AnnotuneError(f"manifest.json names a file outside the bundle: '{name}'",
                                where=str(folder), hint=_REEXPORT)
    preloaded = preloaded or {}
    for name, entry in files.items():
        check_file(folder, name, entry, preloaded.get(name))
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
