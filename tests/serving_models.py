"""Real SavedModels for the serving tests, in seconds rather than a pipeline run.

`train` runs the pipeline's own preprocessing (tf.Transform on Beam) and model code on a slice of the
sample and saves with the pipeline's own `models.model.save`: the same signatures the Pusher pushes.
`broken` and `slow` wrap such a model into versions that fail or answer late, as a bad push would.
"""

import csv
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from benchmarks import floor
from models import features, model, preprocessing
from pipeline import configs, taxi_sample


def sample_rows(keep_every: int = 10) -> tuple[list[str], list[list[str]]]:
    with taxi_sample.sample_csv_path().open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, [row for index, row in enumerate(reader) if index % keep_every == 0]


def train(folder: Path, seed: int = 0, steps: int = 60) -> Path:
    """A real model of the pipeline's code on a tenth of the sample, saved as a SavedModel in `folder`."""
    schema = text_format.Parse(configs.SCHEMA_PATH.read_text(), schema_pb2.Schema())
    feature_spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(feature_spec))
    header, rows = sample_rows()
    transform_dir = folder.parent / f"{folder.name}_transform"
    with tft_beam.Context(temp_dir=str(folder.parent / f"{folder.name}_tmp")):
        (transformed, _), transform_fn = (
            floor.typed_instances(header, rows, feature_spec),
            metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(preprocessing.preprocessing_fn, output_record_batches=False)
        _ = transform_fn | tft_beam.WriteTransformFn(str(transform_dir))
    # The raw features' metadata, which TFX's Transform writes beside the transform graph for serving.
    metadata_io.write_metadata(metadata, str(transform_dir / tft.TFTransformOutput.RAW_METADATA_DIR))
    names = model.model_input_names()
    inputs = {name: np.array([row[name] for row in transformed]).reshape(-1, 1) for name in names}
    labels = np.array([row[features.LABEL] for row in transformed], dtype=np.float32)
    tf.keras.utils.set_random_seed(seed)
    keras_model = model.build_keras_model()
    batches = (
        tf.data.Dataset.from_tensor_slices((inputs, labels))
        .shuffle(len(labels), seed=seed)
        .batch(64)
        .repeat()
    )
    model.train(keras_model, batches, steps, 0.004)
    model.save(keras_model, tft.TFTransformOutput(str(transform_dir)), str(folder))
    return folder


class _Wrapped(tf.Module):
    """A served model's signatures around a loaded model, with `before(inputs)` done before each call."""

    def __init__(self, source: Path, before):
        super().__init__()
        self.inner = tf.saved_model.load(str(source))
        raw = self.inner.signatures[model.RAW_FEATURES_SIGNATURE]
        examples = self.inner.signatures["serving_default"]
        raw_spec = raw.structured_input_signature[1]

        @tf.function(
            input_signature=[{k: tf.TensorSpec(v.shape, v.dtype, name=k) for k, v in raw_spec.items()}]
        )
        def raw_features(values):
            with tf.control_dependencies([before(values)]):
                return raw(**values)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serving_default(serialized):
            with tf.control_dependencies([before({"examples": serialized})]):
                return examples(examples=serialized)

        self.raw_features, self.serving_default = raw_features, serving_default


def _save(module: _Wrapped, folder: Path) -> Path:
    tf.saved_model.save(
        module,
        str(folder),
        signatures={
            model.RAW_FEATURES_SIGNATURE: module.raw_features,
            "serving_default": module.serving_default,
        },
    )
    return folder


def broken(source: Path, folder: Path) -> Path:
    """A version that loads and passes the server's warm-up call (fare $1), then fails on every real
    fare, as a model exported wrong can."""

    def fail(inputs):  # decided at run time, on the request: a constant would fail the export itself
        if "examples" in inputs:
            return tf.debugging.assert_less(tf.size(inputs["examples"]), 0, message="a broken model version")
        return tf.debugging.assert_less_equal(
            tf.reduce_max(inputs[features.FARE]), 1.0, message="a broken model version"
        )

    return _save(_Wrapped(source, fail), folder)


def slow(source: Path, folder: Path, seconds: float) -> Path:
    """A version that answers right, `seconds` late: tf.data's sleep, an op of the graph, so the delay is
    the same on a busy machine or an idle one (a loop of computation would not be)."""
    from tensorflow.python.data.experimental.ops import testing

    microseconds = int(seconds * 1_000_000)

    def wait(inputs):
        size = tf.size(next(iter(inputs.values())))
        slept = next(iter(tf.data.Dataset.range(1).apply(testing.sleep(microseconds))))
        return slept + 0 * tf.cast(size, tf.int64)

    return _save(_Wrapped(source, wait), folder)
