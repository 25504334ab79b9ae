"""The real pipeline, end to end on ~2,100 real taxi rows, asserting on what ML Metadata recorded.

TFX's penguin e2e pattern: the first run executes every component once; the second reuses the cache
except for the Evaluator and Pusher (the baseline is now the model the first run pushed); the third
executes nothing new; a new span makes ExampleGen and everything downstream run again.
"""

import shutil
from pathlib import Path

import pytest
import tensorflow as tf
from google.protobuf import text_format
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.orchestration import metadata

from models import features
from pipeline import configs, inputs, local_pipeline, run_report
from tests.conftest import write_sampled_spans

pytestmark = pytest.mark.e2e

COMPONENTS = [
    "CsvExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "Transform",
    "Trainer",
    "Evaluator",
    "Pusher",
]
NEWEST_SPAN = 20162
# Small data trains fast; the gates stay real but fit ~700 evaluation rows and 150 training steps.
SMALL_RUN = {"train_steps": 150, "eval_steps": 5, "min_auc": 0.85, "min_accuracy": 0.8}


def _run_pipeline(settings: configs.Settings) -> dict[str, str]:
    """Runs the pipeline once; returns node id -> state of its execution in that run."""
    inputs.prepare(settings)
    run_report.ProgressReportingBeamDagRunner().run(local_pipeline.build(settings, **SMALL_RUN))
    return _states_of_latest_run(settings.metadata_path)


def _store(metadata_path: Path) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(str(metadata_path)))


def _states_of_latest_run(metadata_path: Path) -> dict[str, str]:
    store = _store(metadata_path)
    run = max(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
    states = {}
    for execution in store.get_executions_by_context(run.id):
        node = next(
            c for c in store.get_contexts_by_execution(execution.id) if c.type_id == _node_type_id(store)
        )
        node_id = node.name.split(".", 1)[1]
        assert node_id not in states, f"{node_id} executed twice in one run"
        states[node_id] = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
    return states


def _node_type_id(store) -> int:
    return store.get_context_type("node").id


def _input_artifacts(store, node_id: str, key: str):
    """Artifacts the newest execution of `node_id` read under input `key`, with their producer node."""
    node = store.get_context_by_type_and_name("node", f"{configs.PIPELINE_NAME}.{node_id}")
    execution = max(store.get_executions_by_context(node.id), key=lambda e: e.id)
    events = [
        e
        for e in store.get_events_by_execution_ids([execution.id])
        if e.type == metadata_store_pb2.Event.INPUT and e.path.steps[0].key == key
    ]
    return store.get_artifacts_by_id([e.artifact_id for e in events])


def _producer(store, artifact_id: int) -> str:
    event = next(
        e
        for e in store.get_events_by_artifact_ids([artifact_id])
        if e.type == metadata_store_pb2.Event.OUTPUT
    )
    node = next(
        c for c in store.get_contexts_by_execution(event.execution_id) if c.type_id == _node_type_id(store)
    )
    return node.name.split(".", 1)[1]


def _serialized_example(csv_header: list[str], csv_row: list[str]) -> bytes:
    """A raw tf.Example as a serving client would send it: taxi columns, no tips."""
    schema = text_format.Parse(configs.SCHEMA_PATH.read_text(), schema_pb2.Schema())
    kinds = {f.name: f.type for f in schema.feature}
    feature = {}
    for name, value in zip(csv_header, csv_row, strict=True):
        if name == features.TIPS or value == "":
            continue
        if kinds[name] == schema_pb2.BYTES:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        elif kinds[name] == schema_pb2.INT:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(float(value))]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data_root = root / "data"
    write_sampled_spans(data_root, keep_every=7)
    # The newest span arrives later, in the last test.
    shutil.move(data_root / f"span-{NEWEST_SPAN}", root / f"held-back-span-{NEWEST_SPAN}")
    return root, configs.Settings(output_dir=root / "outputs", data_root=data_root)


