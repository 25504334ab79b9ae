"""ExampleValidator that also measures drift between spans and skew between training and serving data.

TFX 1.16's ExampleValidator checks each split's statistics against the schema only: TFDV's drift and
skew comparators (`drift_comparator`, `skew_comparator` in the schema) need the previous span's or the
serving data's statistics, which its executor never passes. This executor is the stock one plus those:

- every split of the training data is validated against the schema in its TRAINING environment;
- the `current_span` split is also compared with the `previous_span` split (drift);
- the serving logs' statistics, when given, are validated in the SERVING environment (no label) and
  compared with the training split's (skew). They become the artifact's `serving` split.

Changes of units are checked span by span (components/units_validation.py): every span that arrived since
the last validated run against the reference (the spans validated before it) and the span before it, and
the serving logs against the training window; a run whose training data passes records its new spans in
the data reference folder (components/data_reference.py), in the units of any change a person accepted.

Distances are recorded for every feature with a comparator (the anomalies' `drift_skew_info`), whether
or not they cross the threshold. When either side of a comparison holds fewer than
`min_examples_to_gate` examples, distances are still recorded but raise no anomaly: on a few dozen rows
they are mostly noise.

What an anomaly does follows from where it was found (reports/anomalies.py, `action_of`): anything in the
training data blocks training; anything in the serving data holds the push. data_gates.py acts on it.
"""

import os

import tensorflow_data_validation as tfdv
from absl import logging
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.components.example_validator import executor as example_validator_executor
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import artifact_utils, component_spec, standard_artifacts
from tfx.utils import io_utils, writer_utils

from components import code_version, units_validation
from config import pipeline as pipeline_config
from config.pipeline import SERVING_SPLIT
from reports import validation_results
from reports.validation_results import (
    ANOMALIES_FILE,
    DISTANCE_ANOMALIES,
    SERVING_ENVIRONMENT,
    TRAINING_ENVIRONMENT,
    UNIT_CHANGES_PROPERTY,
    num_examples,
)


def _without_distance_anomalies(anomalies: anomalies_pb2.Anomalies) -> None:
    """Drops drift/skew reasons (keeping the measured distances in drift_skew_info)."""
    for feature in list(anomalies.anomaly_info):
        info = anomalies.anomaly_info[feature]
        kept = [reason for reason in info.reason if reason.type not in DISTANCE_ANOMALIES]
        if not kept:
            del anomalies.anomaly_info[feature]
        elif len(kept) != len(info.reason):
            del info.reason[:]
            info.reason.extend(kept)
            info.description = " ".join(reason.description for reason in kept)


def _add_distance_anomalies(target: anomalies_pb2.Anomalies, source: anomalies_pb2.Anomalies) -> None:
    """Adds `source`'s drift/skew reasons to `target`, feature by feature."""
    for feature, info in source.anomaly_info.items():
        reasons = [reason for reason in info.reason if reason.type in DISTANCE_ANOMALIES]
        if not reasons:
            continue
        merged = target.anomaly_info[feature]
        if not merged.path.step:
            merged.CopyFrom(info)
            del merged.reason[:]
            merged.description = ""
        merged.reason.extend(reasons)
        merged.description = " ".join(r.description for r in merged.reason)
        merged.severity = max(merged.severity, info.severity)


