"""TFX's Evaluator, except that a candidate with nothing in production is not evaluated twice.

Before the first push, ProductionModel hands the Evaluator the candidate itself as the baseline. The
stock executor would then load the same model twice and compute every metric on every slice for both:
half of its time (~30 s of a cold run on the sample) for numbers equal to the candidate's. This executor
drops such a baseline, so TFMA evaluates the candidate alone; TFX then ignores the change thresholds
(its "rubber stamp" for a first model) and still applies every value threshold, overall and per slice.
TFMA names the only model of such an evaluation "" (reports/evaluation_results.py reads it so).
"""

from tfx import types
from tfx.components.evaluator import component, executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import json_utils

from components import code_version
from components.production_model import FROM_CANDIDATE
from models import slice_floor_metric


def baseline_is_the_candidate(input_dict: dict) -> bool:
    baselines = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
    return bool(baselines) and (
        artifact_utils.get_single_instance(baselines).get_string_custom_property("baseline_source")
        == FROM_CANDIDATE
    )


class Executor(executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        if baseline_is_the_candidate(input_dict):
            input_dict = {
                key: value
                for key, value in input_dict.items()
                if key != standard_component_specs.BASELINE_MODEL_KEY
            }
        super().Do(input_dict, output_dict, exec_properties)


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
