"""The Keras (tf-keras 2.16) big-tipper classifier and the Trainer's `run_fn`.

A small network over embeddings of the categorical inputs and the scaled numeric ones. The saved
model has two signatures: `serving_default` takes raw serialized tf.Examples (no label) and returns
the big-tipper probability; `transform_features` applies Transform so the Evaluator can read labels.
"""

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx_bsl.tfxio import dataset_options

from models import features

# Small batches at a low rate: across seeds, the least variable held-out accuracy we measured.
BATCH_SIZE = 64
EMBEDDING_DIMENSIONS = 8
HIDDEN_UNITS = (128, 64)
DROPOUT = 0.5
LEARNING_RATE = 0.001
# Fixed so a rerun on the same data trains the same model (weights and shuffling).
SEED = 0


def _categorical_id_counts() -> dict[str, int]:
    """Transformed categorical feature name -> number of distinct ids it can take."""
    counts = {
        features.transformed_name(name): features.VOCABULARY_SIZE + features.OOV_BUCKETS
        for name in features.VOCABULARY_FEATURES
    }
    counts.update(
        {
            features.transformed_name(name): count
            for name, count in features.INTEGER_CATEGORICAL_FEATURES.items()
        }
    )
    # One more id than buckets: missing coordinates have their own.
    counts.update(
        {features.bucketized_name(name): features.BUCKET_COUNT + 1 for name in features.BUCKETIZED_FEATURES}
    )
    return counts


def model_input_names() -> list[str]:
    """Transformed features the network reads (Transform also outputs the label and slicing-only features)."""
    return [*_categorical_id_counts(), *map(features.transformed_name, features.NUMERIC_FEATURES)]


def build_keras_model() -> tf.keras.Model:
    """Embeddings for categorical ids, concatenated with numeric inputs, then a small MLP."""
    inputs, parts = {}, []
    for name, id_count in _categorical_id_counts().items():
        inputs[name] = tf.keras.layers.Input(shape=(1,), name=name, dtype=tf.int64)
        embedded = tf.keras.layers.Embedding(id_count, EMBEDDING_DIMENSIONS, name=f"{name}_embedding")(
            inputs[name]
        )
        parts.append(tf.keras.layers.Flatten()(embedded))
    for name in map(features.transformed_name, features.NUMERIC_FEATURES):
        inputs[name] = tf.keras.layers.Input(shape=(1,), name=name, dtype=tf.float32)
        parts.append(inputs[name])

    hidden = tf.keras.layers.concatenate(parts)
    for units in HIDDEN_UNITS:
        hidden = tf.keras.layers.Dense(units, activation="relu")(hidden)
        hidden = tf.keras.layers.Dropout(DROPOUT, seed=SEED)(hidden)
    probability = tf.keras.layers.Dense(1, activation="sigmoid", name="big_tipper_probability")(hidden)

    model = tf.keras.Model(inputs=inputs, outputs=probability)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(LEARNING_RATE),
        loss="binary_crossentropy",
        metrics=[tf.keras.metrics.AUC(name="auc"), tf.keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


def _dataset(
    file_pattern: list[str], data_accessor: DataAccessor, transform_output: tft.TFTransformOutput
) -> tf.data.Dataset:
    """Shuffled batches of (model inputs, label) from Transform's output, repeated indefinitely."""
    input_names = model_input_names()
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        dataset_options.TensorFlowDatasetOptions(
            batch_size=BATCH_SIZE, label_key=features.LABEL, shuffle_seed=SEED
        ),
        transform_output.transformed_metadata.schema,
    )
    return dataset.map(lambda inputs, label: ({name: inputs[name] for name in input_names}, label)).repeat()


def _serving_signature(model: tf.keras.Model, transform_output: tft.TFTransformOutput):
    """Serialized raw tf.Examples without the label -> {'big_tipper_probability': [batch, 1]}."""
    # Assigned to the model so the layer's assets are tracked and saved with it.
    model.transform_layer = transform_output.transform_features_layer()
    raw_feature_spec = transform_output.raw_feature_spec()
    raw_feature_spec.pop(features.TIPS)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve(serialized_examples):
        raw_features = tf.io.parse_example(serialized_examples, raw_feature_spec)
        transformed = model.transform_layer(raw_features)
        return {"big_tipper_probability": model({name: transformed[name] for name in model_input_names()})}

    return serve


def _transform_features_signature(model: tf.keras.Model, transform_output: tft.TFTransformOutput):
    """Serialized raw tf.Examples (with tips) -> transformed features and label, for TFMA."""
    model.transform_layer_for_evaluation = transform_output.transform_features_layer()
    raw_feature_spec = transform_output.raw_feature_spec()

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features(serialized_examples):
        raw_features = tf.io.parse_example(serialized_examples, raw_feature_spec)
        return model.transform_layer_for_evaluation(raw_features)

    return transform_features


def run_fn(fn_args: FnArgs) -> None:
    """Trains on the training window for `fn_args.train_steps` and saves the serving model."""
    tf.keras.utils.set_random_seed(SEED)
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train = _dataset(fn_args.train_files, fn_args.data_accessor, transform_output)
    validation = _dataset(fn_args.eval_files, fn_args.data_accessor, transform_output)

    model = build_keras_model()
    # Validation data is the held-out newer span, so it is only reported, never used to pick a step.
    model.fit(
        train,
        steps_per_epoch=fn_args.train_steps,
        validation_data=validation,
        validation_steps=fn_args.eval_steps,
        verbose=0,
    )
    signatures = {
        "serving_default": _serving_signature(model, transform_output),
        "transform_features": _transform_features_signature(model, transform_output),
    }
    model.save(fn_args.serving_model_dir, save_format="tf", signatures=signatures)