class Executor(example_validator_executor.Executor):
    """The stock executor's outputs (one SchemaDiff.pb per split, `blessed` per split), plus drift/skew."""

    def Do(self, input_dict, output_dict, exec_properties):
        statistics = artifact_utils.get_single_instance(input_dict["statistics"])
        schema = io_utils.SchemaReader().read(
            io_utils.get_only_uri_in_dir(artifact_utils.get_single_uri(input_dict["schema"]))
        )
        current, previous = exec_properties["current_span_split"], exec_properties["previous_span_split"]
        min_examples = exec_properties["min_examples_to_gate"]
        split_statistics = {
            split: stats_artifact_utils.load_statistics(statistics, split).proto()
            for split in artifact_utils.decode_split_names(statistics.split_names)
        }
        results, not_gated = _validate_splits(split_statistics, schema, current, previous, min_examples)
        serving_artifacts = input_dict.get("serving_statistics") or []
        if serving_artifacts:
            training_split = exec_properties["training_split"]
            results[SERVING_SPLIT] = _validate_serving(
                serving_artifacts[0],
                split_statistics[training_split],
                schema,
                training_split,
                min_examples,
                not_gated,
            )
        # The span comes from ExampleGen's examples (StatisticsGen's output does not carry it).
        examples = input_dict.get("examples") or []
        span = examples[0].get_int_custom_property("span") if examples else statistics.span
        units = _check_units(exec_properties, span, results, not_gated)
        _write_anomalies(output_dict, span, results, not_gated, units)


def _check_units(exec_properties: dict, span: int, results: dict, not_gated: list[str]) -> dict:
    """The units check's anomalies added to `results`; the new spans recorded as validated when the training
    data has no anomaly; returns what to record on the artifact ({} when the check is off)."""
    settings = units_validation.settings_of(exec_properties)
    if settings is None:
        return {}
    splits = units_validation.WindowSplits(
        train=exec_properties["training_split"],
        eval=exec_properties.get("eval_split") or pipeline_config.EVAL_SPLIT,
        current=exec_properties["current_span_split"],
        previous=exec_properties["previous_span_split"],
    )
    result = units_validation.check(settings, span, splits)
    for comparison in result.comparisons:
        if not comparison.gated:
            if comparison.crossed:
                not_gated.append(
                    f"units: {_compared(comparison)} has {comparison.rows} and its reference "
                    f"{comparison.reference_rows} rows, fewer than {settings.min_examples}"
                )
            continue
        for amount, crossed in comparison.crossed.items():
            _add_custom_anomaly(
                results[comparison.split],
                amount,
                short_description="Units changed?",
                description=units_validation.describe(comparison, amount, crossed),
            )
    _accept_distances(results, result, span, splits.current)
    passed = not any(_has_anomalies(r) for split, r in results.items() if split != SERVING_SPLIT)
    if passed:
        units_validation.record(settings, result)
    return result.as_json(settings.bounds, recorded=passed and settings.data_reference_dir is not None)


def _accept_distances(results: dict, units: units_validation.Result, span: int, current: str) -> None:
    """Takes out of `results` the drift and skew anomalies an accepted change explains, into `units`: its
    column's drift into the span it starts at, and its skew while the training window is older than it.
    A real change moves the column's distribution too; its scale is still checked, against the reference
    in the new units, so a different change is not hidden."""
    for change in units.every_accepted:
        explained = []
        if change.span == span:
            explained.append(current)
        if SERVING_SPLIT in results and any(t < change.span for t in units.training_spans):
            explained.append(SERVING_SPLIT)
        for split in explained:
            for reason, measured in _take_distance_anomalies(results[split], change.column, split):
                units.accepted_distances.append(
                    {
                        "split": split,
                        "feature": change.column,
                        "kind": reason,
                        **measured,
                        "accepted": change.describe(),
                    }
                )
                if change not in units.accepted:
                    units.accepted.append(change)


def _take_distance_anomalies(
    result: anomalies_pb2.Anomalies, feature: str, split: str
) -> list[tuple[str, dict]]:
    """Removes `feature`'s drift/skew reasons from `result`; returns (kind, {measure, value, threshold})."""
    if feature not in result.anomaly_info:
        return []
    info = result.anomaly_info[feature]
    taken = [reason for reason in info.reason if reason.type in DISTANCE_ANOMALIES]
    if not taken:
        return []
    kept = [reason for reason in info.reason if reason.type not in DISTANCE_ANOMALIES]
    if kept:
        del info.reason[:]
        info.reason.extend(kept)
        info.description = " ".join(reason.description for reason in kept)
    else:
        del result.anomaly_info[feature]
    measured = {m.type: m for f, m in validation_results.measurements(result, split) if f == feature}
    return [
        (
            anomalies_pb2.AnomalyInfo.Type.Name(reason.type),
            {
                "measure": validation_results.MEASURE_NAMES[DISTANCE_ANOMALIES[reason.type]],
                "value": round(measured[DISTANCE_ANOMALIES[reason.type]].value, 4),
                "threshold": round(measured[DISTANCE_ANOMALIES[reason.type]].threshold, 4),
            },
        )
        for reason in taken
        if DISTANCE_ANOMALIES[reason.type] in measured
    ]


