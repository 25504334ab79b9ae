"""The cluster manifests fit the published KServe and Istio CRD schemas, and say what each pattern needs."""

import jsonschema
import pytest
import yaml

from kubeflow import serving_manifests as k8s
from tests.support.outputs import saved_model


def test_a_canary_is_a_serverless_inference_service_with_its_share():
    [(name, manifest)] = k8s.manifests("100", "200", 10, shadow=False, host="taxi.example.com").items()
    assert name == "inference-service.yaml"
    assert manifest["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    predictor = manifest["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10 and predictor["model"]["storageUri"].endswith(
        "/kserve/200"
    )


def test_a_shadow_is_a_second_service_and_an_istio_mirror():
    found = k8s.manifests("100", "200", None, shadow=True, host="taxi.example.com")
    route = found["virtual-service-shadow.yaml"]["spec"]["http"][0]
    assert route["mirror"]["host"].startswith("taxi-shadow-predictor.") and route["mirrorPercentage"] == {
        "value": 100.0
    }
    assert found["inference-service-shadow.yaml"]["spec"]["predictor"]["model"]["storageUri"].endswith("/200")


@pytest.mark.parametrize(
    "broken",
    [
        lambda m: m["spec"]["predictor"].update(canaryTrafficPercent="ten"),
        lambda m: m["spec"]["predictor"]["model"].update(modelFormat="tensorflow"),
        lambda m: m["spec"].update(predictor=[]),
    ],
)
def test_the_schema_refuses_a_malformed_inference_service(broken):
    manifest = k8s.inference_service("taxi", "200", 10)
    broken(manifest)
    with pytest.raises(jsonschema.ValidationError):
        k8s.validate(manifest)


def test_the_schema_refuses_a_malformed_mirror():
    manifest = k8s.shadow_virtual_service("taxi", "taxi.example.com")
    manifest["spec"]["http"][0]["mirrorPercentage"] = {"value": "all"}
    with pytest.raises(jsonschema.ValidationError):
        k8s.validate(manifest)


def test_writing_lays_each_version_out_as_tf_serving_loads_it(tmp_path):
    serving = tmp_path / "serving_model"
    saved_model(serving / "200", b"weights")
    written = k8s.write(tmp_path / "manifests", serving, k8s.manifests("100", "200", 5, False, "h"), ["200"])
    assert yaml.safe_load(written[0].read_text())["kind"] == "InferenceService"
    assert (tmp_path / "kserve" / "200" / "200" / "saved_model.pb").read_bytes() == b"graph"
