"""Runs the compiled pipeline with KFP's own local runner (`kfp.local`, DockerRunner), in containers of
the pipeline image, with KFP's step cache when asked. `make test-kfp` runs it from a separate small
environment (kfp 2.7 needs protobuf >= 4.21, which TFX 1.16 forbids), made from
kubeflow/kfp-local-requirements.txt.

    python kubeflow/kfp_local_run.py <compiled pipeline.yaml> <pipeline root folder> [<cache folder>]

The pipeline must be compiled with its shared folder inside the pipeline root
(`python -m kubeflow.compiler --shared-dir <root>/shared`): DockerRunner mounts the pipeline root
into every container at the same path, and has no other volumes.

kfp.local has no cache of its own: every task runs every time (its docs: caching options "have no effect
locally"). Given a cache folder, this runner caches as KFP's backend does (`GenerateCacheKey`,
backend/src/v2/cacheutils/cache.go): a task whose `cachingOptions.enableCache` is on, and whose key was
seen in an earlier run, is not run; its outputs are the earlier run's. The key is what KFP's is: the
names of the task's input artifacts (here their URIs, unique per artifact), its input parameter values,
its outputs' specs, its image, command and arguments. So a second run shows what KFP would run again.
Each task prints one line, `kfp.local task: {"task", "cached", "outputs"}` (artifacts' metadata, parameters'
values), for tests to read.
"""

import hashlib
import json
import sys
import time
from pathlib import Path

import docker
import yaml
from google.protobuf import json_format
from kfp import components, dsl, local
from kfp.dsl import executor
from kfp.local import executor_input_utils, status, task_dispatcher

TASK_LINE = "kfp.local task: "


def remove_finished_task_containers(client: docker.DockerClient, pipeline_root: str) -> int:
    """Removes the stopped containers that mounted `pipeline_root`; returns how many.

    DockerRunner starts each task without auto-removal and never removes it (kfp 2.7,
    `docker_task_handler.run_docker_container`), so every run would leave one stopped container per
    task, and each pins its image: a machine that runs this repeatedly could never prune old images.
    The task's logs were already streamed to this process's output.
    """
    stopped = client.containers.list(
        all=True, filters={"volume": pipeline_root, "status": ["exited", "created", "dead"]}
    )
    for container in stopped:
        container.remove()
    return len(stopped)


def cache_key(component_spec, executor_spec, arguments: dict) -> str:
    """KFP's cache key for one task (backend/src/v2/cacheutils/cache.go, `GenerateCacheKey`), hashed."""
    container = executor_spec.container
    key = {
        "inputArtifactNames": {
            name: [artifact.uri for artifact in (value if isinstance(value, list) else [value])]
            for name, value in arguments.items()
            if isinstance(value, (dsl.Artifact, list))
        },
        "inputParameterValues": {
            name: value for name, value in arguments.items() if not isinstance(value, (dsl.Artifact, list))
        },
        "outputsSpec": json_format.MessageToDict(component_spec.output_definitions),
        "containerSpec": {"image": container.image, "cmdArgs": [*container.command, *container.args]},
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _stored(value):
    if isinstance(value, list):
        return [_stored(item) for item in value]
    if isinstance(value, dsl.Artifact):
        [artifact] = executor_input_utils.dsl_artifact_to_artifact_list(value).artifacts
        return {"artifact": json_format.MessageToDict(artifact)}
    return {"value": value}


def _restored(stored):
    if isinstance(stored, list):
        return [_restored(item) for item in stored]
    return executor.create_artifact_instance(stored["artifact"]) if "artifact" in stored else stored["value"]


def _shown(value):
    if isinstance(value, list):
        return [_shown(item) for item in value]
    return value.metadata if isinstance(value, dsl.Artifact) else value


def with_kfp_cache(run_task, spec: dict, cache_dir: Path | None):
    """`run_task` (kfp.local's task runner) with KFP's cache in front of it, and a line per task."""
    tasks = {
        task["componentRef"]["name"]: (name, task) for name, task in spec["root"]["dag"]["tasks"].items()
    }

    def run(**task):
        name, task_spec = tasks[task["component_name"]]
        entry = None
        if cache_dir is not None and task_spec.get("cachingOptions", {}).get("enableCache", False):
            key = cache_key(task["component_spec"], task["executor_spec"], task["arguments"])
            entry = cache_dir / f"{key}.json"
        cached = entry is not None and entry.is_file()
        if cached:
            outputs = {key: _restored(value) for key, value in json.loads(entry.read_text()).items()}
            outcome = status.Status.SUCCESS
        else:
            outputs, outcome = run_task(**task)
            if entry is not None and outcome == status.Status.SUCCESS:
                entry.write_text(json.dumps({key: _stored(value) for key, value in outputs.items()}))
        shown = {key: _shown(value) for key, value in outputs.items()}
        print(
            TASK_LINE + json.dumps({"task": name, "cached": cached, "outputs": shown}, default=str),
            flush=True,
        )
        return outputs, outcome

    return run


def main(package: str, pipeline_root: str, cache_dir: str | None = None) -> int:
    spec = next(yaml.safe_load_all(Path(package).read_text()))
    if cache_dir:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    task_dispatcher.run_single_task_implementation = with_kfp_cache(
        task_dispatcher.run_single_task_implementation, spec, Path(cache_dir) if cache_dir else None
    )
    local.init(runner=local.DockerRunner(), pipeline_root=pipeline_root)
    pipeline = components.load_component_from_file(package)
    started = time.monotonic()
    try:
        pipeline()  # raises when a task fails
    finally:
        removed = remove_finished_task_containers(docker.from_env(), pipeline_root)
        print(f"kfp.local: removed {removed} finished task containers")
    print(f"kfp.local: pipeline succeeded in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
