"""Runs killed with SIGKILL inside a component, two runs on one folder, and an output folder that cannot be
written: real runs of the real runner on ~2,100 real rows, asserting on ML Metadata and the files.

One output folder takes five kills in a row, one inside each of CsvExampleGen, Transform, Trainer,
Evaluator and Pusher, each kill aimed by polling ML Metadata for that component's RUNNING execution; every
run resumes from the components the killed one completed. The sixth run ends as an uninterrupted run on
the same data does.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from config import folders
from config import pipeline as pipeline_config
from pipeline import local_runner
from registry import versions
from reports import run_summary, runs
from tests.support.spans import SMALL_RUN

pytestmark = pytest.mark.e2e

KILLED_INSIDE = ["CsvExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"]
UPSTREAM = {  # what each killed component needs completed before it: cached when the next run resumes
    "Transform": [
        "CsvExampleGen",
        "StatisticsGen",
        "ImportSchemaGen",
        "ExampleValidator",
        "TrainingDataGate",
    ],
    "Trainer": ["CsvExampleGen", "Transform"],
    "Evaluator": ["CsvExampleGen", "Transform", "Trainer", "EvaluationSample"],
    "Pusher": ["CsvExampleGen", "Transform", "Trainer", "Evaluator", "PushGate"],
}
FINISHED = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
RUNNING_ONLY = metadata_store.ListOptions(filter_query="last_known_state = RUNNING")


# A disk on which each file of a pushed version takes 50 ms to be flushed: the Pusher's copy of the
# small test model then lasts about a second instead of milliseconds, long enough to be killed inside.
SLOW_DISK = """
import time
from registry import completion
flush = completion.sync
completion.sync = lambda path: (time.sleep(0.05), flush(path))
"""


def _start(output_dir: Path, data_root: Path, log: Path, slow_disk: bool = False) -> subprocess.Popen:
    """The real local runner in its own process (and process group), as `make run` starts it."""
    code = (SLOW_DISK if slow_disk else "") + textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from config import folders
        from config import pipeline as pipeline_config
        from pipeline import local_runner
        from tests.support.spans import SMALL_RUN
        settings = folders.Settings(output_dir=Path({str(output_dir)!r}), data_root=Path({str(data_root)!r}))
        sys.exit(local_runner.run(settings, **SMALL_RUN))
        """
    )
    with log.open("w") as handle:
        return subprocess.Popen(
            [sys.executable, "-c", code], stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_until_running(process: subprocess.Popen, metadata_path: Path, node_id: str, log: Path) -> None:
    """Returns once ML Metadata holds `node_id`'s new RUNNING execution.

    A Pusher runs ~0.1 s, so the wait is in two steps: the run's progress line for the node (printed just
    before TFX registers its execution) says which RUNNING execution to wait for: the first one that was
    not RUNNING already (killed runs leave theirs). Then ML Metadata is polled on one connection.
    """
    deadline = time.monotonic() + 600

    def alive():
        assert process.poll() is None, (
            f"the run ended before {node_id} was seen running:\n{log.read_text()[-2000:]}"
        )
        assert time.monotonic() < deadline, f"{node_id} never started"

    store, running_before = None, set()
    while True:
        # What was RUNNING before a read of the log without the node's line: the node registers after
        # printing it, so its execution is not in this set.
        snapshot = _running_ids(store) if store else set()
        text = log.read_text()
        if f"start  {node_id}\n" in text:
            break
        running_before = snapshot
        if store is None and "  done   " in text:  # a node completed: the run has set up its store
            store = _read_only_store(metadata_path)
        alive()
        time.sleep(0.002)
    store = store or _read_only_store(metadata_path)
    while not _running_ids(store) - running_before:
        alive()


def _read_only_store(metadata_path: Path) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(metadata_path)
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return _while_the_run_writes(lambda: metadata_store.MetadataStore(config))


def _while_the_run_writes(read):
    """`read()`, retried while the running pipeline holds SQLite's write lock.

    ML Metadata's SQLite busy handler gives up after ten waits of 0.1-0.3 s, which a loaded CI machine
    exceeds. A read-only open that gives up takes the unreadable schema as missing, tries to create it and
    fails as "attempt to write a readonly database".
    """
    deadline = time.monotonic() + 30
    while True:
        try:
            return read()
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _running_ids(store: metadata_store.MetadataStore) -> set[int]:
    return {e.id for e in _while_the_run_writes(lambda: store.get_executions(list_options=RUNNING_ONLY))}


def _kill_inside(process: subprocess.Popen, metadata_path: Path, node_id: str, log: Path) -> None:
    _wait_until_running(process, metadata_path, node_id, log)
    _kill_when(process, lambda: True, log)


def _kill_when(process: subprocess.Popen, condition, log: Path) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.001)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def _states(store: metadata_store.MetadataStore, run) -> dict[str, int]:
    return {
        runs.node_id_of(store, e.id, pipeline_config.PIPELINE_NAME): e.last_known_state
        for e in store.get_executions_by_context(run.id)
    }


