"""Corrupted data the pipeline itself catches, on real runs of the real components.

Faults in the training data are caught by ExampleValidator (schema or drift) and stop the run at the
TrainingDataGate, before Transform: the command exits 3, the summary names each anomaly, and the model
already in production is byte-identical afterwards. A label flip leaves every feature's distribution
alone, so the Evaluator catches it on the held-out newest data. Skew in the serving logs holds the push
of a model the Evaluator blessed. The faults that break parsing are in tests/test_corrupted_data.py.
"""

import json
import re
import shutil
from pathlib import Path

import pytest

from cli import main as cli
from config import folders
from config import pipeline as pipeline_config
from inputs import layout
from pipeline import local_pipeline, local_runner
from pipeline.beam_dag_runner import ProgressReportingBeamDagRunner
from registry import versions
from reports import run_summary
from tests.support import corrupted_data
from tests.support.outputs import tree_digest
from tests.support.spans import SMALL_RUN, write_sampled_spans

pytestmark = pytest.mark.e2e

CURRENT = pipeline_config.CURRENT_SPAN_SPLIT


@pytest.fixture(scope="module")
def real_spans(tmp_path_factory) -> Path:
    """All 15,002 rows: drift is gated only on spans of at least 200 rows, and 2016's hold ~400."""
    data_root = tmp_path_factory.mktemp("real") / "data"
    write_sampled_spans(data_root, keep_every=1)
    return data_root


def _anomalies(summary: dict) -> set[tuple[str, str, str]]:
    return {(a["split"], a["feature"], a["kind"]) for a in summary["data_validation"]["anomalies"]}


@pytest.mark.parametrize(
    "corrupt, expected",
    [
        (corrupted_data.wrong_type, {(CURRENT, "trip_seconds", "UNEXPECTED_DATA_TYPE")}),
        (
            corrupted_data.out_of_domain,
            {
                (CURRENT, "payment_type", "ENUM_TYPE_UNEXPECTED_STRING_VALUES"),
                (CURRENT, "fare", "FLOAT_TYPE_SMALL_FLOAT"),
                (CURRENT, "trip_start_hour", "INT_TYPE_BIG_INT"),
            },
        ),
        (
            corrupted_data.dead_feature,
            {
                (CURRENT, "dropoff_latitude", "FEATURE_TYPE_NOT_PRESENT"),
                (CURRENT, "dropoff_longitude", "FEATURE_TYPE_NOT_PRESENT"),
            },
        ),
        (corrupted_data.fares_times_three, {(CURRENT, "fare", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH")}),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_validation_stops_the_run_before_training(
    tmp_path, real_spans, output_dir_with_pushed_model, capsys, corrupt, expected
):
    data_root = tmp_path / "data"
    shutil.copytree(real_spans, data_root)
    corrupt(data_root)
    production_before = tree_digest(output_dir_with_pushed_model / "serving_model")

    exit_code = cli.main(
        ["run", "--output-dir", str(output_dir_with_pushed_model), "--data-root", str(data_root)]
    )

    assert exit_code == local_runner.DATA_REJECTED_EXIT_CODE
    summary = json.loads((output_dir_with_pushed_model / "run_summary.json").read_text())
    assert summary["stopped_before_training"]
    assert expected <= _anomalies(summary)
    assert all(a["action"] == "blocks training" for a in summary["data_validation"]["anomalies"])
    ran = {c["component"] for c in summary["components"]}
    assert "Transform" not in ran and "Trainer" not in ran and "Pusher" not in ran
    assert summary["pushed_model"] is None
    assert tree_digest(output_dir_with_pushed_model / "serving_model") == production_before
    printed = capsys.readouterr()
    for _, feature, kind in expected:
        assert f"{CURRENT}/{feature}: {kind}" in printed.out
    assert "Run STOPPED before training" in printed.out
    assert "Traceback" not in printed.err and "nothing was trained or pushed" in printed.err


def test_drift_anomaly_shows_the_measured_distance_and_threshold(tmp_path, real_spans):
    """The same fault as above, read for its numbers: fares x3 against the previous half-year."""
    data_root = tmp_path / "data"
    shutil.copytree(real_spans, data_root)
    corrupted_data.fares_times_three(data_root)
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=data_root)
    layout.prepare(settings)
    with pytest.raises(RuntimeError, match="TrainingDataGate|DataRejectedError"):
        ProgressReportingBeamDagRunner().run(local_pipeline.build(settings))
    summary = run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)

    anomalies = summary["data_validation"]["anomalies"]
    [fare] = [a for a in anomalies if a["feature"] == "fare" and a["measure"] == "Jensen-Shannon"]
    # Against the span before it and against the training window: each names the factor.
    units = [a for a in anomalies if a["feature"] == "fare" and a["short_description"] == "Units changed?"]
    assert len(units) == 2
    for found in units:
        factor = float(re.search(r"changed by x([0-9.]+)", found["description"]).group(1))
        assert 2.5 < factor < 3.6  # fares x3 against miles and seconds, times the half-year's own change
    assert fare["measure"] == "Jensen-Shannon"
    assert fare["threshold"] == 0.15 and fare["value"] > 0.3  # 0.405 measured; the real 2016 pair is 0.096
    drift = {d["feature"]: d for d in summary["data_validation"]["distances"] if d["comparison"] == "drift"}
    assert drift["fare"]["value"] == fare["value"]
    assert drift["payment_type"]["value"] < drift["payment_type"]["threshold"]  # recorded though not fired


def _run_small(settings: folders.Settings) -> dict:
    layout.prepare(settings)
    ProgressReportingBeamDagRunner().run(local_pipeline.build(settings, **SMALL_RUN))
    return run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)


def test_label_flip_passes_validation_and_is_refused_by_the_evaluator(tmp_path):
    data_root = tmp_path / "data"
    write_sampled_spans(data_root, keep_every=7)
    corrupted_data.label_flip(data_root)
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=data_root)

    summary = _run_small(settings)

    assert not summary["stopped_before_training"]
    assert summary["data_validation"]["anomalies"] == []
    evaluation = summary["evaluation"]
    assert not evaluation["blessed"]
    assert any(f["metric"] == "auc" and f["slice"] == "Overall" for f in evaluation["not_blessed_because"])
    assert summary["pushed_model"] is None
    assert versions.complete_versions(settings.serving_model_dir) == []


def test_serving_skew_holds_the_push_of_a_blessed_model(tmp_path, real_spans):
    data_root = tmp_path / "data"
    write_sampled_spans(data_root, keep_every=7)
    serving_logs = tmp_path / "serving_logs"
    from inputs import taxi_sample

    taxi_sample.write_serving_logs(corrupted_data.newest_span_file(real_spans), serving_logs)
    corrupted_data.serving_fares_in_cents(serving_logs)
    settings = folders.Settings(
        output_dir=tmp_path / "outputs", data_root=data_root, serving_logs=serving_logs
    )

    summary = _run_small(settings)

    assert not summary["stopped_before_training"]
    assert summary["evaluation"]["blessed"]
    held = [a for a in summary["data_validation"]["anomalies"] if a["action"] == "holds the push"]
    assert ("serving", "fare", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH") in _anomalies(summary)
    assert all(a["split"] == "serving" for a in held)
    assert "serving/fare" in summary["push_held_because"]
    assert summary["pushed_model"] is None
    assert versions.complete_versions(settings.serving_model_dir) == []
