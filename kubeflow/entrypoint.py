"""The command every step of the compiled pipeline runs on Kubeflow: TFX's executor runner, made to work
under open-source KFP's launcher.

Two gaps between TFX 1.16's Kubeflow V2 (Vertex) runner and open-source KFP 2.x, closed here:

1. Artifact URIs. KFP hands the executor `minio://bucket/path` (or `s3://`, `gs://`) URIs. TensorFlow
   2.16's file system cannot open `minio://` at all, nor `s3://` without tensorflow-io ("File system
   scheme ... not implemented"; kubeflow/pipelines#13476). But the OSS launcher already copies every
   input artifact to, and uploads every output artifact from, a local path: `/minio/bucket/path`,
   `/s3/...`, `/gcs/...` (`LocalPathForURI`, kubeflow/pipelines backend/src/v2/component/launcher_v2.go).
   So the URIs are rewritten to those local paths before TFX sees them, and back in the output
   metadata TFX writes, so KFP records the object-store URIs it expects.
2. ExampleGen's span resolution. TFX resolves `span-{SPAN}` in a driver that Vertex runs as the step's
   `preCacheCheck` hook; OSS KFP does not run that hook, so the executor would look for a literal
   `{SPAN}` folder. For file-based ExampleGen executors the driver runs here first; TFX's runner then
   reads the span, version and resolved input config the driver wrote, as on Vertex, and the span is
   kept on the Examples artifact.

And one for KFP's own local runner (`kfp.local`), which drops TFX's artifact types from inputs: they are
restored from the step's inputs spec (see `restore_input_types`).

The ExampleGen steps also receive their `input_fingerprint`, made by the run's first step from the data
(kubeflow/input_fingerprint.py): it is there for KFP's cache key alone, and is taken out before TFX sees
the step's parameters.
"""

import json
import sys

# Object-store schemes and where KFP's launcher keeps the local copy of an artifact under each.
LAUNCHER_LOCAL_ROOTS = {"minio://": "/minio/", "s3://": "/s3/", "gs://": "/gcs/"}
INVOCATION_FLAG = "--json_serialized_invocation_args"
CLASS_PATH_FLAG = "--executor_class_path"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
# A pipeline parameter that only keys KFP's cache (see kubeflow/compiler.py): not one of TFX's.
INPUT_FINGERPRINT = "input_fingerprint"
FILE_BASED_EXAMPLE_GEN_EXECUTORS = (
    "tfx.components.example_gen.csv_example_gen.executor.Executor",
    "tfx.components.example_gen.import_example_gen.executor.Executor",
)


def to_local_path(uri: str) -> str:
    """`minio://mlpipeline/v2/x` -> `/minio/mlpipeline/v2/x`; anything else is returned unchanged."""
    for scheme, root in LAUNCHER_LOCAL_ROOTS.items():
        if uri.startswith(scheme):
            return root + uri[len(scheme) :]
    return uri


def to_uri(path: str, original_scheme: str) -> str:
    """The inverse of `to_local_path` for a path that came from a URI with `original_scheme`."""
    root = LAUNCHER_LOCAL_ROOTS[original_scheme]
    return original_scheme + path[len(root) :] if path.startswith(root) else path


def _artifacts(section: dict):
    """Every runtime artifact dict in an ExecutorInput/ExecutorOutput `artifacts` map."""
    for artifact_list in (section or {}).get("artifacts", {}).values():
        yield from artifact_list.get("artifacts", [])


def localize_invocation(invocation: dict) -> tuple[dict, dict[str, str]]:
    """ExecutorInput JSON with local artifact paths; and local path -> original URI, to map back."""
    localized = json.loads(json.dumps(invocation))
    original_uris = {}
    for section in (localized.get("inputs"), localized.get("outputs")):
        for artifact in _artifacts(section):
            uri = artifact.get("uri", "")
            local = to_local_path(uri)
            if local != uri:
                original_uris[local] = uri
                artifact["uri"] = local
    return localized, original_uris


