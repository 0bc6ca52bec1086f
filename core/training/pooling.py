"""Classify on the sentence embedding a sentence-transformers base model was trained to give.

transformers' ``AutoModelForSequenceClassification`` reads BERT's pooler (a dense layer and
tanh over the [CLS] token). A sentence-transformers model such as all-MiniLM-L6-v2 was trained
to be read differently: the mean of its token states (``1_Pooling/config.json``), often then
scaled to unit length (a ``Normalize`` module). A head on the pooler starts from a
representation the encoder never learned to produce, which costs most with few labels.

``PooledClassifier`` puts the head on the declared pooling instead. It is registered with
transformers' Auto classes under its own model type, so a run's saved model folder loads
again through ``AutoModelForSequenceClassification`` anywhere this module was imported
(core/training/model.py imports it), and a process that did not import it fails loudly on the
unknown model type instead of silently building a different head.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers.modeling_outputs import SequenceClassifierOutput

from annotune.core.errors import AnnotuneError

MODEL_TYPE = "annotune-pooled-classifier"
# sentence-transformers' Pooling flags this classifier reproduces; any other mode (max,
# mean_sqrt_len, weighted mean, last token, or several at once) keeps transformers' own head.
POOLING_FLAGS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}


# -- what the base model folder declares --------------------------------------------------------

def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise AnnotuneError(f"the base model's sentence-transformers file could not be read: "
                            f"{error}", where=str(path),
                            hint="repair or remove the file (without modules.json the model is "
                                 "used with its [CLS] pooler)") from error


def declared_pooling(folder: str | Path) -> dict[str, Any] | None:
    """Return ``{"pooling": "mean" | "cls", "normalize": bool}`` declared by the folder.

    None when the folder has no sentence-transformers ``modules.json`` with a Pooling module,
    or declares a pooling this classifier does not reproduce.
    """
    folder = Path(folder)
    modules_path = folder / "modules.json"
    if not modules_path.is_file():
        return None
    modules = _read_json(modules_path)
    if not isinstance(modules, list):
        raise AnnotuneError("modules.json is not a list of modules", where=str(modules_path),
                            hint="repair or remove the file")
    types = [str(m.get("type", "")) for m in modules if isinstance(m, dict)]
    pooling_paths = [str(m.get("path", "")) for m in modules
                     if isinstance(m, dict) and str(m.get("type", "")).endswith(".Pooling")]
    if not pooling_paths:
        return None
    config_path = folder / pooling_paths[0] / "config.json"
    if not config_path.is_file():
        return None
    config = _read_json(config_path)
    if not isinstance(config, dict):
        raise AnnotuneError("the pooling configuration is not a JSON object",
                            where=str(config_path), hint="repair or remove the file")
    modes = [name for name, value in config.items()
             if name.startswith("pooling_mode_") and value is True]
    if len(modes) != 1 or modes[0] not in POOLING_FLAGS:
        return None
    return {"pooling": POOLING_FLAGS[modes[0]],
            "normalize": any(t.endswith(".Normalize") for t in types)}


# -- the model ----------------------------------------------------------------------------------

class PooledClassifierConfig(transformers.PretrainedConfig):
    """Hold the encoder's own configuration, the pooling and the head's labels."""

    model_type = MODEL_TYPE

    def __init__(self, encoder: dict[str, Any] | None = None, pooling: str = "mean",
                 normalize: bool = False, classifier_dropout: float | None = None,
                 **kwargs: Any) -> None:
        encoder = dict(encoder or {})
        # Read by the rest of annotune (width for precision, length limit, ONNX fusion shape)
        # the same way as on any transformers config.
        for name in ("hidden_size", "max_position_embeddings", "num_attention_heads"):
            if name in encoder and name not in kwargs:
                kwargs[name] = encoder[name]
        super().__init__(**kwargs)
        self.encoder = encoder
        self.pooling = pooling
        self.normalize = normalize
        self.classifier_dropout = classifier_dropout

    def encoder_config(self) -> transformers.PretrainedConfig:
        """Return the encoder's configuration as its own transformers class."""
        fields = {k: v for k, v in self.encoder.items() if k != "model_type"}
        return transformers.AutoConfig.for_model(self.encoder["model_type"], **fields)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Return one vector per row: the mean over real tokens (padding ignored) or the first."""
    if mode == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    # clamp: a row of padding only (never fed, but traced) must not divide by zero
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def _without_pooler(config: transformers.PretrainedConfig) -> dict[str, Any]:
    """Return the kwargs that drop the encoder's own pooler layer, where it has one."""
    # Any: transformers' lazy mapping is typed as (class, class) pairs; a lookup gives a class
    model_class: Any = transformers.MODEL_MAPPING[type(config)]
    takes = inspect.signature(model_class).parameters  # the class's constructor
    return {"add_pooling_layer": False} if "add_pooling_layer" in takes else {}


