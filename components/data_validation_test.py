"""The validator's executor and the gates on real statistics of the real 2016 half-years (TFDV, no mocks)."""

import csv
import dataclasses
import functools
import shutil
from pathlib import Path

import pytest
from tfx.types import artifact_utils, standard_artifacts

from components import data_gates, data_reference, data_validation, units_validation
from config import folders
from config import pipeline as pipeline_config
from inputs import layout, taxi_sample
from reports import drift, validation_results

CURRENT, PREVIOUS, TRAIN = (
    pipeline_config.CURRENT_SPAN_SPLIT,
    pipeline_config.PREVIOUS_SPAN_SPLIT,
    pipeline_config.TRAIN_SPLIT,
)


def _rows(csv_file: Path) -> tuple[list[str], list[list[str]]]:
    with csv_file.open(newline="") as handle:
        reader = csv.reader(handle)
        return next(reader), list(reader)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _statistics_artifact(folder: Path, csv_by_split: dict[str, Path]) -> standard_artifacts.ExampleStatistics:
    """An ExampleStatistics artifact laid out as StatisticsGen writes it, from TFDV on each split's CSV."""
    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = str(folder)
    artifact.split_names = artifact_utils.encode_split_names(list(csv_by_split))
    artifact.set_string_custom_property("tfx_version", "1.16.0")
    for split, csv_file in csv_by_split.items():
        split_dir = Path(artifact_utils.get_split_uri([artifact], split))
        split_dir.mkdir(parents=True)
        (split_dir / "FeatureStats.pb").write_bytes(_statistics(str(csv_file)))
    return artifact


@functools.cache
def _statistics(csv_file: str) -> bytes:
    """Serialized statistics of one CSV (each file is computed once per session: Beam starts per call)."""
    return drift.csv_statistics(csv_file).SerializeToString()


def _schema_artifact(folder: Path) -> standard_artifacts.Schema:
    artifact = standard_artifacts.Schema()
    artifact.uri = str(folder)
    folder.mkdir(parents=True)
    (folder / "schema.pbtxt").write_text(folders.SCHEMA_PATH.read_text())
    return artifact


@pytest.fixture(scope="module")
def half_years(tmp_path_factory) -> dict[str, Path]:
    """The sample's 2016 half-years (430 and 405 rows) and the training window before them, as CSVs."""
    folder = tmp_path_factory.mktemp("spans")
    taxi_sample.write_spans(taxi_sample.sample_csv_path(), folder)
    return {
        PREVIOUS: folder / "span-20161" / "data.csv",
        CURRENT: folder / "span-20162" / "data.csv",
        TRAIN: folder / "span-20151" / "data.csv",
    }


def _validate(
    tmp_path: Path,
    csv_by_split: dict[str, Path],
    serving_csv: Path | None = None,
    min_examples=200,
    data_reference_dir: Path | None = None,
):
    """Runs the validator's executor on these splits (TFDV statistics of each CSV). The units check reads
    the files laid out as inputs/layout.py does: the previous and current ones as spans 20161 and 20162 of
    the evaluation window, after the six real half-years before them (beside the training split's file)."""
    statistics = _statistics_artifact(tmp_path / "statistics", csv_by_split)
    examples = standard_artifacts.Examples()  # only its span is read: the units check reads the window's CSVs
    examples.set_int_custom_property("span", 20162)
    inputs = {
        "statistics": [statistics],
        "schema": [_schema_artifact(tmp_path / "schema")],
        "examples": [examples],
    }
    example_gen_input = tmp_path / "example_gen_input"
    training_window = {
        int(folder.name.split("-")[1]): [folder / "data.csv"]
        for folder in csv_by_split[TRAIN].parent.parent.glob("span-*")
        if int(folder.name.split("-")[1]) < 20161
    }
    layout.write_example_gen_input(
        {**training_window, 20161: [csv_by_split[PREVIOUS]], 20162: [csv_by_split[CURRENT]]},
        example_gen_input,
        training_window_spans=6,
        evaluation_spans=2,
    )
    serving_logs = None
    if serving_csv is not None:
        serving = {pipeline_config.SERVING_SPLIT: serving_csv}
        inputs["serving_statistics"] = [_statistics_artifact(tmp_path / "serving_statistics", serving)]
        serving_logs = tmp_path / "serving_logs"  # a folder of request logs, as the pipeline reads them
        serving_logs.mkdir()
        shutil.copy(serving_csv, serving_logs / "requests.csv")
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "anomalies")
    data = dataclasses.replace(pipeline_config.Data(), min_examples_to_gate_on_distance=min_examples)
    data_validation.Executor().Do(
        inputs,
        {"anomalies": [anomalies]},
        {
            "current_span_split": CURRENT,
            "previous_span_split": PREVIOUS,
            "training_split": TRAIN,
            "eval_split": pipeline_config.EVAL_SPLIT,
            "min_examples_to_gate": min_examples,
            "units_check": units_validation.settings_json(data),
            "example_gen_input": str(example_gen_input),
            "serving_logs": str(serving_logs or ""),
            "data_reference_dir": str(data_reference_dir or ""),
        },
    )
    return anomalies


