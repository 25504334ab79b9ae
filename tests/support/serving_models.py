"""Real SavedModels for the serving tests, in seconds rather than a pipeline run.

`train` runs the pipeline's own preprocessing (tf.Transform on Beam) and model code on a slice of the
sample and saves with the pipeline's own `models.model.save`: the same signatures the Pusher pushes.
Versions that fail or answer late are made from such a model by benchmarks/model_variants.py.
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
from config import folders
from inputs import taxi_sample
from models import features, model, preprocessing


def sample_rows(keep_every: int = 10) -> tuple[list[str], list[list[str]]]:
    with taxi_sample.sample_csv_path().open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, [row for index, row in enumerate(reader) if index % keep_every == 0]


def train(folder: Path, seed: int = 0, steps: int = 60) -> Path:
    """A real model of the pipeline's code on a tenth of the sample, saved as a SavedModel in `folder`."""
    schema = text_format.Parse(folders.SCHEMA_PATH.read_text(), schema_pb2.Schema())
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
