"""The floor: our preprocessing and model in one process, with no orchestrator, on the same windows.

    python -m benchmarks.floor DATA_ROOT WORK_DIR

Reads the newest span's training window and evaluation window from the CSVs, runs our
`preprocessing_fn` with tf.Transform (analysis on the training window only), trains our Keras model with
the Trainer's own loop (`model.train`) for `TRAIN_STEPS` batches of `TRAIN_BATCH_SIZE` with the same
seed, and scores the evaluation window. No ExampleGen, statistics, validation, ML Metadata, caching,
model export or evaluation slices: what is left is the learning itself plus process start-up and
imports. Prints {"auc": ..., "examples": ...} as JSON.
"""

import csv
import json
import sys
from pathlib import Path

from pipeline.quiet_logs import quiet_logs

quiet_logs(verbose=False)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform.beam as tft_beam  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from tensorflow_metadata.proto.v0 import schema_pb2  # noqa: E402
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils  # noqa: E402

from config import folders  # noqa: E402
from config import pipeline as pipeline_config  # noqa: E402
from inputs import checks, layout  # noqa: E402
from models import features, model, preprocessing  # noqa: E402


def typed_instances(header: list[str], rows, feature_spec: dict) -> list[dict]:
    """CSV rows as tf.Transform instance dicts typed by the feature spec (empty cells: no value)."""
    converters = {tf.int64: lambda v: int(float(v)), tf.float32: float, tf.string: str.encode}
    instances = []
    for row in rows:
        instance = {}
        for name, value in zip(header, row, strict=True):
            spec = feature_spec[name]
            convert = converters[spec.dtype]
            if isinstance(spec, tf.io.FixedLenFeature):
                instance[name] = [convert(value)] if spec.shape else convert(value)
            else:
                instance[name] = [convert(value)] if value != "" else []
        instances.append(instance)
    return instances


def _instances(csv_files: list[Path], feature_spec: dict) -> list[dict]:
    instances = []
    for csv_file in csv_files:
        with csv_file.open(newline="") as handle:
            reader = csv.reader(handle)
            instances.extend(typed_instances(next(reader), reader, feature_spec))
    return instances


def _arrays(transformed: list[dict]) -> tuple[dict, np.ndarray]:
    inputs_by_name = {
        name: np.array([row[name] for row in transformed]).reshape(-1, 1)
        for name in model.model_input_names()
    }
    return inputs_by_name, np.array([row[features.LABEL] for row in transformed], dtype=np.float32)


def main() -> int:
    data_root, work_dir = Path(sys.argv[1]), Path(sys.argv[2])
    work_dir.mkdir(parents=True, exist_ok=True)
    spans = checks.discover_spans(data_root)
    ordered = sorted(spans)
    training, evaluation = layout.windows(
        ordered, len(ordered) - 1, pipeline_config.TRAINING_WINDOW_SPANS, pipeline_config.EVALUATION_SPANS
    )
    schema = text_format.Parse(folders.SCHEMA_PATH.read_text(), schema_pb2.Schema())
    feature_spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(feature_spec))
    train_rows = _instances([f for s in training for f in spans[s]], feature_spec)
    eval_rows = _instances([f for s in evaluation for f in spans[s]], feature_spec)

    with tft_beam.Context(temp_dir=str(work_dir / "tft")):
        (transformed_train, _), transform_fn = (train_rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn, output_record_batches=False
        )
        transformed_eval, _ = ((eval_rows, metadata), transform_fn) | tft_beam.TransformDataset(
            output_record_batches=False
        )

    tf.keras.utils.set_random_seed(model.SEED)
    train_inputs, train_labels = _arrays(transformed_train)
    dataset = (
        tf.data.Dataset.from_tensor_slices((train_inputs, train_labels))
        .shuffle(len(train_labels), seed=model.SEED)
        .batch(pipeline_config.TRAIN_BATCH_SIZE)
        .repeat()
    )
    keras_model = model.build_keras_model()
    model.train(keras_model, dataset, pipeline_config.TRAIN_STEPS, pipeline_config.LEARNING_RATE)

    eval_inputs, eval_labels = _arrays(transformed_eval)
    auc = tf.keras.metrics.AUC(num_thresholds=1000)
    auc.update_state(eval_labels, tf.reshape(model.prediction_function(keras_model)(eval_inputs), [-1]))
    print(json.dumps({"auc": round(float(auc.result()), 4), "examples": len(eval_labels)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
