"""The Keras (tf-keras 2.16) big-tipper classifier, the Trainer's `run_fn` and the Tuner's `tuner_fn`.

A small network over embeddings of the categorical inputs and the scaled numeric ones. The saved
model has three signatures: `serving_default` takes raw serialized tf.Examples (no label) and returns
the big-tipper probability; `raw_features` takes each raw feature as a named tensor (JSON clients, TF
Serving's REST API) and returns the same; `transform_features` applies Transform so the Evaluator can
read labels.
"""

from collections.abc import Mapping

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx.components.tuner.component import TunerFnResult
from tfx_bsl.tfxio import dataset_options

from config import pipeline as pipeline_config
from models import features, tuning
from models.signatures import (
    EXAMPLES_SIGNATURE,
    PREDICTION,
    RAW_FEATURES_SIGNATURE,
    TRANSFORM_FEATURES_SIGNATURE,
)

EMBEDDING_DIMENSIONS = 8
HIDDEN_UNITS = (128, 64)
DROPOUT = 0.5
# Fixed so a rerun on the same data trains the same model (weights and shuffling).
SEED = 0
# Trainer custom_config keys: the pipeline sets these hyperparameters (config/pipeline.py).
BATCH_SIZE_KEY = "train_batch_size"
LEARNING_RATE_KEY = "learning_rate"
# The Tuner's custom_config key: how many points of the search space it trains.
TUNING_TRIALS_KEY = "tuning_trials"
# Hyperparameter names, as the Tuner searches them and the Trainer reads its best ones
# (`fn_args.hyperparameters`). Without a Tuner, the Trainer uses the pipeline's settings and the widths above.
LEARNING_RATE = "learning_rate"
TRAIN_STEPS = "train_steps"
EMBEDDING = "embedding_dimensions"
FIRST_LAYER_UNITS = "first_layer_units"
SECOND_LAYER_UNITS = "second_layer_units"


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


def build_keras_model(
    embedding_dimensions: int = EMBEDDING_DIMENSIONS, hidden_units: tuple[int, ...] = HIDDEN_UNITS
) -> tf.keras.Model:
    """Embeddings (`embedding_dimensions` wide) for categorical ids, concatenated with numeric inputs, then
    an MLP of `hidden_units` per layer."""
    inputs, parts = {}, []
    for name, id_count in _categorical_id_counts().items():
        inputs[name] = tf.keras.layers.Input(shape=(1,), name=name, dtype=tf.int64)
        embedded = tf.keras.layers.Embedding(id_count, embedding_dimensions, name=f"{name}_embedding")(
            inputs[name]
        )
        parts.append(tf.keras.layers.Flatten()(embedded))
    for name in map(features.transformed_name, features.NUMERIC_FEATURES):
        inputs[name] = tf.keras.layers.Input(shape=(1,), name=name, dtype=tf.float32)
        parts.append(inputs[name])

    hidden = tf.keras.layers.concatenate(parts)
    for units in hidden_units:
        hidden = tf.keras.layers.Dense(units, activation="relu")(hidden)
        hidden = tf.keras.layers.Dropout(DROPOUT, seed=SEED)(hidden)
    probability = tf.keras.layers.Dense(1, activation="sigmoid", name="big_tipper_probability")(hidden)

    return tf.keras.Model(inputs=inputs, outputs=probability)


