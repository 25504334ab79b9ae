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

from config.pipeline import SERVING_SPLIT, UNIT_CHANGE_AMOUNTS

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


def measurements(anomalies: anomalies_pb2.Anomalies, split: str):
    """(feature, measurement) for every distance recorded in one split's anomalies."""
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        for measurement in info.skew_measurements if split == SERVING_SPLIT else info.drift_measurements:
            yield feature, measurement


def anomaly_rows(anomalies_by_split: dict[str, anomalies_pb2.Anomalies]) -> list[dict]:
    """One row per anomaly reason: where, what, the measured value and threshold (for distances), action."""
    rows = []
    for split, anomalies in anomalies_by_split.items():
        measured = {(f, m.type): m for f, m in measurements(anomalies, split)}
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
        for feature, measurement in measurements(anomalies, split):
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


def units_check(anomalies_artifact: types.Artifact) -> dict:
    """What the units check recorded on the artifact (components/units_validation.py): its bounds, how the
    reference was made, the spans new to this run, those recorded as validated, and the accepted changes
    that applied; {} when the check did not run."""
    recorded = anomalies_artifact.get_json_value_custom_property(UNIT_CHANGES_PROPERTY) or {}
    recorded = recorded if isinstance(recorded, dict) else json.loads(str(recorded))
    if not isinstance(recorded.get("comparisons"), list):  # written before spans were checked one by one
        return {}
    found = {key: value for key, value in recorded.items() if key != "comparisons"}
    for key in ("new_spans", "recorded_spans"):
        found[key] = [int(span) for span in found.get(key) or []]
    for change in found.get("accepted_changes") or []:
        change["span"] = int(change["span"])
    return found


def unit_change_rows(anomalies_artifact: types.Artifact) -> list[dict]:
    """Every change of units the validator measured: per comparison (a span against the reference or the
    span before it, or the serving logs against the training window) and amount, the factor its median
    relation moved by (1 = none), the KS distance and the share outside the reference's range, with their
    bounds, and which of them crossed."""
    recorded = anomalies_artifact.get_json_value_custom_property(UNIT_CHANGES_PROPERTY) or {}
    recorded = recorded if isinstance(recorded, dict) else json.loads(str(recorded))
    comparisons = recorded.get("comparisons") or []
    if not isinstance(comparisons, list):
        return []
    bound = (recorded.get("bounds") or {}).get("max_factor")
    rows = []
    for comparison in comparisons:
        # JSON properties hold numbers as floats: spans and row counts are whole.
        span = int(comparison["span"]) if comparison["span"] is not None else None
        for amount in sorted(comparison["changes"], key=_amount_order):
            change = comparison["changes"][amount]
            rows.append(
                {
                    "span": span,
                    "split": comparison["split"],
                    "kind": comparison["kind"],
                    "comparison": (f"span {span}" if span is not None else "serving logs")
                    + f" vs {comparison['against']}",
                    "gated": comparison["gated"],
                    "rows": int(comparison["rows"]),
                    "feature": amount,
                    "measure": UNIT_CHANGE_MEASURE,
                    "factor": change["factor"],
                    "bound": change.get("factor_bound", bound),
                    "ks": change["ks"],
                    "ks_bound": change["ks_bound"],
                    "outside": change["outside"],
                    "outside_bound": change["outside_bound"],
                    "crossed": sorted(change["crossed"]),
                }
            )
    return rows


def _amount_order(amount: str) -> tuple:
    return (
        UNIT_CHANGE_AMOUNTS.index(amount) if amount in UNIT_CHANGE_AMOUNTS else len(UNIT_CHANGE_AMOUNTS),
        amount,
    )


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
