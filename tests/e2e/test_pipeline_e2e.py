"""The real pipeline, end to end on ~2,100 real taxi rows, asserting on what ML Metadata recorded.

TFX's penguin e2e pattern: the first run executes every component once; the second reuses the cache
except for the baseline, Evaluator, report and Pusher (production is now the model the first run
pushed); the third executes nothing new; a new span makes ExampleGen and everything downstream run
again; gates set out of reach block the push and are named.
"""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from google.protobuf import text_format
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_model_analysis.writers import eval_config_writer
from tfx.orchestration import metadata

from clients import raw_examples
from components import production_model
from config import folders
from config import pipeline as pipeline_config
from inputs import layout
from pipeline import local_pipeline
from pipeline.beam_dag_runner import ProgressReportingBeamDagRunner
from registry import versions
from reports import evaluation_results, run_summary
from tests.support import browser
from tests.support.spans import SMALL_RUN_GATES, small_run, write_sampled_spans

pytestmark = pytest.mark.e2e

COMPONENTS = [
    "CsvExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "TrainingDataGate",
    "Transform",
    "Trainer",
    "ProductionModel",
    "EvaluationSample",
    "Evaluator",
    "SliceReport",
    "ServingCheck",
    "PushGate",
    "Pusher",
    "ModelCard",
    "BulkInferrer",
]
# The pipeline as configured, on small data: the newest span is scored too (SMALL_RUN leaves that out).
RUN = small_run(bulk_inference_on_newest_span=True)
NEWEST_SPAN = 20162
KEY_SLICE_NAME = "payment_type=Credit Card"


def _run_pipeline(settings: folders.Settings) -> dict[str, str]:
    """Runs the pipeline once; returns node id -> state of its execution in that run."""
    layout.prepare(settings)
    ProgressReportingBeamDagRunner().run(local_pipeline.build(settings, **RUN))
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
    node = store.get_context_by_type_and_name("node", f"{pipeline_config.PIPELINE_NAME}.{node_id}")
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


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data_root = root / "data"
    write_sampled_spans(data_root, keep_every=7)
    # The newest span arrives later, in the last test.
    shutil.move(data_root / f"span-{NEWEST_SPAN}", root / f"held-back-span-{NEWEST_SPAN}")
    return root, folders.Settings(output_dir=root / "outputs", data_root=data_root)


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
        assert used == text_format.Parse(folders.SCHEMA_PATH.read_text(), schema_pb2.Schema())

    summary = run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
    assert summary["succeeded"] and summary["evaluation"]["blessed"]
    assert summary["evaluation"]["metrics"]["auc"] >= SMALL_RUN_GATES.min_auc
    # The small evaluation window is under the sample's cap, so the Evaluator judged all of it.
    sample = summary["evaluation"]["sample"]
    assert sample["examples_judged"] == sample["examples_in_window"]
    assert sample["examples_judged"] == summary["evaluation"]["metrics"]["example_count"]
    pushed = Path(summary["pushed_model"])
    assert pushed.parent == settings.serving_model_dir and (pushed / "saved_model.pb").exists()
    # Before the push, the model server loaded it and answered held-out trips as the model does.
    check = summary["serving_check"]
    assert check["passed"] and check["trips"] == RUN["evaluation"].serving_check_rows, check
    assert 0 < check["p99_seconds"] <= RUN["evaluation"].serving_check_max_p99_seconds


def test_example_gen_writes_every_input_row_of_every_split(workspace):
    """Counted here from the CSV files themselves, not from the checks' counts ExampleGen compares with."""
    _, settings = workspace
    store = _store(settings.metadata_path)
    [examples] = _input_artifacts(store, "StatisticsGen", "examples")
    span = examples.custom_properties["span"].int_value
    splits = json.loads(examples.properties["split_names"].string_value)
    assert len(splits) == 4
    for split in splits:
        files = sorted(
            (settings.example_gen_input / f"{pipeline_config.SPAN_FOLDER_PREFIX}{span}" / split).glob("*.csv")
        )
        rows = sum(sum(1 for _ in csv.DictReader(path.open(newline=""))) for path in files)
        written = [
            record
            for path in sorted(Path(examples.uri, f"Split-{split}").glob("*.gz"))
            for record in tf.data.TFRecordDataset(str(path), "GZIP").as_numpy_iterator()
        ]
        assert files and len(written) == rows > 0, split


