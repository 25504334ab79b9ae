"""TFMA metrics that let a per-slice gate judge a model only when the slice holds enough examples.

TFMA checks a per-slice threshold on every matching slice, however few examples it has: a gate on the
credit-card slice would then bless or reject a model on the noise of a thin evaluation window. Two
metrics wrap a TFMA metric so that it gates only on a slice of at least `min_examples` examples:

- `ShortfallBelowFloor`: how far the metric falls short of a floor (0 when it clears it, and 0 on too
  few examples); the Evaluator gates on it with an upper bound of 0.
- `ValueWhereJudged`: the metric itself, and a constant 0 on too few examples, for every model alike; a
  change threshold on it compares the candidate with production only where the slice can tell them apart.

The wrapped metric itself is reported as usual. Loaded by the Evaluator by module path, so it must stay
importable (and be in the pipeline image).
"""

from tensorflow_model_analysis.metrics import (
    confusion_matrix_metrics,
    example_count,
    metric_types,
    metric_util,
)

# Metrics a floor can wrap, by TFMA name.
_WRAPPABLE = {
    "auc": confusion_matrix_metrics.AUC,
    "binary_accuracy": confusion_matrix_metrics.BinaryAccuracy,
    "precision": confusion_matrix_metrics.Precision,
    "recall": confusion_matrix_metrics.Recall,
}


def shortfall_name(metric: str) -> str:
    """The name under which TFMA reports the shortfall of `metric` below its floor."""
    return f"{metric}_shortfall_below_floor"


def judged_name(metric: str) -> str:
    """The name under which TFMA reports `metric` where it is judged (ValueWhereJudged)."""
    return f"{metric}_where_judged"


def where_judged(value: float, examples: float, min_examples: int) -> float:
    """`value` when there are enough examples to tell; otherwise 0, the same for every model."""
    return value if examples >= min_examples else 0.0


def shortfall(value: float, floor: float, examples: float, min_examples: int) -> float:
    """How far `value` is below `floor`; 0 when it is not, or when there are too few examples to tell."""
    if examples < min_examples:
        return 0.0
    return max(0.0, floor - value)


class ShortfallBelowFloor(metric_types.Metric):
    """`max(0, floor - metric)` on slices with at least `min_examples` examples, else 0."""

    def __init__(
        self,
        metric: str,
        floor: float,
        min_examples: int,
        metric_config: dict | None = None,
        name: str | None = None,
    ):
        """`metric_config`: the wrapped metric's arguments, equal to its own MetricConfig's so TFMA
        computes it once."""
        if metric not in _WRAPPABLE:
            raise ValueError(f"ShortfallBelowFloor wraps one of {sorted(_WRAPPABLE)}, not {metric!r}")
        super().__init__(
            metric_util.merge_per_key_computations(_gated_computations),
            metric=metric,
            metric_config=metric_config or {},
            floor=floor,
            min_examples=min_examples,
            name=name or shortfall_name(metric),
        )


class ValueWhereJudged(metric_types.Metric):
    """The metric on slices with at least `min_examples` examples, else 0 (for every model alike)."""

    def __init__(
        self, metric: str, min_examples: int, metric_config: dict | None = None, name: str | None = None
    ):
        if metric not in _WRAPPABLE:
            raise ValueError(f"ValueWhereJudged wraps one of {sorted(_WRAPPABLE)}, not {metric!r}")
        super().__init__(
            metric_util.merge_per_key_computations(_gated_computations),
            metric=metric,
            metric_config=metric_config or {},
            floor=None,
            min_examples=min_examples,
            name=name or judged_name(metric),
        )


metric_types.register_metric(ShortfallBelowFloor)
metric_types.register_metric(ValueWhereJudged)


def _gated_computations(
    metric: str,
    metric_config: dict,
    floor: float | None,
    min_examples: int,
    name: str,
    eval_config=None,
    model_name: str = "",
    output_name: str = "",
    sub_key=None,
    aggregation_type=None,
    class_weights=None,
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    def metric_key(metric_name: str) -> metric_types.MetricKey:
        return metric_types.MetricKey(
            name=metric_name,
            model_name=model_name,
            output_name=output_name,
            sub_key=sub_key,
            example_weighted=example_weighted,
        )

    key, wrapped_key = metric_key(name), metric_key(metric)
    scope = dict(
        eval_config=eval_config,
        model_names=[model_name],
        output_names=[output_name],
        aggregation_type=aggregation_type,
        class_weights=class_weights,
        example_weighted=example_weighted,
    )
    wrapped = _WRAPPABLE[metric](**metric_config).computations(sub_keys=[sub_key], **scope)
    counted = example_count.ExampleCount().computations(**scope)
    count_key = counted[-1].keys[-1]

    def result(metrics: dict) -> dict:
        value, examples = float(metrics[wrapped_key]), float(metrics[count_key])
        if floor is None:  # ValueWhereJudged
            return {key: where_judged(value, examples, min_examples)}
        return {key: shortfall(value, floor, examples, min_examples)}

    return [*wrapped, *counted, metric_types.DerivedMetricComputation(keys=[key], result=result)]
