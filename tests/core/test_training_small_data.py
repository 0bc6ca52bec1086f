"""Small training sets get enough optimizer steps to learn; chosen options are kept."""

from __future__ import annotations

import json
import math
import random

import pytest

from annotune.core.plugins import registry
from annotune.core.tasks import TaskSettings
from annotune.core.training import small_data
from annotune.core.training.config import TrainConfig
from annotune.core.training.loop import train

SETTINGS = TaskSettings(labels=("neg", "pos"), max_length=32)
# texts as people write them: emoji, a ZWJ family, CJK, a combining accent, RTL, CRLF
FILLER = ("🍕", "👨‍👩‍👧", "東京", "Jose\u0301", "فيلم", "סרט\r\nממש", "the", "film")
POSITIVE, NEGATIVE = ("good", "great", "lovely"), ("bad", "awful", "dull")

pytestmark = pytest.mark.usefixtures("one_cpu_thread")


def items(n: int, seed: int) -> list[tuple[dict, dict]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = [rng.choice(FILLER) for _ in range(rng.randint(1, 5))]
        words.insert(rng.randrange(len(words) + 1),
                     rng.choice(POSITIVE if label == "pos" else NEGATIVE))
        out.append(({"text": " ".join(words)}, {"label": label}))
    return out


# -- the plan -----------------------------------------------------------------------------------
def test_a_small_set_with_default_options_gets_enough_steps():
    config, plan = small_data.adapt(TrainConfig(), 28)  # 2 steps an epoch at batch 16
    assert config.epochs == math.ceil(small_data.MIN_STEPS / 2) == 100
    assert math.ceil(28 / config.batch_size) * config.epochs >= small_data.MIN_STEPS
    # patience keeps its share of the run: 3 of 10 epochs, 30 of 100
    assert config.early_stopping_patience == 30
    assert plan.record()["changed"] == {"epochs": {"default": 10, "used": 100},
                                        "early_stopping_patience": {"default": 3, "used": 30}}
    tiny, _ = small_data.adapt(TrainConfig(), 4)  # one step an epoch
    assert tiny.epochs == small_data.MAX_EPOCHS


def test_options_the_person_chose_are_kept():
    chosen = TrainConfig(epochs=4, early_stopping_patience=1)
    assert small_data.adapt(chosen, 28) == (chosen, None)
    config, plan = small_data.adapt(TrainConfig(early_stopping_patience=0), 28)
    assert config.early_stopping_patience == 0 and config.epochs == 100


def test_enough_data_or_switched_off_changes_nothing():
    assert small_data.adapt(TrainConfig(), 320) == (TrainConfig(), None)  # 200 steps already
    off = TrainConfig(small_data=False)
    assert small_data.adapt(off, 28) == (off, None)


# -- in the loop --------------------------------------------------------------------------------
def test_a_small_run_trains_long_enough_and_records_why(tmp_path, tiny_base_model):
    task = registry().task("text-classification")
    train_items, val_items = items(24, seed=1), items(12, seed=2)
    config = TrainConfig(base_model=str(tiny_base_model), device="cpu", learning_rate=2e-3)
    result = train(task, SETTINGS, config, train_items, val_items, tmp_path / "small")
    run = json.loads((tmp_path / "small" / "run.json").read_text())
    assert run["small_data"] == {"train_features": 24, "changed": {
        "epochs": {"default": 10, "used": 100},
        "early_stopping_patience": {"default": 3, "used": 30}}}
    assert run["config"]["epochs"] == 100  # run.json says what ran
    assert run["steps"] >= min(small_data.MIN_STEPS, 2 * (result.best_epoch + 30))

    before = train(task, SETTINGS, config.with_(small_data=False), train_items, val_items,
                   tmp_path / "before")
    record = json.loads((tmp_path / "before" / "run.json").read_text())
    assert record["small_data"] is None and record["steps"] <= 20
    assert len(before.history) <= 10
