"""The compiled Kubeflow pipeline: what OSS KFP 2.x needs, checked statically, plus one real step.

`make kfp-compile` output is compiled here into a temporary folder (no cluster, no pipeline root).
"""

import json
import re
import subprocess
import sys

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.utils import import_utils

from config import kubeflow as kubeflow_config
from config import pipeline as pipeline_config
from kubeflow import compiler, entrypoint, submit
from tests.support import container_launcher

EXECUTOR_CLASSES = {
    "CsvExampleGen": "tfx.components.example_gen.csv_example_gen.executor.Executor",
    "StatisticsGen": "tfx.components.statistics_gen.executor.Executor",
    "SchemaGen": "tfx.components.schema_gen.executor.Executor",
    "ImportSchemaGen": "tfx.components.schema_gen.import_schema_gen.executor.Executor",
    "ServingLogsExampleGen": "tfx.components.example_gen.csv_example_gen.executor.Executor",
    "ServingStatisticsGen": "tfx.components.statistics_gen.executor.Executor",
    "ExampleValidator": "components.data_validation.Executor",
    "TrainingDataGate": "components.data_gates.TrainingDataGateExecutor",
    "Transform": "tfx.components.transform.executor.Executor",
    "Trainer": "tfx.components.trainer.executor.GenericExecutor",
    "ProductionModel": "components.production_model.ProductionModelExecutor",
    "EvaluationSample": "components.evaluation_sample.EvaluationSampleExecutor",
    "Evaluator": "components.evaluator.Executor",
    "SliceReport": "components.slice_report.SliceReportExecutor",
    "PushGate": "components.data_gates.PushGateExecutor",
    "Pusher": "components.pusher.Executor",
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path = compiler.compile_pipeline(tmp_path_factory.mktemp("kfp"))
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
    assert set(spec["root"]["dag"]["tasks"]) == set(EXECUTOR_CLASSES)
    image = compiler.image()
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


def test_a_run_on_new_data_cannot_hit_the_example_gen_cache(compiled, tmp_path):
    """KFP's cache key is a task's parameters and input artifacts: both ExampleGens take the run's input
    fingerprint as a parameter, which submit.py sets from the data, so new data is a new key."""
    _, _, spec, _ = compiled
    name = entrypoint.INPUT_FINGERPRINT
    assert spec["root"]["inputDefinitions"]["parameters"][name]["parameterType"] == "STRING"
    for task_name in compiler.EXAMPLE_GEN_TASKS:
        task = spec["root"]["dag"]["tasks"][task_name]
        assert task["cachingOptions"] == {"enableCache": True}
        assert task["inputs"]["parameters"][name] == {"componentInputParameter": name}
        component = spec["components"][task["componentRef"]["name"]]
        assert component["inputDefinitions"]["parameters"][name] == {"parameterType": "STRING"}
    # What submit passes: a new span is a new fingerprint, unchanged data the same one.
    shared = tmp_path / "shared"
    subprocess.run(
        [sys.executable, "-m", "cli.main", "prepare-data", "--output-dir", str(shared)],
        check=True,
        capture_output=True,
    )
    first = submit.run_arguments(shared)[name]
    assert submit.run_arguments(shared)[name] == first
    newest = max((shared / "example_gen_input").iterdir())
    newest.rename(newest.with_name("span-20171"))  # a span newer than any: what ExampleGen would read next
    assert submit.run_arguments(shared)[name] != first


def test_only_the_production_model_step_is_never_cached(compiled):
    _, _, spec, _ = compiled
    caching = {name: task.get("cachingOptions", {}) for name, task in spec["root"]["dag"]["tasks"].items()}
    assert caching.pop("ProductionModel") == {"enableCache": False}
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
    monkeypatch.setitem(entrypoint.LAUNCHER_LOCAL_ROOTS, "minio://", f"{local_minio}/")
    invocation = container_launcher.executor_input(spec, "CsvExampleGen", {}, "run-1")
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