def train(model: tf.keras.Model, batches: tf.data.Dataset, steps: int, learning_rate: float) -> float:
    """`steps` Adam steps on `batches` of (inputs, label); returns the mean loss of the last 10 %.

    A plain loop rather than `model.fit`: `fit` has AutoGraph rewrite Keras's train step, optimizer and
    metrics from their Python source the first time it runs, which took 30 of the Trainer's 60 s here.
    Nothing in this step needs AutoGraph (no Python control flow on tensors), so it is traced as is.
    """
    optimizer = tf.keras.optimizers.Adam(learning_rate)
    loss_fn = tf.keras.losses.BinaryCrossentropy()

    @tf.function(autograph=False)
    def step(inputs, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(inputs, training=True))
        optimizer.apply_gradients(
            zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables, strict=True)
        )
        return loss

    last_losses = []
    for index, (inputs, labels) in enumerate(batches.take(steps)):
        loss = step(inputs, labels)
        if index >= steps - max(1, steps // 10):
            last_losses.append(float(loss))
    return sum(last_losses) / len(last_losses)


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The exact area under the ROC curve of 0/1 `labels` and `scores` (1-D, same length): the chance that
    a positive scores above a negative, ties counting half; NaN without both classes.

    In NumPy rather than Keras's `AUC` metric, whose first `update_state` AutoGraph converts from source:
    20 s of a Trainer that trains in a few (docs/performance.md).
    """
    positive = labels.astype(bool)
    positives, negatives = int(positive.sum()), int((~positive).sum())
    if not positives or not negatives:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    ranks = np.repeat(first + (counts + 1) / 2, counts)  # 1-based, the average rank of each run of ties
    return float((ranks[positive[order]].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def prediction_function(model: tf.keras.Model):
    """Batch of transformed inputs -> probabilities, traced once (not Keras's AutoGraph-converted predict)."""
    return tf.function(lambda inputs: model(inputs, training=False), autograph=False, reduce_retracing=True)


def _dataset(
    file_pattern: list[str],
    data_accessor: DataAccessor,
    transform_output: tft.TFTransformOutput,
    batch_size: int,
) -> tf.data.Dataset:
    """Shuffled batches of (model inputs, label), repeated indefinitely: ExampleGen's raw examples passed
    through Transform's graph as they are read.

    Transform does not write its output (pipeline/pipeline.py): training reads a few thousand rows of a
    window that can hold millions, and the serving signatures apply the same graph to raw features.
    """
    input_names = model_input_names()
    transform_layer = transform_output.transform_features_layer()

    def model_inputs_and_label(raw_features: dict) -> tuple[dict, tf.Tensor]:
        transformed = transform_layer(raw_features)
        return {name: transformed[name] for name in input_names}, transformed[features.LABEL]

    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        dataset_options.TensorFlowDatasetOptions(batch_size=batch_size, shuffle_seed=SEED),
        transform_output.raw_metadata.schema,
    )
    return dataset.map(model_inputs_and_label).repeat()


def model_input_spec(transform_output: tft.TFTransformOutput) -> dict:
    """The raw features the model reads, with their parsing spec (FixedLen: required, VarLen: optional).

    What a request must or may carry: the schema's other columns (the label's source `tips`, the
    timestamp, the census tracts) are not read, so a request may leave them out.
    """
    return {
        name: spec
        for name, spec in transform_output.raw_feature_spec().items()
        if name in features.MODEL_INPUTS
    }


def _serving_signature(model: tf.keras.Model, transform_output: tft.TFTransformOutput):
    """Serialized raw tf.Examples -> {'big_tipper_probability': [batch, 1]}; features the model does not
    read may be absent."""
    # Assigned to the model so the layer's assets are tracked and saved with it.
    model.transform_layer = transform_output.transform_features_layer()
    raw_feature_spec = model_input_spec(transform_output)

    @tf.function(
        input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")], autograph=False
    )
    def serve(serialized_examples):
        raw_features = tf.io.parse_example(serialized_examples, raw_feature_spec)
        transformed = model.transform_layer(raw_features)
        return {PREDICTION: model({name: transformed[name] for name in model_input_names()})}

    return serve


def _raw_features_signature(model: tf.keras.Model, transform_output: tft.TFTransformOutput):
    """Each raw model input as a named tensor of one value per row -> {'big_tipper_probability': [batch, 1]}.

    What TF Serving's REST API takes as JSON (`{"instances": [{"fare": 12.5, ...}]}` or `{"inputs": ...}`)
    with no client-side tf.Example encoding. An optional feature is missing where its value is NaN
    (floats), negative (integers) or "" (strings), as an empty CSV cell is in training; the same rows give
    the same outputs as `serving_default`.
    """
    spec = model_input_spec(transform_output)

    @tf.function(
        input_signature=[
            {name: tf.TensorSpec([None], feature.dtype, name=name) for name, feature in spec.items()}
        ],
        autograph=False,
    )
    def raw_features(values):
        parsed = {}
        for name, feature in spec.items():
            column = values[name]
            if isinstance(feature, tf.io.FixedLenFeature):
                parsed[name] = tf.reshape(column, [-1, *feature.shape])
                continue
            if feature.dtype == tf.float32:
                present = tf.logical_not(tf.math.is_nan(column))
            elif feature.dtype == tf.int64:
                present = tf.greater_equal(column, 0)
            else:
                present = tf.not_equal(column, "")
            rows = tf.where(present)
            parsed[name] = tf.SparseTensor(
                tf.concat([rows, tf.zeros_like(rows)], axis=1),
                tf.boolean_mask(column, present),
                tf.stack([tf.shape(column, out_type=tf.int64)[0], 1]),
            )
        transformed = model.transform_layer(parsed)
        return {PREDICTION: model({name: transformed[name] for name in model_input_names()})}

    return raw_features


def _transform_features_signature(model: tf.keras.Model, transform_output: tft.TFTransformOutput):
    """Serialized raw tf.Examples (with tips) -> transformed features and label, for TFMA."""
    model.transform_layer_for_evaluation = transform_output.transform_features_layer()
    raw_feature_spec = transform_output.raw_feature_spec()

    @tf.function(
        input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")], autograph=False
    )
    def transform_features(serialized_examples):
        raw_features = tf.io.parse_example(serialized_examples, raw_feature_spec)
        return model.transform_layer_for_evaluation(raw_features)

    return transform_features


def hyperparameters(fn_args: FnArgs) -> dict:
    """The hyperparameters to train with, by the names above: the Tuner's best when the Trainer has them,
    else the pipeline's steps and rate (config/pipeline.py) and this module's widths."""
    chosen = {
        LEARNING_RATE: fn_args.custom_config[LEARNING_RATE_KEY],
        TRAIN_STEPS: fn_args.train_steps,
        EMBEDDING: EMBEDDING_DIMENSIONS,
        FIRST_LAYER_UNITS: HIDDEN_UNITS[0],
        SECOND_LAYER_UNITS: HIDDEN_UNITS[1],
    }
    if fn_args.hyperparameters:  # KerasTuner's HyperParameters config: {"space": [...], "values": {...}}
        chosen.update(fn_args.hyperparameters["values"])
    return chosen


def train_and_score(
    fn_args: FnArgs, transform_output: tft.TFTransformOutput, chosen: Mapping
) -> tuple[tf.keras.Model, float, float]:
    """Trains a model of the `chosen` hyperparameters (see `hyperparameters`) on the training split, from
    the same seed every time; returns it, its final loss and its AUC on `fn_args.eval_steps` batches of the
    evaluation split (the held-out newer data: the Tuner's objective, only logged by the Trainer)."""
    tf.keras.utils.set_random_seed(SEED)
    batch_size = fn_args.custom_config[BATCH_SIZE_KEY]
    train_batches = _dataset(fn_args.train_files, fn_args.data_accessor, transform_output, batch_size)
    model = build_keras_model(chosen[EMBEDDING], (chosen[FIRST_LAYER_UNITS], chosen[SECOND_LAYER_UNITS]))
    final_loss = train(model, train_batches, chosen[TRAIN_STEPS], chosen[LEARNING_RATE])
    predict = prediction_function(model)
    validation = _dataset(fn_args.eval_files, fn_args.data_accessor, transform_output, batch_size)
    labels, scores = [], []
    for inputs, batch_labels in validation.take(fn_args.eval_steps):
        labels.append(batch_labels.numpy().ravel())
        scores.append(predict(inputs).numpy().ravel())
    return model, final_loss, rank_auc(np.concatenate(labels), np.concatenate(scores))


def run_fn(fn_args: FnArgs) -> None:
    """Trains on the training window with `hyperparameters(fn_args)` and saves the serving model."""
    chosen = hyperparameters(fn_args)
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    model, final_loss, auc = train_and_score(fn_args, transform_output, chosen)
    logging.info(
        "Trained with %s: loss %.4f; AUC on %d evaluation batches %.4f",
        chosen,
        final_loss,
        fn_args.eval_steps,
        auc,
    )
    save(model, transform_output, fn_args.serving_model_dir)


def search_space() -> dict[str, tuple]:
    """Hyperparameter name -> the values the Tuner tries (config/pipeline.py)."""
    return {
        LEARNING_RATE: pipeline_config.TUNING_LEARNING_RATES,
        TRAIN_STEPS: pipeline_config.TUNING_TRAIN_STEPS,
        EMBEDDING: pipeline_config.TUNING_EMBEDDING_DIMENSIONS,
        FIRST_LAYER_UNITS: pipeline_config.TUNING_FIRST_LAYER_UNITS,
        SECOND_LAYER_UNITS: pipeline_config.TUNING_SECOND_LAYER_UNITS,
    }


def tuner_fn(fn_args: FnArgs) -> TunerFnResult:
    """KerasTuner's random search of config/pipeline.py's space, each point trained and scored as
    `run_fn` trains (`train_and_score`), for `fn_args.custom_config[TUNING_TRIALS_KEY]` points."""
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)

    def score(chosen: Mapping) -> dict[str, float]:
        _, final_loss, auc = train_and_score(fn_args, transform_output, chosen)
        return {tuning.OBJECTIVE: auc, "loss": final_loss}

    tuner = tuning.random_search(
        score,
        trials=fn_args.custom_config[TUNING_TRIALS_KEY],
        choices=search_space(),
        defaults=hyperparameters(fn_args),
        directory=fn_args.working_dir,
    )
    return TunerFnResult(tuner=tuner, fit_kwargs={})


def save(model: tf.keras.Model, transform_output: tft.TFTransformOutput, path: str) -> None:
    """Saves the trained model as the SavedModel the Pusher pushes and servers load, with its signatures."""
    signatures = {
        EXAMPLES_SIGNATURE: _serving_signature(model, transform_output),
        RAW_FEATURES_SIGNATURE: _raw_features_signature(model, transform_output),
        TRANSFORM_FEATURES_SIGNATURE: _transform_features_signature(model, transform_output),
    }
    # save_traces=False: Keras would otherwise trace every layer's call for re-use without the class; all
    # layers here are Keras's own, so loading rebuilds them from their config (save 15 s -> 2 s, load
    # 2.5 s -> 1 s). The signatures above are saved either way: they are what serving and TFMA call.
    model.save(path, save_format="tf", signatures=signatures, save_traces=False)