def without_cache_key_parameters(invocation: dict) -> dict:
    """ExecutorInput JSON without the parameters that exist only for KFP's cache key."""
    cleaned = json.loads(json.dumps(invocation))
    for section in ("parameterValues", "parameters"):
        cleaned.get("inputs", {}).get(section, {}).pop(INPUT_FINGERPRINT, None)
    return cleaned


def restore_input_types(invocation: dict, inputs_spec: dict) -> dict:
    """Gives input artifacts back the TFX type (`instanceSchema`) the compiled spec declares for them.

    KFP's local runner (`kfp.local`) rebuilds input artifacts from their `schemaTitle` only, so TFX
    would see `system.Artifact` ("Could not import system.Artifact"); the component's inputs spec,
    passed to every step as --json_serialized_inputs_spec_args, still has the real type.
    """
    restored = json.loads(json.dumps(invocation))
    declared = inputs_spec.get("artifacts", {})
    for key, artifact_list in restored.get("inputs", {}).get("artifacts", {}).items():
        schema = declared.get(key, {}).get("artifactType", {}).get("instanceSchema")
        for artifact in artifact_list.get("artifacts", []):
            if schema and "instanceSchema" not in artifact.get("type", {}):
                artifact["type"] = {"instanceSchema": schema}
    return restored


def restore_uris(executor_output: dict, original_uris: dict[str, str]) -> dict:
    """ExecutorOutput JSON with the object-store URIs KFP gave, where TFX wrote local paths."""
    restored = json.loads(json.dumps(executor_output))
    for artifact in _artifacts(restored):
        artifact["uri"] = original_uris.get(artifact.get("uri", ""), artifact.get("uri", ""))
    return restored


def merge_driver_metadata(executor_output: dict, driver_output: dict) -> dict:
    """Adds the driver's artifact metadata (span, version, fingerprint) under the executor's own.

    On Vertex the service applies the driver's output to the artifact; here the executor's output file
    replaces the driver's, so the span would be lost from the Examples artifact without this.
    """
    merged = json.loads(json.dumps(executor_output))
    for key, artifact_list in driver_output.get("artifacts", {}).items():
        for driver_artifact, artifact in zip(
            artifact_list.get("artifacts", []),
            merged.get("artifacts", {}).get(key, {}).get("artifacts", []),
            strict=False,
        ):
            artifact["metadata"] = {**driver_artifact.get("metadata", {}), **artifact.get("metadata", {})}
    return merged


def _flag_value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def main(argv: list[str]) -> int:
    # Imported here so the mapping above stays importable (and testable) without TFX.
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
    from tfx.orchestration.kubeflow.v2.file_based_example_gen import driver

    from pipeline import beam_settings

    beam_settings.disable_in_memory_state_cache()

    argv = list(argv)
    position = argv.index(INVOCATION_FLAG) + 1
    invocation, original_uris = localize_invocation(without_cache_key_parameters(json.loads(argv[position])))
    if INPUTS_SPEC_FLAG in argv:
        invocation = restore_input_types(invocation, json.loads(_flag_value(argv, INPUTS_SPEC_FLAG)))
    argv[position] = json.dumps(invocation)
    output_file = invocation["outputs"]["outputFile"]

    driver_output = {}
    if _flag_value(argv, CLASS_PATH_FLAG) in FILE_BASED_EXAMPLE_GEN_EXECUTORS:
        driver.main(driver._parse_flags(argv))
        with open(output_file) as metadata_file:
            driver_output = json.load(metadata_file)
    kubeflow_v2_run_executor.main(kubeflow_v2_run_executor._parse_flags(argv))

    with open(output_file) as metadata_file:
        executor_output = merge_driver_metadata(json.load(metadata_file), driver_output)
    with open(output_file, "w") as metadata_file:
        json.dump(restore_uris(executor_output, original_uris), metadata_file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
