"""The serving check on real models in a real model server process: a good model is blessed with its
figures; one that cannot load, one that answers wrong and one too slow are not, each saying why."""

import json
import os
import struct
from pathlib import Path

import pytest
from tfx.types import standard_artifacts

from benchmarks import model_variants
from clients import raw_examples
from components import serving_check
from config import folders
from config import pipeline as pipeline_config
from tests.support import serving_models

ROWS = 40


def _budgets(**changes) -> dict:
    return {
        "rows": ROWS,
        "max_prediction_difference": pipeline_config.SERVING_CHECK_MAX_PREDICTION_DIFFERENCE,
        "max_p99_seconds": pipeline_config.SERVING_CHECK_MAX_P99_SECONDS,
        "max_peak_memory_mb": pipeline_config.SERVING_CHECK_MAX_PEAK_MEMORY_MB,
        "load_timeout_seconds": pipeline_config.SERVING_CHECK_LOAD_TIMEOUT_SECONDS,
        **changes,
    }


def _write_gzipped_tfrecords(path: Path, records: list[bytes]) -> None:
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for record in records:
            writer.write(record)


def _with_tips(serialized: bytes) -> bytes:
    """As ExampleGen writes a trip: with the label's source, which a request may not carry."""
    import tensorflow as tf

    example = tf.train.Example.FromString(serialized)
    example.features.feature["tips"].float_list.value.append(2.5)
    return example.SerializeToString()


@pytest.fixture(scope="module")
def good_model(tmp_path_factory) -> Path:
    return serving_models.train(tmp_path_factory.mktemp("trained") / "model")


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> standard_artifacts.Examples:
    """The Evaluator's sample as ExampleGen writes it: gzipped TFRecords of tf.Examples in Split-eval."""
    header, rows = serving_models.sample_rows(keep_every=97)
    types = raw_examples.column_types()
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path_factory.mktemp("examples"))
    examples.split_names = json.dumps(["eval"])
    os.makedirs(Path(examples.uri) / "Split-eval")
    _write_gzipped_tfrecords(
        Path(examples.uri) / "Split-eval" / "data.gz",
        [_with_tips(raw_examples.serialized_example(header, row, types)) for row in rows[: ROWS + 10]],
    )
    return examples


def _check(model_dir: Path, held_out, budgets: dict, tmp_path: Path) -> standard_artifacts.InfraBlessing:
    model = standard_artifacts.Model()
    model.uri = str(model_dir.parent)  # the Trainer's layout: <uri>/Format-Serving
    if not (model_dir.parent / "Format-Serving").exists():
        (model_dir.parent / "Format-Serving").symlink_to(model_dir.name)
    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(tmp_path / "blessing")
    os.makedirs(blessing.uri)
    schema = standard_artifacts.Schema()
    schema.uri = str(folders.SCHEMA_PATH.parent)
    serving_check.Executor().Do(
        {"model": [model], "examples": [held_out], "schema": [schema]},
        {"blessing": [blessing]},
        {"split": "eval", "budgets": json.dumps(budgets)},
    )
    return blessing


def _report(blessing) -> dict:
    return json.loads((Path(blessing.uri) / serving_check.REPORT_FILE).read_text())


def test_a_good_model_answers_as_it_does_in_process_and_is_blessed(good_model, held_out, tmp_path):
    # A budget for a shared, loaded test machine (p99 50 ms measured under a load average of 10).
    blessing = _check(good_model, held_out, _budgets(max_p99_seconds=0.5), tmp_path)
    report = _report(blessing)
    assert blessing.get_int_custom_property("blessed") == 1, report
    assert (Path(blessing.uri) / "INFRA_BLESSED").exists()
    assert report["trips"] == ROWS
    assert report["largest_prediction_difference"] <= pipeline_config.SERVING_CHECK_MAX_PREDICTION_DIFFERENCE
    assert 0 < report["p99_seconds"] < 0.5
    assert 100 < report["peak_memory_mb"] < pipeline_config.SERVING_CHECK_MAX_PEAK_MEMORY_MB


def test_a_model_that_cannot_load_is_not_blessed(good_model, held_out, tmp_path):
    import shutil

    unloadable = tmp_path / "unloadable" / "Format-Serving"
    shutil.copytree(good_model, unloadable)
    (unloadable / "saved_model.pb").write_bytes(struct.pack("<q", 7) + b"truncated by a bad export")
    blessing = _check(unloadable, held_out, _budgets(), tmp_path)
    assert blessing.get_int_custom_property("blessed") == 0
    assert (Path(blessing.uri) / "INFRA_NOT_BLESSED").exists()
    assert "does not load in the model server" in blessing.get_string_custom_property("not_blessed_because")


def test_a_model_that_fails_on_real_trips_is_not_blessed(good_model, held_out, tmp_path):
    broken = model_variants.broken(good_model, tmp_path / "broken" / "Format-Serving")
    blessing = _check(broken, held_out, _budgets(), tmp_path)
    why = blessing.get_string_custom_property("not_blessed_because")
    assert blessing.get_int_custom_property("blessed") == 0
    assert "raw rows: the model server answered HTTP 5" in why, why


def test_a_model_too_slow_for_the_budget_is_not_blessed(good_model, held_out, tmp_path):
    slow = model_variants.slow(good_model, tmp_path / "slow" / "Format-Serving", seconds=0.2)
    blessing = _check(slow, held_out, _budgets(rows=12, max_p99_seconds=0.15), tmp_path)  # it sleeps 0.2 s
    why = blessing.get_string_custom_property("not_blessed_because")
    assert blessing.get_int_custom_property("blessed") == 0
    assert why.startswith("too slow: p99 ") and "above the budget of 150 ms" in why, why
    assert _report(blessing)["p99_seconds"] >= 0.2  # the model sleeps 200 ms per call
    assert _report(blessing)["largest_prediction_difference"] <= 1e-5  # slow, not wrong


def test_a_model_above_the_memory_budget_is_not_blessed(good_model, held_out, tmp_path):
    blessing = _check(
        good_model, held_out, _budgets(rows=4, max_peak_memory_mb=50, max_p99_seconds=10.0), tmp_path
    )
    why = blessing.get_string_custom_property("not_blessed_because")
    assert blessing.get_int_custom_property("blessed") == 0
    assert why.startswith("too much memory: the model server peaked at"), why
