"""ExampleValidator's anomalies as rows a person reads: where, what, measured against what, and what it does.

Shared by the summary, `make drift` and the validator itself (components/data_validation.py), which
decides with `action_of` what an anomaly does; the gates (components/data_gates.py) act on it.
"""

import json
import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.components.example_validator import executor as example_validator_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from config.pipeline import SERVING_SPLIT

ANOMALIES_FILE = example_validator_executor.DEFAULT_FILE_NAME  # SchemaDiff.pb, as the stock executor
# The schema's environments: the label source `tips` is not in SERVING.
TRAINING_ENVIRONMENT = "TRAINING"
SERVING_ENVIRONMENT = "SERVING"
# What an anomaly does (see action_of).
BLOCK_TRAINING = "blocks training"
HOLD_PUSH = "holds the push"
DISTANCE_ANOMALIES = {
    anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH: anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY,
    anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH: (
        anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE
    ),
    anomalies_pb2.AnomalyInfo.COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH: (
        anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE
    ),
}
# The artifact property where the validator records the changes of units it measured (components/unit_changes.py).
UNIT_CHANGES_PROPERTY = "unit_changes"
UNIT_CHANGE_MEASURE = "scale vs related amounts"
MEASURE_NAMES = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "L-infinity",
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "Jensen-Shannon",
    anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE: "normalized abs. difference",
}


def action_of(split: str) -> str:
    """What an anomaly found in `split` does.

    Training-data anomalies (broken columns, values outside the contract, a sudden drift beyond
    anything seen between real spans) block training: a model trained on broken data is broken.
    Serving-data anomalies (schema or distribution skew of the requests) say nothing against the
    training data, so the candidate is still trained and evaluated for people to look at, but it is
    not pushed: production would keep receiving inputs unlike those it was trained on.
    """
    return HOLD_PUSH if split == SERVING_SPLIT else BLOCK_TRAINING


def num_examples(statistics) -> int:
    return statistics.datasets[0].num_examples if statistics.datasets else 0


def read_anomalies(anomalies_artifact: types.Artifact) -> dict[str, anomalies_pb2.Anomalies]:
    """Split -> the Anomalies proto the validator wrote for it."""
    found = {}
    for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([anomalies_artifact], split), ANOMALIES_FILE)
        anomalies = anomalies_pb2.Anomalies()
        anomalies.ParseFromString(io_utils.read_bytes_file(path))
        found[split] = anomalies
    return found


def _measurements(anomalies: anomalies_pb2.Anomalies, split: str):
    """(feature, measurement) for every distance recorded in one split's anomalies."""
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        for measurement in info.skew_measurements if split == SERVING_SPLIT else info.drift_measurements:
            yield feature, measurement


def anomaly_rows(anomalies_by_split: dict[str, anomalies_pb2.Anomalies]) -> list[dict]:
    """One row per anomaly reason: where, what, the measured value and threshold (for distances), action."""
    rows = []
    for split, anomalies in anomalies_by_split.items():
        measured = {(f, m.type): m for f, m in _measurements(anomalies, split)}
        infos = sorted(anomalies.anomaly_info.items())
        if anomalies.HasField("dataset_anomaly_info"):
            infos.append(("(dataset)", anomalies.dataset_anomaly_info))
        for feature, info in infos:
            for reason in info.reason:
                measurement = measured.get((feature, DISTANCE_ANOMALIES.get(reason.type)))
                rows.append(
                    {
                        "split": split,
                        "feature": feature,
                        "kind": anomalies_pb2.AnomalyInfo.Type.Name(reason.type),
                        "short_description": reason.short_description,
                        "description": reason.description,
                        "measure": MEASURE_NAMES[measurement.type] if measurement else None,
                        "value": round(measurement.value, 4) if measurement else None,
                        "threshold": round(measurement.threshold, 4) if measurement else None,
                        "action": action_of(split),
                    }
                )
    return rows


def distance_rows(anomalies_by_split: dict[str, anomalies_pb2.Anomalies]) -> list[dict]:
    """Every recorded drift (current vs previous span) and skew (serving vs training) distance."""
    rows = []
    for split, anomalies in anomalies_by_split.items():
        for feature, measurement in _measurements(anomalies, split):
            rows.append(
                {
                    "comparison": "skew" if split == SERVING_SPLIT else "drift",
                    "feature": feature,
                    "measure": MEASURE_NAMES[measurement.type],
                    "value": round(measurement.value, 4),
                    "threshold": round(measurement.threshold, 4),
                }
            )
    return sorted(rows, key=lambda r: (r["comparison"], -r["value"] / (r["threshold"] or 1)))


def unit_change_rows(anomalies_artifact: types.Artifact) -> list[dict]:
    """Every change of units the validator measured: per comparison and amount, the factor its scale
    seems to have changed by against the other amounts (1 = none), and the bound either way."""
    recorded = anomalies_artifact.get_json_value_custom_property(UNIT_CHANGES_PROPERTY) or {}
    recorded = recorded if isinstance(recorded, dict) else json.loads(str(recorded))
    bound = recorded.get("max_change")
    rows = [
        {
            "comparison": comparison,
            "feature": amount,
            "measure": UNIT_CHANGE_MEASURE,
            "factor": factor,
            "bound": bound,
        }
        for comparison, changes in (recorded.get("comparisons") or {}).items()
        for amount, factor in changes.items()
    ]
    return sorted(rows, key=lambda r: (r["comparison"], -max(r["factor"], 1 / r["factor"])))


def describe_anomaly(row: dict) -> str:
    """One line a person can act on: where, what, measured against what, and what it does."""
    measured = (
        f" ({row['measure']} {row['value']:.3f} > threshold {row['threshold']:.3f})"
        if row["value"] is not None
        else ""
    )
    return (
        f"{row['split']}/{row['feature']}: {row['kind']}: {row['short_description']}{measured}. "
        f"{row['description']} [{row['action']}]"
    )
