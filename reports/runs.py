"""Finding a pipeline's runs and their outputs in ML Metadata, with nothing heavier than ml_metadata.

Importing TFX or TFMA costs 11-16 s; `make report` and the run-id check before a run need neither.

Readers (the summary, the reports, the monitor) open the store read-only, while a run may be writing it:
SQLite then holds its write lock, and ML Metadata's own busy handler gives up after ten waits of 0.1-0.3 s
(a read-only open that gives up also takes the unreadable schema for a missing one). So every call is
retried while the store is locked, up to `folders.METADATA_READ_WAIT_SECONDS`.
"""

import time
from pathlib import Path

from ml_metadata import errors, metadata_store
from ml_metadata.proto import metadata_store_pb2

from config import folders

OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.INTERNAL_OUTPUT)
# What ML Metadata raises while another process holds SQLite's lock (or is creating the schema).
_LOCKED = (RuntimeError, errors.AbortedError, errors.UnavailableError)
_RETRY_SECONDS = 0.05


class MetadataLocked(Exception):
    """ML Metadata stayed locked by a writer longer than a reader waits."""


class ReadOnlyStore:
    """A read-only ML Metadata store whose every call is retried while a run holds the write lock."""

    def __init__(self, metadata_path: Path, wait_seconds: float):
        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = str(metadata_path)
        config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
        self._path, self._wait_seconds = metadata_path, wait_seconds
        self._store = self._retrying(lambda: metadata_store.MetadataStore(config))

    def __getattr__(self, name: str):
        method = getattr(self._store, name)
        if not callable(method):
            return method
        return lambda *args, **kwargs: self._retrying(lambda: method(*args, **kwargs))

    def _retrying(self, call):
        deadline = time.monotonic() + self._wait_seconds
        while True:
            try:
                return call()
            except _LOCKED as error:
                if time.monotonic() > deadline:
                    raise MetadataLocked(
                        f"ML Metadata in {self._path} stayed locked for {self._wait_seconds:g} s ({error}): a "
                        "run is writing it. Try again when the run has ended."
                    ) from error
                time.sleep(_RETRY_SECONDS)


def open_store(metadata_path: Path, wait_seconds: float | None = None) -> ReadOnlyStore:
    """The store at `metadata_path`, read-only, waiting up to `wait_seconds` (default: config's) per call
    while a run holds its lock."""
    return ReadOnlyStore(
        metadata_path, folders.METADATA_READ_WAIT_SECONDS if wait_seconds is None else wait_seconds
    )


def pipeline_runs(store: metadata_store.MetadataStore, pipeline_name: str) -> list:
    """The `pipeline_run` contexts of `pipeline_name`, newest first."""
    return sorted(
        (
            run
            for run in store.get_contexts_by_type("pipeline_run")
            if any(parent.name == pipeline_name for parent in store.get_parent_contexts_by_context(run.id))
        ),
        key=lambda run: (run.create_time_since_epoch, run.id),
        reverse=True,
    )


def run_context(store: metadata_store.MetadataStore, pipeline_name: str, run_id: str | None = None):
    """The `pipeline_run` context `run_id` of `pipeline_name`, or its newest one; None if there is none."""
    runs = pipeline_runs(store, pipeline_name)
    if run_id is not None:
        return next((run for run in runs if run.name == run_id), None)
    return runs[0] if runs else None


def find_run(metadata_path: Path, pipeline_name: str, run_id: str | None = None):
    """(store, run context) of `run_id` or the newest run; None if the store or the run does not exist."""
    if not metadata_path.exists():
        return None
    store = open_store(metadata_path)
    run = run_context(store, pipeline_name, run_id)
    return (store, run) if run is not None else None


def node_id_of(store, execution_id: int, pipeline_name: str) -> str | None:
    for context in store.get_contexts_by_execution(execution_id):
        if context.name.startswith(f"{pipeline_name}."):
            return context.name[len(pipeline_name) + 1 :]
    return None


def execution_seconds(execution: metadata_store_pb2.Execution) -> float:
    """Wall seconds from an execution's creation to its last update (0.1 s resolution)."""
    return round((execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000, 1)


def component_seconds(metadata_path: Path, pipeline_name: str) -> dict[str, float]:
    """Node id -> wall seconds of its execution in the newest run of `pipeline_name` (empty if none)."""
    found = find_run(metadata_path, pipeline_name)
    if found is None:
        return {}
    store, run = found
    return {
        node_id_of(store, execution.id, pipeline_name) or str(execution.id): execution_seconds(execution)
        for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
    }


def output_artifacts(store, execution_id: int) -> dict[str, list[metadata_store_pb2.Artifact]]:
    """Output key -> MLMD artifacts of one execution."""
    events = [e for e in store.get_events_by_execution_ids([execution_id]) if e.type in OUTPUT_EVENTS]
    by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    outputs: dict[str, list[metadata_store_pb2.Artifact]] = {}
    for event in events:
        outputs.setdefault(event.path.steps[0].key, []).append(by_id[event.artifact_id])
    return outputs


def node_outputs(store, run, pipeline_name: str, node_id: str, key: str) -> list[metadata_store_pb2.Artifact]:
    """The `key` outputs of `node_id` in `run` (executed or reused from the cache); [] if it has none."""
    for execution in store.get_executions_by_context(run.id):
        if execution.last_known_state not in (
            metadata_store_pb2.Execution.COMPLETE,
            metadata_store_pb2.Execution.CACHED,
        ):
            continue
        if node_id_of(store, execution.id, pipeline_name) == node_id:
            return output_artifacts(store, execution.id).get(key, [])
    return []


def output_uri(store, run, pipeline_name: str, node_id: str, key: str) -> str | None:
    """URI of the `key` output of `node_id` in `run` (executed or reused from the cache), else None."""
    artifacts = node_outputs(store, run, pipeline_name, node_id, key)
    return artifacts[0].uri if artifacts else None


def evaluation_of_pushed_version(metadata_path: Path, pipeline_name: str, version: str) -> str | None:
    """URI of the Evaluator's result in the run whose Pusher pushed `version`: what was measured for the
    model that serves as that version, on held-out data. None when no run pushed it (a folder copied by
    hand) or the store does not exist."""
    if not metadata_path.exists():
        return None
    store = open_store(metadata_path)
    for artifact in store.get_artifacts_by_type("PushedModel"):
        pushed = artifact.custom_properties.get("pushed_version")
        if pushed is None or (pushed.string_value or str(pushed.int_value)) != str(version):
            continue
        events = store.get_events_by_artifact_ids([artifact.id])
        for event in events:
            if event.type not in OUTPUT_EVENTS:
                continue
            for context in store.get_contexts_by_execution(event.execution_id):
                if context.type_id == store.get_context_type("pipeline_run").id:
                    found = output_uri(store, context, pipeline_name, "Evaluator", "evaluation")
                    if found:
                        return found
    return None
