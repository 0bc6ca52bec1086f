"""The JSON-line events of child jobs: one parser, and a child's stray output never breaks it."""

import json
import subprocess
import sys

from annotune.core.events import END_EVENTS, is_end, read_event
from annotune.core.training.job_process import TrainingProcess

FINISHED = {"event": "finished", "run_id": 3, "artifact_dir": "/r/3/model", "run_dir": "/r/3",
            "metrics": {"accuracy": 0.9}, "best_epoch": 1, "duration_s": 2.0}


def test_events_come_back_as_written_and_anything_else_as_a_log_line():
    assert read_event(json.dumps(FINISHED) + "\n") == FINISHED
    assert read_event("  \n") is None
    for line in ("[1, 2]", '"🍕"', "42", '{"event": "unheard-of"}', '{"no": "kind"}',
                 "Some weights were not used 👨‍👩‍👧", "東京 مرحبا"):
        assert read_event(line + "\r\n") == {"event": "log", "line": line}


def test_end_events_are_finished_failed_and_cancelled():
    assert END_EVENTS == ("finished", "failed", "cancelled")
    assert is_end(FINISHED) and is_end({"event": "failed", "error": "x"})
    assert not is_end({"event": "progress", "step": 1, "total_steps": 2, "epoch": 1})


def test_a_child_printing_json_that_is_no_event_does_not_stop_its_reader(tmp_path):
    """A library printing a JSON list or number to stdout is passed on as a log line."""
    script = "; ".join(f"print({json.dumps(line)})" for line in
                       ("[1, 2]", "3.5", json.dumps({"event": "started", "run_id": 3}),
                        json.dumps(FINISHED)))
    job = TrainingProcess()
    job.process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                   stdin=subprocess.PIPE, text=True, encoding="utf-8")
    events = list(job.events())
    assert [e["event"] for e in events] == ["log", "log", "started", "finished"]
    assert job.run_id == 3 and job.ended == FINISHED
