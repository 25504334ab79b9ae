"""The compiled Kubeflow pipeline: what OSS KFP 2.x needs, checked statically, plus one real step.

`make kfp-compile` output is compiled here into a temporary folder (no cluster, no pipeline root).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.utils import import_utils

from config import kubeflow as kubeflow_config
from config import pipeline as pipeline_config
from kubeflow import compiler, entrypoint, input_fingerprint
from tests.support import container_launcher

EXECUTOR_CLASSES = {
    "CsvExampleGen": "components.csv_example_gen.Executor",
    "StatisticsGen": "tfx.components.statistics_gen.executor.Executor",
    "SchemaGen": "tfx.components.schema_gen.executor.Executor",
    "ImportSchemaGen": "tfx.components.schema_gen.import_schema_gen.executor.Executor",
    "ServingLogsExampleGen": "components.csv_example_gen.Executor",
    "ServingStatisticsGen": "tfx.components.statistics_gen.executor.Executor",
    "ExampleValidator": "components.data_validation.Executor",
    "TrainingDataGate": "components.data_gates.TrainingDataGateExecutor",
    "Transform": "tfx.components.transform.executor.Executor",
    "Tuner": "components.tuner.Executor",
    "Trainer": "tfx.components.trainer.executor.GenericExecutor",
    "ProductionModel": "components.production_model.ProductionModelExecutor",
    "EvaluationSample": "components.evaluation_sample.EvaluationSampleExecutor",
    "Evaluator": "components.evaluator.Executor",
    "SliceReport": "components.slice_report.SliceReportExecutor",
    "ServingCheck": "components.serving_check.Executor",
    "PushGate": "components.data_gates.PushGateExecutor",
    "Pusher": "components.pusher.Executor",
    "ModelCard": "components.model_card.ModelCardExecutor",
    "BulkInferrer": "tfx.components.bulk_inferrer.executor.Executor",
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    # With every step: the golden structure is of the tuned shape (`make kfp-golden`).
    path = compiler.compile_pipeline(tmp_path_factory.mktemp("kfp"), tune=True)
    text = path.read_text()
    spec, platform = yaml.safe_load_all(text)
    return path, text, spec, platform


def test_spec_parses_strictly_into_kfps_pipeline_spec_proto(compiled):
    _, _, spec, platform = compiled
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # raises on any unknown field
    json_format.ParseDict(platform["platforms"]["kubernetes"], pipeline_spec_pb2.SinglePlatformSpec())


def test_schema_2_1_as_the_oss_api_server_requires(compiled):
    path, text, spec, _ = compiled
    assert path.suffix == ".yaml"
    assert spec["schemaVersion"] == "2.1.0"
    assert "constantValue" not in text and "runtimeValue" in text


def test_every_component_runs_our_image_with_its_executor_and_beam_args(compiled):
    _, _, spec, _ = compiled
    assert set(spec["root"]["dag"]["tasks"]) == {*EXECUTOR_CLASSES, input_fingerprint.STEP}
    image = compiler.image()
    step = container_launcher.task_container(spec, input_fingerprint.STEP)
    assert (step["image"], step["command"]) == (image, compiler.INPUT_FINGERPRINT_COMMAND)
    assert re.fullmatch(r"taxi-pipeline:[0-9a-f]{12}", image)
    for task, executor_class in EXECUTOR_CLASSES.items():
        container = container_launcher.task_container(spec, task)
        assert container["image"] == image, task
        assert container["command"] == compiler.ENTRYPOINT, task
        args = container["args"]
        assert args[args.index("--executor_class_path") + 1] == executor_class, task
        assert all(arg in args for arg in pipeline_config.BEAM_PIPELINE_ARGS), task


def test_nothing_oss_kfp_cannot_run(compiled):
    _, text, spec, _ = compiled
    assert "gcr.io/tfx-oss-public" not in text and ":latest" not in text
    assert "__main__." not in text
    for name, executor in spec["deploymentSpec"]["executors"].items():
        assert set(executor) == {"container"}, f"{name} is not a plain container executor"
        assert "resolver" not in json.dumps(executor).lower() and "customJob" not in executor


def test_each_example_gen_is_keyed_on_its_data_by_a_first_step_that_is_never_cached(compiled):
    """KFP's cache key is a task's parameters and input artifacts: each ExampleGen takes the fingerprint the
    run's first step makes of its data. No pipeline parameter: a run started any way gets the key."""
    _, _, spec, _ = compiled
    tasks = spec["root"]["dag"]["tasks"]
    assert "inputDefinitions" not in spec["root"]
    step = tasks[input_fingerprint.STEP]
    assert step["cachingOptions"] == {"enableCache": False} and "dependentTasks" not in step
    assert container_launcher.task_container(spec, input_fingerprint.STEP)["image"] == compiler.image()
    for task_name in compiler.EXAMPLE_GEN_TASKS:
        task = tasks[task_name]
        assert task["cachingOptions"] == {"enableCache": True}
        assert input_fingerprint.STEP in task["dependentTasks"]
        assert task["inputs"]["parameters"][entrypoint.INPUT_FINGERPRINT] == {
            "taskOutputParameter": {
                "producerTask": input_fingerprint.STEP,
                "outputParameterKey": input_fingerprint.output_parameter(task_name),
            }
        }
        for parameter in (input_fingerprint.INPUT_BASE, input_fingerprint.INPUT_CONFIG):
            assert (
                step["inputs"]["parameters"][input_fingerprint.input_parameter(task_name, parameter)]
                == task["inputs"]["parameters"][parameter]
            )
        component = spec["components"][task["componentRef"]["name"]]
        assert component["inputDefinitions"]["parameters"][entrypoint.INPUT_FINGERPRINT] == {
            "parameterType": "STRING"
        }