def _serving_copy(source: Path, target: Path, change=None) -> Path:
    header, rows = _rows(source)
    tips = header.index("tips")
    if change:
        rows = [change(header, row) for row in rows]
    return _write(
        target, [c for c in header if c != "tips"], [[v for i, v in enumerate(r) if i != tips] for r in rows]
    )


def test_real_half_years_pass_and_every_distance_is_recorded(tmp_path, half_years):
    serving = _serving_copy(half_years[CURRENT], tmp_path / "requests.csv")
    anomalies = _validate(tmp_path, half_years, serving)

    by_split = validation_results.read_anomalies(anomalies)
    assert validation_results.anomaly_rows(by_split) == []
    assert anomalies.get_json_value_custom_property("blessed") == {
        PREVIOUS: 1,
        CURRENT: 1,
        TRAIN: 1,
        pipeline_config.SERVING_SPLIT: 1,
    }
    distances = validation_results.distance_rows(by_split)
    drift = {r["feature"]: r for r in distances if r["comparison"] == "drift"}
    skew = {r["feature"]: r for r in distances if r["comparison"] == "skew"}
    # Every feature with a comparator in the schema has its distance, including those far below threshold.
    assert {"fare", "payment_type", "trip_start_day", "tips"} <= set(drift)
    assert "tips" not in skew and {"fare", "company"} <= set(skew)
    assert drift["payment_type"]["measure"] == "L-infinity"
    assert drift["fare"]["measure"] == "Jensen-Shannon"
    assert 0 < drift["fare"]["value"] < drift["fare"]["threshold"]
    assert not data_gates.blocking_anomalies(anomalies) and not data_gates.push_holding_anomalies(anomalies)
    units = validation_results.unit_change_rows(anomalies)
    # Nothing validated before: each span of the evaluation window against the training window and the span
    # before it, and the serving logs (no tips: three amounts) against the training window.
    assert {(r["span"], r["kind"]) for r in units} == {
        (20161, units_validation.REFERENCE),
        (20161, units_validation.PREVIOUS_SPAN),
        (20162, units_validation.REFERENCE),
        (20162, units_validation.PREVIOUS_SPAN),
        (None, units_validation.SERVING),
    }
    assert len(units) == 4 * len(pipeline_config.UNIT_CHANGE_AMOUNTS) + 3
    assert all(1 / r["bound"] < r["factor"] < r["bound"] and not r["crossed"] for r in units)


def _fares_tripled(source: Path, target: Path, rows: int | None = None) -> Path:
    """The first `rows` rows of `source` (all by default) with every fare three times too large."""
    header, content = _rows(source)
    fare = header.index("fare")
    return _write(
        target, header, [r[:fare] + [f"{float(r[fare]) * 3:.2f}"] + r[fare + 1 :] for r in content[:rows]]
    )


