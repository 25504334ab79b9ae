"""The two places data anomalies stop the pipeline (components/validation_results.py decides which).

TrainingDataGate sits between ExampleValidator and Transform: it fails, with every blocking anomaly in
its message, so nothing downstream (Transform, Trainer, Evaluator, Pusher) runs. It is a node of its
own, rather than a failing ExampleValidator, so the anomalies artifact is still published and readable
(a failed TFX execution's outputs are deleted).

PushGate sits between the Evaluator and the Pusher: its blessing is the Evaluator's, withdrawn when
the serving data has anomalies, or when the run replays an older span (`hold_reason`). The Pusher pushes only a blessed model, so a held model stays unpushed
and production stays as it was.
"""

import os

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, component_spec, standard_artifacts

from components import code_version
from reports import validation_results
from reports.run_summary import HELD_BECAUSE

BLESSED = "blessed"


class DataRejectedError(RuntimeError):
    """The training data has anomalies that block training; the message lists them."""


def _anomalies_that(action: str, anomalies_artifact: types.Artifact) -> list[dict]:
    rows = validation_results.anomaly_rows(validation_results.read_anomalies(anomalies_artifact))
    return [row for row in rows if row["action"] == action]


def blocking_anomalies(anomalies_artifact: types.Artifact) -> list[dict]:
    return _anomalies_that(validation_results.BLOCK_TRAINING, anomalies_artifact)


def push_holding_anomalies(anomalies_artifact: types.Artifact) -> list[dict]:
    return _anomalies_that(validation_results.HOLD_PUSH, anomalies_artifact)


class TrainingDataGateExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        blocking = blocking_anomalies(artifact_utils.get_single_instance(input_dict["anomalies"]))
        if blocking:
            lines = "\n".join(f"  - {validation_results.describe_anomaly(row)}" for row in blocking)
            raise DataRejectedError(
                f"The training data has {len(blocking)} anomal{'y' if len(blocking) == 1 else 'ies'}; "
                f"nothing was trained or pushed:\n{lines}"
            )


class TrainingDataGateSpec(component_spec.ComponentSpec):
    PARAMETERS = {**code_version.PARAMETER}
    INPUTS = {"anomalies": component_spec.ChannelParameter(type=standard_artifacts.ExampleAnomalies)}
    OUTPUTS = {}


class TrainingDataGate(base_component.BaseComponent):
    """Fails when `anomalies` holds an anomaly that blocks training; make Transform run after it."""

    SPEC_CLASS = TrainingDataGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(TrainingDataGateExecutor)

    def __init__(self, anomalies):
        super().__init__(
            spec=TrainingDataGateSpec(
                anomalies=anomalies, code_fingerprint=code_version.of_executor(TrainingDataGateExecutor)
            )
        )


class PushGateExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        evaluator_blessing = artifact_utils.get_single_instance(input_dict["model_blessing"])
        holding = push_holding_anomalies(artifact_utils.get_single_instance(input_dict["anomalies"]))
        reasons = [validation_results.describe_anomaly(row) for row in holding]
        if exec_properties.get("hold_reason"):
            reasons.insert(0, exec_properties["hold_reason"])
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])
        evaluator_blessed = evaluator_blessing.get_int_custom_property(BLESSED) == 1
        blessed = evaluator_blessed and not reasons
        blessing.set_int_custom_property(BLESSED, int(blessed))
        blessing.set_int_custom_property("evaluator_blessed", int(evaluator_blessed))
        blessing.set_string_custom_property(HELD_BECAUSE, "; ".join(reasons))
        # Like the Evaluator's blessing, a marker file says the verdict to anyone browsing the artifacts.
        os.makedirs(blessing.uri, exist_ok=True)
        with open(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w") as marker:
            marker.write("")


class PushGateSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        # Why the push is held whatever the blessing (a replay of an older span); "" = not held.
        "hold_reason": component_spec.ExecutionParameter(type=str, optional=True),
        **code_version.PARAMETER,
    }
    INPUTS = {
        "model_blessing": component_spec.ChannelParameter(type=standard_artifacts.ModelBlessing),
        "anomalies": component_spec.ChannelParameter(type=standard_artifacts.ExampleAnomalies),
    }
    OUTPUTS = {"blessing": component_spec.ChannelParameter(type=standard_artifacts.ModelBlessing)}


class PushGate(base_component.BaseComponent):
    """Outputs `blessing`: the Evaluator's `model_blessing`, unless the serving data has anomalies or
    `hold_reason` says why this run must not push (a replay of an older span)."""

    SPEC_CLASS = PushGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(PushGateExecutor)

    def __init__(self, model_blessing, anomalies, hold_reason: str = ""):
        super().__init__(
            spec=PushGateSpec(
                model_blessing=model_blessing,
                anomalies=anomalies,
                hold_reason=hold_reason,
                code_fingerprint=code_version.of_executor(PushGateExecutor),
                blessing=types.Channel(type=standard_artifacts.ModelBlessing),
            )
        )
