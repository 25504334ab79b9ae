"""The Tuner's search (KerasTuner): a space of choices, each point trained and scored by a given function.

KerasTuner's own Tuner builds a model and calls Keras's `fit`; it checks that the model is a Keras 3 model
(`import keras` is Keras 3 beside tf-keras here), and `fit` costs AutoGraph's conversion (models/model.py,
`train`). So the search overrides `run_trial`, as KerasTuner documents for tuning anything: a trial is the
Trainer's own training and held-out AUC, and KerasTuner's oracle chooses the points and keeps the trials.
"""

from collections.abc import Callable, Mapping, Sequence

import keras_tuner

from config import pipeline as pipeline_config

OBJECTIVE = pipeline_config.TUNING_OBJECTIVE
PROJECT_NAME = "trainer_search"


def search_space(choices: Mapping[str, Sequence], defaults: Mapping) -> keras_tuner.HyperParameters:
    """KerasTuner's space of `choices` (name -> the values to try); `defaults` (today's settings, each among
    its values) is what KerasTuner reports as each one's default."""
    space = keras_tuner.HyperParameters()
    for name, values in choices.items():
        default = defaults[name]
        space.Choice(name, list(values), default=default if default in values else None)
    return space


class TrainerSearch(keras_tuner.RandomSearch):
    """Random search whose trial is `score(hyperparameter values) -> {OBJECTIVE: auc, ...}`."""

    def __init__(self, score: Callable[[Mapping], Mapping[str, float]], **kwargs):
        super().__init__(**kwargs)
        self._score = score

    def run_trial(self, trial, *args, **kwargs) -> dict[str, float]:
        return dict(self._score(trial.hyperparameters.values))


def random_search(
    score: Callable[[Mapping], Mapping[str, float]],
    trials: int,
    choices: Mapping[str, Sequence],
    defaults: Mapping,
    directory: str,
) -> TrainerSearch:
    """A seeded search of `trials` distinct points of `choices` (fewer if it holds fewer), maximizing
    OBJECTIVE; its state is written under `directory` (a fresh search each time)."""
    if trials < 1:
        raise ValueError(f"tuning_trials is {trials}: the Tuner needs at least 1 trial (config/pipeline.py)")
    return TrainerSearch(
        score,
        objective=keras_tuner.Objective(OBJECTIVE, direction="max"),
        max_trials=trials,
        seed=pipeline_config.TUNING_SEED,
        hyperparameters=search_space(choices, defaults),
        tune_new_entries=False,
        directory=directory,
        project_name=PROJECT_NAME,
        overwrite=True,
    )
