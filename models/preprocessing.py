"""The Transform `preprocessing_fn`: raw taxi columns to model inputs, and the big-tipper label.

The label is derived here and nowhere else, so training, evaluation and any later analysis that
reads the transformed data agree on it by construction.
"""

import tensorflow as tf
import tensorflow_transform as tft

from models import features


def _densify(values: tf.Tensor | tf.SparseTensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Returns a rank-1 dense tensor with '' or 0 where a value is missing, and the missing mask.

    Optional columns arrive as SparseTensors of shape [batch, 1] (empty where the CSV cell was empty).
    """
    if not isinstance(values, tf.SparseTensor):
        dense = tf.reshape(values, [-1])
        return dense, tf.zeros_like(dense, dtype=tf.bool)
    batch_size = values.dense_shape[0]
    one_column = tf.SparseTensor(values.indices, values.values, [batch_size, 1])
    default = "" if values.dtype == tf.string else tf.zeros([], values.dtype)
    dense = tf.squeeze(tf.sparse.to_dense(one_column, default), axis=1)
    present = tf.SparseTensor(values.indices, tf.ones_like(values.indices[:, 0]), [batch_size, 1])
    return dense, tf.equal(tf.squeeze(tf.sparse.to_dense(present), axis=1), 0)


def preprocessing_fn(inputs: dict) -> dict:
    """Maps raw features (dict of [batch, 1] tensors) to the model's inputs and the label."""
    outputs = {}
    for name in features.VOCABULARY_FEATURES:
        values, _ = _densify(inputs[name])
        outputs[features.transformed_name(name)] = tft.compute_and_apply_vocabulary(
            values,
            top_k=features.VOCABULARY_SIZE,
            num_oov_buckets=features.OOV_BUCKETS,
            vocab_filename=name,
        )

    for name, id_count in features.INTEGER_CATEGORICAL_FEATURES.items():
        values, _ = _densify(inputs[name])
        outputs[features.transformed_name(name)] = tf.clip_by_value(
            tf.cast(values, tf.int64), 0, id_count - 1
        )

    for name in features.NUMERIC_FEATURES:
        values, _ = _densify(inputs[name])
        log_amount = tf.math.log1p(tf.maximum(tf.cast(values, tf.float32), 0.0))
        outputs[features.transformed_name(name)] = tft.scale_to_z_score(log_amount)

    for name in features.BUCKETIZED_FEATURES:
        values, missing = _densify(inputs[name])
        buckets = tft.bucketize(tf.cast(values, tf.float32), features.BUCKET_COUNT)
        # A missing coordinate gets its own id rather than joining the lowest bucket.
        outputs[features.bucketized_name(name)] = tf.where(
            missing, tf.constant(features.BUCKET_COUNT, tf.int64), buckets
        )

    hour, _ = _densify(inputs["trip_start_hour"])
    band = tf.clip_by_value(tf.cast(hour, tf.int64), 0, 23) // (24 // len(features.HOUR_BANDS))
    outputs[features.HOUR_BAND] = tf.gather(tf.constant(features.HOUR_BANDS), band)

    tips, _ = _densify(inputs[features.TIPS])
    fare, _ = _densify(inputs[features.FARE])
    outputs[features.LABEL] = tf.cast(
        tf.greater(_cents(tips) * 100, _cents(fare) * features.BIG_TIPPER_PERCENT_OF_FARE), tf.int64
    )
    return outputs


def _cents(dollars: tf.Tensor) -> tf.Tensor:
    """Dollars (float32, two decimals in the data) as whole cents: exact integers to compare, where float32
    arithmetic such as `0.2 * fare` rounds (features.is_big_tipper is the same rule in Python)."""
    return tf.cast(tf.round(tf.cast(dollars, tf.float64) * 100.0), tf.int64)
