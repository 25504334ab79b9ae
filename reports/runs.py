"""Finding a pipeline's runs and their outputs in ML Metadata, with nothing heavier than ml_metadata.

Importing TFX or TFMA costs 11-16 s; `make report` and the run-id check before a run need neither.
"""

from pathlib import Path

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.INTERNAL_OUTPUT)


def open_store(metadata_path: Path) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(metadata_path)
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


def run_context(store: metadata_store.MetadataStore, pipeline_name: str, run_id: str | None = None):
    """The `pipeline_run` context `run_id` of `pipeline_name`, or its newest one; None if there is none."""
    runs = [
        run
        for run in store.get_contexts_by_type("pipeline_run")
        if any(parent.name == pipeline_name for parent in store.get_parent_contexts_by_context(run.id))
    ]
    if run_id is not None:
        return next((run for run in runs if run.name == run_id), None)
    return max(runs, key=lambda run: (run.create_time_since_epoch, run.id), default=None)


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


def output_uri(store, run, pipeline_name: str, node_id: str, key: str) -> str | None:
    """URI of the `key` output of `node_id` in `run` (executed or reused from the cache), else None."""
    for execution in store.get_executions_by_context(run.id):
        if execution.last_known_state not in (
            metadata_store_pb2.Execution.COMPLETE,
            metadata_store_pb2.Execution.CACHED,
        ):
            continue
        if node_id_of(store, execution.id, pipeline_name) == node_id:
            artifacts = output_artifacts(store, execution.id).get(key, [])
            return artifacts[0].uri if artifacts else None
    return None


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
