"""Reads an Evaluator output with TFMA's own loaders into plain rows the report, summary and CLI share.

Nothing is recomputed: every number comes from TFMA's own readers and converters, those behind
`tfma.load_eval_result` (metrics and plots of the candidate and the baseline), or from
`tfma.load_validation_result` (what failed, against which bound).
"""

import dataclasses
import json
import math

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.view import util as view_util
from tensorflow_model_analysis.writers import eval_config_writer, metrics_plots_and_validations_writer

from config import pipeline as pipeline_config
from models import slice_floor_metric

OVERALL = "Overall"
# What EvaluationSample (components/evaluation_sample.py) records on its output: the examples in the
# evaluation split, and how many of them the Evaluator was handed.
EXAMPLES_IN_SPLIT = "examples_in_split"
EXAMPLES_KEPT = "examples_kept"
# The Evaluator's output property naming the evaluation it reused (the candidate was production); "" if none.
REUSED_FROM = "reused_from"
DECISION_THRESHOLD = pipeline_config.REPORTED_DECISION_THRESHOLD
# Scalar metrics shown per slice, in table order: TFMA name -> column heading.
SCALAR_METRICS = {
    "example_count": "examples",
    "auc": "AUC",
    "binary_accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "mean_label": "mean label",
    "mean_prediction": "mean prediction",
    "calibration": "calibration",
}
# Rates TFMA computes at several decision thresholds (Fairness Indicators' false positive and false
# negative rates): TFMA name -> heading.
RATES_AT_THRESHOLDS = {"fall_out": "FPR", "miss_rate": "FNR"}
# Ranking metrics, meaningless on a slice whose examples all have the same label.
NEEDS_BOTH_CLASSES = ("auc",)


def slice_name(slice_key) -> str:
    """`()` -> 'Overall'; `(('payment_type', 'Cash'), ('trip_start_hour_band', 'x'))` -> 'payment_type=Cash, ...'."""
    return ", ".join(f"{feature}={value}" for feature, value in slice_key) or OVERALL


def spec_name(slice_key) -> str:
    """The slicing spec a slice belongs to: 'Overall', 'payment_type', 'payment_type × trip_start_hour_band'."""
    return " × ".join(feature for feature, _ in slice_key) or OVERALL


def _number(value) -> float | None:
    """A JSON-safe float: None for NaN (TFMA's value on empty or one-class slices) and infinities."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _threshold_list(metric_values: dict, name: str) -> list[float]:
    values = metric_values.get(name, {}).get("arrayValue", {}).get("float64Values", [])
    return [_number(v) for v in values]


def _scalars(metric_values: dict, thresholds: list[float]) -> dict:
    """Flat metric name -> value for one slice of one model, from `load_eval_result`'s nesting."""
    row = {name: _number(metric_values.get(name, {}).get("doubleValue")) for name in SCALAR_METRICS}
    mean_label = row.get("mean_label")
    if mean_label is not None and mean_label in (0.0, 1.0):
        for name in NEEDS_BOTH_CLASSES:
            row[name] = None
    for name in RATES_AT_THRESHOLDS:
        for threshold, value in zip(thresholds, _threshold_list(metric_values, name), strict=False):
            row[f"{name}@{threshold:g}"] = value
    return row


def _confusion_matrices(metric_values: dict) -> list[dict]:
    matrices = metric_values.get("confusion_matrix_at_thresholds", {}).get("confusionMatrixAtThresholds", {})
    return [
        {
            "threshold": matrix.get("threshold", 0.0),
            "true_positives": matrix.get("truePositives", 0.0),
            "false_positives": matrix.get("falsePositives", 0.0),
            "true_negatives": matrix.get("trueNegatives", 0.0),
            "false_negatives": matrix.get("falseNegatives", 0.0),
        }
        for matrix in matrices.get("matrices", [])
    ]


def _metric_values(sliced: dict) -> dict:
    """The single-output, single-class metrics of one slice."""
    return sliced.get("", {}).get("", {})


def _configured_thresholds(eval_config) -> list[float]:
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if metric.class_name == "FallOut" and metric.config:
                return list(json.loads(metric.config)["thresholds"])
    return []


GATED_METRICS = (
    slice_floor_metric.ShortfallBelowFloor.__name__,
    slice_floor_metric.ValueWhereJudged.__name__,
)


def _gated(eval_config) -> dict[str, dict]:
    """Gated metric name -> its config ({'metric', 'min_examples', and 'floor' for a floor}) for each
    key-slice gate (models/slice_floor_metric.py)."""
    gated = {}
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if metric.class_name in GATED_METRICS:
                config = json.loads(metric.config)
                gated[config["name"]] = config
    return gated


