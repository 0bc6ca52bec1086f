"""Fixtures of the packaging tests: a labeled project and a bundle to walk the app through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = ("lovely", "great", "superb", "wonderful", "excellent")
BAD = ("awful", "broken", "terrible", "useless", "horrible")


def labeled_records():
    from annotune.core.formats.base import ImportRecord

    records = []
    for i in range(24):
        word = GOOD[i % 5] if i % 2 else BAD[i % 5]
        records.append(ImportRecord(fields={"text": f"the {word} product number {i}"},
                                    annotation={"label": "pos" if i % 2 else "neg"}, line=i + 1))
    texts = ("Jose\u0301 loved the 🍕\r\nand the crust", "👨‍👩‍👧 family pack: broken",
             "非常好的产品", "منتج رائع", "מוצר גרוע")
    records += [ImportRecord(fields={"text": text}, line=25 + n) for n, text in enumerate(texts)]
    return records


@pytest.fixture(scope="session")
def walkthrough(tmp_path_factory, tiny_base_model):
    """Return (project, bundle): a project with unlabeled real-world texts, a trained bundle."""
    from annotune.core.export import export_run
    from annotune.core.store import Project
    from annotune.core.tasks import TaskSettings
    from annotune.core.training.job import run_training_inline

    folder = tmp_path_factory.mktemp("walkthrough")
    path = folder / "reviews.annotune"
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=("neg", "pos"))) as project:
        project.add_examples(labeled_records(), source="test")
        result = run_training_inline(project, {"base_model": str(tiny_base_model), "epochs": 1,
                                               "batch_size": 8})
    bundle = folder / "bundle"
    export_run(result.artifact_dir, bundle)
    return path, bundle


def app_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of an app under test: offscreen, its own data folder and settings."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "ANNOTUNE_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "ANNOTUNE_CACHE_DIR": os.environ.get("ANNOTUNE_CACHE_DIR", "")}
    if not env["ANNOTUNE_CACHE_DIR"]:
        env.pop("ANNOTUNE_CACHE_DIR")
    env.pop("ANNOTUNE_TRAINING_PYTHON", None)
    env.update(extra)
    return env


def run_self_test(program: list[str], project: Path, bundle: Path, base_model: Path,
                  env: dict[str, str], timeout: float = 600) -> dict[str, dict]:
    """Run the app's self-test walkthrough; return its steps by name."""
    import json

    done = subprocess.run([*program, str(project), "--self-test",
                           "startup,label,predict,train,export", "--bundle", str(bundle),
                           "--base-model", str(base_model)],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)
    steps = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            steps[event["step"]] = event
    assert done.returncode == 0, (done.returncode, steps, done.stderr[-3000:])
    return steps


PYTHON = sys.executable
