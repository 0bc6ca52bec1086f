"""Embed texts with a frozen encoder, and fit a softmax-regression head on the embeddings.

Shared by bench/active_learning.py and bench/few_labels.py. Full fine-tuning after every round
of a simulated labeling session is too slow on a CPU; the frozen encoder's sentence
embeddings with a linear head refitted each round are the usual stand-in (they are also what
SetFit's final head sees). Embeddings are cached on disk per (model, texts, pooling), so
repeated runs with new seeds or strategies cost seconds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# mean: what all-MiniLM-L6-v2 was trained for; layers: the mean over the encoder's layers of
# each layer's mean-pooled states (the label check's features, core/label_check_heads.py)
POOLINGS = ("mean", "cls", "pooler", "layers")
CACHE_DIR = Path(os.environ.get("ANNOTUNE_BENCH_CACHE",
                                Path.home() / ".cache" / "annotune" / "bench-embeddings"))


def _cache_path(model_dir: str, texts: Sequence[str], pooling: str, max_length: int) -> Path:
    digest = hashlib.sha256()
    digest.update(f"{Path(model_dir).resolve()}|{pooling}|{max_length}|".encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return CACHE_DIR / f"{digest.hexdigest()[:24]}.npy"


def embed(texts: Sequence[str], model_dir: str, pooling: str = "mean", max_length: int = 128,
          batch_size: int = 128, cache: bool = True) -> np.ndarray:
    """Return one L2-normalised float32 row per text, pooled as ``pooling`` says (POOLINGS)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r} is not one of {POOLINGS}")
    path = _cache_path(model_dir, texts, pooling, max_length)
    if cache and path.exists():
        return np.load(path)
    import torch
    import transformers

    from annotune.core.features import prepare_tokenizer

    tokenizer = prepare_tokenizer(Path(model_dir) / "tokenizer.json")
    model = transformers.AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    encodings = tokenizer.encode_batch(list(texts))
    ids = [e.ids[:max_length] for e in encodings]
    order = np.argsort([len(x) for x in ids], kind="stable")  # little padding per batch
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            width = max(len(ids[i]) for i in chosen)
            input_ids = torch.zeros((len(chosen), width), dtype=torch.long)
            mask = torch.zeros((len(chosen), width), dtype=torch.long)
            for row, i in enumerate(chosen):
                input_ids[row, :len(ids[i])] = torch.tensor(ids[i])
                mask[row, :len(ids[i])] = 1
            result = model(input_ids=input_ids, attention_mask=mask,
                           output_hidden_states=pooling == "layers")
            hidden = result.last_hidden_state
            weights = mask.unsqueeze(-1).float()
            if pooling == "mean":
                vectors = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
            elif pooling == "layers":  # hidden_states[0] is the word embeddings, not a layer
                layers = torch.stack(result.hidden_states[1:])
                vectors = ((layers * weights).sum(2) / weights.sum(1).clamp(min=1)).mean(0)
            elif pooling == "cls":
                vectors = hidden[:, 0]
            else:
                vectors = result.pooler_output
            out[chosen] = torch.nn.functional.normalize(vectors, dim=-1).numpy()
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out)
    return out


def fit_softmax(x: np.ndarray, y: np.ndarray, classes: int, l2: float = 1e-3,
                iterations: int = 200, start: np.ndarray | None = None) -> np.ndarray:
    """Fit multinomial logistic regression (L2-penalised) with L-BFGS; return weights.

    Weights are (features + 1, classes), the last row the bias. The loss is strictly convex,
    so L-BFGS (float64, strong Wolfe line search) fits the same model to convergence every
    round of a simulation, whatever the data; ``start`` (last round's weights) only saves
    iterations.
    """
    import torch

    n, d = x.shape
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    initial = np.zeros((d + 1, classes)) if start is None else start
    w = torch.tensor(initial, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], max_iter=iterations, tolerance_grad=1e-6,
                                  tolerance_change=1e-10, history_size=20,
                                  line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        logits = xt @ w[:-1] + w[-1]
        # the bias is hardly shrunk (a little: softmax biases are redundant)
        value = (torch.nn.functional.cross_entropy(logits, yt, reduction="sum")
                 + l2 * n / 2 * (w[:-1] ** 2).sum() + 1e-6 * n / 2 * (w[-1] ** 2).sum())
        value.backward()
        return value

    # one thread: the products are too small to split, and the cores are shared
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.enable_grad():
            optimizer.step(loss)
    finally:
        torch.set_num_threads(threads)
    return w.detach().numpy()


def predict_proba(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Return class probabilities of a head fitted by ``fit_softmax``."""
    return _softmax(x.astype(np.float64) @ w[:-1] + w[-1])


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