def test_the_fingerprint_step_follows_new_spans_and_new_logs_each_for_its_own_example_gen(compiled, tmp_path):
    """The step's own code on a real shared folder, with the spec's parameters: a new span changes
    CsvExampleGen's key alone, new request logs ServingLogsExampleGen's alone; nothing new, nothing."""
    _, _, spec, _ = compiled
    shared = tmp_path / "shared"
    subprocess.run(
        [sys.executable, "-m", "cli.main", "prepare-data", "--output-dir", str(shared)],
        check=True,
        capture_output=True,
    )
    newest = max((shared / "example_gen_input").iterdir())
    held_back = newest.rename(tmp_path / newest.name)  # arrives later

    def keys() -> dict[str, str]:
        invocation = container_launcher.executor_input(spec, input_fingerprint.STEP, {}, "run")
        parameters = {
            name: value.replace(kubeflow_config.KFP_SHARED_DIR, str(shared))
            for name, value in invocation["inputs"]["parameterValues"].items()
        }
        invocation["inputs"]["parameterValues"] = parameters
        invocation["outputs"]["outputFile"] = str(tmp_path / "out" / "output_metadata.json")
        for name, slot in invocation["outputs"]["parameters"].items():
            slot["outputFile"] = str(tmp_path / "out" / name)
        assert input_fingerprint.main([input_fingerprint.INVOCATION_FLAG, json.dumps(invocation)]) == 0
        written = json.loads((tmp_path / "out" / "output_metadata.json").read_text())["parameterValues"]
        for name, value in written.items():  # the per-parameter files KFP's launcher may read instead
            assert (tmp_path / "out" / name).read_text() == value
        return written

    csv, logs = (input_fingerprint.output_parameter(task) for task in compiler.EXAMPLE_GEN_TASKS)
    first = keys()
    assert first[csv].startswith("span 20161, ") and keys() == first
    held_back.rename(newest)
    second = keys()
    assert second[csv].startswith("span 20162, ") and second[logs] == first[logs]
    logs_base = spec["root"]["dag"]["tasks"]["ServingLogsExampleGen"]["inputs"]["parameters"]["input_base"]
    log_folder = Path(
        logs_base["runtimeValue"]["constant"].replace(kubeflow_config.KFP_SHARED_DIR, str(shared))
    )
    (log_folder / "requests-more.csv").write_text(next(log_folder.glob("*.csv")).read_text())
    third = keys()
    assert third[logs] != second[logs] and third[csv] == second[csv]


def test_only_the_fingerprint_and_production_model_steps_are_never_cached(compiled):
    _, _, spec, _ = compiled
    caching = {name: task.get("cachingOptions", {}) for name, task in spec["root"]["dag"]["tasks"].items()}
    assert caching.pop("ProductionModel") == caching.pop(input_fingerprint.STEP) == {"enableCache": False}
    assert all(options.get("enableCache") for options in caching.values()), caching


