"""SliceReport: the Evaluator's TFMA results as one self-contained HTML page a person opens in a browser.

TFMA's own views are notebook widgets, which often do not render and cannot be exported. This page
needs nothing but a browser, offline: the plots are inline SVG, the table sorting a few lines of
inline JavaScript. Beside it, `slice_metrics.json` holds the same numbers for programs.
"""

import json
import os

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact, artifact_utils, component_spec, standard_artifacts

from components import code_version
from config.folders import SLICE_METRICS_FILE, SLICE_REPORT_FILE
from reports import evaluation_results, slice_report_html


class HtmlReport(artifact.Artifact):
    """A folder holding an HTML report and the data it shows."""

    # On Kubeflow, TFX finds a custom type's class from this name, `module.Class`, so it must be
    # importable as such: the `components` package re-exports this class.
    TYPE_NAME = "components.HtmlReport"


class SliceReportExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        evaluation = artifact_utils.get_single_instance(input_dict["evaluation"])
        blessing = artifact_utils.get_single_instance(input_dict["blessing"])
        baselines = input_dict.get("baseline_model") or []
        report = artifact_utils.get_single_instance(output_dict["report"])

        content = evaluation_results.read_evaluation(
            evaluation.uri,
            key_slice=[tuple(pair) for pair in json.loads(exec_properties["key_slice"])],
            min_slice_examples=exec_properties["min_slice_examples"],
        )
        content["blessed"] = bool(blessing.get_int_custom_property("blessed"))
        content["reused_from"] = evaluation.get_string_custom_property(evaluation_results.REUSED_FROM)
        content["baseline"] = evaluation_results.describe_baseline(baselines[0] if baselines else None)
        # The local orchestrator creates output folders; KFP's launcher creates only their parents.
        fileio.makedirs(report.uri)
        with fileio.open(os.path.join(report.uri, SLICE_METRICS_FILE), "w") as metrics_file:
            json.dump(content, metrics_file, indent=1)
        with fileio.open(os.path.join(report.uri, SLICE_REPORT_FILE), "w") as html_file:
            html_file.write(slice_report_html.render(content))
        report.set_string_custom_property("report_file", SLICE_REPORT_FILE)
        logging.info("Slice report written to %s", os.path.join(report.uri, SLICE_REPORT_FILE))


class SliceReportSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        # JSON list of [feature, value] pairs, e.g. [["payment_type", "Credit Card"]].
        "key_slice": component_spec.ExecutionParameter(type=str),
        "min_slice_examples": component_spec.ExecutionParameter(type=int),
        **code_version.PARAMETER,
    }
    INPUTS = {
        "evaluation": component_spec.ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "blessing": component_spec.ChannelParameter(type=standard_artifacts.ModelBlessing),
        "baseline_model": component_spec.ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {"report": component_spec.ChannelParameter(type=HtmlReport)}


class SliceReport(base_component.BaseComponent):
    """Renders `evaluation` (with its blessing and baseline) as `report`: slice_report.html + JSON."""

    SPEC_CLASS = SliceReportSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(SliceReportExecutor)

    def __init__(self, evaluation, blessing, key_slice, min_slice_examples: int, baseline_model=None):
        super().__init__(
            spec=SliceReportSpec(
                evaluation=evaluation,
                blessing=blessing,
                baseline_model=baseline_model,
                key_slice=json.dumps([list(pair) for pair in key_slice]),
                min_slice_examples=min_slice_examples,
                code_fingerprint=code_version.of_executor(SliceReportExecutor),
                report=types.Channel(type=HtmlReport),
            )
        )
