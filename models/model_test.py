"""The Keras model builds from the feature definitions and learns on a batch."""

import numpy as np
import tensorflow as tf

from models import features, model
from tests.support.model_inputs import transformed_batch


def test_model_outputs_one_probability_per_example():
    keras_model = model.build_keras_model()
    probabilities = keras_model.predict(transformed_batch(5), verbose=0)
    assert probabilities.shape == (5, 1)
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_training_halves_the_loss_on_a_learnable_batch():
    keras_model = model.build_keras_model()
    batch = transformed_batch(256)
    # Label fully determined by one categorical id, so a few steps must lower the loss.
    labels = (batch[features.transformed_name("payment_type")] % 2).astype("float32")
    loss = tf.keras.losses.BinaryCrossentropy()
    before = float(loss(labels, model.prediction_function(keras_model)(batch)))
    model.train(
        keras_model, tf.data.Dataset.from_tensor_slices((batch, labels)).batch(64).repeat(), 80, 0.004
    )
    after = float(loss(labels, model.prediction_function(keras_model)(batch)))
    assert after < before / 2


def test_model_inputs_match_transform_outputs():
    keras_model = model.build_keras_model()
    expected = set(model._categorical_id_counts()) | {
        features.transformed_name(n) for n in features.NUMERIC_FEATURES
    }
    assert set(keras_model.input_names) == expected == set(model.model_input_names())
    assert tf.keras.__name__.startswith(("tf_keras", "keras.api._v2"))


def test_rank_auc_is_the_exact_auc_with_ties_counting_half():
    labels = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.5, 0.5, 0.9, 0.2])
    # Pairs (positive, negative) where the positive scores higher, a tie counting half: 13.5 of 16.
    pairs = [(p, n) for p in scores[labels == 1] for n in scores[labels == 0]]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert model.rank_auc(labels, scores) == expected == 13.5 / 16
    assert model.rank_auc(labels, 1 - scores) == 1 - expected
    assert np.isnan(model.rank_auc(np.ones(3), np.array([0.1, 0.2, 0.3])))