class PooledClassifier(transformers.PreTrainedModel):
    """Encoder, declared pooling, dropout and a linear head; transformers' classifier outputs."""

    config_class = PooledClassifierConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: PooledClassifierConfig) -> None:
        super().__init__(config)
        encoder_config = config.encoder_config()
        encoder_config._attn_implementation = config._attn_implementation
        self.encoder = transformers.AutoModel.from_config(encoder_config,
                                                          **_without_pooler(encoder_config))
        self._encoder_takes = set(inspect.signature(self.encoder.forward).parameters)
        dropout = config.classifier_dropout
        if dropout is None:
            dropout = getattr(encoder_config, "hidden_dropout_prob", None)
        self.dropout = torch.nn.Dropout(0.1 if dropout is None else dropout)
        hidden_size = int(config.hidden_size)  # copied from the encoder's config, always set
        self.classifier = torch.nn.Linear(hidden_size, int(config.num_labels or 2))  # default 2
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        if module is getattr(self, "classifier", None):
            std = self.config.encoder.get("initializer_range", 0.02)
            module.weight.data.normal_(mean=0.0, std=std)
            module.bias.data.zero_()

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Return the sentence embedding the head reads (before dropout)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and "token_type_ids" in self._encoder_takes:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state
        pooled = pool(hidden, attention_mask, self.config.pooling)
        if self.config.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **_: Any) -> SequenceClassifierOutput:
        """Return logits (and the loss when labels are given), as transformers' classifiers."""
        pooled = self.embed(input_ids, attention_mask, token_type_ids)
        logits = self.classifier(self.dropout(pooled))
        loss = head_loss(logits, labels, self.config) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def head_loss(logits: torch.Tensor, labels: torch.Tensor, config: Any) -> torch.Tensor:
    """Return the loss transformers' classifiers use for this problem type."""
    if config.problem_type == "multi_label_classification":
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.float())
    if config.num_labels == 1 or config.problem_type == "regression":
        return torch.nn.functional.mse_loss(logits.squeeze(-1), labels.float())
    return torch.nn.functional.cross_entropy(logits.float(), labels.view(-1))


transformers.AutoConfig.register(MODEL_TYPE, PooledClassifierConfig, exist_ok=True)
transformers.AutoModelForSequenceClassification.register(PooledClassifierConfig, PooledClassifier,
                                                         exist_ok=True)


def build_pooled_classifier(source: str, declared: dict[str, Any], hub: dict[str, Any],
                            model_kwargs: dict[str, Any]) -> PooledClassifier:
    """Load the base encoder from ``source`` and put a fresh head on its declared pooling."""
    encoder_config = transformers.AutoConfig.from_pretrained(source, **hub)
    fields = encoder_config.to_dict()
    fields.pop("_name_or_path", None)  # the folder it came from: no business in a run's model
    config = PooledClassifierConfig(encoder=fields, **declared,
                                    **model_kwargs)
    model = PooledClassifier(config)
    encoder = transformers.AutoModel.from_pretrained(source, dtype=torch.float32, **hub,
                                                     **_without_pooler(encoder_config))
    model.encoder.load_state_dict(encoder.state_dict())
    return model


# -- a head fitted before fine-tuning ----------------------------------------------------------

HEAD_FIT_STEPS = 300
HEAD_FIT_PENALTY = 1e-3  # L2 on the weights: keeps a fit to a few dozen examples moderate
# Only small training sets get a fitted head. Measured on SST-2 (docs/label-efficiency.md):
# it wins with 14 to 115 training sentences (8 to 64 per class), but with 1,800 the fitted,
# confident head made fine-tuning overfit within two epochs (held-out 0.828 against 0.838
# with a random head). Between the two the limit is a guess on the safe side.
HEAD_FIT_FEATURES = 256


def fit_head(model: torch.nn.Module, batches: Sequence[Sequence[int]],
             inputs_for: Callable[[Sequence[int]], dict[str, torch.Tensor]]) -> bool:
    """Fit the linear head on the frozen encoder's embeddings before fine-tuning starts.

    ``batches`` are index batches of training features and ``inputs_for`` turns one into
    model inputs with labels. Fine-tuning then starts from a head that already separates the
    labels instead of a random one, which matters when a few dozen labels make only a few
    dozen optimizer steps. Returns False (nothing changed) for models without a pooled head
    and for training sets above ``HEAD_FIT_FEATURES`` features.
    """
    if not isinstance(model, PooledClassifier) or not batches:
        return False
    if sum(len(batch) for batch in batches) > HEAD_FIT_FEATURES:
        return False
    was_training = model.training
    model.eval()
    rows, targets = [], []
    with torch.no_grad():
        for batch in batches:
            inputs = inputs_for(batch)
            rows.append(model.embed(inputs["input_ids"], inputs.get("attention_mask"),
                                    inputs.get("token_type_ids")).float())
            targets.append(inputs["labels"])
    model.train(was_training)
    features, labels = torch.cat(rows), torch.cat(targets)
    head = model.classifier
    weight = head.weight.detach().clone().float().requires_grad_(True)
    bias = head.bias.detach().clone().float().requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=HEAD_FIT_STEPS,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = features @ weight.T + bias
        loss = head_loss(logits, labels, model.config) + HEAD_FIT_PENALTY * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        head.weight.copy_(weight.to(head.weight.dtype))
        head.bias.copy_(bias.to(head.bias.dtype))
    return True