@dataclasses.dataclass
class _ModelResult:
    """One model's part of an evaluation, as `tfma.load_eval_result` gives it: (slice key, nested values)
    pairs of metrics and of plots."""

    slicing_metrics: list
    plots: list


def _load(
    evaluation_uri: str, eval_config, model_name: str, plotted_slices=frozenset()
) -> _ModelResult | None:
    """One model's metrics, and its plots of the `plotted_slices` (names) only; None if it was not evaluated.

    `tfma.load_eval_result` converts every slice's plots into dicts (thousands of thresholds each): 0.4 s
    a model at 133 slices, where the metrics alone take 0.06 s, and the reports plot two slices.
    With nothing in production the candidate is evaluated alone (components/evaluator.py), and TFMA
    names the only model of an evaluation "": that model is the candidate, and there is no baseline.
    """
    if len(eval_config.model_specs) == 1:
        if model_name != tfma.CANDIDATE_KEY:
            return None
        model_name = None
    writer = metrics_plots_and_validations_writer
    try:
        metrics = [
            converted
            for proto in writer.load_and_deserialize_metrics(evaluation_uri, "tfrecord")
            if (converted := view_util.convert_metrics_proto_to_dict(proto, model_name=model_name))
        ]
        plots = [
            converted
            for proto in writer.load_and_deserialize_plots(evaluation_uri, "tfrecord")
            if slice_name(tfma.slicer.deserialize_slice_key(proto.slice_key)) in plotted_slices
            and (converted := view_util.convert_plots_proto_to_dict(proto, model_name=model_name))
        ]
    except (ValueError, KeyError):
        return None
    return _ModelResult(metrics, plots)


def _rows(result, thresholds: list[float]) -> dict:
    """Slice name -> (slice key, scalar metrics, confusion matrices) of one model's result."""
    if result is None:
        return {}
    return {
        slice_name(key): (
            key,
            _scalars(_metric_values(sliced), thresholds),
            _confusion_matrices(_metric_values(sliced)),
        )
        for key, sliced in result.slicing_metrics
    }


def load_rows(evaluation_uri: str) -> tuple[dict, dict]:
    """Slice name -> (slice key, scalar metrics, confusion matrices), for the candidate and the baseline."""
    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    thresholds = _configured_thresholds(eval_config)
    return (
        _rows(_load(evaluation_uri, eval_config, tfma.CANDIDATE_KEY), thresholds),
        _rows(_load(evaluation_uri, eval_config, tfma.BASELINE_KEY), thresholds),
    )


def _curves(result, wanted: set[str]) -> dict:
    """Slice name -> calibration buckets and precision/recall/FPR per threshold, for the `wanted` slices."""
    if result is None:
        return {}
    curves = {}
    for key, plots in result.plots:
        name = slice_name(key)
        if name not in wanted:
            continue
        values = _metric_values(plots)
        buckets = [
            {
                "lower": _number(bucket.get("lowerThresholdInclusive", 0.0)),
                "upper": _number(bucket.get("upperThresholdExclusive", 0.0)),
                "examples": bucket.get("numWeightedExamples", 0.0),
                "mean_label": bucket.get("totalWeightedLabel", 0.0) / bucket["numWeightedExamples"]
                if bucket.get("numWeightedExamples")
                else None,
                "mean_prediction": bucket.get("totalWeightedRefinedPrediction", 0.0)
                / bucket["numWeightedExamples"]
                if bucket.get("numWeightedExamples")
                else None,
            }
            for bucket in values.get("calibrationHistogramBuckets", {}).get("buckets", [])
        ]
        points = [
            {
                "threshold": _number(matrix.get("threshold", 0.0)),
                "precision": _number(matrix.get("precision", 0.0)),
                "recall": _number(matrix.get("recall", 0.0)),
                "false_positive_rate": _number(matrix.get("falsePositiveRate", 0.0)),
            }
            for matrix in values.get("confusionMatrixAtThresholds", {}).get("matrices", [])
        ]
        curves[name] = {"calibration": [b for b in buckets if b["examples"]], "curve": points}
    return curves


def _bound(threshold) -> str:
    """A TFMA MetricThreshold as a short inequality: '>= 0.9', 'change >= -0.01', '<= 0'."""
    if threshold.HasField("value_threshold"):
        bounds = threshold.value_threshold
        parts = []
        if bounds.HasField("lower_bound"):
            parts.append(f">= {bounds.lower_bound.value:g}")
        if bounds.HasField("upper_bound"):
            parts.append(f"<= {bounds.upper_bound.value:g}")
        return " and ".join(parts)
    change = threshold.change_threshold
    sign = ">=" if change.direction == tfma.MetricDirection.HIGHER_IS_BETTER else "<="
    return f"change vs baseline {sign} {change.absolute.value:g}"


