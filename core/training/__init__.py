"""The one training loop, its config, batching and the job subprocess.

``config`` and ``job`` import no torch at module level, so the desktop can fill a TrainConfig
and start a TrainingProcess without loading torch in the GUI process; ``loop``, ``model``,
``data`` and ``device`` need torch and transformers.
"""

from annotune.core.training.config import TrainConfig

__all__ = ["TrainConfig"]
