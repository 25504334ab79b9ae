"""Compiles the same pipeline for open-source Kubeflow Pipelines 2.x: `make kfp-compile`.

Writes `kubeflow/build/chicago-taxi-big-tipper.yaml`, a KFP pipeline spec in schema 2.1.0 (the only one
the OSS API server accepts, and the one whose parameters its driver reads as `runtimeValue.constant`),
followed by a second YAML document, the Kubernetes platform spec, that mounts the shared volume into
every step. Nothing is read or written outside this repository: the pipeline root is set per run.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import yaml
from tfx import v1 as tfx

from config import folders
from config import kubeflow as kubeflow_config
from config import pipeline as pipeline_config
from kubeflow import entrypoint, input_fingerprint
from pipeline.pipeline import Locations, create_pipeline

# Every step runs our entrypoint, which maps KFP's object-store URIs to the launcher's local copies
# before TFX's own executor runner sees them (see kubeflow/entrypoint.py).
ENTRYPOINT = ["python", "-m", "kubeflow.entrypoint"]
# What the image is built from: a change to any of these is a new image tag.
IMAGE_SOURCES = (
    "requirements.lock",
    "setup.py",
    "kubeflow/Dockerfile",
    "config",
    "models",
    "registry",
    "inputs",
    "components",
    "pipeline",
    "reports",
    "serving",  # the serving check starts the model server in its step (components/serving_check.py)
    "kubeflow",
    "schema",
)
# Of a folder above, what the image holds: its code, the data contract and the model card's JSON schema
# (not its docs or build outputs).
IMAGE_FILE_PATTERNS = ("*.py", "*.pbtxt", "*.schema.json")


def image_tag(repo_root: Path = folders.REPO_ROOT) -> str:
    """A content hash of what goes into the image: pinned, never `latest`, new whenever the image changes."""
    digest = hashlib.sha256()
    for source in IMAGE_SOURCES:
        path = repo_root / source
        files = (
            sorted(f for pattern in IMAGE_FILE_PATTERNS for f in path.rglob(pattern))
            if path.is_dir()
            else [path]
        )
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts and not file.name.endswith("_test.py"):
                digest.update(str(file.relative_to(repo_root)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:12]


def image(repo_root: Path = folders.REPO_ROOT) -> str:
    return f"{kubeflow_config.KFP_IMAGE_NAME}:{image_tag(repo_root)}"


def build(
    pipeline_root: str = kubeflow_config.KFP_DEFAULT_PIPELINE_ROOT,
    shared_dir: str = kubeflow_config.KFP_SHARED_DIR,
    tune: bool = pipeline_config.TUNE,
):
    """The pipeline with in-image and shared-volume paths; no ML Metadata config (KFP brings its own).
    `tune`: with the Tuner before the Trainer."""
    shared = Path(shared_dir)
    return create_pipeline(
        locations=Locations(
            pipeline_root=pipeline_root,
            example_gen_input=str(shared / "example_gen_input"),
            schema_path=f"{kubeflow_config.KFP_PROJECT_DIR}/schema/schema.pbtxt",
            serving_model_dir=str(shared / "serving_model"),
            # `taxi-pipeline prepare-data --output-dir <shared>` writes the sample's request logs there.
            serving_logs=str(folders.Settings(output_dir=shared, data_root=None).checked_serving_logs_dir),
        ),
        data=pipeline_config.Data(),
        training=pipeline_config.Training(tune=tune),
        # Production is unknown when compiling (no production_cache_key): the ProductionModel step reads
        # the serving folder when it runs.
        evaluation=pipeline_config.Evaluation(),
        orchestration=pipeline_config.Orchestration(
            pipeline_name=kubeflow_config.KFP_PIPELINE_NAME,
            # Naming the workers' image tells TFX not to build and ship an sdist of itself to Beam on every step.
            beam_pipeline_args=(*pipeline_config.BEAM_PIPELINE_ARGS, f"--sdk_container_image={image()}"),
        ),
    )


def platform_spec(pipeline_spec: dict, shared_dir: str = kubeflow_config.KFP_SHARED_DIR) -> dict:
    """KFP's Kubernetes platform spec: the shared volume claim mounted into every executor."""
    executors = pipeline_spec["deploymentSpec"]["executors"]
    return {
        "platforms": {
            "kubernetes": {
                "deploymentSpec": {
                    "executors": {
                        name: {
                            "pvcMount": [
                                {
                                    "constant": kubeflow_config.KFP_SHARED_VOLUME_CLAIM,
                                    "mountPath": kubeflow_config.KFP_SHARED_DIR,
                                }
                            ]
                        }
                        for name in sorted(executors)
                    }
                }
            }
        }
    }


