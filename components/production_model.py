"""ProductionModel: the model currently in production, read from the Pusher's serving directory
(registry/versions.py: the newest complete version that was not rolled back).

The Evaluator compares each candidate with this baseline. TFX's usual way to find it, a Resolver
with LatestBlessedModelStrategy, asks ML Metadata for the latest *blessed* model, which is not the same
thing (a blessed model may never have been pushed, or have been rolled back) and cannot run on
open-source Kubeflow Pipelines, which rejects Resolver nodes. The serving directory is what serving
loads, so it is the truth on every orchestrator.

When nothing is in production yet, the output is the candidate itself, marked so (`baseline_source`):
our Evaluator (components/evaluator.py) then evaluates the candidate alone, on the value thresholds.
"""

from pathlib import Path

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, component_spec, standard_artifacts
from tfx.utils import io_utils, path_utils

from components import code_version
from registry import versions

FROM_PRODUCTION = "production"
FROM_CANDIDATE = "candidate (nothing in production yet)"


class ProductionModelExecutor(base_executor.BaseExecutor):
    """Copies the production model (or the candidate) into the output Model artifact's serving folder."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        serving_model_dir = Path(exec_properties["serving_model_dir"])
        baseline = artifact_utils.get_single_instance(output_dict["baseline_model"])
        production = versions.production_path(serving_model_dir)
        if production:
            source, version = str(production), production.name
            baseline.set_string_custom_property("baseline_source", FROM_PRODUCTION)
        else:
            candidate = artifact_utils.get_single_instance(input_dict["candidate_model"])
            source, version = path_utils.serving_model_path(candidate.uri), ""
            baseline.set_string_custom_property("baseline_source", FROM_CANDIDATE)
        # A copy, not a reference: the artifact stays valid if the version is later removed, and it
        # lives where the orchestrator keeps artifacts (object storage on Kubeflow).
        io_utils.copy_dir(source, path_utils.serving_model_dir(baseline.uri))
        baseline.set_string_custom_property("production_version", version)
        baseline.set_string_custom_property("production_path", str(production or ""))
        baseline.set_string_custom_property("model_fingerprint", versions.fingerprint(Path(source)))
        logging.info(
            "Baseline model: %s (%s)", source, baseline.get_string_custom_property("baseline_source")
        )


class ProductionModelSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        "serving_model_dir": component_spec.ExecutionParameter(type=str),
        # Only part of the cache key: the production model's fingerprint when the pipeline was built,
        # so a run reuses the cached baseline (and evaluation) exactly while production is unchanged.
        "production_cache_key": component_spec.ExecutionParameter(type=str, optional=True),
        **code_version.PARAMETER,
    }
    INPUTS = {"candidate_model": component_spec.ChannelParameter(type=standard_artifacts.Model)}
    OUTPUTS = {"baseline_model": component_spec.ChannelParameter(type=standard_artifacts.Model)}


class ProductionModel(base_component.BaseComponent):
    """Outputs `baseline_model`: the latest model pushed to `serving_model_dir`, else the candidate."""

    SPEC_CLASS = ProductionModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(ProductionModelExecutor)

    def __init__(self, candidate_model, serving_model_dir: str, production_cache_key: str = ""):
        super().__init__(
            spec=ProductionModelSpec(
                candidate_model=candidate_model,
                serving_model_dir=serving_model_dir,
                production_cache_key=production_cache_key,
                code_fingerprint=code_version.of_executor(ProductionModelExecutor),
                baseline_model=types.Channel(type=standard_artifacts.Model),
            )
        )
