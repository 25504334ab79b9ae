"""The Kubeflow entrypoint's URI mapping (pure) — see compiler_test for a real step through it."""

import pytest

from kubeflow import entrypoint


@pytest.mark.parametrize(
    "uri, local",
    [
        (
            "minio://mlpipeline/v2/artifacts/run/Trainer/model",
            "/minio/mlpipeline/v2/artifacts/run/Trainer/model",
        ),
        ("s3://bucket/a/b", "/s3/bucket/a/b"),
        ("gs://bucket/a", "/gcs/bucket/a"),
        ("/mnt/taxi/serving_model", "/mnt/taxi/serving_model"),
    ],
)
def test_object_store_uris_map_to_the_launchers_local_copies_and_back(uri, local):
    assert entrypoint.to_local_path(uri) == local
    scheme = uri.split("//")[0] + "//" if "://" in uri else None
    if scheme:
        assert entrypoint.to_uri(local, scheme) == uri


def _invocation():
    return {
        "inputs": {
            "artifacts": {
                "model": {"artifacts": [{"name": "m", "uri": "minio://mlpipeline/v2/run/Trainer/model"}]},
                "examples": {"artifacts": [{"name": "e", "uri": "s3://bucket/run/CsvExampleGen/examples"}]},
            },
            "parameterValues": {"serving_model_dir": "/mnt/taxi/serving_model"},
        },
        "outputs": {
            "artifacts": {
                "baseline_model": {
                    "artifacts": [{"name": "b", "uri": "minio://mlpipeline/v2/run/PM/baseline"}]
                }
            },
            "outputFile": "/tmp/kfp_outputs/output_metadata.json",
        },
    }


def test_invocation_artifacts_are_localized_and_nothing_else_changes():
    localized, original = entrypoint.localize_invocation(_invocation())
    assert (
        localized["inputs"]["artifacts"]["model"]["artifacts"][0]["uri"]
        == "/minio/mlpipeline/v2/run/Trainer/model"
    )
    assert (
        localized["inputs"]["artifacts"]["examples"]["artifacts"][0]["uri"]
        == "/s3/bucket/run/CsvExampleGen/examples"
    )
    assert (
        localized["outputs"]["artifacts"]["baseline_model"]["artifacts"][0]["uri"]
        == "/minio/mlpipeline/v2/run/PM/baseline"
    )
    assert localized["inputs"]["parameterValues"] == _invocation()["inputs"]["parameterValues"]
    assert localized["outputs"]["outputFile"] == "/tmp/kfp_outputs/output_metadata.json"
    assert original["/minio/mlpipeline/v2/run/PM/baseline"] == "minio://mlpipeline/v2/run/PM/baseline"


def test_output_metadata_gets_the_original_uris_back():
    _, original = entrypoint.localize_invocation(_invocation())
    written_by_tfx = {
        "artifacts": {
            "baseline_model": {
                "artifacts": [
                    {"name": "b", "uri": "/minio/mlpipeline/v2/run/PM/baseline", "metadata": {"x": 1}}
                ]
            }
        }
    }
    restored = entrypoint.restore_uris(written_by_tfx, original)
    artifact = restored["artifacts"]["baseline_model"]["artifacts"][0]
    assert artifact == {"name": "b", "uri": "minio://mlpipeline/v2/run/PM/baseline", "metadata": {"x": 1}}


def test_the_drivers_span_is_kept_beside_the_executors_metadata():
    executor_output = {
        "artifacts": {"examples": {"artifacts": [{"uri": "/x", "metadata": {"split_names": "[]"}}]}}
    }
    driver_output = {
        "artifacts": {"examples": {"artifacts": [{"uri": "/x", "metadata": {"custom:span": 20162}}]}}
    }
    merged = entrypoint.merge_driver_metadata(executor_output, driver_output)
    assert merged["artifacts"]["examples"]["artifacts"][0]["metadata"] == {
        "custom:span": 20162,
        "split_names": "[]",
    }


def test_input_types_dropped_by_kfp_local_come_back_from_the_inputs_spec():
    schema = "title: tfx.Examples\ntype: object\n"
    invocation = {
        "inputs": {
            "artifacts": {
                "examples": {"artifacts": [{"uri": "/x", "type": {"schemaTitle": "system.Artifact"}}]},
                "schema": {"artifacts": [{"uri": "/y", "type": {"instanceSchema": "title: tfx.Schema\n"}}]},
            }
        }
    }
    inputs_spec = {"artifacts": {"examples": {"artifactType": {"instanceSchema": schema}}}}
    restored = entrypoint.restore_input_types(invocation, inputs_spec)["inputs"]["artifacts"]
    assert restored["examples"]["artifacts"][0]["type"] == {"instanceSchema": schema}
    assert restored["schema"]["artifacts"][0]["type"] == {"instanceSchema": "title: tfx.Schema\n"}


def test_the_input_fingerprint_is_taken_out_before_tfx_sees_the_parameters():
    invocation = {
        "inputs": {
            "parameterValues": {"input_base": "/mnt/taxi/example_gen_input", "input_fingerprint": "abc"}
        },
        "outputs": {"outputFile": "/tmp/out.json"},
    }
    cleaned = entrypoint.without_cache_key_parameters(invocation)
    assert cleaned["inputs"]["parameterValues"] == {"input_base": "/mnt/taxi/example_gen_input"}
    assert invocation["inputs"]["parameterValues"]["input_fingerprint"] == "abc"  # not changed in place