GOLDEN_STRUCTURE = folders.REPO_ROOT / "kubeflow" / "testdata" / "kfp_pipeline_structure.json"


def pipeline_structure(pipeline_spec: dict) -> dict:
    """Task -> sorted upstream tasks and input artifact keys: the compiled pipeline's shape, no details."""
    return {
        name: {
            "after": sorted(task.get("dependentTasks", [])),
            "artifacts": sorted(task.get("inputs", {}).get("artifacts", {})),
        }
        for name, task in sorted(pipeline_spec["root"]["dag"]["tasks"].items())
    }


EXAMPLE_GEN_TASKS = ("CsvExampleGen", "ServingLogsExampleGen")
INPUT_FINGERPRINT_COMMAND = ["python", "-m", "kubeflow.input_fingerprint"]


def key_example_gens_on_their_data(pipeline_spec: dict, step_image: str) -> None:
    """Makes the files each ExampleGen would read, as they are when the run starts, its KFP cache key.

    KFP keys a cached step on its parameters and input artifacts, never on files, and ExampleGen's
    parameters are constants: a later run with a new span would reuse the first run's examples. So a
    first step, `InputFingerprint` (kubeflow/input_fingerprint.py), never cached, computes each
    ExampleGen's own fingerprint of its input (the newest span, and its files' names, sizes and times),
    and each ExampleGen takes its own as the parameter `input_fingerprint`: new data is a new key however
    the run starts (`make kfp-run`, the KFP UI, a recurring run, the SDK), and no pipeline parameter can
    leave it empty. Unchanged data stays cached, and so does everything downstream; new request logs
    re-run ServingLogsExampleGen alone. The step's entrypoint takes the parameter out again
    (kubeflow/entrypoint.py).
    """
    tasks = pipeline_spec["root"]["dag"]["tasks"]
    step_inputs, step_outputs = {}, {}
    for name in (task for task in EXAMPLE_GEN_TASKS if task in tasks):
        task = tasks[name]
        for parameter in (
            input_fingerprint.INPUT_BASE,
            input_fingerprint.INPUT_CONFIG,
            input_fingerprint.RANGE_CONFIG,
        ):
            if parameter in task["inputs"]["parameters"]:
                step_inputs[input_fingerprint.input_parameter(name, parameter)] = task["inputs"][
                    "parameters"
                ][parameter]
        output = input_fingerprint.output_parameter(name)
        step_outputs[output] = {"parameterType": "STRING"}
        task["inputs"]["parameters"][entrypoint.INPUT_FINGERPRINT] = {
            "taskOutputParameter": {"producerTask": input_fingerprint.STEP, "outputParameterKey": output}
        }
        task["dependentTasks"] = sorted({*task.get("dependentTasks", []), input_fingerprint.STEP})
        component = pipeline_spec["components"][task["componentRef"]["name"]]
        component["inputDefinitions"]["parameters"][entrypoint.INPUT_FINGERPRINT] = {
            "parameterType": "STRING"
        }
    executor_label = f"{input_fingerprint.STEP}_executor"
    pipeline_spec["components"][input_fingerprint.STEP] = {
        "executorLabel": executor_label,
        "inputDefinitions": {"parameters": {name: {"parameterType": "STRING"} for name in step_inputs}},
        "outputDefinitions": {"parameters": step_outputs},
    }
    pipeline_spec["deploymentSpec"]["executors"][executor_label] = {
        "container": {
            "image": step_image,
            "command": INPUT_FINGERPRINT_COMMAND,
            "args": [input_fingerprint.INVOCATION_FLAG, "{{$}}"],
        }
    }
    tasks[input_fingerprint.STEP] = {
        "taskInfo": {"name": input_fingerprint.STEP},
        "componentRef": {"name": input_fingerprint.STEP},
        "cachingOptions": {"enableCache": False},
        "inputs": {"parameters": step_inputs},
    }