def test_fares_times_three_is_drift_that_blocks_training(tmp_path, half_years):
    tripled = _fares_tripled(half_years[CURRENT], tmp_path / "tripled.csv")

    anomalies = _validate(tmp_path, {**half_years, CURRENT: tripled})

    [row, *units] = data_gates.blocking_anomalies(anomalies)
    assert (row["split"], row["feature"], row["kind"]) == (
        CURRENT,
        "fare",
        "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
    )
    assert row["measure"] == "Jensen-Shannon" and row["value"] > 2 * row["threshold"]
    # Against the training window and against the span before it.
    assert [(u["feature"], u["kind"]) for u in units] == [("fare", "CUSTOM_VALIDATION")] * 2
    assert row["action"] == validation_results.BLOCK_TRAINING
    gate = data_gates.TrainingDataGateExecutor()
    with pytest.raises(
        data_gates.DataRejectedError,
        match=r"current_span/fare: COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH.*threshold 0\.150",
    ):
        gate.Do({"anomalies": [anomalies]}, {}, {})


def _scaled(source: Path, target: Path, column: str, factor: float, drop_tips: bool = False) -> Path:
    """`source` with every value of `column` multiplied by `factor`, as a change of units would."""
    header, content = _rows(source)
    index = header.index(column)
    for row in content:
        if row[index]:
            row[index] = (
                f"{float(row[index]) * factor:.2f}"
                if column != "trip_seconds"
                else str(round(float(row[index]) * factor))
            )
    return (
        _serving_copy(_write(target, header, content), target)
        if drop_tips
        else _write(target, header, content)
    )


def test_a_change_of_units_jensen_shannon_misses_blocks_training(tmp_path, half_years):
    scaled = _scaled(half_years[CURRENT], tmp_path / "minutes.csv", "trip_seconds", 1.5)

    anomalies = _validate(tmp_path, {**half_years, CURRENT: scaled})

    rows = data_gates.blocking_anomalies(anomalies)
    assert {(r["split"], r["feature"], r["kind"]) for r in rows} == {
        (CURRENT, "trip_seconds", "CUSTOM_VALIDATION")
    }
    description = " ".join(r["description"] for r in rows)  # one reason per comparison
    assert "span 20162 against the training window 20131-20152: trip_seconds" in description
    assert "span 20162 against span 20161: trip_seconds" in description
    assert "median relation changed by x1.5" in description and "units of trip_seconds" in description
    drift = {
        r["feature"]: r
        for r in validation_results.distance_rows(validation_results.read_anomalies(anomalies))
    }
    assert (
        drift["trip_seconds"]["value"] < drift["trip_seconds"]["threshold"]
    )  # the distance alone: within bounds


def test_a_change_of_units_in_the_serving_logs_holds_the_push(tmp_path, half_years):
    serving = _scaled(half_years[CURRENT], tmp_path / "requests.csv", "fare", 1.6, drop_tips=True)

    anomalies = _validate(tmp_path, half_years, serving)

    rows = data_gates.push_holding_anomalies(anomalies)
    assert (pipeline_config.SERVING_SPLIT, "fare", "CUSTOM_VALIDATION") in {
        (r["split"], r["feature"], r["kind"]) for r in rows
    }
    assert {r["feature"] for r in rows} == {"fare"}
    assert data_gates.blocking_anomalies(anomalies) == []


def test_distances_on_too_few_examples_are_recorded_but_do_not_gate(tmp_path, half_years):
    few = _fares_tripled(half_years[CURRENT], tmp_path / "few.csv", rows=60)

    anomalies = _validate(tmp_path, {**half_years, CURRENT: few})

    assert data_gates.blocking_anomalies(anomalies) == []
    drift = {
        r["feature"]: r
        for r in validation_results.distance_rows(validation_results.read_anomalies(anomalies))
    }
    assert drift["fare"]["value"] > drift["fare"]["threshold"]
    assert "current_span has 60" in anomalies.get_string_custom_property("distances_not_gated")