def _compared(comparison: units_validation.Comparison) -> str:
    return "the serving logs" if comparison.span is None else f"span {comparison.span}"


def _validate_splits(
    split_statistics: dict, schema, current: str, previous: str, min_examples: int
) -> tuple[dict, list[str]]:
    """Split -> its anomalies against the schema (and, for `current`, its drift from `previous`), and why
    drift was recorded but not gated (either side below `min_examples`)."""
    not_gated = []
    results = {}
    for split, split_stats in split_statistics.items():
        previous_stats = split_statistics.get(previous) if split == current else None
        results[split] = tfdv.validate_statistics(
            split_stats, schema, environment=TRAINING_ENVIRONMENT, previous_statistics=previous_stats
        )
        if previous_stats is not None:
            sizes = (num_examples(split_stats), num_examples(previous_stats))
            if min(sizes) < min_examples:
                _without_distance_anomalies(results[split])
                not_gated.append(
                    f"drift: {current} has {sizes[0]} and {previous} {sizes[1]} examples, fewer than {min_examples}"
                )
    return results, not_gated


def _validate_serving(
    serving_artifact, training_stats, schema, training_split: str, min_examples: int, not_gated: list[str]
) -> anomalies_pb2.Anomalies:
    """The serving requests' anomalies against the schema's serving environment and their skew from the
    training split, gated only with `min_examples` on both sides (else noted in `not_gated`)."""
    [serving_split] = artifact_utils.decode_split_names(serving_artifact.split_names)
    serving_stats = stats_artifact_utils.load_statistics(serving_artifact, serving_split).proto()
    serving = tfdv.validate_statistics(serving_stats, schema, environment=SERVING_ENVIRONMENT)
    skew = tfdv.validate_statistics(
        training_stats, schema, environment=TRAINING_ENVIRONMENT, serving_statistics=serving_stats
    )
    serving.drift_skew_info.extend(skew.drift_skew_info)
    sizes = (num_examples(serving_stats), num_examples(training_stats))
    if min(sizes) < min_examples:
        not_gated.append(
            f"skew: serving logs have {sizes[0]} and {training_split} {sizes[1]} examples, fewer than {min_examples}"
        )
    else:
        _add_distance_anomalies(serving, skew)
    return serving


def _write_anomalies(output_dict, span, results: dict, not_gated: list[str], units: dict) -> None:
    """One anomalies file per split, `blessed` per split, and what was measured but not gated."""
    anomalies = artifact_utils.get_single_instance(output_dict["anomalies"])
    anomalies.split_names = artifact_utils.encode_split_names(list(results))
    anomalies.span = span
    for split, result in results.items():
        split_dir = artifact_utils.get_split_uri([anomalies], split)
        os.makedirs(split_dir, exist_ok=True)
        writer_utils.write_anomalies(os.path.join(split_dir, ANOMALIES_FILE), result)
    anomalies.set_json_value_custom_property(
        example_validator_executor.ARTIFACT_PROPERTY_BLESSED_KEY,
        {split: int(not _has_anomalies(result)) for split, result in results.items()},
    )
    anomalies.set_string_custom_property("distances_not_gated", "; ".join(not_gated))
    anomalies.set_json_value_custom_property(UNIT_CHANGES_PROPERTY, units)
    for note in not_gated:
        logging.warning("Distances recorded but not gated: %s", note)