def test_first_run_executes_every_component_once_and_pushes(workspace):
    _, settings = workspace
    states = _run_pipeline(settings)
    assert {node: states[node] for node in COMPONENTS} == dict.fromkeys(COMPONENTS, "COMPLETE")

    store = _store(settings.metadata_path)
    for consumer in ("ExampleValidator", "Transform"):
        [schema_artifact] = _input_artifacts(store, consumer, "schema")
        assert _producer(store, schema_artifact.id) == "ImportSchemaGen"
        used = text_format.Parse(
            (Path(schema_artifact.uri) / "schema.pbtxt").read_text(), schema_pb2.Schema()
        )
        assert used == text_format.Parse(configs.SCHEMA_PATH.read_text(), schema_pb2.Schema())

    summary = run_report.summarize_latest_run(settings.metadata_path, configs.PIPELINE_NAME)
    assert summary["succeeded"] and summary["evaluation"]["blessed"]
    assert summary["evaluation"]["metrics"]["auc"] >= SMALL_RUN["min_auc"]
    pushed = Path(summary["pushed_model"])
    assert pushed.parent == settings.serving_model_dir and (pushed / "saved_model.pb").exists()


def test_pushed_model_serves_raw_examples_without_tips(workspace):
    _, settings = workspace
    [version] = list(settings.serving_model_dir.iterdir())
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    csv_file = next((settings.data_root / "span-20161").glob("*.csv"))
    header, *rows = [line.split(",") for line in csv_file.read_text().splitlines()[:6]]
    examples = tf.constant([_serialized_example(header, row) for row in rows if len(row) == len(header)])
    probabilities = serve(examples=examples)["big_tipper_probability"].numpy()
    assert probabilities.shape == (len(examples), 1)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_second_run_reuses_cache_except_evaluator_and_pusher(workspace):
    _, settings = workspace
    states = _run_pipeline(settings)
    executed = sorted(node for node in COMPONENTS if states[node] == "COMPLETE")
    assert executed == ["Evaluator", "Pusher"]
    assert all(states[node] == "CACHED" for node in COMPONENTS if node not in executed)


def test_third_run_executes_nothing_new(workspace):
    _, settings = workspace
    states = _run_pipeline(settings)
    assert {node: states[node] for node in COMPONENTS} == dict.fromkeys(COMPONENTS, "CACHED")


def test_new_span_reruns_example_gen_and_everything_downstream(workspace):
    root, settings = workspace
    shutil.move(root / f"held-back-span-{NEWEST_SPAN}", settings.data_root / f"span-{NEWEST_SPAN}")
    states = _run_pipeline(settings)
    downstream = [node for node in COMPONENTS if node != "ImportSchemaGen"]
    assert {node: states[node] for node in downstream} == dict.fromkeys(downstream, "COMPLETE")
    assert states["ImportSchemaGen"] == "CACHED"

    store = _store(settings.metadata_path)
    [examples] = _input_artifacts(store, "Trainer", "examples")
    [raw_examples] = _input_artifacts(store, "Evaluator", "examples")
    assert raw_examples.custom_properties["span"].int_value == NEWEST_SPAN
    assert _producer(store, examples.id) == "Transform"


def test_unblessed_model_is_not_pushed_and_the_reason_is_named(workspace):
    _, settings = workspace
    pushed_before = sorted(p.name for p in settings.serving_model_dir.iterdir())
    inputs.prepare(settings)
    unreachable = {**SMALL_RUN, "min_auc": 0.999}
    run_report.ProgressReportingBeamDagRunner().run(local_pipeline.build(settings, **unreachable))

    states = _states_of_latest_run(settings.metadata_path)
    assert states["Evaluator"] == states["Pusher"] == "COMPLETE"
    summary = run_report.summarize_latest_run(settings.metadata_path, configs.PIPELINE_NAME)
    assert summary["evaluation"]["blessed"] is False
    assert summary["pushed_model"] is None
    [reason] = summary["evaluation"]["not_blessed_because"]
    assert (reason["metric"], reason["slice"], reason["is_change_vs_baseline"]) == ("auc", "Overall", False)
    assert reason["value"] == pytest.approx(summary["evaluation"]["metrics"]["auc"])
    assert "0.999" in reason["threshold"]
    assert sorted(p.name for p in settings.serving_model_dir.iterdir()) == pushed_before