def test_serving_anomalies_hold_the_push_of_a_blessed_model(tmp_path, half_years):
    def bitcoin(header, row):
        row = list(row)
        row[header.index("payment_type")] = (
            "Bitcoin" if int(row[header.index("trip_start_hour")]) < 6 else row[header.index("payment_type")]
        )
        return row

    serving = _serving_copy(half_years[CURRENT], tmp_path / "requests.csv", bitcoin)
    anomalies = _validate(tmp_path, half_years, serving)

    rows = data_gates.push_holding_anomalies(anomalies)
    assert {(r["split"], r["feature"]) for r in rows} == {(pipeline_config.SERVING_SPLIT, "payment_type")}
    assert {r["kind"] for r in rows} >= {"ENUM_TYPE_UNEXPECTED_STRING_VALUES"}
    assert data_gates.blocking_anomalies(anomalies) == []  # the training data is fine: training goes on

    evaluator_blessing = standard_artifacts.ModelBlessing()
    evaluator_blessing.uri = str(tmp_path / "evaluator_blessing")
    evaluator_blessing.set_int_custom_property("blessed", 1)
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "push_gate_blessing")
    data_gates.PushGateExecutor().Do(
        {"model_blessing": [evaluator_blessing], "anomalies": [anomalies]}, {"blessing": [blessing]}, {}
    )
    assert blessing.get_int_custom_property("blessed") == 0
    assert blessing.get_int_custom_property("evaluator_blessed") == 1
    assert "serving/payment_type" in blessing.get_string_custom_property("held_because")
    assert (Path(blessing.uri) / "NOT_BLESSED").exists()


def _distribution_validator_config(schema_path: Path):
    """TFX's DistributionValidator configured with the curated schema's own drift thresholds."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import path_pb2, schema_pb2
    from tfx.proto import distribution_validator_pb2

    schema = text_format.Parse(schema_path.read_text(), schema_pb2.Schema())
    config = distribution_validator_pb2.DistributionValidatorConfig()
    for feature in schema.feature:
        if feature.HasField("drift_comparator"):
            config.default_slice_config.feature.add(
                path=path_pb2.Path(step=[feature.name]), distribution_comparator=feature.drift_comparator
            )
    return config


def test_tfx_distribution_validator_cannot_replace_this_executor(tmp_path, half_years):
    """Why the drift and skew comparisons are not TFX 1.16's DistributionValidator (schema/README.md): on the
    same statistics and thresholds it gates on a handful of examples, and a config passed as Kubeflow V2 passes
    it (JSON text) breaks its executor."""
    from google.protobuf import json_format
    from tfx.components.distribution_validator import executor as distribution_validator
    from tfx.utils import json_utils

    few = _fares_tripled(half_years[CURRENT], tmp_path / "few.csv", rows=60)
    statistics = _statistics_artifact(tmp_path / "statistics", {**half_years, CURRENT: few})
    config = _distribution_validator_config(folders.SCHEMA_PATH)
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "distribution_validator")
    properties = {"include_split_pairs": json_utils.dumps([(CURRENT, PREVIOUS)])}
    distribution_validator.Executor().Do(
        {"statistics": [statistics], "baseline_statistics": [statistics]},
        {"anomalies": [anomalies]},
        {**properties, "distribution_validator_config": config},
    )
    # 60 examples: it blocks on noise, where ours records the distance and does not gate on it.
    assert anomalies.get_json_value_custom_property("blessed") == {f"{CURRENT}_{PREVIOUS}": 0}
    ours = _validate(tmp_path / "ours", {**half_years, CURRENT: few})
    assert data_gates.blocking_anomalies(ours) == []
    # On Kubeflow V2 the config reaches the executor as JSON text, which its executor cannot read.
    with pytest.raises(AttributeError, match="default_slice_config"):
        distribution_validator.Executor().Do(
            {"statistics": [statistics], "baseline_statistics": [statistics]},
            {"anomalies": [anomalies]},
            {**properties, "distribution_validator_config": json_format.MessageToJson(config)},
        )


def test_a_replay_holds_the_push_of_a_blessed_model(tmp_path):
    evaluator_blessing = standard_artifacts.ModelBlessing()
    evaluator_blessing.uri = str(tmp_path / "evaluator_blessing")
    evaluator_blessing.set_int_custom_property("blessed", 1)
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "anomalies")
    anomalies.split_names = artifact_utils.encode_split_names([])
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "push_gate_blessing")
    data_gates.PushGateExecutor().Do(
        {"model_blessing": [evaluator_blessing], "anomalies": [anomalies]},
        {"blessing": [blessing]},
        {"hold_reason": "a replay of span 20161 (the newest is 20162) never moves production"},
    )
    assert blessing.get_int_custom_property("blessed") == 0
    assert blessing.get_string_custom_property("held_because").startswith("a replay of span 20161")


def _units_rows(anomalies) -> list[dict]:
    return [r for r in data_gates.blocking_anomalies(anomalies) if r["short_description"] == "Units changed?"]


def _with_miles_in_kilometres(source: Path, target: Path, share: float = 1.0) -> Path:
    """`source` with trip_miles x1.609 in every row, or in the rows whose fare's cents are below `share`."""
    header, content = _rows(source)
    miles, fare = header.index("trip_miles"), header.index("fare")
    for row in content:
        if row[miles] and (float(row[fare]) * 100) % 100 < share * 100:
            row[miles] = f"{float(row[miles]) * 1.609:.2f}"
    return _write(target, header, content)


