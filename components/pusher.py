"""TFX's Pusher, pushing a blessed model only when it is new, and each version whole or not at all.

- The stock executor copies the model into `<serving dir>/<version>/` file by file: a Pusher killed
  mid-copy leaves a version folder that a model server (and ProductionModel) could take for a complete
  model. This executor writes through the registry (registry/versions.py), which copies into
  `.pushing-<version>/`, writes the version's completion record last, and renames it once whole.
- It decides and writes under the registry's lock, so two pushes never interleave (two Kubeflow runs
  sharing a volume, or a rollback meanwhile): each decides on what the other left.
- A blessed model with the same content as production is not pushed again as a new version: a run on
  unchanged data, or whose gate re-ran, would otherwise fill the serving directory with copies.
- A model a person rolled back (`taxi-pipeline rollback`) is never pushed again, under any version,
  until the rollback is undone.
- A model judged against a production that is no longer production (another run pushed meanwhile, or a
  rollback moved it) is not pushed: it was never compared with what it would replace. The next run
  judges it against today's production. The Pusher takes ProductionModel's baseline as an input for this.

Each records why on the output artifact (`not_pushed_because`). Everything else is TFX's: the blessing
check, the archive copy in the output artifact, and the `pushed`, `pushed_destination` and
`pushed_version` properties.
"""

from pathlib import Path

from absl import logging
from tfx import types
from tfx.components.pusher import executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, component_spec, standard_artifacts, standard_component_specs
from tfx.utils import io_utils, json_utils, proto_utils

from components import code_version
from components.production_model import FROM_PRODUCTION
from registry import versions
from reports.run_summary import NOT_PUSHED_BECAUSE


def why_not_push(serving_dir: Path, model_fingerprint: str) -> str:
    """Why a blessed model with this content must not be pushed; "" when it may."""
    production = versions.production_version(serving_dir)
    if production and versions.fingerprint(serving_dir / production) == model_fingerprint:
        return f"same as production (version {production})"
    rollback = versions.rollback_of_model(serving_dir, model_fingerprint)
    if rollback:
        return (
            f"rolled back (as version {rollback.version}, {rollback.rolled_back_at}"
            + (f": {rollback.reason}" if rollback.reason else "")
            + f"); `taxi-pipeline rollback --undo {rollback.version}` allows it again"
        )
    return ""


BASELINE_MODEL_KEY = "baseline_model"


def why_production_moved(serving_dir: Path, baseline: types.Artifact | None) -> str:
    """Why the production a model was judged against (ProductionModel's `baseline`) is not production
    any more; "" while it is."""
    if baseline is None:
        return ""
    judged = baseline.get_string_custom_property("production_version")
    judged_fingerprint = (
        baseline.get_string_custom_property("model_fingerprint")
        if baseline.get_string_custom_property("baseline_source") == FROM_PRODUCTION
        else ""
    )
    if versions.production_fingerprint(serving_dir) == judged_fingerprint:
        return ""
    now = versions.production_version(serving_dir)
    return (
        f"production changed while this run evaluated (judged against "
        f"{'version ' + judged if judged else 'nothing in production'}, production is now "
        f"{'version ' + now if now else 'nothing'}); the next run judges it against the new production"
    )


class Executor(executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = Path(self.GetModelPath(input_dict))
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        serving_dir = Path(destination.filesystem.base_directory)
        baselines = input_dict.get(BASELINE_MODEL_KEY) or []
        with versions.locked(serving_dir):
            refusal = why_not_push(serving_dir, versions.fingerprint(model_path)) or why_production_moved(
                serving_dir, baselines[0] if baselines else None
            )
            if refusal:
                logging.info("Not pushed: %s", refusal)
                self._MarkNotPushed(model_push)
                model_push.set_string_custom_property(NOT_PUSHED_BECAUSE, refusal)
                return
            version = versions.next_version(serving_dir)
            pushed = versions.write_version(serving_dir, model_path, version)
        logging.info("Model written to serving path %s.", pushed)
        io_utils.copy_dir(str(model_path), model_push.uri)  # the archive copy, as the stock Pusher makes
        self._MarkPushed(model_push, pushed_destination=str(pushed), pushed_version=version)


class PusherSpec(standard_component_specs.PusherSpec):
    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        BASELINE_MODEL_KEY: component_spec.ChannelParameter(type=standard_artifacts.Model, optional=True),
    }


class Pusher(base_component.BaseComponent):
    """TFX's Pusher with the executor above, ProductionModel's baseline as an input, and its code's
    fingerprint in `custom_config`."""

    SPEC_CLASS = PusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self, model, model_blessing, push_destination: pusher_pb2.PushDestination, baseline_model=None
    ):
        super().__init__(
            spec=PusherSpec(
                model=model,
                model_blessing=model_blessing,
                baseline_model=baseline_model,
                push_destination=push_destination,
                custom_config=json_utils.dumps({code_version.KEY: code_version.of_executor(Executor)}),
                pushed_model=types.Channel(type=standard_artifacts.PushedModel),
            )
        )