def compile_pipeline(
    output_dir: Path = kubeflow_config.KFP_BUILD_DIR,
    pipeline_root: str = kubeflow_config.KFP_DEFAULT_PIPELINE_ROOT,
    shared_dir: str = kubeflow_config.KFP_SHARED_DIR,
    tune: bool = pipeline_config.TUNE,
) -> Path:
    """Writes the pipeline spec (+ platform spec) YAML, with the Tuner if `tune`; returns its path."""
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image(),
            default_commands=ENTRYPOINT,
            use_pipeline_spec_2_1=True,
        ),
        output_dir=str(output_dir),
        output_filename=kubeflow_config.KFP_PIPELINE_FILE,
    )
    pipeline_spec = runner.run(build(pipeline_root, shared_dir, tune), write_out=False)["pipelineSpec"]
    # KFP caches a step on its inputs; ProductionModel's real input is the serving folder, which KFP
    # cannot see, so a cached baseline could be a model that is no longer in production.
    pipeline_spec["root"]["dag"]["tasks"]["ProductionModel"]["cachingOptions"] = {"enableCache": False}
    key_example_gens_on_their_data(pipeline_spec, image())
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / kubeflow_config.KFP_PIPELINE_FILE
    with path.open("w") as spec_file:
        spec_file.write(
            f"# {kubeflow_config.KFP_PIPELINE_NAME}: compiled by kubeflow/compiler.py (`make kfp-compile`).\n"
        )
        yaml.safe_dump_all(
            [pipeline_spec, platform_spec(pipeline_spec, shared_dir)], spec_file, sort_keys=True
        )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubeflow.compiler", description=__doc__)
    parser.add_argument("--output-dir", default=str(kubeflow_config.KFP_BUILD_DIR))
    parser.add_argument("--image-tag", action="store_true", help="Print the image tag and exit.")
    parser.add_argument(
        "--shared-dir",
        default=kubeflow_config.KFP_SHARED_DIR,
        help="Where steps find ExampleGen's input and the serving models (kfp.local: inside its pipeline root).",
    )
    parser.add_argument(
        "--tune",
        action="store_true",
        help="With the Tuner before the Trainer (as `make tune` runs locally); the golden is of this shape.",
    )
    parser.add_argument(
        "--write-golden",
        action="store_true",
        help=f"Also rewrite {GOLDEN_STRUCTURE.relative_to(folders.REPO_ROOT)} (needs --tune: it holds every step).",
    )
    args = parser.parse_args(argv)
    if args.image_tag:
        print(image())
        return 0
    if args.write_golden and not args.tune:
        parser.error(
            "--write-golden needs --tune: the golden structure holds every step, the Tuner's included"
        )
    path = compile_pipeline(Path(args.output_dir), shared_dir=args.shared_dir, tune=args.tune)
    if args.write_golden:
        spec = next(yaml.safe_load_all(path.read_text()))
        GOLDEN_STRUCTURE.write_text(json.dumps(pipeline_structure(spec), indent=2, sort_keys=True) + "\n")
        print(f"Wrote {GOLDEN_STRUCTURE}")
    print(f"Wrote {path} (image {image()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