def test_a_change_that_persists_is_caught_against_the_reference_not_the_previous_span(tmp_path, half_years):
    """Miles became kilometres in span 20161 and stayed so in 20162: against each other they agree, but
    against what was validated before (the six half-years up to 2015 H2), both moved."""
    reference = tmp_path / "data_reference"
    _validate(tmp_path / "first", half_years, data_reference_dir=reference)
    assert set(data_reference.recorded_spans(reference)) == {
        20131,
        20132,
        20141,
        20142,
        20151,
        20152,
        20161,
        20162,
    }
    previous = _with_miles_in_kilometres(half_years[PREVIOUS], tmp_path / "previous" / "data.csv")
    current = _with_miles_in_kilometres(half_years[CURRENT], tmp_path / "current" / "data.csv")

    anomalies = _validate(
        tmp_path / "second",
        {**half_years, PREVIOUS: previous, CURRENT: current},
        data_reference_dir=reference,
    )

    rows = _units_rows(anomalies)
    assert {(r["split"], r["feature"]) for r in rows} == {
        (PREVIOUS, "trip_miles"),  # span 20161
        (CURRENT, "trip_miles"),
    }
    described = " ".join(r["description"] for r in rows)
    assert "span 20161 against the reference: validated spans 20131-20152: trip_miles" in described
    assert "span 20162 against the reference: validated spans 20132-20161: trip_miles" in described
    assert "span 20162 against span 20161" not in described  # span to span, nothing changed
    units = validation_results.units_check(anomalies)
    assert units["new_spans"] == [20161, 20162] and units["recorded_spans"] == []
    # Nothing is recorded from a run whose training data failed: the next run compares with the same spans.
    assert data_reference.recorded_spans(reference)[20161].digest != units_validation.unit_changes.digest(
        units_validation.unit_changes.read_columns([previous], pipeline_config.UNIT_CHANGE_AMOUNTS)
    )


def test_part_of_the_rows_in_other_units_is_caught(tmp_path, half_years):
    """A second feed writing fares in cents, mixed into every tenth row of the newest span: the median
    relation hardly moves, the share of rows outside the reference's range does."""
    header, content = _rows(half_years[CURRENT])
    fare = header.index("fare")
    for row in content[::10]:
        row[fare] = f"{float(row[fare]) * 100:.0f}"
    mixed = _write(tmp_path / "mixed" / "data.csv", header, content)

    anomalies = _validate(tmp_path, {**half_years, CURRENT: mixed})

    rows = [r for r in _units_rows(anomalies) if "against the training window" in r["description"]]
    assert {(r["split"], r["feature"]) for r in rows} == {(CURRENT, "fare")}
    assert "of rows lie outside the reference's central 99 %" in rows[0]["description"]
    assert "median relation changed" not in rows[0]["description"]
    assert "in part of the rows" in rows[0]["description"]


