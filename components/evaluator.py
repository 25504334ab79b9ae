"""TFX's Evaluator, except that a candidate with nothing in production is not evaluated twice.

Before the first push, ProductionModel hands the Evaluator the candidate itself as the baseline. The
stock executor would then load the same model twice and compute every metric on every slice for both:
half of its time (~30 s of a cold run on the sample) for numbers equal to the candidate's. This executor
drops such a baseline, so TFMA evaluates the candidate alone; TFX then ignores the change thresholds
(its "rubber stamp" for a first model) and still applies every value threshold, overall and per slice.
TFMA names the only model of such an evaluation "" (reports/evaluation_results.py reads it so).

Nor is a candidate evaluated again when it is the model in production, byte for byte (a run on unchanged
data): the earlier evaluation of the same model on the same examples is reused, as TFMA would have written
it for two models (components/evaluation_reuse.py), and the artifact says which (`reused_from`).
"""

import os
from pathlib import Path

import tensorflow_model_analysis as tfma
from absl import logging
from tfx import types
from tfx.components.evaluator import component, constants, executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import io_utils, json_utils, path_utils, proto_utils

from components import code_version, evaluation_reuse
from components.production_model import FROM_CANDIDATE, FROM_PRODUCTION
from models import slice_floor_metric
from registry import versions


def baseline_is_the_candidate(input_dict: dict) -> bool:
    baselines = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
    return bool(baselines) and (
        artifact_utils.get_single_instance(baselines).get_string_custom_property("baseline_source")
        == FROM_CANDIDATE
    )


def candidate_is_production(input_dict: dict, candidate_fingerprint: str) -> bool:
    """True when the baseline is the production model and has the candidate's content."""
    baselines = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
    if not baselines:
        return False
    baseline = artifact_utils.get_single_instance(baselines)
    return (
        baseline.get_string_custom_property("baseline_source") == FROM_PRODUCTION
        and baseline.get_string_custom_property("model_fingerprint") == candidate_fingerprint
    )


class Executor(executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        if baseline_is_the_candidate(input_dict):
            input_dict = {
                key: value
                for key, value in input_dict.items()
                if key != standard_component_specs.BASELINE_MODEL_KEY
            }
        evaluation = artifact_utils.get_single_instance(output_dict[standard_component_specs.EVALUATION_KEY])
        candidate_path = path_utils.serving_model_path(
            artifact_utils.get_single_uri(input_dict[standard_component_specs.MODEL_KEY])
        )
        candidate_fingerprint = versions.fingerprint(Path(candidate_path))
        key = evaluation_reuse.evaluation_key(
            candidate_fingerprint,
            artifact_utils.get_single_uri(input_dict[standard_component_specs.EXAMPLES_KEY]),
            json_utils.loads(exec_properties.get(standard_component_specs.EXAMPLE_SPLITS_KEY, "null")) or [],
            exec_properties[standard_component_specs.EVAL_CONFIG_KEY],
            exec_properties.get(code_version.KEY) or "",
        )
        earlier = (
            evaluation_reuse.find_earlier(evaluation.uri, key)
            if candidate_is_production(input_dict, candidate_fingerprint)
            else None
        )
        reused = earlier is not None and self._reuse(earlier, input_dict, output_dict, exec_properties)
        if not reused:
            super().Do(input_dict, output_dict, exec_properties)
        evaluation.set_string_custom_property(evaluation_reuse.REUSED_FROM, earlier if reused else "")
        evaluation_reuse.write_manifest(evaluation.uri, key, earlier if reused else "")

    def _reuse(self, earlier: str, input_dict, output_dict, exec_properties) -> bool:
        """Writes the evaluation from `earlier` and the blessing as TFX's executor would; False (nothing
        written) if `earlier` holds what cannot be rebuilt."""
        eval_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.EVAL_CONFIG_KEY], tfma.EvalConfig()
        )
        # As TFX's executor completes it for two models.
        eval_config = tfma.utils.update_eval_config_with_defaults(
            eval_config, has_baseline=True, rubber_stamp=True
        )
        model_keys = {
            spec.name: standard_component_specs.BASELINE_MODEL_KEY
            if spec.is_baseline
            else standard_component_specs.MODEL_KEY
            for spec in eval_config.model_specs
        }
        evaluation_uri = artifact_utils.get_single_uri(output_dict[standard_component_specs.EVALUATION_KEY])
        try:
            evaluation_reuse.write_reused(
                earlier,
                evaluation_uri,
                eval_config,
                {
                    name: path_utils.serving_model_path(artifact_utils.get_single_uri(input_dict[key]))
                    for name, key in model_keys.items()
                },
            )
        except evaluation_reuse.CannotReuse as reason:
            logging.warning("Evaluating in full: the evaluation in %s holds %s.", earlier, reason)
            for name in fileio.listdir(evaluation_uri):
                fileio.remove(os.path.join(evaluation_uri, name))
            return False
        _write_blessing(input_dict, output_dict, exec_properties, evaluation_uri)
        logging.info("The candidate is the production model: its evaluation in %s was reused.", earlier)
        return True


def _write_blessing(input_dict, output_dict, exec_properties, evaluation_uri: str) -> None:
    """The blessing as TFX's Evaluator executor writes it (the end of its `Do`), from the validation result."""
    blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
    model = input_dict[standard_component_specs.MODEL_KEY][0]
    blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    baseline = input_dict[standard_component_specs.BASELINE_MODEL_KEY][0]
    blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline.uri)
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline.id)
    if "current_component_id" in exec_properties:
        blessing.set_string_custom_property("component_id", exec_properties["current_component_id"])
    blessed = tfma.load_validation_result(evaluation_uri).validation_ok
    io_utils.write_string_file(
        os.path.join(
            blessing.uri, constants.BLESSED_FILE_NAME if blessed else constants.NOT_BLESSED_FILE_NAME
        ),
        "",
    )
    blessing.set_int_custom_property(
        constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        constants.BLESSED_VALUE if blessed else constants.NOT_BLESSED_VALUE,
    )


class EvaluatorSpec(standard_component_specs.EvaluatorSpec):
    PARAMETERS = {**standard_component_specs.EvaluatorSpec.PARAMETERS, **code_version.PARAMETER}


class Evaluator(component.Evaluator):
    """TFX's Evaluator with the executor above, and the fingerprint of its code and of the metrics TFMA
    loads from this project (models/slice_floor_metric.py) among its execution properties."""

    SPEC_CLASS = EvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, examples, model, baseline_model, example_splits: list[str], eval_config):
        spec = EvaluatorSpec(
            examples=examples,
            model=model,
            baseline_model=baseline_model,
            example_splits=json_utils.dumps(example_splits),
            eval_config=eval_config,
            code_fingerprint=code_version.source_fingerprint(
                Executor.__module__, slice_floor_metric.__name__
            ),
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        )
        # TFX's Evaluator builds its own spec, without the fingerprint: its base class takes ours.
        super(component.Evaluator, self).__init__(spec=spec)
