"""The Tuner's search on tiny data: real Keras training per trial, the space of config, the best kept."""

import json
import types

import numpy as np
import pytest
import tensorflow as tf
from tfx.components.tuner import executor as tfx_tuner_executor

from config import pipeline as pipeline_config
from models import features, model, tuning
from reports import tuning_trials
from tests.support.model_inputs import transformed_batch

SPACE = model.search_space()
TODAY = {
    model.LEARNING_RATE: pipeline_config.LEARNING_RATE,
    model.TRAIN_STEPS: pipeline_config.TRAIN_STEPS,
    model.EMBEDDING: model.EMBEDDING_DIMENSIONS,
    model.FIRST_LAYER_UNITS: model.HIDDEN_UNITS[0],
    model.SECOND_LAYER_UNITS: model.HIDDEN_UNITS[1],
}


def _rows(size: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Transformed-looking inputs whose label is one categorical id's parity, plus 20 % noise."""
    inputs = transformed_batch(size, seed)
    labels = inputs[features.transformed_name("payment_type")].ravel() % 2
    flipped = np.random.default_rng([seed, 1]).random(size) < 0.2
    labels = np.where(flipped, 1 - labels, labels).astype("float32")
    return inputs, labels


def _tiny_score(scored: list):
    """A trial as the Trainer trains (models/model.py), on 512 rows for at most 20 steps: held-out AUC."""
    train_inputs, train_labels = _rows(512, 0)
    test_inputs, test_labels = _rows(256, 1)

    def score(chosen):
        scored.append(dict(chosen))
        tf.keras.utils.set_random_seed(model.SEED)
        keras_model = model.build_keras_model(
            chosen[model.EMBEDDING], (chosen[model.FIRST_LAYER_UNITS], chosen[model.SECOND_LAYER_UNITS])
        )
        batches = tf.data.Dataset.from_tensor_slices((train_inputs, train_labels)).batch(64).repeat()
        loss = model.train(keras_model, batches, chosen[model.TRAIN_STEPS] // 10, chosen[model.LEARNING_RATE])
        auc = model.rank_auc(test_labels, model.prediction_function(keras_model)(test_inputs).numpy().ravel())
        return {tuning.OBJECTIVE: auc, "loss": loss}

    return score


def test_search_trains_distinct_points_of_the_space_and_keeps_the_best(tmp_path):
    scored = []
    tuner = tuning.random_search(
        _tiny_score(scored), trials=3, choices=SPACE, defaults=TODAY, directory=str(tmp_path)
    )
    tuner.search()

    assert len(scored) == 3 and len({tuple(sorted(point.items())) for point in scored}) == 3
    for point in scored:
        assert point.keys() == SPACE.keys()
        assert all(point[name] in values for name, values in SPACE.items()), point
    trials = tuner.oracle.get_best_trials(3)
    scores = [trial.score for trial in trials]
    assert scores == sorted(scores, reverse=True) and all(0 <= score <= 1 for score in scores)
    assert scores[0] > 0.6  # the best point learns the label's signal even in a few steps
    assert tuner.get_best_hyperparameters()[0].values == trials[0].hyperparameters.values

    # TFX's executor writes the best and the trials; ours records them as the Trainer and `trials` read them.
    best_dir, results_dir = tmp_path / "best", tmp_path / "results"
    outputs = {
        "best_hyperparameters": [types.SimpleNamespace(uri=str(best_dir))],
        "tuner_results": [types.SimpleNamespace(uri=str(results_dir))],
    }
    tfx_tuner_executor.write_best_hyperparameters(tuner, outputs)
    best_config = json.loads((best_dir / "best_hyperparameters.txt").read_text())
    fn_args = types.SimpleNamespace(
        hyperparameters=best_config,
        train_steps=pipeline_config.TRAIN_STEPS,
        custom_config={model.LEARNING_RATE_KEY: pipeline_config.LEARNING_RATE},
    )
    assert model.hyperparameters(fn_args) == trials[0].hyperparameters.values
    recorded = tuning_trials.trials_of(json.loads((results_dir / "tuner_results.json").read_text()))
    assert [trial["score"] for trial in recorded] == scores
    assert [trial["best"] for trial in recorded] == [True, False, False]
    assert recorded[0]["hyperparameters"] == trials[0].hyperparameters.values


def test_without_a_tuner_the_trainer_keeps_todays_settings():
    fn_args = types.SimpleNamespace(
        hyperparameters=None,
        train_steps=pipeline_config.TRAIN_STEPS,
        custom_config={model.LEARNING_RATE_KEY: pipeline_config.LEARNING_RATE},
    )
    assert model.hyperparameters(fn_args) == TODAY
    # Today's settings are a point of the space, so a search can find that nothing beats them.
    assert all(TODAY[name] in values for name, values in SPACE.items())


def test_a_search_of_no_trials_is_refused(tmp_path):
    with pytest.raises(ValueError, match="tuning_trials is 0"):
        tuning.random_search(
            _tiny_score([]), trials=0, choices=SPACE, defaults=TODAY, directory=str(tmp_path)
        )