def test_an_accepted_change_passes_and_hides_no_other(tmp_path, half_years):
    """Fares x1.3 from span 20162, accepted: the same data passes and says so; a change in another amount,
    or fares moving again, still stops the run."""
    reference = tmp_path / "data_reference"
    _validate(tmp_path / "first", {**half_years, CURRENT: half_years[PREVIOUS]}, data_reference_dir=reference)
    (reference / "spans" / "span-20162.json").unlink()  # recorded from 20161's rows: 20162 has not arrived
    risen = _scaled(half_years[CURRENT], tmp_path / "risen" / "data.csv", "fare", 1.3)
    stopped = _validate(tmp_path / "stopped", {**half_years, CURRENT: risen}, data_reference_dir=reference)
    assert {r["feature"] for r in _units_rows(stopped)} == {"fare"}
    [measured] = [
        r
        for r in validation_results.unit_change_rows(stopped)
        if r["span"] == 20162 and r["kind"] == units_validation.REFERENCE and r["feature"] == "fare"
    ]
    data_reference.accept_change(reference, "fare", measured["factor"], 20162, "fare rates rose 30 %")

    accepted = _validate(tmp_path / "accepted", {**half_years, CURRENT: risen}, data_reference_dir=reference)

    assert _units_rows(accepted) == [] and data_gates.blocking_anomalies(accepted) == []
    units = validation_results.units_check(accepted)
    [applied] = units["accepted_changes"]
    assert (applied["column"], applied["span"], applied["reason"]) == ("fare", 20162, "fare rates rose 30 %")
    assert applied["accepted_by"] and applied["accepted_at"]
    assert units["recorded_spans"] == [20162]

    both = _with_miles_in_kilometres(risen, tmp_path / "both" / "data.csv")
    data_reference_copy = tmp_path / "copy"
    shutil.copytree(reference, data_reference_copy)
    (data_reference_copy / "spans" / "span-20162.json").unlink()
    other = _validate(
        tmp_path / "other", {**half_years, CURRENT: both}, data_reference_dir=data_reference_copy
    )
    assert {r["feature"] for r in _units_rows(other)} == {"trip_miles"}

    again = _scaled(risen, tmp_path / "again" / "data.csv", "fare", 1.5)
    moved = _validate(
        tmp_path / "moved", {**half_years, CURRENT: again}, data_reference_dir=data_reference_copy
    )
    assert {r["feature"] for r in _units_rows(moved)} == {"fare"}


def test_an_accepted_change_explains_the_drift_it_causes_in_its_column_only(tmp_path, half_years):
    """Fares doubled from span 20162, accepted: the Jensen-Shannon drift of fare into that span is explained
    by it, listed, and does not block; the same drift in the next span, or in another column, would."""
    reference = tmp_path / "data_reference"
    _validate(tmp_path / "first", {**half_years, CURRENT: half_years[PREVIOUS]}, data_reference_dir=reference)
    (reference / "spans" / "span-20162.json").unlink()
    doubled = _scaled(half_years[CURRENT], tmp_path / "doubled" / "data.csv", "fare", 2.0)
    stopped = _validate(tmp_path / "stopped", {**half_years, CURRENT: doubled}, data_reference_dir=reference)
    kinds = {(r["feature"], r["kind"]) for r in data_gates.blocking_anomalies(stopped)}
    assert kinds == {("fare", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"), ("fare", "CUSTOM_VALIDATION")}
    factor, span, found_by = data_reference.measured_change(
        validation_results.unit_change_rows(stopped), "fare", "run-1", pipeline_config.MAX_UNIT_CHANGE
    )
    data_reference.accept_change(reference, "fare", factor, span, "fares doubled", found_by)

    accepted = _validate(
        tmp_path / "accepted", {**half_years, CURRENT: doubled}, data_reference_dir=reference
    )

    assert data_gates.blocking_anomalies(accepted) == []
    [explained] = validation_results.units_check(accepted)["accepted_distances"]
    assert (explained["split"], explained["feature"], explained["measure"]) == (
        CURRENT,
        "fare",
        "Jensen-Shannon",
    )
    assert explained["value"] > explained["threshold"] and "fares doubled" in explained["accepted"]
    drift = {
        r["feature"]: r for r in validation_results.distance_rows(validation_results.read_anomalies(accepted))
    }
    assert drift["fare"]["value"] == explained["value"]  # still recorded as measured
