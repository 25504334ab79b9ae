"""An evaluation reused when the candidate is the model in production, byte for byte.

A run on unchanged data trains nothing new: the Trainer's cached model, pushed by an earlier run, is now
production, and TFMA would evaluate two copies of one model on every slice (71-74 % of such a run on the
sample; docs/performance.md). In such an evaluation the candidate's and the baseline's metrics were equal
bit for bit (1,862 of 1,862 values) and every diff 0, or NaN where the metric is. So when the candidate's
content fingerprint (registry/versions.py) is production's, and an evaluation of this candidate on the same
examples with the same configuration and code sits beside this one, the Evaluator writes what TFMA would:
the earlier candidate metrics for both models, TFMA's own diffs (value minus baseline), TFMA's validator's
verdict and TFMA's writers' files. It differs from a full evaluation only by TFMA's run-to-run noise
(`mean_prediction` and `calibration` moved by up to 3.1e-9 between two evaluations of one model).

Each evaluation folder gets a manifest, written last (`MANIFEST_FILE`): the key of what was evaluated and,
for a reused one, the folder it came from. The search looks at sibling folders only (the pipeline root's
`Evaluator/evaluation/*`), so it needs no ML Metadata handle; where there is none (each Kubeflow run writes
under its own root), the Evaluator evaluates in full.
"""

import hashlib
import json
import os

import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants as tfma_constants
from tensorflow_model_analysis.evaluators import metrics_plots_and_validations_evaluator, metrics_validator
from tensorflow_model_analysis.metrics import (
    binary_confusion_matrices,
    calibration_plot,
    confusion_matrix_plot,
    metric_types,
)
from tensorflow_model_analysis.proto import metrics_for_slice_pb2
from tensorflow_model_analysis.slicer import slicer_lib as slicer
from tensorflow_model_analysis.writers import eval_config_writer, metrics_plots_and_validations_writer
from tfx.dsl.io import fileio

from reports.evaluation_results import REUSED_FROM

MANIFEST_FILE = "evaluation_manifest.json"
# TFMA's writers in a Beam pipeline took 16 of 24 s (loaded) to write a few hundred records: TFMA's
# conversions, validator and validation combiner are called directly, and the files named as Beam names them.
_SHARD = "-00000-of-00001.tfrecord"
_ARRAY_VALUES = {
    metrics_for_slice_pb2.ArrayValue.FLOAT64: ("float64_values", np.float64),
    metrics_for_slice_pb2.ArrayValue.FLOAT32: ("float32_values", np.float32),
    metrics_for_slice_pb2.ArrayValue.INT64: ("int64_values", np.int64),
    metrics_for_slice_pb2.ArrayValue.INT32: ("int32_values", np.int32),
}
_PLOT_NAMES = {
    "calibration_histogram_buckets": calibration_plot.CALIBRATION_PLOT_NAME,
    "confusion_matrix_at_thresholds": confusion_matrix_plot.CONFUSION_MATRIX_PLOT_NAME,
}


class CannotReuse(ValueError):
    """The earlier evaluation holds something this module does not rebuild: evaluate in full."""


def evaluation_key(
    candidate_fingerprint: str, examples_uri: str, example_splits: list[str], eval_config_json: str, code: str
) -> str:
    """What decides a candidate's metrics: the model's content, the examples (their artifact folder and its
    files' names and sizes), the raw eval_config, this code's fingerprint and TFMA's version."""
    digest = hashlib.sha256(
        json.dumps(
            [candidate_fingerprint, examples_uri, example_splits, eval_config_json, code, tfma.__version__]
        ).encode()
    )
    for root, folders, files in fileio.walk(examples_uri):
        folders.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(f"{os.path.relpath(path, examples_uri)} {fileio.stat(path).length}\n".encode())
    return digest.hexdigest()[:32]


def write_manifest(evaluation_uri: str, key: str, reused_from: str = "") -> None:
    """Written last: an evaluation folder without it is incomplete and never reused."""
    with fileio.open(os.path.join(evaluation_uri, MANIFEST_FILE), "w") as handle:
        json.dump({"key": key, REUSED_FROM: reused_from}, handle)


def find_earlier(evaluation_uri: str, key: str) -> str | None:
    """The newest complete evaluation folder beside `evaluation_uri` with this key, if any."""
    parent = os.path.dirname(evaluation_uri.rstrip("/"))
    own = os.path.basename(evaluation_uri.rstrip("/"))
    siblings = [name.rstrip("/") for name in fileio.listdir(parent)] if fileio.isdir(parent) else []
    for name in sorted((n for n in siblings if n != own), key=_newest_first):
        manifest = os.path.join(parent, name, MANIFEST_FILE)
        if fileio.exists(manifest):
            with fileio.open(manifest) as handle:
                if json.load(handle).get("key") == key:
                    return os.path.join(parent, name)
    return None


def _newest_first(name: str) -> tuple:
    """TFX numbers an output folder by its execution id; other names come last."""
    return (0, -int(name)) if name.isdigit() else (1, name)


