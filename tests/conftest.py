"""Fixtures shared by the whole suite: the bundled model's folder and a tiny BERT built from it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# beside the repository as laid out for development and CI; a fresh clone has none
DATASETS = Path(os.environ.get("ANNOTUNE_DATASETS_DIR") or REPO_ROOT.parent / "shared" / "datasets")

# pytest started in the background of a script ignores SIGINT, and so would every CLI the tests
# start (the Ctrl-C tests of train, serve and the reliability suite): a terminal's Ctrl-C must
# reach them as it reaches a user's foreground program
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def bundled_model_dir() -> Path:
    """The real all-MiniLM-L6-v2 folder installed with annotune (`make install` puts it there)."""
    from annotune.core import base_model

    return base_model.model_dir()


@pytest.fixture(scope="session")
def tokenizer(bundled_model_dir):
    """The bundled tokenizer as tasks receive it: no padding, no truncation."""
    from annotune.core.features import prepare_tokenizer

    return prepare_tokenizer(bundled_model_dir / "tokenizer.json")


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory, bundled_model_dir) -> Path:
    """A 2-layer, 32-wide BERT with random weights and the bundled tokenizer: trains in seconds."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    # Seeded: the same weights in every run, so what a test learns does not depend on luck
    torch.manual_seed(7)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37,
                        max_position_embeddings=512)
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(bundled_model_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The shared public data sets beside the repository; skip when the folder is absent.

    A fresh clone has no sibling data folder, and everything else must still pass there. A
    folder that exists but lacks a file a test reads is a real failure, left to that test.
    """
    if not DATASETS.is_dir():
        pytest.skip(f"public data sets not found in {DATASETS} (see docs/benchmarks.md)")
    return DATASETS
