"""How the Predictor's onnxruntime threads wait: never burning cores between calls."""

import json
import time

import pytest
import transformers

from annotune.core import runtime
from annotune.core.export import export_run
from annotune.core.inference import Predictor
from annotune.core.plugins import registry
from annotune.core.tasks import TaskSettings

TEXT = "Jose\u0301 ate a 🍕 in 東京 and it was a long enough sentence for two threads to share"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, tiny_base_model):
    root = tmp_path_factory.mktemp("threads")
    task = registry().task("text-classification")
    settings = TaskSettings(labels=("neg", "pos"))
    model = getattr(transformers, task.auto_model).from_pretrained(
        tiny_base_model, **task.model_kwargs(settings))
    model.save_pretrained(root / "run" / "model")
    transformers.AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(
        root / "run" / "model")
    (root / "run" / "run.json").write_text(json.dumps({
        "task": task.name, "settings": settings.to_dict(), "config": {}, "metrics": {},
        "base_model": "tiny", "device": "cpu", "samples": [{"text": TEXT}]}), encoding="utf-8")
    return export_run(root / "run", root / "bundle").bundle_dir


def test_idle_threads_stop_spinning_when_a_call_returns(bundle):
    """Between calls the caller tokenizes, decodes or does its own work: no core is burnt.

    onnxruntime's default keeps its idle threads spinning after a run: about 25 ms of CPU in
    the 50 ms after each call on two cores, taken from the caller and from other programs.
    """
    predictor = Predictor(bundle, threads=2)
    for _ in range(3):
        predictor.predict([TEXT])
    burnt = []
    for _ in range(9):
        predictor.predict([TEXT])
        started = time.process_time()
        time.sleep(0.05)
        burnt.append(time.process_time() - started)
    assert sorted(burnt)[4] < 0.005, f"{sorted(burnt)[4] * 1000:.1f} ms of CPU while idle"


def test_sessions_spin_briefly_inside_a_run(bundle):
    options = Predictor(bundle, threads=2).session.get_session_options()
    for key, value in runtime.CPU_SPIN_CONFIG.items():
        assert options.get_session_config_entry(key) == value
    assert int(options.get_session_config_entry("session.intra_op.spin_duration_us")) <= 100
