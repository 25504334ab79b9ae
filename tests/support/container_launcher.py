"""Runs a compiled KFP pipeline step by step in Docker containers, as KFP's launcher would, for tests.

For each task in dependency order it builds the ExecutorInput KFP's driver would (constant parameters and
upstream output parameters; input artifacts with their producer's URI and metadata; output artifacts with
`minio://` URIs), runs
the step's own container command from the spec in the pipeline image, with the launcher's local
artifact copies (`/minio`) and the shared volume (`/mnt/taxi`) mounted from host folders, and keeps
the output metadata the step writes for the tasks downstream.

It is a stand-in for KFP's launcher and object store, not for the code under test: the spec, the
image, the entrypoint and every TFX executor are the real ones. KFP's own local runner (`kfp.local`,
kfp >= 2.7) would be the authority here but cannot share TFX 1.16's environment (protobuf).
"""

import json
import subprocess
from graphlib import TopologicalSorter
from pathlib import Path

from config import kubeflow as kubeflow_config

RUN_ROOT = f"{kubeflow_config.KFP_DEFAULT_PIPELINE_ROOT}/{kubeflow_config.KFP_PIPELINE_NAME}"


def task_order(spec: dict) -> list[str]:
    tasks = spec["root"]["dag"]["tasks"]
    return list(
        TopologicalSorter(
            {name: task.get("dependentTasks", []) for name, task in tasks.items()}
        ).static_order()
    )


def parameter_values(task_spec: dict, outputs_by_task: dict) -> dict:
    """A task's parameters as KFP's driver resolves them: constants, and upstream tasks' output parameters
    (the pipeline takes no run parameters)."""

    def resolve(value: dict):
        if "runtimeValue" in value:
            return value["runtimeValue"]["constant"]
        producer = value["taskOutputParameter"]
        return outputs_by_task[producer["producerTask"]][producer["outputParameterKey"]]

    return {name: resolve(value) for name, value in task_spec.get("inputs", {}).get("parameters", {}).items()}


def executor_input(spec: dict, task: str, outputs_by_task: dict, run_id: str) -> dict:
    task_spec = spec["root"]["dag"]["tasks"][task]
    component = spec["components"][task_spec["componentRef"]["name"]]
    input_types = component.get("inputDefinitions", {}).get("artifacts", {})
    inputs = {}
    for key, source in task_spec.get("inputs", {}).get("artifacts", {}).items():
        producer = source["taskOutputArtifact"]
        produced = outputs_by_task[producer["producerTask"]][producer["outputArtifactKey"]]
        inputs[key] = {
            "artifacts": [
                dict(artifact, type={"instanceSchema": input_types[key]["artifactType"]["instanceSchema"]})
                for artifact in produced
            ]
        }
    outputs = {
        key: {
            "artifacts": [
                {
                    "name": f"{run_id}/{task}/{key}",
                    "type": {"instanceSchema": definition["artifactType"]["instanceSchema"]},
                    "uri": f"{RUN_ROOT}/{run_id}/{task}/{key}",
                    "metadata": {},
                }
            ]
        }
        for key, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items()
    }
    output_parameters = {
        key: {"outputFile": f"/tmp/kfp_outputs/{key}"}
        for key in component.get("outputDefinitions", {}).get("parameters", {})
    }
    return {
        "inputs": {
            "artifacts": inputs,
            "parameterValues": parameter_values(task_spec, outputs_by_task),
        },
        "outputs": {
            "artifacts": outputs,
            "parameters": output_parameters,
            "outputFile": "/tmp/kfp_outputs/output_metadata.json",
        },
    }


def task_container(spec: dict, task: str) -> dict:
    """The task's container executor in the spec: image, command and arguments."""
    label = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]["container"]


def run_task(
    spec: dict, task: str, invocation: dict, minio_dir: Path, shared_dir: Path, work_dir: Path
) -> dict:
    """Runs one task's container; returns output key -> artifacts, and output parameter -> value (as KFP
    would record them)."""
    container = task_container(spec, task)
    arguments = [json.dumps(invocation) if arg == "{{$}}" else arg for arg in container["args"]]
    task_dir = work_dir / task
    task_dir.mkdir(parents=True)
    result = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            f"{minio_dir}:/minio",
            "-v",
            f"{shared_dir}:{kubeflow_config.KFP_SHARED_DIR}",
            "-v",
            f"{task_dir}:/tmp/kfp_outputs",
            "--entrypoint",
            container["command"][0],
            container["image"],
            *container["command"][1:],
            *arguments,
        ],
        capture_output=True,
        text=True,
    )
    (task_dir / "log.txt").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{task} failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    output = json.loads((task_dir / "output_metadata.json").read_text())
    written = output.get("artifacts", {})
    # Like KFP: an output the executor did not report keeps the artifact the launcher created.
    return {
        **{
            key: written.get(key, {}).get("artifacts") or value["artifacts"]
            for key, value in invocation["outputs"]["artifacts"].items()
        },
        **{key: output["parameterValues"][key] for key in invocation["outputs"]["parameters"]},
    }


def run_pipeline(
    spec: dict,
    minio_dir: Path,
    shared_dir: Path,
    work_dir: Path,
    run_id: str,
    tasks: list[str] | None = None,
) -> dict:
    """Every task (or those of `tasks`), in order; returns task -> output key -> artifacts (or value)."""
    outputs_by_task = {}
    for task in [t for t in task_order(spec) if tasks is None or t in tasks]:
        invocation = executor_input(spec, task, outputs_by_task, run_id)
        outputs_by_task[task] = run_task(spec, task, invocation, minio_dir, shared_dir, work_dir / run_id)
    return outputs_by_task