def _producers_of_inputs(store, run) -> dict[int, list[int]]:
    """Input artifact id -> the states of the executions that output it, for every execution of `run`."""
    inputs = {
        event.artifact_id
        for event in store.get_events_by_execution_ids(
            [e.id for e in store.get_executions_by_context(run.id)]
        )
        if event.type == metadata_store_pb2.Event.INPUT
    }
    producers = {artifact: [] for artifact in inputs}
    for event in store.get_events_by_artifact_ids(list(inputs)):
        if event.type in runs.OUTPUT_EVENTS:
            [execution] = store.get_executions_by_id([event.execution_id])
            producers[event.artifact_id].append(execution.last_known_state)
    return producers


def _headline(summary: dict) -> tuple:
    evaluation = summary["evaluation"]
    return evaluation["blessed"], {name: round(value, 4) for name, value in evaluation["metrics"].items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, small_taxi_spans_module):
    output_dir = tmp_path_factory.mktemp("uninterrupted") / "outputs"
    settings = folders.Settings(output_dir=output_dir, data_root=small_taxi_spans_module)
    assert local_runner.run(settings, **SMALL_RUN) == 0
    return run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)


def test_runs_killed_inside_each_component_resume_to_the_uninterrupted_result(
    tmp_path, small_taxi_spans_module, uninterrupted
):
    assert uninterrupted["evaluation"]["blessed"] and uninterrupted["pushed_model"], "the reference must push"
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=small_taxi_spans_module)
    killed_runs = []
    for index, node_id in enumerate(KILLED_INSIDE):
        log = tmp_path / f"run-{index}.log"
        process = _start(settings.output_dir, small_taxi_spans_module, log, slow_disk=node_id == "Pusher")
        if node_id == "Transform":  # the longest: time for a second run to be refused meanwhile
            _kill_inside_while_a_second_run_is_refused(process, settings, tmp_path, node_id, log)
        elif node_id == "Pusher":  # killed while it copies the version, which must then never serve
            _wait_until_running(process, settings.metadata_path, node_id, log)
            _kill_when(process, lambda: versions.partial_pushes(settings.serving_model_dir) != [], log)
        else:
            _kill_inside(process, settings.metadata_path, node_id, log)
        assert "taking over" in log.read_text() or index == 0, log.read_text()[-2000:]
        # The summary file the killed run left says it was running, never the previous run's "succeeded";
        # read back from ML Metadata, the run is interrupted.
        left = json.loads(settings.run_summary_path.read_text())
        assert (left["state"], left["succeeded"]) == (run_summary.RUNNING, False), left
        read_back = run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
        assert read_back["state"] == run_summary.INTERRUPTED, read_back["components"]

        store = runs.open_store(settings.metadata_path)  # ML Metadata stays readable after every kill
        found = runs.find_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
        assert found is not None
        states = _states(store, found[1])
        assert states[node_id] == metadata_store_pb2.Execution.RUNNING, (node_id, states)
        for upstream in UPSTREAM.get(node_id, []):
            assert states[upstream] in FINISHED, (node_id, upstream, states)
        if index > 0:  # what the previous killed run completed came from the cache this time
            for upstream in UPSTREAM[node_id]:
                if upstream in killed_runs[-1]["completed"]:
                    assert states[upstream] == metadata_store_pb2.Execution.CACHED, (node_id, upstream)
        killed_runs.append({"node": node_id, "completed": [n for n, s in states.items() if s in FINISHED]})

    log = tmp_path / "final.log"
    final = _start(settings.output_dir, small_taxi_spans_module, log)
    assert final.wait(timeout=900) == 0, log.read_text()[-3000:]
    assert "taking over" in log.read_text()
    summary = run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
    assert json.loads(settings.run_summary_path.read_text())["state"] == run_summary.SUCCEEDED

    assert _headline(summary) == _headline(uninterrupted)
    store = runs.open_store(settings.metadata_path)
    final_run = runs.find_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)[1]
    final_states = _states(store, final_run)
    assert all(state in FINISHED for state in final_states.values()), final_states
    # Every artifact the finished run read was written by an execution that completed: none by a killed one.
    producers = _producers_of_inputs(store, final_run)
    assert producers and all(states and set(states) <= set(FINISHED) for states in producers.values())
    # The push cut short never served: the next run moved it aside, said so, and pushed the model whole.
    serving = settings.serving_model_dir
    assert versions.partial_pushes(serving) == [] and len(versions.quarantined(serving)) == 1
    assert "a push that never completed" in log.read_text()
    assert versions.production_version(serving) is not None
    production = versions.production_path(serving)
    assert (production / versions.SAVED_MODEL_FILE).is_file() and (production / "variables").is_dir()


def _kill_inside_while_a_second_run_is_refused(
    first: subprocess.Popen, settings: folders.Settings, tmp_path: Path, node_id: str, log: Path
) -> None:
    """While the first run is inside `node_id`, a second on the same folder is refused at once, naming it."""
    _wait_until_running(first, settings.metadata_path, node_id, log)
    second_log = tmp_path / "second.log"
    started = time.monotonic()
    second = _start(settings.output_dir, settings.data_root, second_log)
    assert second.wait(timeout=120) == local_runner.OUTPUT_FOLDER_BUSY_EXIT_CODE, second_log.read_text()
    refusal = second_log.read_text()
    assert f"is in use by `taxi-pipeline run` (pid {first.pid}, started" in refusal
    assert time.monotonic() - started < 60  # refused at once, not after a run
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