def test_pushed_model_serves_raw_examples_without_tips(workspace):
    _, settings = workspace
    [version] = [
        settings.serving_model_dir / v for v in versions.complete_versions(settings.serving_model_dir)
    ]
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    csv_file = next((settings.data_root / "span-20161").glob("*.csv"))
    header, *rows = [line.split(",") for line in csv_file.read_text().splitlines()[:6]]
    examples = tf.constant(
        [
            raw_examples.serialized_example(header, row, raw_examples.column_types())
            for row in rows
            if len(row) == len(header)
        ]
    )
    probabilities = serve(examples=examples)["big_tipper_probability"].numpy()
    assert probabilities.shape == (len(examples), 1)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_the_newest_span_is_scored_trip_by_trip_by_the_blessed_candidate(workspace):
    _, settings = workspace
    store = _store(settings.metadata_path)
    node = store.get_context_by_type_and_name("node", f"{pipeline_config.PIPELINE_NAME}.BulkInferrer")
    [execution] = store.get_executions_by_context(node.id)
    [output] = store.get_artifacts_by_id(
        [e.artifact_id for e in store.get_events_by_execution_ids([execution.id]) if e.type == e.OUTPUT]
    )
    logs = sorted(Path(output.uri).glob("*.gz"))
    records = list(
        tf.data.TFRecordDataset([str(p) for p in logs], compression_type="GZIP").as_numpy_iterator()
    )
    assert (
        len(records) == layout.split_rows(settings.example_gen_input, pipeline_config.CURRENT_SPAN_SPLIT) > 0
    )


def test_slice_report_holds_every_slice_with_tfmas_values(workspace):
    _, settings = workspace
    summary = run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
    report_dir = Path(summary["slice_report"]).parent
    data = json.loads((report_dir / folders.SLICE_METRICS_FILE).read_text())
    rows = {row["slice"]: row for row in data["slices"]}
    # The first run's evaluation holds the candidate alone (nothing in production), so unnamed.
    result = tfma.load_eval_result(summary["evaluation"]["evaluation_uri"])
    assert len(rows) == len(result.slicing_metrics)
    for slice_key, sliced in result.slicing_metrics:
        metrics, row = sliced[""][""], rows[evaluation_results.slice_name(slice_key)]
        assert row["metrics"]["example_count"] == metrics["example_count"]["doubleValue"]
        assert row["metrics"]["binary_accuracy"] == pytest.approx(metrics["binary_accuracy"]["doubleValue"])
    # Every configured slicing spec, the key slice, and the hour-band cross from Transform.
    specs = {" × ".join(features) or "Overall" for features in pipeline_config.SLICE_FEATURES}
    assert {row["spec"] for row in data["slices"]} == specs
    assert rows[KEY_SLICE_NAME]["is_key_slice"] and not rows[KEY_SLICE_NAME]["small"]
    assert data["baseline"]["source"] == production_model.FROM_CANDIDATE
    # Nothing in production yet: the candidate was evaluated alone, not a second time as its own baseline.
    assert all(row["baseline_metrics"] is None for row in data["slices"])
    eval_config = eval_config_writer.load_eval_run(summary["evaluation"]["evaluation_uri"])[0]
    assert len(eval_config.model_specs) == 1 and not eval_config.model_specs[0].is_baseline


def test_slice_report_renders_in_a_browser(workspace, tmp_path):
    _, settings = workspace
    summary = run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
    page = Path(summary["slice_report"])
    dom = browser.Elements(browser.dump_dom(page))
    assert dom.find("table", id="slices")[0][1].get("data-ready") == "true"
    data = json.loads((page.parent / folders.SLICE_METRICS_FILE).read_text())
    assert len([e for e in dom.find("tr") if "data-slice" in e[1]]) == len(data["slices"])
    assert dom.find("rect", **{"class": "bar"}) and dom.find("polyline", **{"class": "series"})
    assert browser.screenshot(page, tmp_path / "slice_report.png").stat().st_size > 20_000


def test_report_command_prints_the_slice_table_and_the_page(workspace):
    _, settings = workspace
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "report",
            "--output-dir",
            str(settings.output_dir),
            "--top",
            "5",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "model BLESSED" in printed
    assert KEY_SLICE_NAME in printed and "[key]" in printed
    assert "... " in printed and "more: --all prints them" in printed
    assert settings.slice_report_path.read_bytes().startswith(b"<!DOCTYPE html>")
    assert str(settings.slice_report_path) in printed


