"""TFX's Pusher, pushing a blessed model only when it is new, and each version whole or not at all.

- The stock executor copies the model into `<serving dir>/<version>/` file by file: a Pusher killed
  mid-copy leaves a version folder that a model server (and ProductionModel) could take for a complete
  model. This executor writes through the registry (registry/versions.py), which copies into
  `.pushing-<version>/` and renames it once complete.
- A blessed model with the same content as production is not pushed again as a new version: a run on
  unchanged data, or whose gate re-ran, would otherwise fill the serving directory with copies.
- A model a person rolled back (`taxi-pipeline rollback`) is never pushed again, under any version,
  until the rollback is undone.

Both record why on the output artifact (`not_pushed_because`). Everything else is TFX's: the blessing
check, the archive copy in the output artifact, and the `pushed`, `pushed_destination` and
`pushed_version` properties.
"""

import time
from pathlib import Path

from absl import logging
from tfx.components.pusher import component, executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components import code_version
from registry import versions
from reports.run_summary import NOT_PUSHED_BECAUSE


def new_version(serving_dir: Path) -> str:
    """The push's Unix time, made later than every existing version (two pushes in one second)."""
    existing = [int(v) for v in versions.complete_versions(serving_dir)]
    return str(max(int(time.time()), max(existing, default=0) + 1))


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
        serving_dir.mkdir(parents=True, exist_ok=True)
        refusal = why_not_push(serving_dir, versions.fingerprint(model_path))
        if refusal:
            logging.info("Not pushed: %s", refusal)
            self._MarkNotPushed(model_push)
            model_push.set_string_custom_property(NOT_PUSHED_BECAUSE, refusal)
            return
        version = new_version(serving_dir)
        pushed = versions.write_version(serving_dir, model_path, version)
        logging.info("Model written to serving path %s.", pushed)
        io_utils.copy_dir(str(model_path), model_push.uri)  # the archive copy, as the stock Pusher makes
        self._MarkPushed(model_push, pushed_destination=str(pushed), pushed_version=version)


class Pusher(component.Pusher):
    """TFX's Pusher with the executor above, and its code's fingerprint in `custom_config`."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model, model_blessing, push_destination: pusher_pb2.PushDestination):
        super().__init__(
            model=model,
            model_blessing=model_blessing,
            push_destination=push_destination,
            custom_config={code_version.KEY: code_version.of_executor(Executor)},
        )
