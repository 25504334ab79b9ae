"""ModelCard: after the Pusher, each pushed model's card, as the Model Card Toolkit's JSON and an HTML page.

A component of its own rather than part of the Pusher's executor:
- the card reads nine artifacts (evaluation results, statistics, schema, anomalies, the serving check,
  the tuning result) that have no say in whether a model is pushed; as Pusher inputs they would widen
  its cache key and the time it holds the registry's lock;
- a card that cannot be written fails this step, never a push that is already whole;
- the card cannot go inside the version folder (registry/model_cards.py says why), so the Pusher has
  nothing to add to what it writes.

The card is written into this step's output (`model_card.json`, `model_card.html`) for every run, and, when
the run pushed, copied once to `<serving dir>/model_cards/<version>/` beside the pushed version.
"""

import json
import os
from pathlib import Path

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, component_spec, standard_artifacts

from components import code_version
from components.slice_report import HtmlReport
from config.folders import MODEL_CARD_FILE, MODEL_CARD_HTML_FILE
from registry import model_cards
from reports import model_card, model_card_html
from reports.run_summary import MODEL_CARD_STORED_AT

# On the output artifact: why the card was not stored beside the pushed model (where it was: STORED_AT).
NOT_STORED_BECAUSE = "not_stored_because"
HYPERPARAMETERS_KEY = "hyperparameters"


def _single(input_dict, key: str):
    artifacts = input_dict.get(key) or []
    return artifacts[0] if artifacts else None


class ModelCardExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        facts = model_card.gather(
            pushed_model=artifact_utils.get_single_instance(input_dict["pushed_model"]),
            slice_report=artifact_utils.get_single_instance(input_dict["slice_report"]),
            examples=artifact_utils.get_single_instance(input_dict["examples"]),
            example_gen_input=exec_properties["example_gen_input"],
            statistics=artifact_utils.get_single_instance(input_dict["statistics"]),
            schema=artifact_utils.get_single_instance(input_dict["schema"]),
            anomalies=artifact_utils.get_single_instance(input_dict["anomalies"]),
            infra_blessing=artifact_utils.get_single_instance(input_dict["infra_blessing"]),
            sample=_single(input_dict, "evaluation_sample"),
            hyperparameters=_single(input_dict, HYPERPARAMETERS_KEY),
            training_settings=json.loads(exec_properties["training_settings"]),
            code_fingerprints=json.loads(exec_properties["model_code_fingerprints"]),
            min_evaluation_examples=exec_properties["min_evaluation_examples"],
        )
        card = model_card.to_model_card(facts)
        model_card.validate(card)
        files = {
            MODEL_CARD_FILE: (json.dumps(card, indent=2) + "\n").encode(),
            MODEL_CARD_HTML_FILE: model_card_html.render(facts).encode(),
        }
        output = artifact_utils.get_single_instance(output_dict["card"])
        fileio.makedirs(output.uri)  # KFP's launcher creates only the parents of output folders
        for name, content in files.items():
            with fileio.open(os.path.join(output.uri, name), "wb") as handle:
                handle.write(content)
        output.set_string_custom_property("report_file", MODEL_CARD_HTML_FILE)
        if not facts["model"]["pushed"]:
            output.set_string_custom_property(NOT_STORED_BECAUSE, "no model was pushed in this run")
            return
        serving_dir = Path(facts["model"]["path"]).parent
        try:
            stored = model_cards.store(serving_dir, facts["model"]["version"], files)
        except model_cards.CardExists as error:
            logging.warning("Model card not stored beside the model: %s", error)
            output.set_string_custom_property(NOT_STORED_BECAUSE, str(error))
            return
        output.set_string_custom_property(MODEL_CARD_STORED_AT, str(stored / MODEL_CARD_HTML_FILE))
        logging.info("Model card written to %s", stored)


class ModelCardSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        # JSON: the Trainer's settings, shown as "today's settings" when the run did not tune.
        "training_settings": component_spec.ExecutionParameter(type=str),
        # JSON: name -> fingerprint of the code the model was built with (components/code_version.py).
        "model_code_fingerprints": component_spec.ExecutionParameter(type=str),
        "min_evaluation_examples": component_spec.ExecutionParameter(type=int),
        # ExampleGen's input folder: which half-years each window holds, from the input checks' counts.
        "example_gen_input": component_spec.ExecutionParameter(type=str),
        **code_version.PARAMETER,
    }
    INPUTS = {
        "pushed_model": component_spec.ChannelParameter(type=standard_artifacts.PushedModel),
        "slice_report": component_spec.ChannelParameter(type=HtmlReport),
        "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples),
        "statistics": component_spec.ChannelParameter(type=standard_artifacts.ExampleStatistics),
        "schema": component_spec.ChannelParameter(type=standard_artifacts.Schema),
        "anomalies": component_spec.ChannelParameter(type=standard_artifacts.ExampleAnomalies),
        "infra_blessing": component_spec.ChannelParameter(type=standard_artifacts.InfraBlessing),
        "evaluation_sample": component_spec.ChannelParameter(type=standard_artifacts.Examples, optional=True),
        HYPERPARAMETERS_KEY: component_spec.ChannelParameter(
            type=standard_artifacts.HyperParameters, optional=True
        ),
    }
    OUTPUTS = {"card": component_spec.ChannelParameter(type=HtmlReport)}


class ModelCard(base_component.BaseComponent):
    """Writes the run's model card (`card`: model_card.json + model_card.html) and, for a pushed model, a
    copy beside it in the serving directory."""

    SPEC_CLASS = ModelCardSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(ModelCardExecutor)

    def __init__(
        self,
        *,
        pushed_model,
        slice_report,
        examples,
        statistics,
        schema,
        anomalies,
        infra_blessing,
        training_settings: dict,
        model_code_fingerprints: dict,
        min_evaluation_examples: int,
        example_gen_input: str,
        evaluation_sample=None,
        hyperparameters=None,
    ):
        super().__init__(
            spec=ModelCardSpec(
                pushed_model=pushed_model,
                slice_report=slice_report,
                examples=examples,
                statistics=statistics,
                schema=schema,
                anomalies=anomalies,
                infra_blessing=infra_blessing,
                evaluation_sample=evaluation_sample,
                hyperparameters=hyperparameters,
                training_settings=json.dumps(training_settings, sort_keys=True),
                model_code_fingerprints=json.dumps(model_code_fingerprints, sort_keys=True),
                min_evaluation_examples=min_evaluation_examples,
                example_gen_input=example_gen_input,
                code_fingerprint=code_version.of_executor(ModelCardExecutor),
                card=types.Channel(type=HtmlReport),
            )
        )
