"""Resolve a base model name and build the task's model and tokenizers from it."""

from __future__ import annotations

import inspect
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from tokenizers import Tokenizer

from annotune.core import base_model as default_model
from annotune.core.errors import AnnotuneError
from annotune.core.features import prepare_tokenizer
from annotune.core.tasks import Task, TaskSettings
from annotune.core.training.pooling import build_pooled_classifier, declared_pooling

# The Auto class whose head can sit on a sentence-transformers model's declared pooling.
POOLED_AUTO_MODEL = "AutoModelForSequenceClassification"

BUNDLED_NAME = default_model.NAME


def bundled_model_dir() -> Path:
    """Return the folder of the bundled all-MiniLM-L6-v2 (weights, config, tokenizer.json)."""
    return default_model.model_dir()


def _offline() -> bool:
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Tell whether the Hugging Face hub (or the mirror HF_ENDPOINT names) answers at all.

    Without a network, transformers retries for about 50 s before it gives up on a hub id;
    a plain connection attempt answers in milliseconds (or after ``timeout``).
    """
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    if not url.hostname:
        return False
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_base_model(base_model: str | None) -> str:
    """Return a local folder or a hub id for ``base_model`` (None: the bundled model).

    A name that looks like a path (absolute, ``./``, ``~``) must be an existing folder; any
    other name that is not a folder is taken as a Hugging Face hub id.
    """
    if base_model is None or base_model == "" or base_model == BUNDLED_NAME:
        return str(bundled_model_dir())
    path = Path(base_model).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.is_absolute() or base_model.startswith((".", "~")) or path.exists():
        raise AnnotuneError(f"base model folder '{base_model}' does not exist or is not a folder",
                            hint="give a folder saved with save_pretrained (config.json, weights, "
                                 "tokenizer files) or leave the base model empty for the "
                                 f"bundled {BUNDLED_NAME}")
    return base_model


def base_model_width(base_model: str | None) -> int | None:
    """Return the hidden size of a local base model from its config.json (None: unknown)."""
    try:
        source = Path(resolve_base_model(base_model))
        config = json.loads((source / "config.json").read_text())
    except (AnnotuneError, OSError, ValueError):
        return None
    width = config.get("hidden_size") or config.get("dim")  # DistilBERT calls it "dim"
    return int(width) if isinstance(width, int) else None


def _unavailable(name: str, error: Exception, local_only: bool = False) -> AnnotuneError:
    hint = (f"leave the base model empty to use the bundled {BUNDLED_NAME}, or give a local "
            "folder saved with save_pretrained")
    if (local_only or _offline() or "offline" in str(error).lower()
            or "connect" in str(error).lower()):
        return AnnotuneError(f"base model '{name}' is not available offline: it is not a local "
                             "folder and not in the Hugging Face cache", hint=hint)
    return AnnotuneError(f"base model '{name}' could not be loaded: {error}", hint=hint)


@dataclass
class LoadedModel:
    """The model to train and the two views of its tokenizer."""

    model: torch.nn.Module
    hf_tokenizer: Any  # transformers tokenizer: saved beside the checkpoint
    tokenizer: Tokenizer  # tokenizers.Tokenizer without padding/truncation: feeds Task.encode
    source: str  # the folder or hub id it came from


def load_model(task: Task, settings: TaskSettings, base_model: str | None) -> LoadedModel:
    """Build ``task.auto_model`` from the base model, with a fresh head sized for the settings."""
    source = resolve_base_model(base_model)
    name = base_model or BUNDLED_NAME
    # Read offline mode now (huggingface_hub reads its variable once, at import). A hub id
    # without a reachable hub is looked up in the local cache only: found, it trains offline;
    # missing, the error comes at once instead of after transformers' retries.
    local_only = _offline() or (not Path(source).is_dir() and not hub_reachable())
    hub = {"local_files_only": True} if local_only else {}
    try:
        hf_tokenizer = transformers.AutoTokenizer.from_pretrained(source, **hub)
    except (OSError, ValueError) as error:
        raise _unavailable(name, error, local_only) from error
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise AnnotuneError(f"base model '{name}' has no fast tokenizer (tokenizer.json)",
                            hint="choose a model that ships tokenizer.json")
    auto_class = getattr(transformers, task.auto_model)
    # A sentence-transformers folder says how its sentence vector is read (mean of the token
    # states for all-MiniLM-L6-v2): a classifier reads it that way, not through BERT's pooler.
    declared = (declared_pooling(source)
                if task.auto_model == POOLED_AUTO_MODEL and Path(source).is_dir() else None)
    try:
        if declared is not None:
            model = build_pooled_classifier(source, declared, hub, task.model_kwargs(settings))
        else:
            # A base model may carry another task's head (or none): replace mismatched heads.
            model = auto_class.from_pretrained(source, ignore_mismatched_sizes=True,
                                               dtype=torch.float32, **hub,
                                               **task.model_kwargs(settings))
    except (OSError, ValueError) as error:
        raise _unavailable(name, error, local_only) from error
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and settings.max_length > limit:
        raise AnnotuneError(f"max length {settings.max_length} is longer than base model "
                            f"'{name}' allows ({limit} tokens)",
                            hint=f"set max_length to {limit} or less")
    return LoadedModel(model, hf_tokenizer, prepare_tokenizer(backend), source)


def freeze_encoder(model: torch.nn.Module) -> int:
    """Stop gradients through the pretrained encoder so only the task head trains.

    Returns the number of parameters left trainable.
    """
    encoder = getattr(model, "base_model", None)
    if encoder is None or encoder is model:
        raise AnnotuneError("this model has no separate encoder to freeze",
                            hint="train without freeze_encoder")
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_inputs(model: torch.nn.Module) -> set[str]:
    """Return the input names the model's forward takes (DistilBERT has no token_type_ids)."""
    return set(inspect.signature(model.forward).parameters)
