"""TFX's Tuner, whose trials are also recorded in ML Metadata.

TFX 1.16's executor writes the best hyperparameters and `tuner_results.json` (the completed trials, best
first) as files. This executor then copies the trials onto the `tuner_results` artifact's custom
properties (reports/tuning_trials.py names them), so `taxi-pipeline trials` and anything else reading
ML Metadata finds them with the run.
"""

import json
import os

from tfx.components.tuner import component, executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils

from config import pipeline as pipeline_config
from reports import tuning_trials

TUNER_RESULTS_FILE = "tuner_results.json"  # TFX's name (tfx/components/tuner/executor.py)


class Executor(executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        super().Do(input_dict, output_dict, exec_properties)
        results = artifact_utils.get_single_instance(output_dict[standard_component_specs.TUNER_RESULTS_KEY])
        trials = tuning_trials.trials_of(
            json.loads(io_utils.read_string_file(os.path.join(results.uri, TUNER_RESULTS_FILE)))
        )
        if not trials:
            raise RuntimeError(
                f"the Tuner completed no trial ({results.uri}/{TUNER_RESULTS_FILE} is empty): every trial "
                "failed; the Trainer has no hyperparameters to take. Its log names each trial's error."
            )
        results.set_string_custom_property(tuning_trials.OBJECTIVE_PROPERTY, pipeline_config.TUNING_OBJECTIVE)
        results.set_string_custom_property(tuning_trials.TRIALS_PROPERTY, json.dumps(trials))
        results.set_string_custom_property(tuning_trials.BEST_TRIAL_PROPERTY, trials[0]["trial_id"])
        results.set_float_custom_property(tuning_trials.BEST_SCORE_PROPERTY, trials[0]["score"])


class Tuner(component.Tuner):
    """TFX's Tuner with the executor above."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
