"""Bundle manifests: checksums written on export, and every way a damaged bundle is refused."""

import hashlib
import json
import subprocess
import sys

import pytest

from annotune.core import bundle
from annotune.core.errors import AnnotuneError


@pytest.fixture
def folder(tmp_path):
    """A bundle-shaped folder with small stand-in files and its manifest."""
    path = tmp_path / "bundle"
    path.mkdir()
    # a well-formed protobuf (ir_version 7, producer name), as the graph checks read it
    (path / "model.onnx").write_bytes(b"\x08\x07\x12\x0ffake onnx graph" * 100)
    (path / "tokenizer.json").write_text('{"model": {"vocab": {}}}', encoding="utf-8")
    bundle.write_manifest(path, {"task": "text-classification", "settings": {"labels": ["a"]},
                                 "model": "model.onnx", "tokenizer": "tokenizer.json"})
    return path


def test_manifest_lists_size_and_sha256_of_every_other_file(folder):
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == bundle.FORMAT_NAME
    assert manifest["format_version"] == bundle.FORMAT_VERSION
    assert set(manifest["files"]) == {"model.onnx", "tokenizer.json"}
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert bundle.verify_bundle(folder)["task"] == "text-classification"
    assert bundle.is_bundle(folder)


def test_sha256_file_matches_hashlib_on_multi_chunk_files(tmp_path):
    data = bytes(range(256)) * 9000  # larger than one read chunk
    (tmp_path / "big.bin").write_bytes(data)
    assert bundle.sha256_file(tmp_path / "big.bin") == hashlib.sha256(data).hexdigest()


def test_same_size_edit_is_refused_naming_the_file(folder):
    data = bytearray((folder / "model.onnx").read_bytes())
    data[10] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(AnnotuneError, match=r"'model\.onnx' does not match its sha256") as error:
        bundle.verify_bundle(folder)
    assert "export the run again" in str(error.value)


def test_changed_size_is_refused(folder):
    with open(folder / "tokenizer.json", "a", encoding="utf-8") as handle:
        handle.write(" ")
    with pytest.raises(AnnotuneError, match=r"'tokenizer\.json' has \d+ bytes"):
        bundle.verify_bundle(folder)


def test_preloaded_bytes_are_checked_instead_of_the_file(folder):
    good = (folder / "model.onnx").read_bytes()
    assert bundle.verify_bundle(folder, {"model.onnx": good})
    bad = bytes([good[0] ^ 1]) + good[1:]
    with pytest.raises(AnnotuneError, match="model.onnx"):
        bundle.verify_bundle(folder, {"model.onnx": bad})


def test_missing_file_is_refused(folder):
    (folder / "tokenizer.json").unlink()
    with pytest.raises(AnnotuneError, match=r"'tokenizer\.json' is missing"):
        bundle.verify_bundle(folder)


def test_missing_manifest_means_not_a_bundle(tmp_path):
    with pytest.raises(AnnotuneError, match="not an annotune bundle"):
        bundle.read_manifest(tmp_path)
    assert not bundle.is_bundle(tmp_path)
    with pytest.raises(AnnotuneError, match="no such bundle folder"):
        bundle.read_manifest(tmp_path / "nowhere")


def _edit_manifest(folder, **changes):
    path = folder / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_newer_format_version_is_refused(folder):
    _edit_manifest(folder, format_version=bundle.FORMAT_VERSION + 1)
    with pytest.raises(AnnotuneError, match="unsupported bundle format version 2"):
        bundle.verify_bundle(folder)


def test_foreign_or_broken_manifest_is_refused(folder):
    (folder / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(AnnotuneError, match="not valid JSON"):
        bundle.read_manifest(folder)
    (folder / "manifest.json").write_text('{"format": "something-else"}', encoding="utf-8")
    with pytest.raises(AnnotuneError, match="does not describe an annotune bundle"):
        bundle.read_manifest(folder)


def test_manifest_without_required_keys_is_refused(folder):
    path = folder / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["task"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(AnnotuneError, match="lacks task"):
        bundle.read_manifest(folder)


def test_manifest_cannot_point_outside_the_folder(folder):
    _edit_manifest(folder, files={"model.onnx": {"sha256": "0"}, "tokenizer.json": {},
                                  "../secret": {"sha256": "0"}})
    with pytest.raises(AnnotuneError, match="outside the bundle"):
        bundle.verify_bundle(folder)


def test_model_without_checksum_is_refused(folder):
    _edit_manifest(folder, files={})
    with pytest.raises(AnnotuneError, match="no checksum for its model file"):
        bundle.verify_bundle(folder)


def test_writing_a_manifest_needs_the_named_files(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{}", encoding="utf-8")
    with pytest.raises(AnnotuneError, match="model file 'model.onnx' is missing"):
        bundle.write_manifest(tmp_path, {"task": "t", "settings": {}, "model": "model.onnx",
                                         "tokenizer": "tokenizer.json"})


def test_bundle_module_imports_neither_numpy_nor_torch():
    code = ("import sys, annotune.core.bundle; "
            "print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_a_manifest_in_an_early_versions_shape_still_verifies(folder):
    """Only the required keys, as the first bundles had them: nothing newer is needed."""
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    early = {key: data[key] for key in ("format", "format_version", "task", "settings",
                                        "model", "tokenizer", "files")}
    (folder / "manifest.json").write_text(json.dumps(early), encoding="utf-8")
    manifest = bundle.verify_bundle(folder)
    assert manifest == early and manifest.get("model_data") is None


@pytest.mark.parametrize(("key", "value"), [("task", 5), ("settings", ["a"]), ("model", None),
                                            ("tokenizer", {"name": "t"}), ("files", [])])
def test_a_manifest_value_of_the_wrong_kind_is_refused_naming_its_key(folder, key, value):
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    (folder / "manifest.json").write_text(json.dumps({**data, key: value}), encoding="utf-8")
    with pytest.raises(AnnotuneError, match=f"manifest.json's '{key}' is") as error:
        bundle.read_manifest(folder)
    assert "export the run again" in str(error.value)