def validation_failures(
    evaluation_uri: str, candidate: dict | None = None, baseline: dict | None = None
) -> list[dict]:
    """Each failed gate: metric, slice, the candidate's value, the bound, and the baseline's value.

    A key-slice gate (models/slice_floor_metric.py) is reported as the metric it guards: against its floor,
    or its change against production.
    """
    if candidate is None or baseline is None:
        candidate, baseline = load_rows(evaluation_uri)
    gated = _gated(eval_config_writer.load_eval_run(evaluation_uri)[0])
    validation = tfma.load_validation_result(evaluation_uri)
    failures = []
    for per_slice in validation.metric_validations_per_slice:
        key = tfma.slicer.deserialize_slice_key(per_slice.slice_key)
        name = slice_name(key)
        candidate_metrics = candidate.get(name, (None, {}, []))[1]
        baseline_metrics = baseline.get(name, (None, {}, []))[1]
        for failure in per_slice.failures:
            metric = failure.metric_key.name
            bound = _bound(failure.metric_threshold)
            if metric in gated:
                config = gated[metric]
                metric = config["metric"]
                judged = f"key slice, judged from {config['min_examples']} examples"
                bound = f">= {config['floor']:g} ({judged})" if "floor" in config else f"{bound} ({judged})"
            failures.append(
                {
                    "metric": metric,
                    "slice": name,
                    "value": candidate_metrics.get(metric),
                    "bound": bound,
                    "change_vs_baseline": _number(failure.metric_value.double_value.value)
                    if failure.metric_key.is_diff
                    else None,
                    "baseline_value": baseline_metrics.get(metric),
                    "examples": candidate_metrics.get("example_count"),
                    "message": failure.message.strip(),
                }
            )
    for missing in validation.missing_slices:
        failures.append(
            {
                "metric": "(any)",
                "slice": ", ".join(f"{k}={v}" for k, v in sorted(missing.feature_values.items()))
                or ", ".join(missing.feature_keys)
                or OVERALL,
                "value": None,
                "bound": "slice must be present in the evaluation data",
                "change_vs_baseline": None,
                "baseline_value": None,
                "examples": 0,
                "message": "No examples in this slice, so its gates could not be checked.",
            }
        )
    return failures


def _worst_first(row: dict) -> tuple:
    """Sort key: slices big enough to judge first, then by AUC ascending (undefined AUC after)."""
    auc = row["metrics"].get("auc")
    return (row["small"], auc is None, auc if auc is not None else 0.0, row["slice"])


def read_evaluation(evaluation_uri: str, key_slice, min_slice_examples: int) -> dict:
    """Everything the slice report shows, as JSON-safe data: slices worst first, curves, failures."""
    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    thresholds = _configured_thresholds(eval_config)
    key_name = slice_name(tuple(key_slice))
    curve_slices = frozenset({OVERALL, key_name})
    candidate_result = _load(evaluation_uri, eval_config, tfma.CANDIDATE_KEY, curve_slices)
    baseline_result = _load(evaluation_uri, eval_config, tfma.BASELINE_KEY, curve_slices)
    candidate, baseline = _rows(candidate_result, thresholds), _rows(baseline_result, thresholds)
    slices = []
    for name, (key, metrics, matrices) in candidate.items():
        baseline_metrics = baseline.get(name, (None, {}, []))[1]
        slices.append(
            {
                "slice": name,
                "spec": spec_name(key),
                "features": {feature: value for feature, value in key},
                "examples": metrics.get("example_count") or 0,
                "small": (metrics.get("example_count") or 0) < min_slice_examples,
                "is_key_slice": name == key_name,
                "metrics": metrics,
                "baseline_metrics": baseline_metrics or None,
                "confusion_matrices": matrices,
            }
        )
    slices.sort(key=_worst_first)
    return {
        "evaluation_uri": evaluation_uri,
        "slice_specs": [" × ".join(spec.feature_keys) or OVERALL for spec in eval_config.slicing_specs],
        "key_slice": key_name,
        "min_slice_examples": min_slice_examples,
        "decision_thresholds": thresholds,
        "slices": slices,
        "curves": {
            tfma.CANDIDATE_KEY: _curves(candidate_result, curve_slices),
            tfma.BASELINE_KEY: _curves(baseline_result, curve_slices),
        },
        "failures": validation_failures(evaluation_uri, candidate, baseline),
    }


def describe_baseline(baseline_model) -> dict:
    """What the candidate was compared with: the production version, or itself when none was pushed."""
    if baseline_model is None:
        return {"source": "none", "version": "", "path": ""}
    return {
        "source": baseline_model.get_string_custom_property("baseline_source") or "unknown",
        "version": baseline_model.get_string_custom_property("production_version"),
        "path": baseline_model.get_string_custom_property("production_path"),
        "fingerprint": baseline_model.get_string_custom_property("model_fingerprint"),
    }