def test_second_run_compares_with_production_and_reuses_the_rest(workspace):
    _, settings = workspace
    states = _run_pipeline(settings)
    executed = sorted(node for node in COMPONENTS if states[node] == "COMPLETE")
    # The pushed model is now production: a new baseline, so a new evaluation, report and push.
    # The Pusher's new (not pushed) output is a new card, kept in the run's outputs only.
    assert executed == [
        "BulkInferrer",
        "Evaluator",
        "ModelCard",
        "ProductionModel",
        "PushGate",
        "Pusher",
        "SliceReport",
    ]
    assert all(states[node] == "CACHED" for node in COMPONENTS if node not in executed)
    summary = run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
    [first_version] = versions.complete_versions(settings.serving_model_dir)[:1]
    assert summary["evaluation"]["baseline"]["source"] == production_model.FROM_PRODUCTION
    assert summary["evaluation"]["baseline"]["version"] == first_version
    # The candidate is that model: the first run's evaluation of it is reused, judged for two models.
    store = _store(settings.metadata_path)
    evaluations = sorted(store.get_artifacts_by_type("ModelEvaluation"), key=lambda artifact: artifact.id)
    first, second = evaluations[-2:]
    assert (
        summary["evaluation"]["reused_from"] == first.uri
        and summary["evaluation"]["evaluation_uri"] == second.uri
    )
    assert summary["evaluation"]["blessed"]
    assert summary["evaluation"]["baseline_metrics"] == summary["evaluation"]["metrics"]
    # The run's SliceReport page (the ModelCard step writes an HtmlReport too).
    page = Path(summary["slice_report"]).read_text()
    assert "byte for byte" in page and first.uri in page


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
    [evaluated_examples] = _input_artifacts(store, "Evaluator", "examples")
    assert evaluated_examples.custom_properties["span"].int_value == NEWEST_SPAN
    # Transform writes no rows: the Trainer reads the new span's raw examples through Transform's graph.
    assert _producer(store, examples.id) == "CsvExampleGen"
    assert examples.custom_properties["span"].int_value == NEWEST_SPAN


def test_regression_overall_and_on_the_key_slice_is_not_pushed_and_named(workspace):
    _, settings = workspace
    pushed_before = {
        v: versions.fingerprint(settings.serving_model_dir / v)
        for v in versions.complete_versions(settings.serving_model_dir)
    }
    layout.prepare(settings)
    # Also a cap under the evaluation window's size: the Evaluator judges exactly that many examples.
    unreachable = small_run(min_auc=0.999, key_slice_min_auc=0.99, max_evaluation_examples=350)
    ProgressReportingBeamDagRunner().run(local_pipeline.build(settings, **unreachable))

    states = _states_of_latest_run(settings.metadata_path)
    assert states["Evaluator"] == states["Pusher"] == states["SliceReport"] == "COMPLETE"
    summary = run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
    assert summary["evaluation"]["blessed"] is False
    assert summary["pushed_model"] is None
    sample = summary["evaluation"]["sample"]
    assert sample["examples_judged"] == 350 < sample["examples_in_window"]
    assert summary["evaluation"]["metrics"]["example_count"] == 350
    failures = summary["evaluation"]["not_blessed_because"]
    # A gate may fail twice on the key slice (its floor, and its change against production): keep the floor's.
    reasons = {(r["metric"], r["slice"]): r for r in failures if "change vs baseline" not in r["bound"]}
    assert set(reasons) == {("auc", "Overall"), ("auc", KEY_SLICE_NAME)}
    assert {(r["metric"], r["slice"]) for r in failures} == set(reasons)
    overall = reasons[("auc", "Overall")]
    assert overall["value"] == pytest.approx(summary["evaluation"]["metrics"]["auc"])
    assert overall["bound"] == ">= 0.999"
    assert overall["baseline_value"] == pytest.approx(summary["evaluation"]["baseline_metrics"]["auc"])
    key = reasons[("auc", KEY_SLICE_NAME)]
    assert key["value"] < 0.99 and key["bound"].startswith(">= 0.99 (key slice")
    assert key["examples"] >= pipeline_config.MIN_SLICE_EXAMPLES and key["baseline_value"] is not None

    report = Path(summary["slice_report"])
    assert "NOT BLESSED" in report.read_text()
    assert [
        (f["metric"], f["slice"])
        for f in json.loads((report.parent / folders.SLICE_METRICS_FILE).read_text())["failures"]
    ]
    # Production is untouched: the same versions, byte for byte.
    assert {
        v: versions.fingerprint(settings.serving_model_dir / v)
        for v in versions.complete_versions(settings.serving_model_dir)
    } == pushed_before