def _add_custom_anomaly(
    result: anomalies_pb2.Anomalies, feature: str, short_description: str, description: str
):
    info = result.anomaly_info[feature]
    if not info.path.step:
        info.path.step.append(feature)
    info.severity = anomalies_pb2.AnomalyInfo.ERROR
    info.reason.add(
        type=anomalies_pb2.AnomalyInfo.CUSTOM_VALIDATION,
        short_description=short_description,
        description=description,
    )
    info.description = " ".join(r.description for r in info.reason)


def _has_anomalies(anomalies: anomalies_pb2.Anomalies) -> bool:
    return bool(anomalies.anomaly_info) or anomalies.HasField("dataset_anomaly_info")


class ExampleValidatorSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        "current_span_split": component_spec.ExecutionParameter(type=str),
        "previous_span_split": component_spec.ExecutionParameter(type=str),
        "training_split": component_spec.ExecutionParameter(type=str),
        "min_examples_to_gate": component_spec.ExecutionParameter(type=int),
        "eval_split": component_spec.ExecutionParameter(type=str, optional=True),
        # The units check (components/units_validation.py): its settings as JSON ("" = off), where the
        # window's files are, the serving logs' folder, and the folder kept between runs ("" = none).
        "units_check": component_spec.ExecutionParameter(type=str, optional=True),
        "example_gen_input": component_spec.ExecutionParameter(type=str, optional=True),
        "serving_logs": component_spec.ExecutionParameter(type=str, optional=True),
        "data_reference_dir": component_spec.ExecutionParameter(type=str, optional=True),
        # Only part of the cache key: the accepted changes when the pipeline was built, so an acceptance
        # reaches the next run on unchanged data (the validated spans it records are not: see units_validation).
        "accepted_changes_key": component_spec.ExecutionParameter(type=str, optional=True),
        **code_version.PARAMETER,
    }
    INPUTS = {
        "statistics": component_spec.ChannelParameter(type=standard_artifacts.ExampleStatistics),
        "schema": component_spec.ChannelParameter(type=standard_artifacts.Schema),
        "serving_statistics": component_spec.ChannelParameter(
            type=standard_artifacts.ExampleStatistics, optional=True
        ),
        # The examples behind `statistics`: their span is the window the units check reads.
        "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples, optional=True),
    }
    OUTPUTS = {"anomalies": component_spec.ChannelParameter(type=standard_artifacts.ExampleAnomalies)}


class ExampleValidator(base_component.BaseComponent):
    """Outputs `anomalies`: per split of `statistics`, schema anomalies (and drift on the current span);
    a `serving` split for `serving_statistics` (schema in SERVING, skew against `data.train_split`); and,
    given `example_gen_input`, changes of units span by span (components/units_validation.py), kept
    between runs in `data_reference_dir`."""

    SPEC_CLASS = ExampleValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        statistics,
        schema,
        *,
        data: pipeline_config.Data,
        serving_statistics=None,
        examples=None,
        example_gen_input: str = "",
        serving_logs: str | None = None,
        data_reference_dir: str | None = None,
        accepted_changes_key: str = "",
    ):
        super().__init__(
            spec=ExampleValidatorSpec(
                statistics=statistics,
                schema=schema,
                serving_statistics=serving_statistics,
                examples=examples,
                current_span_split=data.current_span_split,
                previous_span_split=data.previous_span_split,
                training_split=data.train_split,
                eval_split=data.eval_split,
                min_examples_to_gate=data.min_examples_to_gate_on_distance,
                units_check=units_validation.settings_json(data) if example_gen_input else "",
                example_gen_input=example_gen_input,
                serving_logs=serving_logs or "",
                data_reference_dir=data_reference_dir or "",
                accepted_changes_key=accepted_changes_key,
                code_fingerprint=code_version.of_executor(Executor),
                anomalies=types.Channel(type=standard_artifacts.ExampleAnomalies),
            )
        )
