"""The Evaluator's TFMA configuration: slices, metrics, and the thresholds that bless a model."""

import json
from collections.abc import Sequence

import tensorflow_model_analysis as tfma
from google.protobuf import wrappers_pb2

from config import pipeline as pipeline_config
from models import features, slice_floor_metric
from models.signatures import EXAMPLES_SIGNATURE, TRANSFORM_FEATURES_SIGNATURE

# TFMA's AUC defaults to 10,000 thresholds per slice and model; with 1,000 it stays within 0.0001 of
# the exact AUC here, and the Evaluator takes less time on ~130 slices. The key-slice floor wraps the
# same configuration, so TFMA computes the AUC once.
AUC_CONFIG = {"num_thresholds": 1000}


def slicing_spec(slice_features: Sequence[str] = (), slice_values: Sequence[tuple[str, str]] = ()):
    """One TFMA slicing spec: every value of `slice_features` (crossed), or the slice `slice_values`."""
    return tfma.SlicingSpec(feature_keys=list(slice_features), feature_values=dict(slice_values))


def _metric(class_name: str, module: str = "", per_slice_thresholds=(), **config) -> tfma.MetricConfig:
    return tfma.MetricConfig(
        class_name=class_name,
        module=module,
        config=json.dumps(config) if config else "",
        per_slice_thresholds=list(per_slice_thresholds),
    )


def _on_slice(threshold: tfma.MetricThreshold, slice_values: Sequence[tuple[str, str]] = ()):
    """`threshold` applied to one slice only (the whole evaluation set by default).

    A MetricConfig's plain `threshold` would apply to every slice, however small.
    """
    return tfma.PerSliceMetricThreshold(
        slicing_specs=[slicing_spec(slice_values=slice_values)], threshold=threshold
    )


def _floor_on_key_slice(
    metric: str, floor: float, key_slice, min_slice_examples: int, metric_config: dict
) -> tfma.MetricConfig:
    """Gate: `metric` on the key slice clears `floor`, judged only with >= min_slice_examples examples."""
    return _metric(
        "ShortfallBelowFloor",
        module=slice_floor_metric.__name__,
        per_slice_thresholds=[
            _on_slice(
                tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(upper_bound={"value": 0.0})),
                key_slice,
            )
        ],
        metric=metric,
        metric_config=metric_config,
        floor=floor,
        min_examples=min_slice_examples,
        name=slice_floor_metric.shortfall_name(metric),
    )


def _regression_on_key_slice(
    metric: str, max_drop: float, key_slice, min_slice_examples: int, metric_config: dict
) -> tfma.MetricConfig:
    """Gate: `metric` on the key slice at most `max_drop` below production's, judged only with
    >= min_slice_examples examples (below that, both models measure 0 and the change is 0)."""
    return _metric(
        "ValueWhereJudged",
        module=slice_floor_metric.__name__,
        per_slice_thresholds=[
            _on_slice(
                tfma.MetricThreshold(
                    change_threshold=tfma.GenericChangeThreshold(
                        direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -max_drop}
                    )
                ),
                key_slice,
            )
        ],
        metric=metric,
        metric_config=metric_config,
        min_examples=min_slice_examples,
        name=slice_floor_metric.judged_name(metric),
    )


def build_eval_config(evaluation: pipeline_config.Evaluation) -> tfma.EvalConfig:
    """Metrics on every slice; value floors overall and on the key slice; AUC change vs. production,
    overall and on the key slice; and a floor on the examples judged, below which nothing is blessed."""
    thresholds = list(evaluation.decision_thresholds)
    key_slice, min_slice_examples = evaluation.key_slice, evaluation.min_slice_examples
    overall_auc = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": evaluation.min_auc}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -evaluation.max_auc_drop}
        ),
    )
    overall_accuracy = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": evaluation.min_accuracy})
    )
    enough_examples = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": evaluation.min_evaluation_examples})
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=EXAMPLES_SIGNATURE,
                label_key=features.LABEL,
                # The label and the hour band exist only after Transform.
                preprocessing_function_names=[TRANSFORM_FEATURES_SIGNATURE],
            )
        ],
        slicing_specs=[slicing_spec(slice_features=spec) for spec in evaluation.slice_features],
        # Not the model's compiled Keras metrics too: TFMA would run them per slice in TensorFlow, for
        # numbers its own metrics below already give.
        options=tfma.Options(include_default_metrics=wrappers_pb2.BoolValue(value=False)),
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    _metric("ExampleCount", per_slice_thresholds=[_on_slice(enough_examples)]),
                    _metric("AUC", per_slice_thresholds=[_on_slice(overall_auc)], **AUC_CONFIG),
                    _metric("BinaryAccuracy", per_slice_thresholds=[_on_slice(overall_accuracy)]),
                    _metric("Precision"),
                    _metric("Recall"),
                    _metric("MeanLabel"),
                    _metric("MeanPrediction"),
                    _metric("Calibration"),
                    _metric("ConfusionMatrixAtThresholds", thresholds=thresholds),
                    # Fairness Indicators' core rates per slice: false positive rate (fall-out), false negative rate (miss rate).
                    _metric("FallOut", thresholds=thresholds),
                    _metric("MissRate", thresholds=thresholds),
                    _metric("CalibrationPlot", num_buckets=10),
                    _metric("ConfusionMatrixPlot", num_thresholds=100),
                    _floor_on_key_slice(
                        "auc", evaluation.key_slice_min_auc, key_slice, min_slice_examples, AUC_CONFIG
                    ),
                    _floor_on_key_slice(
                        "binary_accuracy",
                        evaluation.key_slice_min_accuracy,
                        key_slice,
                        min_slice_examples,
                        {},
                    ),
                    _regression_on_key_slice(
                        "auc", evaluation.key_slice_max_auc_drop, key_slice, min_slice_examples, AUC_CONFIG
                    ),
                ]
            )
        ],
    )