def write_reused(
    earlier_uri: str, evaluation_uri: str, eval_config: tfma.EvalConfig, model_locations: dict[str, str]
) -> None:
    """Writes to `evaluation_uri` the evaluation TFMA would write for `eval_config` (a candidate and a
    baseline of the same content) from the candidate's metrics and plots in `earlier_uri`.

    Raises CannotReuse if the earlier evaluation holds a kind of value not rebuilt here.
    """
    earlier_config = eval_config_writer.load_eval_run(earlier_uri)[0]
    earlier_name = next(spec.name for spec in earlier_config.model_specs if not spec.is_baseline)
    candidate = next(spec.name for spec in eval_config.model_specs if not spec.is_baseline)
    baseline = next(spec.name for spec in eval_config.model_specs if spec.is_baseline)
    metrics = [
        (key, _both_models(values, candidate, baseline))
        for key, values in _candidate_metrics(earlier_uri, earlier_name, candidate)
    ]
    plots = [
        (key, {**values, **{k._replace(model_name=baseline): v for k, v in values.items()}})
        for key, values in _candidate_plots(earlier_uri, earlier_name, candidate)
    ]
    _write_records(evaluation_uri, f"{tfma_constants.METRICS_KEY}{_SHARD}", map(_metrics_proto, metrics))
    _write_records(evaluation_uri, f"{tfma_constants.PLOTS_KEY}{_SHARD}", map(_plots_proto, plots))
    _write_records(evaluation_uri, f"{tfma_constants.ATTRIBUTIONS_KEY}{_SHARD}", [])
    combine = metrics_plots_and_validations_writer.CombineValidations(eval_config, rubber_stamp=False)
    validation = combine.create_accumulator()
    for sliced_metrics in metrics:
        validation = combine.add_input(
            validation, metrics_validator.validate_metrics(sliced_metrics, eval_config)
        )
    _write_records(
        evaluation_uri, f"{tfma_constants.VALIDATIONS_KEY}.tfrecord", [combine.extract_output(validation)]
    )
    with fileio.open(
        os.path.join(evaluation_uri, f"{eval_config_writer.EVAL_CONFIG_FILE}.json"), "w"
    ) as handle:  # what TFMA's EvalConfigWriter writes for an evaluation of a PCollection, as TFX's
        handle.write(
            eval_config_writer._serialize_eval_run(  # noqa: SLF001 (TFMA's own serialisation)
                eval_config, "<user provided PCollection>", "<unknown>", model_locations
            )
            + "\n"
        )


def _metrics_proto(sliced_metrics):
    return metrics_plots_and_validations_writer.convert_slice_metrics_to_proto(
        sliced_metrics, add_metrics_callbacks=[]
    )


def _plots_proto(sliced_plots):
    return metrics_plots_and_validations_writer.convert_slice_plots_to_proto(
        sliced_plots, add_metrics_callbacks=[]
    )


def _write_records(folder: str, name: str, protos) -> None:
    """Uncompressed TFRecord file of serialized protos, as Beam's WriteToTFRecord writes TFMA's outputs."""
    import tensorflow as tf  # noqa: PLC0415  (loaded by TFMA already)

    fileio.makedirs(folder)
    with tf.io.TFRecordWriter(os.path.join(folder, name)) as writer:
        for proto in protos:
            writer.write(proto.SerializeToString())


def _both_models(candidate_metrics: dict, candidate: str, baseline: str) -> dict:
    """The candidate's metrics, the same values as the baseline's, and the diffs as TFMA adds them
    (`add_diff_metrics`: value minus baseline, for numbers and structured values)."""
    result = dict(candidate_metrics)
    result.update({key.make_baseline_key(baseline): value for key, value in candidate_metrics.items()})
    for key, value in candidate_metrics.items():
        if metrics_plots_and_validations_evaluator._is_metric_diffable(value):  # noqa: SLF001 (TFMA's own rule)
            result[key.make_diff_key()] = value - result[key.make_baseline_key(baseline)]
    return result


def _candidate_metrics(earlier_uri: str, earlier_name: str, candidate: str):
    """(slice key, {MetricKey: value}) of the earlier evaluation's candidate, renamed `candidate`."""
    for record in metrics_plots_and_validations_writer.load_and_deserialize_metrics(earlier_uri):
        values = {}
        for entry in record.metric_keys_and_values:
            key = metric_types.MetricKey.from_proto(entry.key)
            if key.model_name == earlier_name and not key.is_diff:
                values[key._replace(model_name=candidate)] = _metric_value(entry.value)
        yield _slice_key(record), values


def _candidate_plots(earlier_uri: str, earlier_name: str, candidate: str):
    """(slice key, {PlotKey: plot proto}) of the earlier evaluation's candidate, keyed as TFMA keeps them
    before writing (one key per plot, named)."""
    for record in metrics_plots_and_validations_writer.load_and_deserialize_plots(earlier_uri):
        values = {}
        for entry in record.plot_keys_and_values:
            key = metric_types.PlotKey.from_proto(entry.key)
            if key.model_name != earlier_name:
                continue
            for field, value in entry.value.ListFields():
                if field.name not in _PLOT_NAMES:
                    raise CannotReuse(f"a plot of kind {field.name}")
                values[key._replace(model_name=candidate, name=_PLOT_NAMES[field.name])] = value
        yield _slice_key(record), values


def _slice_key(record):
    if record.HasField("cross_slice_key"):
        raise CannotReuse("a cross-slice metric")
    return slicer.deserialize_slice_key(record.slice_key)


def _metric_value(value: metrics_for_slice_pb2.MetricValue):
    """A metric's value as TFMA holds it before writing it (the inverse of its writer's conversion)."""
    kind = value.WhichOneof("type")
    if kind == "double_value":
        return value.double_value.value
    if kind == "array_value" and value.array_value.data_type in _ARRAY_VALUES:
        field, dtype = _ARRAY_VALUES[value.array_value.data_type]
        return np.array(getattr(value.array_value, field), dtype=dtype).reshape(value.array_value.shape)
    if kind == "confusion_matrix_at_thresholds":
        matrices = value.confusion_matrix_at_thresholds.matrices
        return binary_confusion_matrices.Matrices(
            thresholds=[m.threshold for m in matrices],
            tp=[m.true_positives for m in matrices],
            tn=[m.true_negatives for m in matrices],
            fp=[m.false_positives for m in matrices],
            fn=[m.false_negatives for m in matrices],
        )
    raise CannotReuse(f"a metric value of kind {kind}")
