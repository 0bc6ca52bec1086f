"""Long reliability runs (marker ``soak``, left out of ``make test``):

    QT_QPA_PLATFORM=offscreen .venv/bin/pytest -m soak tests/reliability -p no:cacheprovider

200 kill -9 of an importer and a saver at random moments, and a 1,000,000-row import while
another program saves labels (p99 of the saves' waits under a second). Several minutes each.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path

import pytest

from annotune.core.formats.base import ImportRecord
from annotune.core.store import Project
from annotune.core.tasks import TaskSettings

pytestmark = pytest.mark.soak

TIMED_SAVER = """
    import sys, time
    from annotune.core.store import Project
    project = Project.open(sys.argv[1])
    print("ready", flush=True)
    example_id, last = int(sys.argv[2]), int(sys.argv[3])
    while example_id <= last:
        label = ("neg", "pos")[example_id % 2]
        started = time.perf_counter()
        project.save_annotation(example_id, {"label": label})
        print(f"saved {example_id} {label} {time.perf_counter() - started:.4f}", flush=True)
        example_id += 1
        time.sleep(0.03)
"""


def new_project(path: Path, programs, examples: int) -> None:
    with Project.create(path, task="text-classification",
                        settings=TaskSettings(labels=programs.LABELS)) as project:
        project.add_examples(ImportRecord(fields={"text": f"{programs.TEXTS[i % 5]} {i}"},
                                          line=i + 1) for i in range(examples))


def confirmed(lines: list[str]) -> dict[int, str]:
    return {int(line.split()[1]): line.split()[2] for line in lines
            if line.startswith("saved ")}


def test_200_kills_during_saves_and_imports(tmp_path, programs):
    rng = random.Random(20240611)
    path = tmp_path / "soak.annotune"
    new_project(path, programs, 5000)
    expected, labels, whole, none = 5000, {}, 0, 0
    for round_ in range(200):
        rows = rng.choice((1500, 4000, 9000))
        importer = programs.start(programs.IMPORTER, str(path), str(rows), f"r{round_}",
                                  rng.choice(("none", "slow")))
        first = 1 + 20 * round_  # a range of its own: a confirmed label is never relabeled
        saver = programs.start(programs.SAVER, str(path), str(first), str(first + 19))
        programs.expect(importer, "ready")
        programs.expect(saver, "ready")
        time.sleep(rng.uniform(0, 2.5))
        rest = programs.kill(importer)
        time.sleep(rng.uniform(0, 0.3))
        labels.update(confirmed(programs.kill(saver)))
        with Project.open(path) as project:
            count = project.count()
            assert count in (expected, expected + rows), (round_, count)
            whole += count == expected + rows
            none += count == expected
            expected = count
            assert programs.raw(path, "SELECT COUNT(*) FROM examples") == expected
            lost = [i for i, label in labels.items()
                    if project.annotation(i).payload != {"label": label}]
            assert lost == [], round_
        assert rest is not None
    with Project.open(path) as project:
        assert project.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert project.count(status="accepted") == project.db.execute(
            "SELECT COUNT(*) FROM annotations WHERE status = 'accepted'").fetchone()[0]
    assert whole and none  # both outcomes happened


def test_a_million_row_import_beside_saves(tmp_path, programs):
    path = tmp_path / "big.annotune"
    new_project(path, programs, 20_000)
    with programs.running(TIMED_SAVER, str(path), "1", "20000") as saver, \
            programs.running(programs.IMPORTER, str(path), "1000000", "big",
                             "real") as importer:
        programs.expect(saver, "ready")
        programs.expect(importer, "ready", timeout_s=60)
        programs.expect(importer, "imported", timeout_s=1800)
        lines = programs.kill(saver)
    waits = [float(line.split()[3]) for line in lines if line.startswith("saved ")]
    labels = confirmed(lines)
    assert len(waits) > 100
    p99 = sorted(waits)[int(0.99 * (len(waits) - 1))]
    print(json.dumps({"saves": len(waits), "median_s": statistics.median(waits),
                      "p99_s": p99, "max_s": max(waits)}))
    assert p99 < 1.0
    with Project.open(path) as project:
        assert project.count() == 1_020_000
        assert all(project.annotation(i).payload == {"label": label}
                   for i, label in labels.items())
