"""ExampleValidator that also measures drift between spans and skew between training and serving data.

TFX 1.16's ExampleValidator checks each split's statistics against the schema only: TFDV's drift and
skew comparators (`drift_comparator`, `skew_comparator` in the schema) need the previous span's or the
serving data's statistics, which its executor never passes. This executor is the stock one plus those:

- every split of the training data is validated against the schema in its TRAINING environment;
- the `current_span` split is also compared with the `previous_span` split (drift);
- the serving logs' statistics, when given, are validated in the SERVING environment (no label) and
  compared with the training split's (skew). They become the artifact's `serving` split.

Distances are recorded for every feature with a comparator (the anomalies' `drift_skew_info`), whether
or not they cross the threshold. When either side of a comparison holds fewer than
`min_examples_to_gate` examples, distances are still recorded but raise no anomaly: on a few dozen rows
they are mostly noise.

What an anomaly does follows from where it was found (reports/anomalies.py, `action_of`): anything in the
training data blocks training; anything in the serving data holds the push. data_gates.py acts on it.
"""

import json
import os
from collections.abc import Sequence

import tensorflow_data_validation as tfdv
from absl import logging
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.components.example_validator import executor as example_validator_executor
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, component_spec, standard_artifacts
from tfx.utils import io_utils, writer_utils

from components import code_version, unit_changes
from config.pipeline import SERVING_SPLIT
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

        unit_changes = _UnitChanges(exec_properties, min_examples)
        examples = input_dict.get("examples") or []
        if examples:
            unit_changes.compare(
                results[current],
                current=_split_files(examples[0], current),
                reference=_split_files(examples[0], previous),
                kind=f"{current} vs {previous}",
                sizes=(num_examples(split_statistics[current]), num_examples(split_statistics[previous])),
            )
        serving_artifacts = input_dict.get("serving_statistics") or []
        if serving_artifacts:
            training_split = exec_properties["training_split"]
            serving, serving_split, sizes = _validate_serving(
                serving_artifacts[0],
                split_statistics[training_split],
                schema,
                training_split,
                min_examples,
                not_gated,
            )
            serving_examples = input_dict.get("serving_examples") or []
            if examples and serving_examples:
                unit_changes.compare(
                    serving,
                    current=_split_files(serving_examples[0], serving_split),
                    reference=_split_files(examples[0], training_split),
                    kind=f"serving vs {training_split}",
                    sizes=sizes,
                )
            results[SERVING_SPLIT] = serving
        _write_anomalies(output_dict, statistics.span, results, not_gated, unit_changes.recorded)


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
) -> tuple[anomalies_pb2.Anomalies, str, tuple[int, int]]:
    """The serving requests' anomalies against the schema's serving environment and their skew from the
    training split, gated only with `min_examples` on both sides (else noted in `not_gated`); also the
    serving split's name and the (serving, training) example counts."""
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
    return serving, serving_split, sizes


def _write_anomalies(output_dict, span, results: dict, not_gated: list[str], unit_changes: dict) -> None:
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
    anomalies.set_json_value_custom_property(UNIT_CHANGES_PROPERTY, unit_changes)
    for note in not_gated:
        logging.warning("Distances recorded but not gated: %s", note)


class _UnitChanges:
    """Changes of units in the amounts (components/unit_changes.py): measured, recorded, and an anomaly
    when one crosses `max_unit_change` on enough examples."""

    def __init__(self, exec_properties: dict, min_examples: int):
        self.amounts = json.loads(exec_properties.get("unit_change_amounts") or "[]")
        self.max_change = exec_properties.get("max_unit_change") or 0.0
        self.min_examples = min_examples
        self.recorded = {"max_change": self.max_change, "comparisons": {}}

    def compare(self, result: anomalies_pb2.Anomalies, current, reference, kind: str, sizes) -> None:
        if not self.amounts:
            return
        medians = [
            unit_changes.relation_medians(unit_changes.columns_of_examples(files, self.amounts), self.amounts)
            for files in (current, reference)
        ]
        changes = unit_changes.scale_changes(*medians, self.amounts)
        self.recorded["comparisons"][kind] = {a: round(f, 4) for a, f in changes.items()}
        if not changes or min(sizes) < self.min_examples:
            return
        # A factor k on one amount moves the others' measures by k**-1/2 (they share one relation each with
        # it): the one that moved most is the one whose units changed.
        amount = max(changes, key=lambda a: unit_changes.size_of_change(changes[a]))
        factor = changes[amount]
        if unit_changes.size_of_change(factor) > self.max_change:
            others = ", ".join(a for a in self.amounts if a != amount)
            _add_custom_anomaly(
                result,
                amount,
                short_description="Units changed?",
                description=(
                    f"{kind}: {amount} relative to {others} (per trip, medians) changed by x{factor:.2f}, "
                    f"more than the x{self.max_change:.2f} real half-years showed: the units of {amount} "
                    "seem to have changed upstream."
                ),
            )


def _split_files(examples: types.Artifact, split: str) -> list[str]:
    return sorted(fileio.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*")))


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
        # JSON list of the amounts whose units are checked against each other (components/unit_changes.py).
        "unit_change_amounts": component_spec.ExecutionParameter(type=str, optional=True),
        "max_unit_change": component_spec.ExecutionParameter(type=float, optional=True),
        **code_version.PARAMETER,
    }
    INPUTS = {
        "statistics": component_spec.ChannelParameter(type=standard_artifacts.ExampleStatistics),
        "schema": component_spec.ChannelParameter(type=standard_artifacts.Schema),
        "serving_statistics": component_spec.ChannelParameter(
            type=standard_artifacts.ExampleStatistics, optional=True
        ),
        # The examples behind `statistics` and `serving_statistics`, for the units check.
        "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples, optional=True),
        "serving_examples": component_spec.ChannelParameter(type=standard_artifacts.Examples, optional=True),
    }
    OUTPUTS = {"anomalies": component_spec.ChannelParameter(type=standard_artifacts.ExampleAnomalies)}


class ExampleValidator(base_component.BaseComponent):
    """Outputs `anomalies`: per split of `statistics`, schema anomalies (and drift on the current span);
    a `serving` split for `serving_statistics` (schema in SERVING, skew against `training_split`). Given
    `examples` (and `serving_examples`), also changes of units among `unit_change_amounts`."""

    SPEC_CLASS = ExampleValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        statistics,
        schema,
        *,
        current_span_split: str,
        previous_span_split: str,
        training_split: str,
        min_examples_to_gate: int,
        serving_statistics=None,
        examples=None,
        serving_examples=None,
        unit_change_amounts: Sequence[str] = (),
        max_unit_change: float = 0.0,
    ):
        super().__init__(
            spec=ExampleValidatorSpec(
                statistics=statistics,
                schema=schema,
                serving_statistics=serving_statistics,
                examples=examples,
                serving_examples=serving_examples,
                unit_change_amounts=json.dumps(list(unit_change_amounts)),
                max_unit_change=max_unit_change,
                code_fingerprint=code_version.of_executor(Executor),
                current_span_split=current_span_split,
                previous_span_split=previous_span_split,
                training_split=training_split,
                min_examples_to_gate=min_examples_to_gate,
                anomalies=types.Channel(type=standard_artifacts.ExampleAnomalies),
            )
        )