def test_custom_artifact_types_resolve_to_importable_classes(compiled):
    # TFX's Kubeflow runner imports a non-TFX type by its schema title, so the title must be a class path.
    _, text, _, _ = compiled
    titles = set(re.findall(r"title: ([\w.]+)", text))
    custom = {title for title in titles if not title.startswith("tfx.")}
    assert custom == {"components.HtmlReport"}
    for title in custom:
        assert title == import_utils.import_class_by_path(title).TYPE_NAME


def test_every_step_mounts_the_shared_volume(compiled):
    _, _, spec, platform = compiled
    mounts = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(mounts) == set(spec["deploymentSpec"]["executors"])
    for mount in mounts.values():
        assert mount["pvcMount"] == [
            {"constant": kubeflow_config.KFP_SHARED_VOLUME_CLAIM, "mountPath": kubeflow_config.KFP_SHARED_DIR}
        ]


def test_structure_matches_the_golden_file(compiled):
    # After a deliberate change to the pipeline's shape: `make kfp-golden` rewrites the file.
    assert compiler.pipeline_structure(compiled[2]) == json.loads(compiler.GOLDEN_STRUCTURE.read_text())


def test_example_gen_step_runs_through_the_entrypoint_with_minio_uris(compiled, tmp_path, monkeypatch):
    _, _, spec, _ = compiled
    # The shared volume and the launcher's /minio copy, both inside this test's folder.
    shared, local_minio = tmp_path / "shared", tmp_path / "minio"
    for span, rows in ((20161, 3), (20162, 4)):
        for split in (
            "train",
            "eval",
            pipeline_config.CURRENT_SPAN_SPLIT,
            pipeline_config.PREVIOUS_SPAN_SPLIT,
        ):
            folder = shared / "example_gen_input" / f"span-{span}" / split
            folder.mkdir(parents=True)
            (folder / "data.csv").write_text("fare,tips\n" + "".join(f"{i}.5,1.0\n" for i in range(rows)))
            (folder / pipeline_config.CHECKED_ROWS_FILE).write_text(
                json.dumps({"data.csv": rows})
            )  # the checks'
    monkeypatch.setitem(entrypoint.LAUNCHER_LOCAL_ROOTS, "minio://", f"{local_minio}/")
    key = {input_fingerprint.output_parameter("CsvExampleGen"): "span 20162, 0123456789abcdef"}
    invocation = container_launcher.executor_input(
        spec, "CsvExampleGen", {input_fingerprint.STEP: key}, "run-1"
    )
    invocation["inputs"]["parameterValues"]["input_base"] = str(shared / "example_gen_input")
    invocation["outputs"]["outputFile"] = str(tmp_path / "kfp_outputs" / "output_metadata.json")
    args = list(container_launcher.task_container(spec, "CsvExampleGen")["args"])
    args[args.index("--json_serialized_invocation_args") + 1] = json.dumps(invocation)

    assert entrypoint.main(args) == 0

    examples_uri = f"{container_launcher.RUN_ROOT}/run-1/CsvExampleGen/examples"
    written = local_minio / examples_uri[len("minio://") :]
    assert sorted(p.name for p in written.iterdir()) == [
        "Split-current_span",
        "Split-eval",
        "Split-previous_span",
        "Split-train",
    ]
    output = json.loads((tmp_path / "kfp_outputs" / "output_metadata.json").read_text())
    [examples] = output["artifacts"]["examples"]["artifacts"]
    assert examples["uri"] == examples_uri and examples_uri.startswith("minio://mlpipeline/")
    # {SPAN} resolved to the newest span by TFX's driver, and the span kept on the artifact.
    assert examples["metadata"]["custom:span"] == 20162
    assert examples["metadata"]["split_names"] == '["train", "eval", "current_span", "previous_span"]'


def test_without_tuning_the_spec_has_no_tuner_and_the_trainer_no_hyperparameters(compiled, tmp_path):
    untuned = next(yaml.safe_load_all(compiler.compile_pipeline(tmp_path, tune=False).read_text()))
    assert set(untuned["root"]["dag"]["tasks"]) == {*EXECUTOR_CLASSES, input_fingerprint.STEP} - {"Tuner"}
    assert "hyperparameters" not in untuned["root"]["dag"]["tasks"]["Trainer"]["inputs"].get("artifacts", {})
    # Tuned, the Trainer takes the Tuner's best hyperparameters.
    tuned_inputs = compiled[2]["root"]["dag"]["tasks"]["Trainer"]["inputs"]["artifacts"]["hyperparameters"]
    assert tuned_inputs["taskOutputArtifact"] == {
        "producerTask": "Tuner",
        "outputArtifactKey": "best_hyperparameters",
    }
